// Fuzz target: a whole RELOAD message, header to security block, then its typed body.
// Whatever decodes must re-encode to the same bytes: the codec has one encoding per value, so a
// difference means the decoder accepted something the encoder cannot say (or dropped a field).

#include <cstdint>
#include <cstdlib>

#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/message.hpp"

using namespace p2psip::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  limits lim;
  lim.max_message_size = 1 << 16;
  const byte_view in(data, size);
  auto m = decode_message(in, lim);
  if (!m) return 0;
  auto again = encode_message(*m, lim);
  if (!again || *again != bytes(in.begin(), in.end())) std::abort();

  body_context guessing;
  guessing.guess_unknown_models = true;
  for (const body_context& ctx : {body_context{}, guessing}) {
    auto body = decode_body(m->contents.code, m->contents.body, lim, ctx);
    if (!body) continue;
    auto encoded = encode_body(*body);
    if (!encoded) std::abort();
    // Undecoded values are kept verbatim, so even an unknown kind re-encodes identically.
    if (*encoded != m->contents.body) std::abort();
    auto twice = decode_body(m->contents.code, *encoded, lim, ctx);
    if (!twice || !(*twice == *body)) std::abort();
  }
  return 0;
}
