#pragma once
// The harness of the sipp interop tests: SIP servers to test (a p2psip overlay whose peers have
// SIP listeners and SIP users, or, to validate the scenarios themselves, one Kamailio), sipp runs
// bounded in time, and a few UAs of our own for what sipp cannot do (garbage, a CRLF keepalive on
// an outbound flow, TLS: Debian's sipp is built without OpenSSL, a second source address, a
// flood). Every wait is bounded; every child process and thread is ended by its owner.

#include <sys/types.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "process_overlay.hpp"

namespace p2psip::test::sip {

/// Where one SIP server listens: "127.0.0.1:PORT" per transport (empty: not listening).
struct sip_server {
  std::string udp;
  std::string tcp;
  std::string tls;
  const std::string& by_transport(char t) const;  ///< 'u', 't' or 'l' (sipp's -t letters)
};

/// How the overlay's peers are started: per peer, extra SIP options (--sip-mode, --sip-gateway).
struct overlay_options {
  std::size_t peers = 3;
  std::vector<std::vector<std::string>> extra_args;  ///< by peer index; shorter is fine
};

/// The SIP servers under test: a p2psip overlay, or one Kamailio when the environment variable
/// P2PSIP_SIP_INTEROP_TARGET is "kamailio" (every "peer" is then that one server).
class sip_target {
 public:
  /// Starts the servers with `users` (AOR user parts, each with password password_of(user)).
  /// Throws std::runtime_error with the reason (and the logs) when they do not come up.
  sip_target(const std::vector<std::string>& users, const overlay_options& how = {});
  ~sip_target();
  sip_target(const sip_target&) = delete;
  sip_target& operator=(const sip_target&) = delete;

  /// True when the target is Kamailio: p2psip-only checks are left out.
  static bool kamailio_mode();

  const std::string& domain() const noexcept { return domain_; }
  const std::filesystem::path& dir() const noexcept { return dir_; }
  const sip_server& server(std::size_t i) const { return servers_.at(i); }
  std::size_t size() const noexcept { return servers_.size(); }
  std::string password_of(const std::string& user) const;
  /// The logs of every server (for failure messages).
  std::string logs() const;

  /// p2psip-client fetch AOR --kind sip-registration --json through peer `i`: exit status and
  /// standard output. Only for an overlay.
  std::pair<int, std::string> fetch_registration(const std::string& aor, std::size_t i = 0);
  process_overlay& overlay() { return *overlay_; }

 private:
  std::string domain_ = "test.p2psip.example";
  std::filesystem::path dir_;
  std::unique_ptr<process_overlay> overlay_;
  std::vector<sip_server> servers_;
  pid_t kamailio_ = -1;
  std::filesystem::path kamailio_log_;
  std::filesystem::path own_dir_;  ///< made for Kamailio, removed by the destructor
};

/// One sipp run. The trace of the messages and the unexpected events are kept for the checks and
/// the failure messages.
struct sipp_result {
  int exit_code = -1;    ///< sipp's: 0 every call succeeded, 1 one failed; -1 killed on timeout
  std::string messages;  ///< -trace_msg
  std::string errors;    ///< -trace_err
  std::string output;    ///< standard output and error
  std::string describe() const;
  /// The status codes of the responses sipp received, in order.
  std::vector<int> received_codes() const;
};

/// A sipp process. Its arguments get -nostdin, -i 127.0.0.1, traces in `dir`, -timeout (global,
/// an error when reached) and -recv_timeout from `limit`.
class sipp {
 public:
  sipp(const std::filesystem::path& dir, const std::string& name, std::vector<std::string> args,
       std::chrono::seconds limit = std::chrono::seconds(30));
  ~sipp();
  sipp(const sipp&) = delete;
  sipp& operator=(const sipp&) = delete;
  /// Waits for the exit (at most the limit and 10 s more, then SIGKILL).
  sipp_result wait();

