#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/fragment.hpp"
#include "p2psip/protocol/message.hpp"

using namespace p2psip::protocol;
using namespace std::chrono_literals;

namespace {

using time_point = reassembler::time_point;
const time_point t0{};

limits roomy() {
  limits lim;
  lim.max_message_size = 20000;
  return lim;
}

// A PingReq to the wildcard node whose body carries `padding` bytes of a pattern (the ping body is
// `opaque padding<0..2^16-1>`), unsigned. Different fills give different messages of equal size.
bytes make_message(std::uint64_t transaction_id, std::size_t padding, std::uint8_t fill = 1) {
  message m;
  m.header.overlay = 0x4E38FC3F;
  m.header.configuration_sequence = 1;
  m.header.transaction_id = transaction_id;
  m.header.destination_list.push_back(to_destination(node_id::wildcard()));
  m.contents.code = codes::ping_req;
  m.contents.body = {static_cast<std::uint8_t>(padding >> 8), static_cast<std::uint8_t>(padding)};
  for (std::size_t i = 0; i < padding; ++i) {
    m.contents.body.push_back(static_cast<std::uint8_t>(fill + i * 13 + (i >> 8)));
  }
  auto out = encode_message(m, roomy());
  REQUIRE(out);
  return *out;
}

std::size_t header_size(byte_view message) {
  auto h = decode_forwarding_header(message, roomy());
  REQUIRE(h);
  return h->size;
}

std::uint32_t load_u32(byte_view b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

void store_u32(bytes& b, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

/// A fragment made by hand: the message's header with `fragment` set, then body bytes
/// [offset, offset + n) of the message's body.
bytes craft(byte_view whole, std::uint32_t offset, std::size_t n, bool last) {
  const std::size_t h = header_size(whole);
  bytes out(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(h));
  const byte_view body = whole.subspan(h + offset, n);
  out.insert(out.end(), body.begin(), body.end());
  store_u32(out, 12, 0x80000000u | (last ? 0x40000000u : 0u) | offset);
  store_u32(out, 16, static_cast<std::uint32_t>(out.size()));
  return out;
}

std::vector<bytes> split(byte_view whole, std::size_t max_size) {
  auto f = fragment_message(whole, max_size, roomy());
  REQUIRE(f);
  return *f;
}

/// Feeds all fragments on one link; returns the message if exactly the last put completed it.
std::optional<bytes> feed(reassembler& r, std::uint64_t link, const std::vector<bytes>& frags,
                          time_point now = t0) {
  std::optional<bytes> whole;
  for (std::size_t i = 0; i < frags.size(); ++i) {
    auto out = r.put(link, frags[i], now);
    REQUIRE(out);
    if (i + 1 < frags.size()) {
      CHECK_FALSE(out->has_value());
    } else {
      whole = *out;
    }
  }
  return whole;
}

}  // namespace

TEST_CASE("fragment_message splits per RFC 6940 section 6.7") {
  const bytes whole = make_message(0x1111, 3000);
  const std::size_t h = header_size(whole);
  REQUIRE(h == 56);
  const std::size_t body = whole.size() - h;

  for (const std::size_t max :
       {h + 256, std::size_t{500}, std::size_t{1000}, std::size_t{1400}, whole.size() - 1}) {
    CAPTURE(max);
    const auto frags = split(whole, max);
    REQUIRE(frags.size() >= 2);
    std::size_t expected_offset = 0;
    std::size_t smallest = SIZE_MAX, largest = 0;
    for (std::size_t i = 0; i < frags.size(); ++i) {
      const bytes& f = frags[i];
      CHECK(f.size() <= max);
      auto decoded = decode_forwarding_header(f, limits{});  // each fragment is a valid header
      REQUIRE(decoded);
      CHECK(decoded->header.length == f.size());
      const std::uint32_t field = decoded->header.fragment;
      CHECK((field & 0x80000000u) != 0);
      CHECK(((field & 0x40000000u) != 0) == (i + 1 == frags.size()));
      CHECK((field & 0x3F000000u) == 0);
      CHECK((field & 0x00FFFFFFu) == expected_offset);
      // Header copied byte for byte apart from fragment and length.
      for (std::size_t k = 0; k < h; ++k) {
        if (k >= 12 && k < 20) continue;
        CHECK(f[k] == whole[k]);
      }
      CHECK(std::equal(f.begin() + static_cast<std::ptrdiff_t>(h), f.end(),
                       whole.begin() + static_cast<std::ptrdiff_t>(h + expected_offset)));
      const std::size_t chunk = f.size() - h;
      if (i + 1 < frags.size()) CHECK(chunk >= min_fragment_body);
      smallest = std::min(smallest, chunk);
      largest = std::max(largest, chunk);
      expected_offset += chunk;
    }
    CHECK(expected_offset == body);
    // Equal-sized where the 256-byte minimum allows: at h + 256, twelve equal chunks would hold
    // 251 bytes, so full 256-byte chunks and a short last one are used instead.
    if (max != h + 256) CHECK(largest - smallest <= 1);
    if (max == h + 256) CHECK(largest == 256);
  }
  SUBCASE("a message that fits comes back unchanged") {
    const auto frags = split(whole, whole.size());
    REQUIRE(frags.size() == 1);
    CHECK(frags[0] == whole);
  }
  SUBCASE("too small for the header and 256 body bytes: no RELOAD fragmentation") {
    auto f = fragment_message(whole, h + 255, roomy());
    REQUIRE_FALSE(f);
    CHECK(f.error().code == codec_errc::limit_exceeded);
    CHECK(std::string(f.error().field) == "max_fragment_size");
  }
  SUBCASE("equal chunks under 256 bytes fall back to full chunks and a short last one") {
    const bytes small = make_message(0x2222, 300);  // body 300 + 10 bytes of contents and security
    const auto frags = split(small, h + 280);
    REQUIRE(frags.size() == 2);
    CHECK(frags[0].size() == h + 280);
  }
  SUBCASE("a bad header is reported, not split") {
    bytes bad = whole;
    bad[0] = 0;
    auto f = fragment_message(bad, 500, roomy());
    REQUIRE_FALSE(f);
    CHECK(f.error().code == codec_errc::bad_token);
  }
}

TEST_CASE("reassembly round trip: in order, reversed, shuffled, duplicated") {
  const bytes whole = make_message(0xABCDEF, 4000);
  std::mt19937 rng(1);
  for (const std::size_t max : {std::size_t{312}, std::size_t{700}, std::size_t{1500}}) {
    CAPTURE(max);
    const auto frags = split(whole, max);
    limits lim = roomy();
    {
      reassembler r(lim);
      CHECK(feed(r, 1, frags) == whole);
      CHECK(r.in_flight() == 0);
    }
    {
      reassembler r(lim);
      auto reversed = frags;
      std::reverse(reversed.begin(), reversed.end());
      CHECK(feed(r, 1, reversed) == whole);
    }
    for (int round = 0; round < 20; ++round) {
      reassembler r(lim);
      auto shuffled = frags;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      CHECK(feed(r, 1, shuffled) == whole);
    }
    {
      // Every fragment but the last twice, the copies spread out, then the last: the message
      // completes once, on the last. (Copies arriving after completion would start a new partial
      // message; duplicate transactions are the transaction layer's business.)
      reassembler r(lim);
      std::vector<bytes> doubled(frags.begin(), frags.end() - 1);
      doubled.insert(doubled.end(), frags.begin(), frags.end() - 1);
      std::shuffle(doubled.begin(), doubled.end(), rng);
      doubled.push_back(frags.back());
      std::optional<bytes> got;
      for (const auto& f : doubled) {
        auto out = r.put(1, f, t0);
        REQUIRE(out);
        if (out->has_value()) {
          CHECK_FALSE(got);
          got = **out;
        }
      }
      CHECK(got == whole);
    }
  }
  SUBCASE("the reassembled message decodes") {
    reassembler r(roomy());
    auto out = feed(r, 1, split(whole, 1000));
    REQUIRE(out);
    auto m = decode_message(*out, roomy());
    REQUIRE(m);
    CHECK(m->header.transaction_id == 0xABCDEF);
    CHECK(m->contents.code == codes::ping_req);
  }
  SUBCASE("an unfragmented message passes straight through") {
    reassembler r(roomy());
    auto out = r.put(1, whole, t0);
    REQUIRE(out);
    CHECK(**out == whole);
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("refragmented on the way: pieces of a fragment fit back in") {
    auto frags = split(whole, 1500);
    REQUIRE(frags.size() >= 3);
    auto pieces = split(frags[1], 500);
    CHECK(pieces.size() >= 3);
    for (const auto& p : pieces) CHECK(((load_u32(p, 12) & 0x40000000u) == 0));
    auto last_pieces = split(frags.back(), 400);
    CHECK((load_u32(last_pieces.back(), 12) & 0x40000000u) != 0);
    std::vector<bytes> all{frags[0]};
    all.insert(all.end(), pieces.begin(), pieces.end());
    all.insert(all.end(), frags.begin() + 2, frags.end() - 1);
    all.insert(all.end(), last_pieces.begin(), last_pieces.end());
    std::shuffle(all.begin(), all.end(), rng);
    reassembler r(roomy());
    std::optional<bytes> got;
    for (const auto& f : all) {
      auto out = r.put(1, f, t0);
      REQUIRE(out);
      if (out->has_value()) got = **out;
    }
    CHECK(got == whole);
  }
  SUBCASE("overlapping fragments that agree are fine") {
    const std::size_t body = whole.size() - header_size(whole);
    std::vector<bytes> overlapping{craft(whole, 0, 1000, false), craft(whole, 600, 1000, false),
                                   craft(whole, 1500, 1000, false),
                                   craft(whole, 2400, static_cast<std::size_t>(body - 2400), true)};
    reassembler r(roomy());
    CHECK(feed(r, 1, overlapping) == whole);
  }
  SUBCASE("TTL may differ between fragments, the first arrival's header is kept") {
    auto frags = split(whole, 1000);
    frags[1][11] = 90;
    reassembler r(roomy());
    CHECK(feed(r, 1, frags) == whole);
  }
}

TEST_CASE("interleaved transactions, and the same transaction id on two links") {
  const bytes a = make_message(7, 2000, 1);
  const bytes b = make_message(7, 2000, 2);  // same transaction id, same size, other bytes
  const bytes c = make_message(8, 1500, 3);
  REQUIRE(a != b);
  const auto fa = split(a, 600);
  const auto fb = split(b, 600);
  const auto fc = split(c, 600);
  reassembler r(roomy());
  std::vector<std::pair<std::uint64_t, const bytes*>> order;
  for (std::size_t i = 0; i < std::max({fa.size(), fb.size(), fc.size()}); ++i) {
    if (i < fa.size()) order.emplace_back(1, &fa[i]);
    if (i < fb.size()) order.emplace_back(2, &fb[i]);
    if (i < fc.size()) order.emplace_back(1, &fc[i]);
  }
  std::vector<bytes> done;
  for (const auto& [link, f] : order) {
    auto out = r.put(link, *f, t0);
    REQUIRE(out);
    if (out->has_value()) done.push_back(**out);
  }
  REQUIRE(done.size() == 3);
  CHECK(std::find(done.begin(), done.end(), a) != done.end());
  CHECK(std::find(done.begin(), done.end(), b) != done.end());
  CHECK(std::find(done.begin(), done.end(), c) != done.end());
  CHECK(r.in_flight() == 0);
}

TEST_CASE("reassembly bounds, one over each") {
  const bytes whole = make_message(0x77, 3000);
  const auto frags = split(whole, 400);  // 9 fragments
  REQUIRE(frags.size() == 9);

  SUBCASE("max_fragments_per_message") {
    limits lim = roomy();
    lim.max_fragments_per_message = frags.size();
    reassembler ok(lim);
    CHECK(feed(ok, 1, frags) == whole);

    lim.max_fragments_per_message = frags.size() - 1;
    reassembler r(lim);
    for (std::size_t i = 0; i + 1 < frags.size(); ++i) REQUIRE(r.put(1, frags[i], t0));
    // A duplicate adds nothing and is not counted.
    REQUIRE(r.put(1, frags[0], t0));
    auto out = r.put(1, frags.back(), t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::limit_exceeded);
    CHECK(std::string(out.error().field) == "reassembly.fragments");
    CHECK(r.in_flight() == 0);  // the partial message is dropped
  }
  SUBCASE("max_message_size of the reassembled message") {
    limits lim = roomy();
    lim.max_message_size = whole.size();
    reassembler ok(lim);
    CHECK(feed(ok, 1, frags) == whole);

    lim.max_message_size = whole.size() - 1;
    reassembler r(lim);
    for (std::size_t i = 0; i + 1 < frags.size(); ++i) REQUIRE(r.put(1, frags[i], t0));
    auto out = r.put(1, frags.back(), t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::limit_exceeded);
    CHECK(std::string(out.error().field) == "fragment.offset");
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("an offset far beyond the limit is refused before anything is held") {
    reassembler r(roomy());
    bytes far = craft(whole, 0, 300, false);
    store_u32(far, 12, 0x80000000u | 0x00FFFF00u);
    auto out = r.put(1, far, t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::limit_exceeded);
    CHECK(r.in_flight() == 0);
    CHECK(r.buffered_bytes() == 0);
  }
  SUBCASE("max_fragments_in_flight, and a flooding link cannot keep others out") {
    limits lim = roomy();
    lim.max_fragments_in_flight = 3;
    reassembler r(lim);
    for (std::uint64_t tx = 1; tx <= 3; ++tx) {
      REQUIRE(r.put(1, split(make_message(tx, 1000), 400)[0], t0 + std::chrono::seconds(tx)));
    }
    CHECK(r.in_flight() == 3);
    // One over, on the same link: refused.
    auto refused = r.put(1, split(make_message(4, 1000), 400)[0], t0 + 4s);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == codec_errc::limit_exceeded);
    CHECK(std::string(refused.error().field) == "reassembly.in_flight");
    CHECK(r.in_flight() == 3);
    // Another link takes the oldest slot of the link holding the most.
    const bytes other = make_message(9, 1000);
    const auto other_frags = split(other, 400);
    REQUIRE(r.put(2, other_frags[0], t0 + 5s));
    CHECK(r.in_flight() == 3);
    // Link 1 now holds 2, link 2 holds 1: no further swapping, a second newcomer is refused.
    auto second = r.put(2, split(make_message(10, 1000), 400)[0], t0 + 6s);
    REQUIRE_FALSE(second);
    // The evicted one was transaction 1 (the oldest): its next fragment starts afresh, refused.
    auto evicted = r.put(1, split(make_message(1, 1000), 400)[1], t0 + 7s);
    REQUIRE_FALSE(evicted);
    // Link 2's message still completes.
    std::optional<bytes> got;
    for (std::size_t i = 1; i < other_frags.size(); ++i) {
      auto out = r.put(2, other_frags[i], t0 + 8s);
      REQUIRE(out);
      if (out->has_value()) got = **out;
    }
    CHECK(got == other);
  }
  SUBCASE("a limit of zero partial messages refuses every fragment") {
    limits lim = roomy();
    lim.max_fragments_in_flight = 0;
    reassembler r(lim);
    CHECK_FALSE(r.put(1, frags[0], t0));
    auto whole_msg = r.put(1, whole, t0);  // whole messages still pass
    REQUIRE(whole_msg);
    CHECK(whole_msg->has_value());
  }
}

TEST_CASE("reassembly timeout with a fake clock") {
  const bytes whole = make_message(0x55, 2000);
  const auto frags = split(whole, 700);
  REQUIRE(frags.size() >= 3);
  limits lim = roomy();
  reassembler r(lim);
  CHECK_FALSE(r.next_deadline());
  REQUIRE(r.put(1, frags[0], t0));
  CHECK(r.next_deadline() == t0 + lim.reassembly_timeout);
  // Later fragments do not push the deadline out.
  REQUIRE(r.put(1, frags[1], t0 + 10s));
  CHECK(r.next_deadline() == t0 + 15s);
  CHECK(r.expire(t0 + 15s - 1ns) == 0);
  CHECK(r.in_flight() == 1);
  SUBCASE("expire() drops it at the deadline") {
    CHECK(r.expire(t0 + 15s) == 1);
    CHECK(r.in_flight() == 0);
    CHECK_FALSE(r.next_deadline());
  }
  SUBCASE("put() after the deadline starts afresh") {
    for (std::size_t i = 2; i < frags.size(); ++i) {
      auto out = r.put(1, frags[i], t0 + 15s);
      REQUIRE(out);
      CHECK_FALSE(out->has_value());
    }
    CHECK(r.in_flight() == 1);
    CHECK(r.next_deadline() == t0 + 30s);
  }
  SUBCASE("in time, it completes") {
    std::optional<bytes> got;
    for (std::size_t i = 2; i < frags.size(); ++i) {
      auto out = r.put(1, frags[i], t0 + 15s - 1ns);
      REQUIRE(out);
      if (out->has_value()) got = **out;
    }
    CHECK(got == whole);
    CHECK_FALSE(r.next_deadline());
  }
}

TEST_CASE("conflicting fragments are errors and drop the partial message") {
  const bytes whole = make_message(0x99, 3000);
  const std::size_t h = header_size(whole);
  const std::size_t body = whole.size() - h;
  reassembler r(roomy());
  REQUIRE(r.put(1, craft(whole, 0, 1000, false), t0));
  REQUIRE(r.in_flight() == 1);

  SUBCASE("overlap with other bytes") {
    bytes bad = craft(whole, 900, 500, false);
    bad[h + 150] ^= 0xFF;  // body offset 1050: no conflict there (not held yet)
    bad[h + 50] ^= 0xFF;   // body offset 950: held, differs
    auto out = r.put(1, bad, t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::invalid_value);
    CHECK(std::string(out.error().field) == "fragment.data");
    CHECK(out.error().offset == h + 50);
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("a second last fragment with another end") {
    REQUIRE(r.put(1, craft(whole, 2000, body - 2000, true), t0));
    auto out = r.put(1, craft(whole, 2000, 500, true), t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::bad_length);
    CHECK(std::string(out.error().field) == "fragment.last");
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("data past the end a last fragment set") {
    REQUIRE(r.put(1, craft(whole, 1500, 500, true), t0));  // claims the body ends at 2000
    auto out = r.put(1, craft(whole, 1900, 500, false), t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::bad_length);
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("a last fragment ending before data already held") {
    auto out = r.put(1, craft(whole, 300, 200, true), t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::bad_length);
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("a header that differs") {
    bytes other = craft(whole, 1000, 500, false);
    other[31] ^= 0x01;  // max_response_length
    auto out = r.put(1, other, t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::invalid_value);
    CHECK(std::string(out.error().field) == "fragment.header");
    CHECK(out.error().offset == 31);
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("a non-last fragment without body") {
    auto out = r.put(1, craft(whole, 1000, 0, false), t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::invalid_value);
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("a fragment whose header does not decode leaves the partial message alone") {
    bytes bad = craft(whole, 1000, 500, false);
    bad[10] = 0x01;  // draft version
    auto out = r.put(1, bad, t0);
    REQUIRE_FALSE(out);
    CHECK(out.error().code == codec_errc::unsupported_version);
    CHECK(r.in_flight() == 1);
  }
  SUBCASE("the whole message with the same transaction id replaces the partial one") {
    auto out = r.put(1, whole, t0);
    REQUIRE(out);
    CHECK(**out == whole);
    CHECK(r.in_flight() == 0);
  }
  SUBCASE("a closed link's partial messages go with it") {
    REQUIRE(r.put(2, craft(whole, 0, 1000, false), t0));
    CHECK(r.drop_link(1) == 1);
    CHECK(r.in_flight() == 1);
    CHECK(r.buffered_bytes() == 1000);
  }
  SUBCASE("reserved bits in a whole message's fragment field are ignored and cleared") {
    bytes odd = whole;
    store_u32(odd, 12, 0xC1000000u);
    auto out = r.put(3, odd, t0);
    REQUIRE(out);
    CHECK(**out == whole);
  }
}
