#include "p2psip/sip/stream_parser.hpp"

#include <algorithm>

#include "text.hpp"

namespace p2psip::sip {

stream_parser::stream_parser(const sip_limits& limits, side s) : limits_(limits), side_(s) {}

std::vector<stream_event> stream_parser::feed(std::string_view bytes) {
  std::vector<stream_event> out;
  if (closed_) return out;
  // Never hold more than a whole message may take: append in pieces and drain between them.
  const std::size_t cap = limits_.max_header_bytes + limits_.max_body;
  while (!bytes.empty() && !closed_) {
    const std::size_t room = cap > buffer_.size() ? cap - buffer_.size() : 0;
    if (room == 0) {
      closed_ = true;
      error_ =
          parse_error{513, "Message Too Large: buffer full", detail::looks_like_response(buffer_)};
      out.emplace_back(error_);
      break;
    }
    const std::size_t n = std::min(room, bytes.size());
    buffer_.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
    drain(out);
  }
  return out;
}

std::vector<stream_event> stream_parser::feed(std::span<const std::byte> bytes) {
  return feed(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void stream_parser::drain(std::vector<stream_event>& out) {
  auto fail = [&](parse_error e) {
    closed_ = true;
    error_ = std::move(e);
    buffer_.clear();
    buffer_.shrink_to_fit();
    out.emplace_back(error_);
  };
  while (!closed_) {
    if (!have_head_) {
      // Keepalives (RFC 5626 3.5.1) and CRLFs before a start line (RFC 3261 7.5).
      if (!buffer_.empty() && buffer_[0] == '\r') {
        if (buffer_.size() < 2) return;
        if (buffer_[1] != '\n') return fail(bad_request("Bare CR before a start line"));
        if (side_ == side::client) {
          buffer_.erase(0, 2);
          scanned_ = 0;
          out.emplace_back(keepalive{false});
          continue;
        }
        if (buffer_.size() < 3) return;
        if (buffer_[2] != '\r') {  // a lone CRLF before a message: ignored
          buffer_.erase(0, 2);
          scanned_ = 0;
          continue;
        }
        if (buffer_.size() < 4) return;
        if (buffer_[3] == '\n') {
          buffer_.erase(0, 4);
          scanned_ = 0;
          out.emplace_back(keepalive{true});
        } else {
          buffer_.erase(0, 2);
          scanned_ = 0;
        }
        continue;
      }
      if (!buffer_.empty() && buffer_[0] == '\n')
        return fail(bad_request("Bare LF before a start line"));
      const std::size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
      const std::size_t end = buffer_.find("\r\n\r\n", from);
      if (end == std::string::npos) {
        scanned_ = buffer_.size();
        const std::size_t max_line = limits_.max_start_line;
        if (buffer_.size() > max_line) {
          // Over the limit unless the CRLF ending the start line is at max_line or half there.
          const std::size_t crlf = buffer_.find("\r\n");
          const bool over = crlf != std::string::npos
                                ? crlf > max_line
                                : buffer_.size() > max_line + 1 || buffer_.back() != '\r';
          if (over) return fail(detail::start_line_too_long(buffer_, limits_));
        }
        // The head is at least size - 3 bytes (3 of its terminator may be here); with its 4-byte
        // terminator that is over the limit once size reaches max_header_bytes.
        if (buffer_.size() >= limits_.max_header_bytes)
          return fail(parse_error{513,
                                  "Message Too Large: header section over " +
                                      std::to_string(limits_.max_header_bytes) + " bytes",
                                  detail::looks_like_response(buffer_)});
        return;
      }
      pending_ = message{};
      auto cl = detail::parse_head(std::string_view(buffer_).substr(0, end), limits_, pending_);
      if (!cl) return fail(cl.error());
      if (!*cl) {
        // RFC 3261 18.3: a stream needs Content-Length to find the end of the message.
        return fail(parse_error{400, "Missing Content-Length header on a stream transport",
                                !pending_.is_request()});
      }
      head_bytes_ = end + 4;
      body_bytes_ = **cl;
      have_head_ = true;
    }
    if (buffer_.size() - head_bytes_ < body_bytes_) return;
    pending_.body = buffer_.substr(head_bytes_, body_bytes_);
    buffer_.erase(0, head_bytes_ + body_bytes_);
    scanned_ = 0;
    have_head_ = false;
    out.emplace_back(std::move(pending_));
    pending_ = message{};
  }
}

}  // namespace p2psip::sip