 private:
  pid_t pid_ = -1;
  std::filesystem::path base_;
  std::chrono::steady_clock::time_point deadline_;
};

/// The scenario file `name` (tests/sip_interop/scenarios/NAME).
std::string scenario(const std::string& name);
/// A port of 127.0.0.1 free for UDP and TCP (tests/support).
using p2psip::test::free_tcp_udp_port;

/// Sends `bytes` in one UDP datagram to `to` ("IP:PORT") and returns the first datagram received
/// back within `wait` (empty if none).
std::string udp_exchange(const std::string& to, const std::string& bytes,
                         std::chrono::milliseconds wait);

/// A SIP UA over one TCP connection, for RFC 5626 outbound: requests and responses, CRLF
/// keepalives. Every read is bounded.
class tcp_flow {
 public:
  explicit tcp_flow(const std::string& to);
  ~tcp_flow();
  tcp_flow(const tcp_flow&) = delete;
  tcp_flow& operator=(const tcp_flow&) = delete;
  int local_port() const noexcept { return local_port_; }
  void send(const std::string& bytes);
  /// The next SIP message (header and Content-Length body); empty on timeout or close.
  std::string read_message(std::chrono::milliseconds wait);
  /// Raw bytes received within `wait` (for the CRLF pong).
  std::string read_some(std::chrono::milliseconds wait);
  void close();

 private:
  int fd_ = -1;
  int local_port_ = 0;
  std::string buffered_;
};

/// A SIP UA over one UDP socket bound to `local_ip` (any 127.0.0.0/8 address works on Linux's
/// loopback: another source address for the peer's per-source limits). Every read is bounded.
class udp_flow {
 public:
  explicit udp_flow(const std::string& to, const std::string& local_ip = "127.0.0.1");
  ~udp_flow();
  udp_flow(const udp_flow&) = delete;
  udp_flow& operator=(const udp_flow&) = delete;
  const std::string& local_ip() const noexcept { return local_ip_; }
  int local_port() const noexcept { return local_port_; }
  void send(const std::string& bytes);
  /// The next datagram from the server (one SIP message); empty on timeout.
  std::string read_message(std::chrono::milliseconds wait);

 private:
  int fd_ = -1;
  std::string local_ip_;
  int local_port_ = 0;
};

/// A SIP UA over one TLS 1.2 connection: Botan's TLS client driven through its callbacks over a
/// blocking socket, with no client certificate at all (the peer's SIP listeners ask none; a plain
/// UA has none). The server's chain must verify against the CA certificate(s) of `roots_pem`.
class tls_flow {
 public:
  /// Connects to `to` ("IP:PORT") and completes the handshake within `wait`; throws
  /// std::runtime_error saying why not (connect, alert, certificate, timeout).
  tls_flow(const std::string& to, const std::filesystem::path& roots_pem,
           std::chrono::milliseconds wait = std::chrono::seconds(10));
  ~tls_flow();
  tls_flow(const tls_flow&) = delete;
  tls_flow& operator=(const tls_flow&) = delete;
  int local_port() const noexcept { return local_port_; }
  /// The negotiated cipher suite ("ECDHE_ECDSA_WITH_AES_128_GCM_SHA256").
  const std::string& cipher_suite() const noexcept;
  void send(const std::string& bytes);
  /// The next SIP message (header and Content-Length body); empty on timeout or close.
  std::string read_message(std::chrono::milliseconds wait);
  /// Sends close_notify (once) and closes the socket.
  void close();

 private:
  struct engine;
  std::unique_ptr<engine> engine_;
  int local_port_ = 0;
};

/// The certificates of the TLS trunk tests, made at run time (tests/support/test_pki) and written
/// as PEM files into a directory of their own (removed by the destructor): a trunk CA and
/// another one, server certificates from them, and the gateway's client certificate.
class trunk_pki {
 public:
  /// A certificate and its key, as PEM files.
  struct files {
    std::filesystem::path certificate;
    std::filesystem::path key;
  };
  trunk_pki();
  ~trunk_pki();
  trunk_pki(const trunk_pki&) = delete;
  trunk_pki& operator=(const trunk_pki&) = delete;
  /// The trunk CA's certificate: what --sip-trunk-ca names.
  const std::filesystem::path& ca() const noexcept { return ca_; }
  /// From the trunk CA for "localhost" (DNS) and 127.0.0.1 (IP).
  const files& localhost() const noexcept { return localhost_; }
  /// From the trunk CA for "trunk.other.test" only.
  const files& wrong_name() const noexcept { return wrong_name_; }
  /// From another CA for "localhost".
  const files& other_ca() const noexcept { return other_ca_; }
  /// From the trunk CA for "gateway.test": the gateway's --sip-trunk-cert and --sip-trunk-key.
  const files& gateway_client() const noexcept { return gateway_client_; }

