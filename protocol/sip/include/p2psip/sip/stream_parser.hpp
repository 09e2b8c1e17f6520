#pragma once
// Incremental parser for stream transports (TCP, TLS): bytes in as they arrive, whole messages,
// keepalives or one error out. Framing by Content-Length, which a stream must carry (RFC 3261
// 18.3). Buffering is bounded by max_header_bytes + max_body.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "p2psip/sip/message.hpp"

namespace p2psip::sip {

/// A RFC 5626 section 3.5.1 keepalive on a stream: CRLFCRLF is a ping, a single CRLF a pong.
struct keepalive {
  bool ping = false;  ///< true: "\r\n\r\n" (answer with a pong); false: "\r\n" (a pong)
  bool operator==(const keepalive&) const = default;
};

/// What a feed produces, in order. After a parse_error the parser is closed: the framing is
/// unknown, so the connection must be closed (RFC 4475 clerr, ncl, mcl01).
using stream_event = std::variant<message, keepalive, parse_error>;

class stream_parser {
 public:
  /// Which keepalive a side receives: a server (edge proxy) receives pings and ignores a lone CRLF
  /// before a message (RFC 3261 7.5); a client receives pongs, each CRLF being one.
  enum class side { server, client };

  explicit stream_parser(const sip_limits& limits = {}, side s = side::server);

  /// Consumes all of `bytes`; returns the events completed by them.
  std::vector<stream_event> feed(std::span<const std::byte> bytes);
  std::vector<stream_event> feed(std::string_view bytes);

  /// Bytes held for an incomplete message.
  std::size_t buffered() const noexcept { return buffer_.size(); }
  /// True after an error: nothing more will be parsed.
  bool closed() const noexcept { return closed_; }

 private:
  void drain(std::vector<stream_event>& out);

  sip_limits limits_;
  side side_;
  std::string buffer_;
  std::size_t scanned_ = 0;     // bytes of buffer_ already searched for the end of the headers
  std::size_t head_bytes_ = 0;  // when a header section is parsed: its size
  std::size_t body_bytes_ = 0;  // and the body it announced
  bool have_head_ = false;
  message pending_;
  bool closed_ = false;
  parse_error error_;
};

}  // namespace p2psip::sip
