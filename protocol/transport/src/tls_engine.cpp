#include "tls_engine.hpp"

#include <botan/system_rng.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_messages.h>
#include <botan/tls_server.h>
#include <botan/x509path.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string_view>

#include "credentials_state.hpp"
#include "p2psip/transport/errors.hpp"
#include "peer_identity.hpp"

namespace p2psip::transport::detail {

namespace pr = p2psip::protocol;
namespace tls = Botan::TLS;

namespace {

/// Thrown from tls_verify_cert_chain to abort the handshake: Botan sends the peer a
/// bad_certificate alert and rethrows it out of received_data, where feed() catches it.
class verification_failed final : public tls::TLS_Exception {
 public:
  explicit verification_failed(const std::string& what)
      : tls::TLS_Exception(tls::Alert::BAD_CERTIFICATE, what) {}
};

/// What Botan reserves up front for each of its record buffers (its default is 10 KiB each,
/// calloc'ed, so touched: 20 KiB of every idle link). Nothing: they grow to the largest record
/// that actually went through, which on an idle link is a handshake message.
constexpr std::size_t reserved_io_buffer = 0;

bool is_certificate_alert(tls::Alert::Type t) {
  switch (t) {
    case tls::Alert::BAD_CERTIFICATE:
    case tls::Alert::UNSUPPORTED_CERTIFICATE:
    case tls::Alert::CERTIFICATE_REVOKED:
    case tls::Alert::CERTIFICATE_EXPIRED:
    case tls::Alert::CERTIFICATE_UNKNOWN:
    case tls::Alert::UNKNOWN_CA:
    case tls::Alert::ACCESS_DENIED:
    case tls::Alert::CERTIFICATE_REQUIRED: return true;
    default: return false;
  }
}

/// True for an IPv4 or IPv6 address (IPv6 possibly in brackets), false for a host name.
bool is_ip_literal(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') return true;
  if (host.find(':') != std::string_view::npos) return true;  // IPv6; names have no colon
  return !host.empty() && std::all_of(host.begin(), host.end(),
                                      [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

/// The IP address text of `host` without brackets, as Botan writes an iPAddress SAN.
std::string bare_address(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::string(host);
}

/// ASCII case-insensitive equality (host names).
bool same_text(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// The names a server certificate offers, for the error message: its DNS and IP SANs, else its
/// common name.
std::string offered_names(const Botan::X509_Certificate& cert) {
  std::string out;
  auto add = [&out](const std::string& n) { out += (out.empty() ? "" : ", ") + n; };
  for (const auto& n : cert.subject_info("DNS")) add("DNS:" + n);
  for (const auto& n : cert.subject_alt_name().get_attribute("IP")) add("IP:" + n);
  for (const auto& n : cert.subject_alt_name().get_attribute("URI")) {
    if (n.rfind("sip:", 0) == 0) add("URI:" + n);
  }
  if (out.empty()) {
    for (const auto& n : cert.subject_info("Name")) add("CN:" + n);
  }
  return out.empty() ? "no name" : out;
}

}  // namespace

void append_key_log(const std::string& path, pr::byte_view client_random,
                    pr::byte_view master_secret) {
  static std::mutex mutex;
  const std::string line =
      "CLIENT_RANDOM " + pr::to_hex(client_random) + " " + pr::to_hex(master_secret) + "\n";
  std::lock_guard lock(mutex);
  if (std::FILE* f = std::fopen(path.c_str(), "a")) {
    std::fwrite(line.data(), 1, line.size(), f);
    std::fclose(f);
  }
}

tls_engine::tls_engine(bool server, std::shared_ptr<const tls_credentials> creds,
                       peer_requirements req, std::string key_log_path)
    : server_(server),
      creds_(std::move(creds)),
      req_(std::move(req)),
      key_log_path_(std::move(key_log_path)) {}

tls_engine::~tls_engine() = default;

std::error_code tls_engine::failure(std::error_code code, std::string detail) {
  failed_ = true;
  if (detail_.empty()) detail_ = std::move(detail);
  return code;
}

std::error_code tls_engine::start() {
  auto& st = creds_->state();
  if (st.named_servers && (server_ || req_.server_name.empty())) {
    return failure(make_error_code(transport_errc::invalid_credentials),
                   server_ ? "named-server credentials serve only the TLS client role"
                           : "named-server credentials need the server's name");
  }
  if (!st.named_servers && !req_.server_name.empty()) {
    return failure(make_error_code(transport_errc::invalid_credentials),
                   "a server name needs named-server credentials");
  }
  try {
    if (st.named_servers) {
      // SNI with the name (RFC 6066 3 forbids an address there); the port only keys Botan's
      // session cache, which is a no-op here.
      const std::string sni = is_ip_literal(req_.server_name) ? std::string() : req_.server_name;
      channel_ = std::make_unique<tls::Client>(*this, st.sessions, st.manager, st.policy,
                                               Botan::system_rng(), tls::Server_Information(sni),
                                               tls::Protocol_Version::TLS_V12,
                                               std::vector<std::string>{}, reserved_io_buffer);
    } else if (server_ && req_.anonymous_client) {
      channel_ = std::make_unique<tls::Server>(*this, st.sessions, st.anonymous_client_manager,
                                               st.anonymous_client_policy, Botan::system_rng(),
                                               false, reserved_io_buffer);
    } else if (server_) {
      channel_ = std::make_unique<tls::Server>(*this, st.sessions, st.manager, st.policy,
                                               Botan::system_rng(), false, reserved_io_buffer);
    } else {
      // No SNI: RELOAD peers are named by Node-ID, checked in tls_verify_cert_chain.
      channel_ = std::make_unique<tls::Client>(
          *this, st.sessions, st.manager, st.policy, Botan::system_rng(), tls::Server_Information(),
          tls::Protocol_Version::TLS_V12, std::vector<std::string>{}, reserved_io_buffer);
    }
  } catch (const std::exception& e) {
    return failure(make_error_code(transport_errc::handshake_failed), e.what());
  }
  return {};
}

std::error_code tls_engine::feed(const std::uint8_t* data, std::size_t size) {
  if (failed_ || (!channel_ && !records_)) return make_error_code(transport_errc::tls_error);
  // Whole records only, one at a time: what is left of a record waits in partial_.
  std::vector<std::uint8_t> joined;
  if (!partial_.empty()) {
    joined = std::move(partial_);
    partial_ = {};
    joined.insert(joined.end(), data, data + size);
    data = joined.data();
    size = joined.size();
  }
  std::size_t at = 0;
  while (size - at >= record_header_size) {
    const std::uint8_t* record = data + at;
    const std::size_t length = (std::size_t{record[3]} << 8) | record[4];
    const bool looks_like_tls = record[0] >= 20 && record[0] <= 23 && record[1] == 3 &&
                                length <= max_record_plaintext + max_record_expansion;
    if (!looks_like_tls) {
      // Not a TLS record (another protocol, garbage, or an oversized one): Botan says what is
      // wrong with it during the handshake; afterwards it is ours to refuse.
      if (records_) {
        send_alert(2, 22);  // record_overflow or worse: the stream cannot be framed any more
        return failure(make_error_code(transport_errc::tls_error), "not a TLS 1.2 record");
      }
      return botan_record(record, size - at);
    }
    if (size - at < record_header_size + length) break;
    const auto ec = records_ ? own_record(record, record_header_size + length)
                             : botan_record(record, record_header_size + length);
    if (ec) return ec;
    at += record_header_size + length;
    if (activated_ && !records_ && channel_) take_over_records();
  }
  if (at < size) partial_.assign(data + at, data + size);
  // The last record of an exchange is often one we answer nothing to (an ack): the link would
  // then never go idle on the writing side, so the reading side's cipher goes here. It is made
  // again at the next read (once per read, which carries every record that arrived).
  if (records_ && partial_.empty()) records_->release_reader();
  return {};
}

std::error_code tls_engine::botan_record(const std::uint8_t* data, std::size_t size) {
  const bool was_active = activated_;
  try {
    channel_->received_data(data, size);
  } catch (const std::exception& e) {
    if (verify_error_) return failure(verify_error_, e.what());
    if (peer_fatal_alert_) {
      // handled below
    } else {
      return failure(make_error_code(was_active || activated_ ? transport_errc::tls_error
                                                              : transport_errc::handshake_failed),
                     e.what());
    }
  }
  if (size > 0 && data[0] == static_cast<std::uint8_t>(record_type::change_cipher_spec)) {
    peer_changed_cipher_ = true;
  } else if (peer_changed_cipher_) {
    ++records_read_since_ccs_;
  }
  if (peer_fatal_alert_) {
    const auto alert = tls::Alert(*peer_fatal_alert_, true);
    const std::string what = "peer sent fatal alert " + alert.type_string();
    if (activated_) return failure(make_error_code(transport_errc::tls_error), what);
    return failure(make_error_code(is_certificate_alert(*peer_fatal_alert_)
                                       ? transport_errc::rejected_by_peer
                                       : transport_errc::handshake_failed),
                   what);
  }
  return {};
}

void tls_engine::take_over_records() {
  if (keep_botan_records_ || !suite_supported_ || !we_changed_cipher_ || !peer_changed_cipher_) {
    return;
  }
  secrets_.next_read_sequence = records_read_since_ccs_;
  secrets_.next_write_sequence = records_written_since_ccs_;
  secrets_.client_random = client_random_;
  secrets_.server_random = server_random_;
  std::error_code ec;
  auto layer = record_layer::create(secrets_, server_, ec);
  secrets_ = {};       // the master secret is not kept (secure_vector wipes it)
  if (!layer) return;  // Botan's channel carries on
  records_ = std::move(layer);
  channel_.reset();
  server_random_ = {};
}

std::error_code tls_engine::own_record(const std::uint8_t* data, std::size_t size) {
  opened_record r;
  if (auto ec = records_->open(data, size, r)) {
    send_alert(2, 20);  // bad_record_mac
    return failure(ec, "a TLS record does not verify (bad_record_mac)");
  }
  switch (r.type) {
    case record_type::application_data:
      if (peer_closed_) return {};
      if (plaintext_.empty()) {
        plaintext_ = std::move(r.plaintext);
      } else {
        plaintext_.insert(plaintext_.end(), r.plaintext.begin(), r.plaintext.end());
      }
      return {};
    case record_type::alert: {
      if (r.plaintext.size() != 2) {
        send_alert(2, 50);  // decode_error
        return failure(make_error_code(transport_errc::tls_error), "malformed TLS alert");
      }
      const auto type = static_cast<tls::Alert::Type>(r.plaintext[1]);
      if (type == tls::Alert::CLOSE_NOTIFY) {
        peer_closed_ = true;
        close();  // ours in reply, as Botan does
        return {};
      }
      if (r.plaintext[0] == 2) {
        const std::string what = "peer sent fatal alert " + tls::Alert(type, true).type_string();
        if (!peer_fatal_alert_) peer_fatal_alert_ = type;
        return failure(make_error_code(transport_errc::tls_error), what);
      }
      return {};  // a warning: nothing to do
    }
    case record_type::handshake:
      // A renegotiation request: the policy allows none (Botan answers the same way).
      send_alert(1, 100);  // no_renegotiation, warning
      return {};
    case record_type::change_cipher_spec: break;
  }
  send_alert(2, 10);  // unexpected_message
  return failure(make_error_code(transport_errc::tls_error),
                 "unexpected TLS record type " + std::to_string(static_cast<int>(r.type)));
}

void tls_engine::send_alert(std::uint8_t level, std::uint8_t description) {
  if (!records_ || closed_) return;
  const std::uint8_t alert[2] = {level, description};
  try {
    records_->protect(record_type::alert, alert, sizeof alert, outbox_);
  } catch (const std::exception&) {
    // No memory for a cipher object: the alert is lost; the socket closes anyway.
  }
  if (level == 2) closed_ = true;
}

bool tls_engine::can_send() const noexcept {
  if (failed_ || !activated_ || peer_closed_) return false;
  if (records_) return !closed_;
  return channel_ && channel_->is_active();
}

std::error_code tls_engine::send(const std::uint8_t* data, std::size_t size) {
  if (!can_send()) return make_error_code(transport_errc::not_connected);
  if (records_) {
    try {
      records_->protect(record_type::application_data, data, size, outbox_);
    } catch (const std::exception& e) {
      return failure(make_error_code(transport_errc::tls_error), e.what());
    }
    return {};
  }
  try {
    channel_->send(data, size);
  } catch (const std::exception& e) {
    return failure(make_error_code(transport_errc::tls_error), e.what());
  }
  return {};
}

void tls_engine::close() noexcept {
  if (failed_) return;
  if (records_) {
    if (!closed_) {
      send_alert(1, 0);  // close_notify
      closed_ = true;
    }
    return;
  }
  if (!channel_) return;
  try {
    if (!channel_->is_closed()) channel_->close();
  } catch (const std::exception&) {
    // Nothing to tell the peer then; the socket closes anyway.
  }
}

void tls_engine::tls_emit_data(const std::uint8_t data[], std::size_t size) {
  outbox_.insert(outbox_.end(), data, data + size);
  // Count Botan's records after its ChangeCipherSpec: where our write sequence continues. Botan
  // emits whole records (one per call); walk the headers anyway.
  for (std::size_t at = 0; at + record_header_size <= size;) {
    const std::size_t length = (std::size_t{data[at + 3]} << 8) | data[at + 4];
    if (data[at] == static_cast<std::uint8_t>(record_type::change_cipher_spec)) {
      we_changed_cipher_ = true;
    } else if (we_changed_cipher_) {
      ++records_written_since_ccs_;
    }
    at += record_header_size + length;
  }
}

void tls_engine::tls_record_received(std::uint64_t, const std::uint8_t data[], std::size_t size) {
  plaintext_.insert(plaintext_.end(), data, data + size);
}

void tls_engine::tls_alert(tls::Alert alert) {
  if (alert.type() == tls::Alert::CLOSE_NOTIFY) {
    peer_closed_ = true;
  } else if (alert.is_fatal() && !peer_fatal_alert_) {
    peer_fatal_alert_ = alert.type();
  }
}

bool tls_engine::tls_session_established(const tls::Session& session) {
  const auto& suite = session.ciphersuite();
  suite_ = suite.to_string();
  // Our record layer takes over the suite links negotiate with each other (our policy's first
  // choice), the one checked against Botan's record layer and Wireshark's decryption in the
  // tests; any other suite stays on Botan's channel.
  suite_supported_ = suite.cipher_algo() == "AES-128/GCM" && suite.prf_algo() == "SHA-256" &&
                     suite.mac_keylen() == 0 &&
                     suite.nonce_format() == tls::Nonce_Format::AEAD_IMPLICIT_4;
  if (suite_supported_) {
    secrets_.cipher = suite.cipher_algo();
    secrets_.prf_hash = suite.prf_algo();
    secrets_.key_length = suite.cipher_keylen();
    secrets_.fixed_iv_length = suite.nonce_bytes_from_handshake();
    secrets_.master_secret = session.master_secret();
  }
  if (!key_log_path_.empty() && client_random_.size() == 32) {
    const auto& secret = session.master_secret();
    append_key_log(key_log_path_, client_random_, pr::byte_view(secret.data(), secret.size()));
  }
  return false;  // no session cache: every link runs a full handshake and a fresh verification
}

void tls_engine::tls_session_activated() {
  // Botan 2's server accepts a handshake without client certificate unless the policy insists
  // (ours does); check again that a verified peer is behind this session. A server for clients
  // without certificates (anonymous_client) asked for none.
  if (!verified_ && !(server_ && req_.anonymous_client)) {
    verify_error_ = make_error_code(transport_errc::no_peer_certificate);
    throw tls::TLS_Exception(tls::Alert::HANDSHAKE_FAILURE, "peer presented no certificate");
  }
  activated_ = true;
}

void tls_engine::tls_verify_cert_chain(
    const std::vector<Botan::X509_Certificate>& cert_chain,
    const std::vector<std::shared_ptr<const Botan::OCSP::Response>>&,
    const std::vector<Botan::Certificate_Store*>& trusted_roots, Botan::Usage_Type,
    const std::string&, const tls::Policy& policy) {
  if (cert_chain.empty()) {
    verify_error_ = make_error_code(transport_errc::no_peer_certificate);
    throw verification_failed("peer presented no certificate");
  }
  if (creds_->verifies_server_names()) {
    verify_named_server(cert_chain, trusted_roots, policy);
    return;
  }
  // A node certificate serves both TLS roles (RFC 6940 flips them per Attach), so no extended key
  // usage is demanded; no hostname either: the Node-ID check below names the peer.
  const Botan::Path_Validation_Restrictions restrictions(false,
                                                         policy.minimum_signature_strength());
  const auto validation = Botan::x509_path_validate(
      cert_chain, restrictions, trusted_roots, "", Botan::Usage_Type::UNSPECIFIED,
      std::chrono::system_clock::now(), std::chrono::milliseconds(0), {});
  if (!validation.successful_validation()) {
    verify_error_ = make_error_code(transport_errc::certificate_rejected);
    throw verification_failed("certificate chain rejected: " + validation.result_string());
  }
  auto identity = certificate_identity(cert_chain.front(), creds_->overlay());
  if (!identity) {
    verify_error_ = make_error_code(transport_errc::no_node_id);
    throw verification_failed("peer certificate: " + identity.error().message() + " (overlay " +
                              creds_->overlay().name + ")");
  }
  auto& ids = identity->node_ids;
  if (req_.required && std::find(ids.begin(), ids.end(), *req_.required) == ids.end()) {
    verify_error_ = make_error_code(transport_errc::wrong_node_id);
    throw verification_failed("peer certificate lacks Node-ID " + req_.required->hex());
  }
  peer_ids_ = std::move(ids);
  peer_user_ = std::move(identity->user);
  peer_cert_ = cert_chain.front().BER_encode();
  verified_ = true;
}

void tls_engine::verify_named_server(const std::vector<Botan::X509_Certificate>& cert_chain,
                                     const std::vector<Botan::Certificate_Store*>& trusted_roots,
                                     const tls::Policy& policy) {
  // A server certificate (serverAuth when it lists extended usages) chaining to the anchors,
  // valid now. The name is checked below rather than by Botan, which knows only DNS names.
  const Botan::Path_Validation_Restrictions restrictions(false,
                                                         policy.minimum_signature_strength());
  const auto validation = Botan::x509_path_validate(
      cert_chain, restrictions, trusted_roots, "", Botan::Usage_Type::TLS_SERVER_AUTH,
      std::chrono::system_clock::now(), std::chrono::milliseconds(0), {});
  if (!validation.successful_validation()) {
    verify_error_ = make_error_code(transport_errc::certificate_rejected);
    throw verification_failed("certificate chain rejected: " + validation.result_string());
  }
  const auto& cert = cert_chain.front();
  bool named = false;
  if (is_ip_literal(req_.server_name)) {
    // RFC 5922 7.2 names SIP servers by DNS names; an address in the trunk's URI can only match
    // an iPAddress subjectAltName (RFC 6125 has no common-name fallback for addresses).
    const auto wanted = bare_address(req_.server_name);
    for (const auto& ip : cert.subject_alt_name().get_attribute("IP"))
      named = named || ip == wanted;
  } else {
    // A SIP domain's name: a sip: URI subjectAltName (RFC 5922 7.1), else DNS subjectAltNames
    // (one leftmost wildcard label allowed, as RFC 6125 and carriers' certificates do), the
    // common name only when there are none (RFC 6125 6.4.4).
    for (const auto& uri : cert.subject_alt_name().get_attribute("URI")) {
      named = named || same_text("sip:" + req_.server_name, uri);
    }
    named = named || cert.matches_dns_name(req_.server_name);
  }
  if (!named) {
    verify_error_ = make_error_code(transport_errc::wrong_server_name);
    throw verification_failed("certificate names " + offered_names(cert) + ", not " +
                              req_.server_name);
  }
  peer_cert_ = cert.BER_encode();
  verified_ = true;
}

void tls_engine::tls_inspect_handshake_msg(const tls::Handshake_Message& message) {
  // Called for messages sent and received: both roles see the ClientHello.
  if (message.type() == tls::CLIENT_HELLO) {
    if (const auto* hello = dynamic_cast<const tls::Client_Hello*>(&message)) {
      client_random_ = hello->random();
    }
  } else if (message.type() == tls::SERVER_HELLO) {
    if (const auto* hello = dynamic_cast<const tls::Server_Hello*>(&message)) {
      server_random_ = hello->random();
    }
  }
}

}  // namespace p2psip::transport::detail