 private:
  std::filesystem::path dir_;
  std::filesystem::path ca_;
  files localhost_, wrong_name_, other_ca_, gateway_client_;
};

/// A SIP trunk over TLS (the far side of a gateway peer): Botan's TLS 1.2 server on
/// 127.0.0.1:PORT in a thread of its own (poll-driven sockets, every wait bounded), presenting a
/// certificate, asking for a client certificate that verifies against a CA when given one. As a
/// UAS it answers INVITE with 180 then 200 (Contact sip:trunk@127.0.0.1:PORT;transport=tls, the
/// Record-Routes copied), ACK with nothing, and anything else (BYE, MESSAGE) with 200.
class tls_trunk {
 public:
  /// Listens at once; throws std::runtime_error when it cannot (the port taken, a bad file).
  tls_trunk(int port, const trunk_pki::files& certificate,
            const std::filesystem::path& client_ca = {});
  /// Stops the thread and closes every socket.
  ~tls_trunk();
  tls_trunk(const tls_trunk&) = delete;
  tls_trunk& operator=(const tls_trunk&) = delete;

  std::size_t connections() const;  ///< TCP connections accepted
  std::size_t handshakes() const;   ///< TLS handshakes completed
  /// The methods of the requests received, in order ("INVITE", "ACK", "BYE", ...).
  std::vector<std::string> methods() const;
  /// The server name the last client sent (SNI), empty if none.
  std::string server_name() const;
  /// The DNS names of the last verified client certificate.
  std::vector<std::string> client_names() const;
  /// Why handshakes failed, one line each.
  std::vector<std::string> failures() const;
  /// Closes the open connections (with close_notify): a trunk that restarts, say.
  void drop_connections();

 private:
  struct state;
  std::unique_ptr<state> state_;
  std::thread thread_;
};

/// What a udp_flooder sent and got back.
struct flood_result {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t code_503 = 0;            ///< 503s received
  std::uint64_t code_503_retry = 0;      ///< of which carried a Retry-After
  std::uint64_t other_codes = 0;         ///< other responses (401, 404, 100, ...)
  std::string first_503;                 ///< the first one, for the failure messages
  std::chrono::milliseconds duration{};  ///< how long it sent
};

/// One source flooding a UDP listener from its own thread: request(i, local port) for i = 1, 2, ...
/// at `per_second` (in 1 ms batches, as fast as the socket takes them when it cannot keep up) for
/// `duration`, reading every answer without ever answering one itself, and 500 ms longer for
/// late answers.
class udp_flooder {
 public:
  udp_flooder(const std::string& to, std::function<std::string(std::uint64_t, int)> request,
              std::uint32_t per_second, std::chrono::milliseconds duration,
              const std::string& local_ip = "127.0.0.1");
  ~udp_flooder();
  udp_flooder(const udp_flooder&) = delete;
  udp_flooder& operator=(const udp_flooder&) = delete;
  int local_port() const noexcept { return local_port_; }
  /// Waits for the end (the duration and 500 ms, at most).
  flood_result wait();

 private:
  void run(const std::function<std::string(std::uint64_t, int)>& request, std::uint32_t per_second,
           std::chrono::milliseconds duration);
  int fd_ = -1;
  int local_port_ = 0;
  std::atomic<bool> stop_{false};  ///< set by the destructor: end at once
  flood_result result_;
  std::thread thread_;
};

/// The value of header `name` (first occurrence, case-insensitive) in `message`, trimmed.
std::string header(const std::string& message, const std::string& name);
/// Every value of header `name` in `message`, in order.
std::vector<std::string> headers(const std::string& message, const std::string& name);
/// The status code of a response ("SIP/2.0 200 OK" -> 200), 0 if not a response.
int status_of(const std::string& message);
/// An Authorization header value answering the Digest challenge `challenge` (the value of a
/// WWW-Authenticate header, MD5) for `method` and `uri`.
std::string digest_authorization(const std::string& challenge, const std::string& user,
                                 const std::string& password, const std::string& method,
                                 const std::string& uri);

}  // namespace p2psip::test::sip
