#include "p2psip/protocol/framing.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "p2psip/protocol/reader.hpp"

namespace p2psip::protocol {

namespace {

constexpr std::uint8_t data_type = static_cast<std::uint8_t>(frame_type::data);
constexpr std::uint8_t ack_type = static_cast<std::uint8_t>(frame_type::ack);

std::uint32_t load_u32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::uint32_t load_u24(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 16) | (std::uint32_t{p[1]} << 8) | std::uint32_t{p[2]};
}

std::size_t message_limit(const limits& lim) noexcept {
  return std::min(lim.max_message_size, max_frame_message);
}

}  // namespace

void encode_data_frame(writer& w, std::uint32_t sequence, byte_view message) {
  w.u8(data_type);
  w.u32(sequence);
  w.opaque(3, max_frame_message, message, "framed_message.message");
}

void encode_ack_frame(writer& w, const ack_frame& a) {
  w.u8(ack_type);
  w.u32(a.ack_sequence);
  w.u32(a.received);
}

void encode_frame(writer& w, const frame& f) {
  if (const auto* d = std::get_if<data_frame>(&f)) {
    encode_data_frame(w, d->sequence, d->message);
  } else {
    encode_ack_frame(w, std::get<ack_frame>(f));
  }
}

result<bytes> encode_frame(const frame& f) {
  bytes out;
  if (const auto* d = std::get_if<data_frame>(&f)) {
    out.reserve(data_frame_overhead + d->message.size());
  }
  writer w(out);
  encode_frame(w, f);
  if (!w.ok()) return unexpected(w.error());
  return out;
}

result<std::array<std::uint8_t, data_frame_overhead>> data_frame_header(std::uint32_t sequence,
                                                                        std::size_t message_size) {
  if (message_size > max_frame_message) {
    return unexpected(make_error_code(codec_errc::value_too_long));
  }
  std::array<std::uint8_t, data_frame_overhead> h{};
  h[0] = data_type;
  for (std::size_t i = 0; i < 4; ++i) {
    h[1 + i] = static_cast<std::uint8_t>(sequence >> (24 - 8 * i));
  }
  for (std::size_t i = 0; i < 3; ++i) {
    h[5 + i] = static_cast<std::uint8_t>(message_size >> (16 - 8 * i));
  }
  return h;
}

