// Fuzz target: the STUN Binding codec of the SIP transport (RFC 5389; the keepalives of RFC 5626
// 4.4.2), on datagrams as they arrive. Invariants: nothing crashes or reads past the datagram;
// each decoder only accepts what is_stun accepts, with the transaction id of bytes 8..19; a
// decoded request or success response re-encodes (with or without FINGERPRINT) to bytes that
// decode to the same values; has_fingerprint sees a FINGERPRINT the encoder added.

#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "stun.hpp"

namespace stun = p2psip::peer::stun;

namespace {

stun::transaction_id id_of(std::span<const std::uint8_t> m) {
  stun::transaction_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = m[8 + i];
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy of exactly `size` bytes, so that AddressSanitizer sees a read one past the datagram.
  const std::vector<std::uint8_t> copy(data, data + size);
  const std::span<const std::uint8_t> m(copy);

  const bool is = stun::is_stun(m);
  const bool fingerprint = stun::has_fingerprint(m);
  if (fingerprint && !is) std::abort();
  (void)stun::crc32(m);

  if (const auto id = stun::decode_binding_request(m)) {
    if (!is || m[0] != 0x00 || m[1] != 0x01 || *id != id_of(m)) std::abort();
    for (const bool fp : {false, true}) {
      const auto again = stun::encode_binding_request(*id, fp);
      if (!stun::is_stun(again) || stun::has_fingerprint(again) != fp) std::abort();
      const auto back = stun::decode_binding_request(again);
      if (!back || *back != *id) std::abort();
    }
  }

  if (const auto mapped = stun::decode_binding_success(m)) {
    if (!is || m[0] != 0x01 || m[1] != 0x01 || mapped->id != id_of(m)) std::abort();
    for (const bool fp : {false, true}) {
      const auto again =
          stun::encode_binding_success(mapped->id, mapped->address, mapped->port, fp);
      // has_fingerprint reads only the last 8 bytes: an IPv6 XOR-MAPPED-ADDRESS ending in
      // 80 28 00 04 reads as a FINGERPRINT (corpus/stun/ipv6_tail_reads_as_fingerprint.bin), so
      // only the positive direction is checked here.
      if (!stun::is_stun(again) || (fp && !stun::has_fingerprint(again))) std::abort();
      const auto back = stun::decode_binding_success(again);
      if (!back || back->id != mapped->id || back->address != mapped->address ||
          back->port != mapped->port)
        std::abort();
      // A success response is not a request, and the other way round.
      if (stun::decode_binding_request(again)) std::abort();
    }
  }
  return 0;
}
