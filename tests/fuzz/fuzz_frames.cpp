// Fuzz target: a TLS link's byte stream into the frame decoder. The first input byte picks how the
// stream is cut into put() calls, so every split is explored. Invariants: the frames are the same
// however the stream is split, and re-encoding them gives back exactly the bytes they came from.

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "p2psip/protocol/framing.hpp"

using namespace p2psip::protocol;

namespace {

struct run_result {
  std::vector<frame> frames;
  bool failed = false;
};

run_result run(byte_view stream, std::size_t chunk, const limits& lim) {
  frame_decoder decoder(lim);
  run_result out;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    const auto piece = stream.subspan(at, std::min(chunk, stream.size() - at));
    auto ready = decoder.put(piece);
    while (auto f = decoder.next()) out.frames.push_back(std::move(*f));
    if (!ready) {
      out.failed = true;
      // A failed decoder stays failed and reads nothing more.
      if (decoder.put(piece)) std::abort();
      break;
    }
  }
  return out;
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