result<frame, decode_error> decode_frame(byte_view in, const limits& lim) {
  reader r(in);
  const std::uint8_t type = r.u8("framed_message.type");
  frame out;
  if (!r.ok()) return unexpected(r.error());
  if (type == data_type) {
    data_frame d;
    d.sequence = r.u32("framed_message.sequence");
    d.message = to_bytes(r.opaque(3, 0, message_limit(lim), "framed_message.message"));
    out = std::move(d);
  } else if (type == ack_type) {
    ack_frame a;
    a.ack_sequence = r.u32("framed_message.ack_sequence");
    a.received = r.u32("framed_message.received");
    out = a;
  } else {
    r.fail_at(0, codec_errc::unknown_type, "framed_message.type");
  }
  r.expect_done("framed_message");
  if (!r.ok()) {
    decode_error e = r.error();
    // The reader calls a too-long prefix bad_length; against the configured size it is our limit.
    if (type == data_type && e.offset == 5 && e.code == codec_errc::bad_length && in.size() >= 8 &&
        load_u24(in.data() + 5) > message_limit(lim)) {
      e.code = codec_errc::limit_exceeded;
    }
    return unexpected(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// frame_decoder

frame_decoder::frame_decoder(const limits& lim) noexcept : max_message_(message_limit(lim)) {}

void frame_decoder::fail(codec_errc code, const char* field, std::uint64_t at) {
  error_ = decode_error{code, field, static_cast<std::size_t>(at)};
  body_ = bytes{};  // the link is going away; give the memory back now
}

result<std::size_t, decode_error> frame_decoder::put(byte_view in) {
  if (failed()) return unexpected(error_);
  const std::uint8_t* p = in.data();
  std::size_t left = in.size();
  while (left > 0) {
    if (in_body_) {
      // Copy straight into the message buffer: each byte once, however finely the stream is cut.
      const std::size_t take = std::min(left, body_len_ - body_.size());
      body_.insert(body_.end(), p, p + take);
      p += take;
      left -= take;
      consumed_ += take;
      if (body_.size() == body_len_) {
        ready_.push_back(data_frame{sequence_, std::move(body_)});
        body_ = bytes{};
        in_body_ = false;
      }
      continue;
    }
    const std::uint64_t frame_start = consumed_ - header_len_;
    if (header_len_ == 0 && *p != data_type && *p != ack_type) {
      // Reject on the first byte: nothing after an unknown type can be framed.
      fail(codec_errc::unknown_type, "framed_message.type", consumed_);
      return unexpected(error_);
    }
    const std::uint8_t type = header_len_ == 0 ? *p : header_[0];
    const std::size_t want = type == ack_type ? ack_frame_size : data_frame_overhead;
    const std::size_t take = std::min(left, want - header_len_);
    std::memcpy(header_.data() + header_len_, p, take);
    header_len_ += take;
    p += take;
    left -= take;
    consumed_ += take;
    if (header_len_ < want) break;  // the whole input went into the header; need more

    header_len_ = 0;
    if (header_[0] == ack_type) {
      ready_.push_back(ack_frame{load_u32(header_.data() + 1), load_u32(header_.data() + 5)});
      continue;
    }
    sequence_ = load_u32(header_.data() + 1);
    body_len_ = load_u24(header_.data() + 5);
    if (body_len_ > max_message_) {
      fail(codec_errc::limit_exceeded, "framed_message.message", frame_start + 5);
      return unexpected(error_);
    }
    if (body_len_ == 0) {
      ready_.push_back(data_frame{sequence_, {}});
      continue;
    }
    body_.reserve(body_len_);
    in_body_ = true;
  }
  return ready_.size();
}

std::optional<frame> frame_decoder::next() {
  if (ready_.empty()) return std::nullopt;
  frame f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

// ---------------------------------------------------------------------------------------------
// acks

bool ack_covers(const ack_frame& a, std::uint32_t sequence) noexcept {
  const std::uint32_t distance = a.ack_sequence - sequence;  // modulo 2^32
  if (distance == 0) return true;
  if (distance > 32) return false;
  // The top bit (distance 32) is never set by our own receive_window, but a peer reading the RFC
  // with a non-strict inequality may set it; it is still positive information.
  return (a.received >> (distance - 1)) & 1u;
}

ack_frame receive_window::on_data(std::uint32_t sequence) noexcept {
  ack_frame a{sequence, 0};
  bool seen = false;
  for (std::size_t i = 0; i < count_; ++i) {
    const std::uint32_t distance = sequence - recent_[i];  // N - M modulo 2^32
    if (distance == 0) seen = true;
    // M < N and M > N - 32 in serial arithmetic: N - M in 1..31.
    if (distance >= 1 && distance <= 31) a.received |= std::uint32_t{1} << (distance - 1);
  }
  // A duplicate (a datagram link may deliver one twice) does not push out a distinct entry.
  if (!seen) {
    recent_[next_] = sequence;
    next_ = (next_ + 1) % recent_.size();
    count_ = std::min(count_ + 1, recent_.size());
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// RFC 6298 estimator

namespace {

std::chrono::milliseconds ceil_ms(steady_duration d) noexcept {
  return std::chrono::ceil<std::chrono::milliseconds>(d);
}

}  // namespace

rto_estimator::rto_estimator(const rto_config& cfg) noexcept : cfg_(cfg), rto_(cfg.initial_rto) {
  update_rto(cfg.initial_rto);
}

void rto_estimator::update_rto(std::chrono::milliseconds raw) noexcept {
  rto_ = std::clamp(raw, cfg_.min_rto, std::max(cfg_.min_rto, cfg_.max_rto));
}

void rto_estimator::on_sample(steady_duration rtt) noexcept {
  using namespace std::chrono;
  // Anything beyond the ceiling cannot change the clamped RTO and would risk overflow below.
  const steady_duration cap =
      duration_cast<steady_duration>(std::min<milliseconds>(cfg_.max_rto, hours{24})) * 4;
  const steady_duration r = std::clamp(rtt, steady_duration::zero(), cap);
  if (!measured_) {
    srtt_ = r;  // formula 2.2
    rttvar_ = r / 2;
    measured_ = true;
  } else {
    // Formula 2.3, RTTVAR first since it uses the old SRTT.
    const steady_duration err = srtt_ > r ? srtt_ - r : r - srtt_;
    rttvar_ = rttvar_ - rttvar_ / 4 + err / 4;
    srtt_ = srtt_ - srtt_ / 8 + r / 8;
  }
  const steady_duration granularity = milliseconds{1};
  update_rto(ceil_ms(srtt_ + std::max(granularity, 4 * rttvar_)));
}

void rto_estimator::backoff() noexcept {
  // Saturating: doubling stops at the ceiling (never overflows, never wraps to a small value).
  const auto ceiling = std::max(cfg_.min_rto, cfg_.max_rto);
  rto_ = rto_ >= ceiling / 2 ? ceiling : rto_ * 2;
}

std::optional<steady_duration> rto_estimator::srtt() const noexcept {
  if (!measured_) return std::nullopt;
  return srtt_;
}

std::optional<steady_duration> rto_estimator::rttvar() const noexcept {
  if (!measured_) return std::nullopt;
  return rttvar_;
}

// ---------------------------------------------------------------------------------------------
// send_window

namespace {

std::size_t ring_capacity(std::size_t history) noexcept {
  // A power of two divides 2^32, so sequence % capacity stays consecutive across the uint32 wrap.
  constexpr std::size_t most = std::size_t{1} << 16;
  return std::bit_ceil(std::clamp<std::size_t>(history, 1, most));
}

}  // namespace

send_window::send_window(const rto_config& cfg, std::size_t history)
    : rto_(cfg), ring_(ring_capacity(history)) {}

send_window::sent* send_window::find(std::uint32_t sequence) noexcept {
  return const_cast<sent*>(std::as_const(*this).find(sequence));  // NOLINT: one lookup, two faces
}

const send_window::sent* send_window::find(std::uint32_t sequence) const noexcept {
  const std::uint32_t age = next_ - sequence;  // 1 for the newest frame, modulo 2^32
  const std::uint64_t remembered = std::min<std::uint64_t>(sent_count_, ring_.size());
  if (age == 0 || age > remembered) return nullptr;
  const sent& s = ring_[sequence & (ring_.size() - 1)];
  return s.sequence == sequence ? &s : nullptr;
}

std::uint32_t send_window::on_send(steady_time now) {
  const std::uint32_t sequence = next_++;
  ring_[sequence & (ring_.size() - 1)] = sent{sequence, now, false};
  ++sent_count_;
  return sequence;
}

ack_outcome send_window::on_ack(const ack_frame& a, steady_time now) noexcept {
  ack_outcome out;
  if (sent* s = find(a.ack_sequence)) {
    out.known = true;
    last_ack_ = now;
    if (!s->acked) {
      s->acked = true;
      ++out.newly_acked;
      out.rtt = now - s->at;
      rto_.on_sample(*out.rtt);
    }
  }
  // The bitmask confirms earlier frames whose own acks may have been lost; it gives no RTT, since
  // its time says nothing about when those frames arrived.
  for (std::uint32_t k = 0; k < 32; ++k) {
    if (((a.received >> k) & 1u) == 0) continue;
    if (sent* s = find(a.ack_sequence - (k + 1))) {
      if (!s->acked) {
        s->acked = true;
        ++out.newly_acked;
      }
    }
  }
  return out;
}

bool send_window::acked(std::uint32_t sequence) const noexcept {
  const sent* s = find(sequence);
  return s != nullptr && s->acked;
}

std::optional<steady_time> send_window::oldest_outstanding() const noexcept {
  std::optional<steady_time> oldest;
  const std::uint64_t remembered = std::min<std::uint64_t>(sent_count_, ring_.size());
  // Walk from the newest frame back to the newest acknowledged one: frames before that whose acks
  // never came were lost or their acks were, and say nothing about whether the link lives now.
  for (std::uint64_t age = 1; age <= remembered; ++age) {
    const sent* s = find(next_ - static_cast<std::uint32_t>(age));
    if (s == nullptr || s->acked) break;
    oldest = s->at;
  }
  return oldest;
}

std::optional<steady_time> send_window::next_deadline() const noexcept {
  const auto oldest = oldest_outstanding();
  if (!oldest) return std::nullopt;
  return *oldest + rto_.rto();
}

bool send_window::overdue(steady_time now) const noexcept {
  const auto deadline = next_deadline();
  return deadline && now >= *deadline;
}

}  // namespace p2psip::protocol
