#pragma once
// Loopback helpers for tests of the peer's admin HTTP server: a bounded HTTP/1.0 client (one
// request to 127.0.0.1:PORT, the whole answer read until the server closes; 5 s bound on connect
// and each read, at most 10,000 reads), and a port another socket listens on.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace p2psip::test {

struct http_answer {
  int status = 0;  ///< 0 when there was no HTTP answer (no connection, garbage)
  std::string body;
};

/// `method path` to 127.0.0.1:port; the status and body of the answer.
inline http_answer http_request(int port, const std::string& method, const std::string& path) {
  http_answer out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {  // NOLINT
    ::close(fd);
    return out;
  }
  const std::string request = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return out;
  }
  std::string raw;
  char buf[8192];
  for (int reads = 0; reads < 10000; ++reads) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto space = raw.find(' ');
  if (raw.rfind("HTTP/1.", 0) != 0 || space == std::string::npos) return out;
  out.status = std::stoi(raw.substr(space + 1, 3));
  const auto blank = raw.find("\r\n\r\n");
  if (blank != std::string::npos) out.body = raw.substr(blank + 4);
  return out;
}

/// A loopback TCP port a socket of ours listens on until close() (or destruction): where a
/// server under test cannot listen. port() is 0 when no socket could be had.
class listening_port {
 public:
  listening_port() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||  // NOLINT
        ::listen(fd_, 1) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {  // NOLINT
      close();
      return;
    }
    port_ = ntohs(a.sin_port);
  }
  ~listening_port() { close(); }
  listening_port(const listening_port&) = delete;
  listening_port& operator=(const listening_port&) = delete;

  int port() const { return port_; }
  /// Stops listening; the port stays known (a port nobody listens at, for a while).
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace p2psip::test
