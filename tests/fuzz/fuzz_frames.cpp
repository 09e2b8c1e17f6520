// Fuzz target: a TLS link's byte stream into the frame decoder. The first input byte picks how the
// stream is cut into put() calls, so every split is explored. Invariants: the frames are the same
// however the stream is split, and re-encoding them gives back exactly the bytes they came from.
// The same stream also goes through a decoder that keeps an oversized message's forwarding header
// (RFC 6940 6.6): the same frames before it, the same header however split, a header that
// decode_oversized_header accepts, and never more kept than oversized_header_limit().

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "p2psip/protocol/framing.hpp"

using namespace p2psip::protocol;

namespace {

struct run_result {
  std::vector<frame> frames;
  bool failed = false;
  std::optional<oversized_frame> oversized;
};

run_result run(byte_view stream, std::size_t chunk, const limits& lim,
               oversize_policy policy = oversize_policy::fail) {
  frame_decoder decoder(lim, policy);
  run_result out;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    const auto piece = stream.subspan(at, std::min(chunk, stream.size() - at));
    auto ready = decoder.put(piece);
    while (auto f = decoder.next()) out.frames.push_back(std::move(*f));
    if (auto o = decoder.take_oversized()) {
      if (out.oversized) std::abort();  // handed out once
      out.oversized = std::move(*o);
    }
    if (!ready) {
      out.failed = true;
      // A failed decoder stays failed and reads nothing more.
      if (decoder.put(piece)) std::abort();
      break;
    }
  }
  return out;
}

void check_keep_header(byte_view stream, std::size_t chunk, const limits& lim) {
  const run_result whole = run(stream, stream.size() + 1, lim, oversize_policy::keep_header);
  const run_result split = run(stream, chunk, lim, oversize_policy::keep_header);
  if (whole.failed != split.failed || whole.frames.size() != split.frames.size()) std::abort();
  if (whole.oversized != split.oversized) std::abort();
  if (!whole.oversized) return;
  const auto& o = *whole.oversized;
  if (o.message_length <= lim.max_message_size) std::abort();
  if (o.header.size() > oversized_header_limit(lim)) std::abort();
  if (!decode_oversized_header(o.header, o.message_length, lim)) std::abort();
}

bool same(const frame& a, const frame& b) {
  const auto ea = encode_frame(a);
  const auto eb = encode_frame(b);
  return ea && eb && *ea == *eb;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = std::size_t{data[0]} + 1;
  const byte_view stream(data + 1, size - 1);
  limits lim;
  lim.max_message_size = 4096;

  check_keep_header(stream, chunk, lim);
  const run_result whole = run(stream, stream.size() + 1, lim);
  const run_result split = run(stream, chunk, lim);
  if (whole.failed != split.failed || whole.frames.size() != split.frames.size()) std::abort();
  bytes reencoded;
  for (std::size_t i = 0; i < whole.frames.size(); ++i) {
    if (!same(whole.frames[i], split.frames[i])) std::abort();
    auto e = encode_frame(whole.frames[i]);
    if (!e) std::abort();
    reencoded.insert(reencoded.end(), e->begin(), e->end());
  }
  if (reencoded.size() > stream.size()) std::abort();
  if (!std::equal(reencoded.begin(), reencoded.end(), stream.begin())) std::abort();
  return 0;
}
