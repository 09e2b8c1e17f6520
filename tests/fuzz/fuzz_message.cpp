// Fuzz target: a whole RELOAD message, header to security block, then its typed body, and the
// SipRegistrations of SIP-REGISTRATION values in Store requests and Fetch answers.
// Whatever decodes must re-encode to the same bytes: the codec has one encoding per value, so a
// difference means the decoder accepted something the encoder cannot say (or dropped a field).

#include <cstdint>
#include <cstdlib>
#include <variant>
#include <vector>

#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/message.hpp"

using namespace p2psip::protocol;

namespace {

/// SIP-REGISTRATION values (a storing peer decodes them, RFC 7904 3.2): what decodes re-encodes
/// to the same bytes.
void check_registrations(std::uint32_t kind, const std::vector<stored_data>& values,
                         const limits& lim) {
  if (kind != kinds::sip_registration) return;
  for (const auto& sd : values) {
    const auto* entry = std::get_if<dictionary_entry>(&sd.value);
    if (!entry || !entry->value.exists) continue;
    auto reg = decode_sip_registration(entry->value.value, lim);
    if (!reg) continue;
    auto again = encode_sip_registration(*reg);
    if (!again || *again != entry->value.value) std::abort();
  }
}

}  // namespace

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
    if (const auto* st = std::get_if<store_req>(&*body)) {
      for (const auto& kd : st->kind_data) check_registrations(kd.kind, kd.values, lim);
    }
    if (const auto* fa = std::get_if<fetch_ans>(&*body)) {
      for (const auto& kr : fa->kind_responses) check_registrations(kr.kind, kr.values, lim);
    }
  }
  return 0;
}
