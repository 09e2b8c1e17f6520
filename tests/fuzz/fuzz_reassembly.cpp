// Fuzz target: fragments arriving on several links, in any order and at any time, into the bounded
// reassembler. Input: records of [u8 link][u8 time step, 100 ms units][u16 length][bytes].
// Invariants: the bounds hold after every call, and whatever comes out is one whole message within
// the size limit.

#include <chrono>
#include <cstdint>
#include <cstdlib>

#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/fragment.hpp"

using namespace p2psip::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  limits lim;
  lim.max_message_size = 8192;
  lim.max_fragments_in_flight = 4;
  lim.max_fragments_per_message = 8;
  lim.reassembly_timeout = std::chrono::milliseconds(2000);
  reassembler r(lim);
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);

  std::size_t at = 0;
  while (at + 4 <= size) {
    const std::uint64_t link = data[at] % 4;
    now += std::chrono::milliseconds(100) * data[at + 1];
    const std::size_t len = (std::size_t{data[at + 2]} << 8) | data[at + 3];
    at += 4;
    const std::size_t take = std::min(len, size - at);
    auto out = r.put(link, byte_view(data + at, take), now);
    at += take;

    if (r.in_flight() > lim.max_fragments_in_flight) std::abort();
    if (r.buffered_bytes() > lim.max_fragments_in_flight * lim.max_message_size) std::abort();
    if (out && *out) {
      const bytes& whole = **out;
      if (whole.size() > lim.max_message_size) std::abort();
      auto header = decode_forwarding_header(whole, lim);
      if (!header || header->header.is_fragment()) std::abort();
    }
    if (const auto deadline = r.next_deadline()) {
      if (*deadline <= now && r.in_flight() > 0 && r.expire(now) == 0) std::abort();
    }
  }
  return 0;
}
