#pragma once
// Botan's TLS 1.2 channel driven through TLS::Callbacks, without I/O: ciphertext in (feed),
// plaintext and ciphertext out (plaintext(), outbox()), state as flags. The link moves the bytes;
// this class decides nothing about sockets or time. Botan throws; nothing leaves this class as an
// exception.
//
// Botan runs the handshake; once the session is active the engine carries on with its own record
// layer (tls_records.hpp) and destroys Botan's channel, which would keep the whole handshake
// state (~20 KiB) for the life of the link. Records are cut at their length fields and handed to
// Botan one at a time, so the engine knows exactly which record finished the handshake and where
// both sequence numbers stand.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <botan/tls_callbacks.h>
#include <botan/tls_channel.h>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/transport/credentials.hpp"
#include "tls_records.hpp"

namespace p2psip::transport::detail {

/// What the peer's certificate must show besides a chain to the overlay root(s) and at least one
/// Node-ID of the credentials' overlay.
struct peer_requirements {
  /// A Node-ID the certificate must bind.
  std::optional<protocol::node_id> required;
  /// Server side only: ask the client for no certificate and accept a handshake without one
  /// (plain SIP user agents); the peer then has no Node-IDs.
  bool anonymous_client = false;
  /// Client side with named-server credentials (tls_credentials::for_named_servers) only, and
  /// required there: the host name or IP address the server's certificate must name. A name is
  /// sent as SNI (RFC 6066 3: never an address).
  std::string server_name;
};

class tls_engine final : public Botan::TLS::Callbacks {
 public:
  /// `key_log_path`: NSS key-log file to append a CLIENT_RANDOM line to; empty for none.
  tls_engine(bool server, std::shared_ptr<const tls_credentials> creds, peer_requirements req,
             std::string key_log_path);
  ~tls_engine() override;
  tls_engine(const tls_engine&) = delete;
  tls_engine& operator=(const tls_engine&) = delete;

  /// Creates the Botan channel; a client writes its ClientHello to the outbox.
  std::error_code start();
  /// Consumes bytes from the socket. Handshake progress and alerts update the flags; application
  /// data is appended to plaintext(). Several records (handshake end, data, close_notify) may be in
  /// one call; they are handled in order. An error means the session is dead (a fatal alert for
  /// the peer may be waiting in the outbox).
  std::error_code feed(const std::uint8_t* data, std::size_t size);
  /// Encrypts `size` bytes as one record (up to 16 KiB; more is split by Botan) into the outbox.
  std::error_code send(const std::uint8_t* data, std::size_t size);
  /// Sends close_notify if the session is open.
  void close() noexcept;
  /// Keeps Botan's channel for the whole session instead of switching to our record layer: for
  /// the tests that check the two record layers against each other.
  void keep_botan_record_layer() noexcept { keep_botan_records_ = true; }
  /// The link has nothing to write for now: drop what the next record can make again (the
  /// record layer's cipher objects).
  void release_idle_state() noexcept {
    if (records_) records_->release_ciphers();
  }
  /// Whether the session runs on our record layer (Botan's channel is gone).
  bool own_record_layer() const noexcept { return records_ != nullptr; }

  /// Ciphertext waiting to be written.
  std::vector<std::uint8_t>& outbox() noexcept { return outbox_; }
  /// Application data received and not yet taken.
  std::vector<std::uint8_t>& plaintext() noexcept { return plaintext_; }
  /// The handshake finished and the peer was verified.
  bool active() const noexcept { return activated_; }
  /// The peer sent close_notify (Botan has queued ours in reply).
  bool peer_closed() const noexcept { return peer_closed_; }
  /// send() would be accepted: established, and neither side has closed or failed.
  bool can_send() const noexcept;

  const std::vector<protocol::node_id>& peer_node_ids() const noexcept { return peer_ids_; }
  const std::string& peer_user() const noexcept { return peer_user_; }
  const protocol::bytes& peer_certificate() const noexcept { return peer_cert_; }
  /// Why the last failure happened, in words (Botan's message, validation status, alert name).
  const std::string& detail() const noexcept { return detail_; }
  /// Negotiated suite ("ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"), empty before the handshake.
  const std::string& cipher_suite() const noexcept { return suite_; }

 private:
  void tls_emit_data(const std::uint8_t data[], std::size_t size) override;
  void tls_record_received(std::uint64_t seq, const std::uint8_t data[], std::size_t size) override;
  void tls_alert(Botan::TLS::Alert alert) override;
  bool tls_session_established(const Botan::TLS::Session& session) override;
  void tls_session_activated() override;
  void tls_verify_cert_chain(const std::vector<Botan::X509_Certificate>& cert_chain,
                             const std::vector<std::shared_ptr<const Botan::OCSP::Response>>& ocsp,
                             const std::vector<Botan::Certificate_Store*>& trusted_roots,
                             Botan::Usage_Type usage, const std::string& hostname,
                             const Botan::TLS::Policy& policy) override;
  void tls_inspect_handshake_msg(const Botan::TLS::Handshake_Message& message) override;

  std::error_code failure(std::error_code code, std::string detail);
  /// tls_verify_cert_chain for named-server credentials: chain, then host name.
  void verify_named_server(const std::vector<Botan::X509_Certificate>& cert_chain,
                           const std::vector<Botan::Certificate_Store*>& trusted_roots,
                           const Botan::TLS::Policy& policy);
  /// One whole record: to Botan while it runs the session, else to our record layer.
  std::error_code botan_record(const std::uint8_t* data, std::size_t size);
  std::error_code own_record(const std::uint8_t* data, std::size_t size);
  /// After the record that activated the session: our record layer takes over, when the suite
  /// is one it serves (else Botan's channel stays).
  void take_over_records();
  void send_alert(std::uint8_t level, std::uint8_t description);

  bool server_;
  std::shared_ptr<const tls_credentials> creds_;
  peer_requirements req_;
  std::string key_log_path_;
  std::unique_ptr<Botan::TLS::Channel> channel_;
  std::unique_ptr<record_layer> records_;
  /// What our record layer is made from, gathered during the handshake, wiped once it is made.
  session_secrets secrets_;
  bool suite_supported_ = false;  ///< secrets_ describe a suite record_layer serves
  bool keep_botan_records_ = false;
  /// Records after each side's ChangeCipherSpec (the next sequence numbers of the new epoch).
  bool peer_changed_cipher_ = false;
  bool we_changed_cipher_ = false;
  std::uint64_t records_read_since_ccs_ = 0;
  std::uint64_t records_written_since_ccs_ = 0;
  /// The start of a record not yet complete.
  std::vector<std::uint8_t> partial_;
  bool closed_ = false;  ///< we sent close_notify on our record layer

  std::vector<std::uint8_t> outbox_;
  std::vector<std::uint8_t> plaintext_;
  std::vector<std::uint8_t> client_random_;
  std::vector<std::uint8_t> server_random_;
  bool verified_ = false;
  bool activated_ = false;
  bool peer_closed_ = false;
  bool failed_ = false;
  std::optional<Botan::TLS::Alert::Type> peer_fatal_alert_;
  std::error_code verify_error_;
  std::vector<protocol::node_id> peer_ids_;
  protocol::bytes peer_cert_;
  std::string peer_user_;
  std::string detail_;
  std::string suite_;
};

/// Appends "CLIENT_RANDOM <client random hex> <master secret hex>\n" to `path` (NSS key-log
/// format, as browsers and curl write for $SSLKEYLOGFILE). Serialised across threads.
void append_key_log(const std::string& path, protocol::byte_view client_random,
                    protocol::byte_view master_secret);

}  // namespace p2psip::transport::detail
