#include "p2psip/protocol/fragment.hpp"

#include <algorithm>
#include <cstring>

#include "p2psip/protocol/forwarding.hpp"

namespace p2psip::protocol {

namespace {

// Byte positions in the fixed part of the forwarding header (RFC 6940 section 6.3.2).
constexpr std::size_t ttl_at = 11;
constexpr std::size_t fragment_at = 12;
constexpr std::size_t length_at = 16;

void store_u32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

/// Header bytes followed by `body`, with the fragment and length fields rewritten.
bytes build(byte_view header, std::uint32_t fragment, byte_view body) {
  bytes out;
  out.reserve(header.size() + body.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), body.begin(), body.end());
  store_u32(out.data() + fragment_at, fragment);
  store_u32(out.data() + length_at, static_cast<std::uint32_t>(out.size()));
  return out;
}

decode_error error_at(codec_errc code, const char* field, std::size_t offset) {
  return decode_error{code, field, offset};
}

}  // namespace

result<std::vector<bytes>, decode_error> fragment_message(byte_view message,
                                                          std::size_t max_fragment_size,
                                                          const limits& lim) {
  auto decoded = decode_forwarding_header(message, lim);
  if (!decoded) return unexpected(decoded.error());
  std::vector<bytes> out;
  if (message.size() <= max_fragment_size) {
    out.push_back(to_bytes(message));
    return out;
  }
  const std::size_t header_size = decoded->size;
  if (max_fragment_size < header_size + min_fragment_body) {
    return unexpected(error_at(codec_errc::limit_exceeded, "max_fragment_size", 0));
  }
  const std::uint32_t field = decoded->header.fragment;
  const bool input_is_last = (field & fragment_bits::last) != 0;
  const std::size_t base = field & fragment_bits::offset;  // nonzero when refragmenting a fragment
  const byte_view header = message.first(header_size);
  const byte_view body = message.subspan(header_size);
  const std::size_t cap = max_fragment_size - header_size;
  const std::size_t count = (body.size() + cap - 1) / cap;  // >= 2: the message did not fit

  // Equal chunks (section 6.7 SHOULD); when equal ones would fall under the 256-byte minimum, full
  // chunks and a short last one instead.
  const bool equal = body.size() / count >= min_fragment_body;
  std::size_t at = 0;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t chunk = equal ? body.size() / count + (i < body.size() % count ? 1 : 0)
                                    : std::min(cap, body.size() - at);
    if (base + at > fragment_bits::offset) {
      return unexpected(
          error_at(codec_errc::value_too_long, "forwarding_header.fragment", fragment_at));
    }
    const bool last = i + 1 == count;
    const std::uint32_t value = fragment_bits::always |
                                (last && input_is_last ? fragment_bits::last : 0u) |
                                static_cast<std::uint32_t>(base + at);
    out.push_back(build(header, value, body.subspan(at, chunk)));
    at += chunk;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

reassembler::reassembler(const limits& lim) : lim_(lim) {}

std::size_t reassembler::buffered_bytes() const noexcept {
  std::size_t total = 0;
  for (const auto& [k, p] : partials_) total += p.body.size();
  return total;
}

std::size_t reassembler::expire(time_point now) {
  return std::erase_if(partials_, [&](const auto& entry) { return entry.second.deadline <= now; });
}

std::optional<reassembler::time_point> reassembler::next_deadline() const {
  std::optional<time_point> earliest;
  for (const auto& [k, p] : partials_) {
    if (!earliest || p.deadline < *earliest) earliest = p.deadline;
  }
  return earliest;
}

std::size_t reassembler::drop_link(std::uint64_t link) {
  return std::erase_if(partials_, [&](const auto& entry) { return entry.first.first == link; });
}

bool reassembler::make_room(std::uint64_t link) {
  if (partials_.size() < lim_.max_fragments_in_flight) return true;
  if (partials_.empty()) return false;  // a limit of zero
  std::map<std::uint64_t, std::size_t> per_link;
  for (const auto& [k, p] : partials_) ++per_link[k.first];
  const auto heaviest =
      std::max_element(per_link.begin(), per_link.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  const std::size_t own = per_link.contains(link) ? per_link[link] : 0;
  // "Two more" so that the swap never leaves the evicted link below the newcomer: no ping-pong.
  if (heaviest->first == link || heaviest->second < own + 2) return false;
  auto victim = partials_.end();
  for (auto it = partials_.begin(); it != partials_.end(); ++it) {
    if (it->first.first != heaviest->first) continue;
    if (victim == partials_.end() || it->second.arrival < victim->second.arrival) victim = it;
  }
  partials_.erase(victim);
  return true;
}

result<std::optional<bytes>, decode_error> reassembler::put(std::uint64_t link, byte_view fragment,
                                                            time_point now) {
  expire(now);
  auto decoded = decode_forwarding_header(fragment, lim_);
  if (!decoded) return unexpected(decoded.error());
  const forwarding_header& h = decoded->header;
  const std::size_t header_size = decoded->size;
  const bool last = h.is_last_fragment();
  const std::size_t offset = h.fragment_offset();
  const byte_view header = fragment.first(header_size);
  const byte_view body = fragment.subspan(header_size);
  const key k{link, h.transaction_id};

  if (last && offset == 0) {
    // A whole message, reserved bits aside. It supersedes any partial copy of the same transaction.
    partials_.erase(k);
    return std::optional<bytes>(build(header, unfragmented, body));
  }

  const auto fail = [&](codec_errc code, const char* field, std::size_t at) {
    partials_.erase(k);
    return unexpected(error_at(code, field, at));
  };
  if (!last && body.empty()) return fail(codec_errc::invalid_value, "fragment.offset", fragment_at);
  const std::size_t end_here = offset + body.size();
  if (header_size + end_here > lim_.max_message_size) {
    return fail(codec_errc::limit_exceeded, "fragment.offset", fragment_at);
  }

  auto it = partials_.find(k);
  if (it == partials_.end()) {
    if (!make_room(link)) {
      return unexpected(error_at(codec_errc::limit_exceeded, "reassembly.in_flight", 0));
    }
    partial fresh;
    fresh.header = to_bytes(header);
    fresh.deadline = now + lim_.reassembly_timeout;
    fresh.arrival = arrivals_++;
    it = partials_.emplace(k, std::move(fresh)).first;
  } else {
    const bytes& first = it->second.header;
    if (first.size() != header.size()) return fail(codec_errc::invalid_value, "fragment.header", 0);
    for (std::size_t i = 0; i < header.size(); ++i) {
      const bool free_field = i == ttl_at || (i >= fragment_at && i < length_at + 4);
      if (!free_field && first[i] != header[i]) {
        return fail(codec_errc::invalid_value, "fragment.header", i);
      }
    }
  }
  partial& p = it->second;

  const std::size_t held_end = p.have.empty() ? 0 : p.have.back().second;
  if (last) {
    if ((p.end && *p.end != end_here) || held_end > end_here) {
      return fail(codec_errc::bad_length, "fragment.last", fragment_at);
    }
  } else if (p.end && end_here > *p.end) {
    return fail(codec_errc::bad_length, "fragment.last", fragment_at);
  }

  // Bytes shared with what is held must agree; count what is new.
  std::size_t overlap = 0;
  for (const auto& [b, e] : p.have) {
    const std::size_t lo = std::max(b, offset);
    const std::size_t hi = std::min(e, end_here);
    if (lo >= hi) continue;
    if (std::memcmp(p.body.data() + lo, body.data() + (lo - offset), hi - lo) != 0) {
      std::size_t at = lo;
      while (p.body[at] == body[at - offset]) ++at;
      return fail(codec_errc::invalid_value, "fragment.data", header_size + at - offset);
    }
    overlap += hi - lo;
  }
  if (last) p.end = end_here;
  if (overlap < body.size()) {
    if (p.fragments == lim_.max_fragments_per_message) {
      return fail(codec_errc::limit_exceeded, "reassembly.fragments", fragment_at);
    }
    ++p.fragments;
    if (p.body.size() < end_here) p.body.resize(end_here);
    std::memcpy(p.body.data() + offset, body.data(), body.size());
    // Insert [offset, end_here) and merge touching or overlapping neighbours.
    auto pos = std::lower_bound(p.have.begin(), p.have.end(), std::pair{offset, end_here});
    pos = p.have.insert(pos, {offset, end_here});
    if (pos != p.have.begin()) --pos;
    while (pos + 1 != p.have.end()) {
      if (pos->second >= (pos + 1)->first) {
        pos->second = std::max(pos->second, (pos + 1)->second);
        p.have.erase(pos + 1);
      } else if ((pos + 1)->first <= end_here) {
        ++pos;
      } else {
        break;
      }
    }
  }

  if (p.end && p.have.size() == 1 && p.have.front().first == 0 && p.have.front().second == *p.end) {
    bytes whole = build(p.header, unfragmented, byte_view(p.body).first(*p.end));
    partials_.erase(it);
    return std::optional<bytes>(std::move(whole));
  }
  return std::optional<bytes>{};
}

}  // namespace p2psip::protocol
