#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "p2psip/protocol/framing.hpp"
#include "p2psip/protocol/message.hpp"
#include "test_bytes.hpp"

using namespace p2psip::protocol;
using p2psip::test::hex;
using namespace std::chrono_literals;

namespace p2psip::protocol {
// Readable failures: doctest prints acks through this.
std::ostream& operator<<(std::ostream& os, const ack_frame& a) {
  return os << "ack{" << a.ack_sequence << ", 0x" << std::hex << a.received << std::dec << "}";
}
}  // namespace p2psip::protocol

namespace {

// The PingReq of forwarding_test.cpp (77 bytes): header to the wildcard node, empty ping body,
// unsigned security block.
const char* const ping_hex =
    "d2454c4f 4e38fc3f 0001 0a 64 c0000000 0000004d 0102030405060708 00000000 0000 0012 0000"
    "0110 ffffffffffffffffffffffffffffffff"
    "0017 00000002 0000 00000000"
    "0000 0000 03 0000 0000";

bytes pattern(std::size_t n, std::uint8_t seed) {
  bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 7);
  return out;
}

bytes concat(const std::vector<frame>& frames) {
  bytes out;
  writer w(out);
  for (const auto& f : frames) encode_frame(w, f);
  REQUIRE(w.ok());
  return out;
}

std::vector<frame> drain(frame_decoder& d) {
  std::vector<frame> out;
  while (auto f = d.next()) out.push_back(std::move(*f));
  return out;
}

// Data frames of several sizes (a real message, empty, 1 byte, 1000 bytes, the limit) and acks.
std::vector<frame> sample_stream(const limits& lim) {
  return {
      data_frame{0, hex(ping_hex)},
      ack_frame{0, 0},
      data_frame{1, {}},
      ack_frame{7, 0x0000003F},
      data_frame{2, pattern(1000, 3)},
      data_frame{3, {0x42}},
      ack_frame{0xFFFFFFFF, 0x80000001},
      data_frame{0xFFFFFFFF, pattern(lim.max_message_size, 9)},
      ack_frame{0x81818181, 0x80808080},  // type bytes inside fields must not confuse the decoder
  };
}

}  // namespace

TEST_CASE("golden frames from the brief (section 12)") {
  const bytes ping = hex(ping_hex);
  SUBCASE("DATA frame carrying a PingReq") {
    auto out = encode_frame(data_frame{0, ping});
    REQUIRE(out);
    bytes expected = hex("80 00000000 00004d");
    expected.insert(expected.end(), ping.begin(), ping.end());
    CHECK(*out == expected);
    auto back = decode_frame(*out, limits{});
    REQUIRE(back);
    CHECK(std::get<data_frame>(*back) == data_frame{0, ping});
  }
  SUBCASE("DATA header for V1 (1111 bytes)") {
    auto h = data_frame_header(0, 1111);
    REQUIRE(h);
    CHECK(bytes(h->begin(), h->end()) == hex("80 00000000 000457"));
  }
  SUBCASE("ACK for sequence 0") {
    auto out = encode_frame(ack_frame{0, 0});
    REQUIRE(out);
    CHECK(*out == hex("81 00000000 00000000"));
    auto back = decode_frame(*out, limits{});
    REQUIRE(back);
    CHECK(std::get<ack_frame>(*back) == ack_frame{0, 0});
  }
  SUBCASE("ACK fields are big-endian") {
    auto out = encode_frame(ack_frame{0x01020304, 0x80000001});
    REQUIRE(out);
    CHECK(*out == hex("81 01020304 80000001"));
  }
}

TEST_CASE("single-frame decode must-fail cases") {
  limits lim;
  lim.max_message_size = 100;
  SUBCASE("unknown types") {
    for (const std::uint8_t type : std::initializer_list<std::uint8_t>{0x00, 0x7F, 0x82, 0xFF}) {
      bytes b = hex("81 00000000 00000000");
      b[0] = type;
      auto f = decode_frame(b, lim);
      REQUIRE_FALSE(f);
      CHECK(f.error().code == codec_errc::unknown_type);
      CHECK(f.error().offset == 0);
    }
  }
  SUBCASE("message size, one over") {
    bytes b = hex("80 00000001 000064");
    b.resize(8 + 100, 0xAA);
    CHECK(decode_frame(b, lim));
    b = hex("80 00000001 000065");
    b.resize(8 + 101, 0xAA);
    auto f = decode_frame(b, lim);
    REQUIRE_FALSE(f);
    CHECK(f.error().code == codec_errc::limit_exceeded);
    CHECK(f.error().offset == 5);
  }
  SUBCASE("every truncation fails, trailing bytes fail") {
    const bytes good = *encode_frame(data_frame{9, pattern(20, 1)});
    for (std::size_t n = 0; n < good.size(); ++n) {
      CHECK_FALSE(decode_frame(byte_view(good).first(n), lim));
    }
    bytes longer = good;
    longer.push_back(0);
    CHECK(decode_frame(longer, lim).error().code == codec_errc::trailing_bytes);
    const bytes ack = hex("81 00000000 00000000 00");
    CHECK(decode_frame(ack, lim).error().code == codec_errc::trailing_bytes);
  }
  SUBCASE("encoders refuse a message the 24-bit length cannot carry") {
    CHECK_FALSE(data_frame_header(0, max_frame_message + 1));
    CHECK(data_frame_header(0, max_frame_message));
  }
}

TEST_CASE("frame_decoder must-fail cases") {
  limits lim;
  lim.max_message_size = 100;
  SUBCASE("unknown type fails at once and stays failed") {
    frame_decoder d(lim);
    bytes in = hex("81 00000005 00000001 82");
    auto r = d.put(in);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::unknown_type);
    CHECK(r.error().offset == 9);
    CHECK(d.failed());
    // The ack before the bad byte was whole and is still handed out.
    CHECK(d.ready() == 1);
    auto f = d.next();
    REQUIRE(f);
    CHECK(std::get<ack_frame>(*f) == ack_frame{5, 1});
    // Well-formed input afterwards changes nothing.
    auto again = d.put(hex("81 00000000 00000000"));
    REQUIRE_FALSE(again);
    CHECK(again.error().offset == 9);
    CHECK_FALSE(d.next());
  }
  SUBCASE("a bad type at the very start") {
    frame_decoder d(lim);
    auto r = d.put(hex("00"));
    REQUIRE_FALSE(r);
    CHECK(r.error().offset == 0);
  }
  SUBCASE("oversize fails on the length, before any payload arrives") {
    frame_decoder ok(lim);
    auto r = ok.put(hex("80 00000000 000064"));
    REQUIRE(r);
    CHECK(*r == 0);
    frame_decoder d(lim);
    // A second frame's header claims 101 bytes; only the header is given.
    bytes in = hex("81 00000000 00000000 80 00000001 000065");
    auto bad = d.put(in);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == codec_errc::limit_exceeded);
    CHECK(bad.error().offset == 9 + 5);
    CHECK(std::string(bad.error().field) == "framed_message.message");
  }
  SUBCASE("the 24-bit maximum caps a larger configured limit") {
    limits big;
    big.max_message_size = std::size_t{1} << 30;
    frame_decoder d(big);
    auto r = d.put(hex("80 00000000 ffffff"));
    REQUIRE(r);  // 2^24-1 is allowed; only the frame format bounds it
  }
  SUBCASE("truncated at every offset is need-more, not an error") {
    limits roomy;
    roomy.max_message_size = 1200;
    const bytes stream = concat(sample_stream(roomy));
    for (std::size_t n = 0; n <= stream.size(); ++n) {
      frame_decoder d(roomy);
      auto r = d.put(byte_view(stream).first(n));
      REQUIRE(r);
      CHECK_FALSE(d.failed());
      CHECK(d.consumed() == n);
    }
  }
}

TEST_CASE("split-grind: frames come out whole however the stream is cut") {
  limits lim;
  lim.max_message_size = 1200;
  const std::vector<frame> frames = sample_stream(lim);
  const bytes stream = concat(frames);

  SUBCASE("coalesced: all frames in one put") {
    frame_decoder d(lim);
    auto r = d.put(stream);
    REQUIRE(r);
    CHECK(*r == frames.size());
    CHECK(drain(d) == frames);
    CHECK(d.at_boundary());
    CHECK(d.consumed() == stream.size());
  }
  SUBCASE("two pieces, split at every offset") {
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      frame_decoder d(lim);
      auto first = d.put(byte_view(stream).first(cut));
      REQUIRE(first);
      std::vector<frame> got = drain(d);
      auto second = d.put(byte_view(stream).subspan(cut));
      REQUIRE(second);
      for (auto& f : drain(d)) got.push_back(std::move(f));
      CHECK(got == frames);
      CHECK(d.at_boundary());
    }
  }
  SUBCASE("one byte at a time") {
    frame_decoder d(lim);
    std::vector<frame> got;
    for (const auto b : stream) {
      auto r = d.put(byte_view(&b, 1));
      REQUIRE(r);
      CHECK(*r <= 1);
      for (auto& f : drain(d)) got.push_back(std::move(f));
    }
    CHECK(got == frames);
    CHECK(d.at_boundary());
  }
  SUBCASE("random chunk sizes, frames left queued across puts") {
    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
      frame_decoder d(lim);
      std::size_t at = 0;
      while (at < stream.size()) {
        const std::size_t n = std::min<std::size_t>(rng() % 64 + 1, stream.size() - at);
        REQUIRE(d.put(byte_view(stream).subspan(at, n)));
        at += n;
      }
      CHECK(d.ready() == frames.size());
      CHECK(drain(d) == frames);
    }
  }
}

TEST_CASE("frame_decoder copies linearly when fed one byte at a time") {
  // A 1 MiB message byte by byte: quadratic copying would take minutes, not milliseconds.
  limits lim;
  lim.max_message_size = std::size_t{1} << 20;
  const bytes message = pattern(lim.max_message_size, 5);
  const bytes stream = *encode_frame(data_frame{77, message});
  frame_decoder d(lim);
  bool all_ok = true;
  for (const auto b : stream) all_ok = d.put(byte_view(&b, 1)).has_value() && all_ok;
  REQUIRE(all_ok);
  auto f = d.next();
  REQUIRE(f);
  CHECK(std::get<data_frame>(*f).sequence == 77);
  CHECK(std::get<data_frame>(*f).message == message);
}

// ---------------------------------------------------------------------------------------------
// Oversized messages (RFC 6940 section 6.6): with oversize_policy::keep_header the decoder keeps
// only the forwarding header of a message above the limit, so the link can answer
// Error_Message_Too_Large, and never buffers the rest.

namespace {

/// A message of `total` bytes: a forwarding header with `via` node entries in its via list, one
/// node destination and transaction id `txid`, then filler. `header_size` gets the header's bytes.
bytes big_message(std::uint32_t total, std::size_t via, std::uint64_t txid,
                  std::size_t* header_size = nullptr) {
  forwarding_header h;
  h.overlay = 0x4E38FC3F;
  h.transaction_id = txid;
  for (std::size_t i = 0; i < via; ++i) {
    h.via_list.push_back(to_destination(node_id::power_of_two(static_cast<unsigned>(i + 1))));
  }
  h.destination_list.push_back(to_destination(node_id::power_of_two(100)));
  bytes out;
  writer w(out);
  encode_forwarding_header(w, h, total);
  REQUIRE(w.ok());
  if (header_size != nullptr) *header_size = out.size();
  REQUIRE(out.size() <= total);
  const bytes filler = pattern(total - out.size(), 0x31);
  out.insert(out.end(), filler.begin(), filler.end());
  return out;
}

/// What a keep_header decoder made of a stream: the frames, the oversized frame, the failure.
struct oversize_run {
  std::vector<frame> frames;
  std::optional<oversized_frame> oversized;
  std::optional<decode_error> error;
};

/// Feeds `stream` in pieces of `chunk` bytes (a cut at `first` bytes first, if given), draining
/// after every put, as a link does.
oversize_run run_keep_header(byte_view stream, const limits& lim, std::size_t chunk,
                             std::size_t first = 0) {
  frame_decoder d(lim, oversize_policy::keep_header);
  oversize_run out;
  std::size_t at = 0;
  while (at < stream.size()) {
    const std::size_t n = std::min(at == 0 && first > 0 ? first : chunk, stream.size() - at);
    auto r = d.put(stream.subspan(at, n));
    at += n;
    for (auto& f : drain(d)) out.frames.push_back(std::move(f));
    if (auto o = d.take_oversized()) {
      REQUIRE_FALSE(out.oversized);  // once only
      out.oversized = std::move(o);
    }
    if (!r) {
      out.error = r.error();
      break;
    }
  }
  return out;
}

bytes framed(const frame& f) {
  auto e = encode_frame(f);
  REQUIRE(e);
  return *e;
}

/// A data frame header declaring `length` bytes, followed by `message` (maybe only its start).
bytes data_frame_start(std::uint32_t sequence, std::uint32_t length, const bytes& message) {
  auto h = data_frame_header(sequence, length);
  REQUIRE(h);
  bytes out(h->begin(), h->end());
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

}  // namespace

TEST_CASE("oversized_header_limit: fixed part plus the lists the limits allow") {
  limits lim;
  CHECK(oversized_header_limit(lim) == 5000);  // the default max-message-size is the bound
  lim.max_message_size = std::size_t{1} << 20;
  // 38 + 64 via entries and 16 destinations of at most 257 bytes, options up to 2^16-1.
  CHECK(oversized_header_limit(lim) == 38 + 64 * 257 + 16 * 257 + 0xFFFF);
  lim.max_options = 0;
  CHECK(oversized_header_limit(lim) == 38 + 64 * 257 + 16 * 257);
  lim.max_via_entries = 1000;  // each list's 16-bit length caps it
  CHECK(oversized_header_limit(lim) == 38 + 0xFFFF + 16 * 257);
  lim.max_message_size = 30;
  CHECK(oversized_header_limit(lim) == 30);
}

TEST_CASE("decode_oversized_header reads a header whose message did not come whole") {
  limits lim;
  std::size_t header_size = 0;
  const bytes message = big_message(6000, 3, 0x0102030405060708, &header_size);
  CHECK(header_size == 38 + 3 * 18 + 18);
  SUBCASE("the header alone, or with some of the body") {
    for (const std::size_t n : {header_size, header_size + 1, std::size_t{1000}}) {
      auto h = decode_oversized_header(byte_view(message).first(n), 6000, lim);
      REQUIRE(h);
      CHECK(h->size == header_size);
      CHECK(h->header.length == 6000);
      CHECK(h->header.transaction_id == 0x0102030405060708);
      CHECK(h->header.via_list.size() == 3);
      REQUIRE(h->header.destination_list.size() == 1);
      CHECK(*h->header.destination_list[0].node() == node_id::power_of_two(100));
    }
  }
  SUBCASE("truncated: the fixed part or a list is missing") {
    for (const std::size_t n : {std::size_t{0}, std::size_t{37}, header_size - 1}) {
      auto h = decode_oversized_header(byte_view(message).first(n), 6000, lim);
      REQUIRE_FALSE(h);
      CHECK(h.error().code == codec_errc::truncated);
    }
  }
  SUBCASE("the length field must be the message's length") {
    auto h = decode_oversized_header(message, 6001, lim);
    REQUIRE_FALSE(h);
    CHECK(h.error().code == codec_errc::bad_length);
    CHECK(h.error().offset == 16);
  }
  SUBCASE("a header larger than max_message_size itself") {
    limits small;
    small.max_message_size = header_size - 1;
    auto h = decode_oversized_header(message, 6000, small);
    REQUIRE_FALSE(h);
    CHECK(h.error().code == codec_errc::limit_exceeded);
  }
  SUBCASE("the ordinary header checks apply (version)") {
    bytes b = message;
    b[10] = 0x01;
    auto h = decode_oversized_header(b, 6000, lim);
    REQUIRE_FALSE(h);
    CHECK(h.error().code == codec_errc::unsupported_version);
    CHECK(h.error().offset == 10);
  }
}

TEST_CASE("keep_header: an oversized frame yields its forwarding header once, then nothing") {
  limits lim;
  lim.max_message_size = 1200;
  std::size_t header_size = 0;
  const bytes big = big_message(5000, 4, 77, &header_size);
  const std::vector<frame> before{ack_frame{3, 1}, data_frame{0, hex(ping_hex)}};
  const std::vector<frame> after{data_frame{2, pattern(10, 1)}, ack_frame{4, 0}};
  bytes stream = concat(before);
  const std::size_t big_at = stream.size() + data_frame_overhead;  // the big message's first byte
  const bytes big_frame = framed(data_frame{1, big});
  stream.insert(stream.end(), big_frame.begin(), big_frame.end());
  const bytes tail = concat(after);
  stream.insert(stream.end(), tail.begin(), tail.end());
  const oversized_frame expected{
      1, 5000, bytes(big.begin(), big.begin() + static_cast<std::ptrdiff_t>(header_size))};

  SUBCASE("all in one put") {
    frame_decoder d(lim, oversize_policy::keep_header);
    CHECK_FALSE(d.oversized_length());
    auto r = d.put(stream);
    REQUIRE(r);
    CHECK(*r == 2);
    CHECK(drain(d) == before);
    CHECK(d.oversized_length() == 5000);
    CHECK(d.stopped());
    CHECK(d.consumed() == stream.size());
    auto o = d.take_oversized();
    REQUIRE(o);
    CHECK(*o == expected);
    CHECK_FALSE(d.take_oversized());
    auto h = decode_oversized_header(o->header, o->message_length, lim);
    REQUIRE(h);
    CHECK(h->header.transaction_id == 77);
    CHECK(h->header.via_list.size() == 4);
    CHECK(h->size == header_size);
    // Whatever follows is consumed and dropped, even what would not frame.
    auto more = d.put(hex("42 42 42"));
    REQUIRE(more);
    CHECK(*more == 0);
    CHECK(d.consumed() == stream.size() + 3);
    CHECK_FALSE(d.next());
    CHECK_FALSE(d.failed());
  }
  SUBCASE("only the header arrives: it is handed out without the body") {
    frame_decoder d(lim, oversize_policy::keep_header);
    REQUIRE(d.put(byte_view(stream).first(big_at + header_size - 1)));
    CHECK(drain(d) == before);
    CHECK(d.oversized_length() == 5000);
    CHECK_FALSE(d.stopped());
    CHECK_FALSE(d.take_oversized());
    CHECK_FALSE(d.at_boundary());
    REQUIRE(d.put(byte_view(stream).subspan(big_at + header_size - 1, 1)));
    CHECK(d.stopped());
    CHECK(d.take_oversized() == expected);
  }
  SUBCASE("split-grind: two pieces cut at every offset") {
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
      CAPTURE(cut);
      const auto got = run_keep_header(stream, lim, stream.size(), cut);
      REQUIRE_FALSE(got.error);
      CHECK(got.frames == before);
      REQUIRE(got.oversized);
      CHECK(*got.oversized == expected);
    }
  }
  SUBCASE("split-grind: one byte at a time, and random sizes") {
    const auto one = run_keep_header(stream, lim, 1);
    REQUIRE_FALSE(one.error);
    CHECK(one.frames == before);
    CHECK(one.oversized == expected);
    std::mt19937 rng(7);
    for (int round = 0; round < 50; ++round) {
      const auto got = run_keep_header(stream, lim, rng() % 97 + 1, rng() % 200 + 1);
      REQUIRE_FALSE(got.error);
      CHECK(got.frames == before);
      CHECK(got.oversized == expected);
    }
  }
  SUBCASE("never more of the message than its header is kept") {
    frame_decoder d(lim, oversize_policy::keep_header);
    REQUIRE(d.put(stream));
    auto o = d.take_oversized();
    REQUIRE(o);
    CHECK(o->header.size() == header_size);
    CHECK(o->header.capacity() <= oversized_header_limit(lim));
  }
  SUBCASE("oversize_policy::fail still fails on the length") {
    frame_decoder d(lim);
    auto r = d.put(stream);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::limit_exceeded);
    CHECK(r.error().offset == big_at - 3);
    CHECK_FALSE(d.oversized_length());
  }
}

TEST_CASE("keep_header: truncated at every offset before the header is whole is need-more") {
  limits lim;
  std::size_t header_size = 0;
  const bytes stream = data_frame_start(9, 6000, big_message(6000, 2, 1, &header_size));
  for (std::size_t n = 0; n < data_frame_overhead + header_size; ++n) {
    frame_decoder d(lim, oversize_policy::keep_header);
    REQUIRE(d.put(byte_view(stream).first(n)));
    CHECK_FALSE(d.failed());
    CHECK_FALSE(d.stopped());
    CHECK(d.oversized_length().has_value() == (n >= data_frame_overhead));
  }
}

TEST_CASE("keep_header must-fail cases: a header that cannot be answered fails the stream") {
  limits lim;  // max_message_size 5000
  std::size_t header_size = 0;
  const bytes good = big_message(6000, 2, 1, &header_size);
  const auto expect_failure = [&](const bytes& message_start, const limits& l, codec_errc code,
                                  std::size_t offset, const char* field,
                                  bool inside_oversized = true) {
    const bytes stream = data_frame_start(5, 6000, message_start);
    // The same failure however the bytes come.
    for (const std::size_t chunk : {stream.size(), std::size_t{1}, std::size_t{7}}) {
      CAPTURE(chunk);
      const auto got = run_keep_header(stream, l, chunk);
      REQUIRE(got.error);
      CHECK(got.error->code == code);
      CHECK(got.error->offset == offset);
      CHECK(std::string(got.error->field) == field);
      CHECK_FALSE(got.oversized);
    }
    frame_decoder d(l, oversize_policy::keep_header);
    auto r = d.put(stream);
    REQUIRE_FALSE(r);
    CHECK(d.failed());
    // Set when the failure happened inside an oversized message's header.
    CHECK(d.oversized_length().has_value() == inside_oversized);
    CHECK_FALSE(d.put(good));  // and stays
  };
  SUBCASE("garbage: fails on the first byte that is not the token") {
    expect_failure(hex("474554"), lim, codec_errc::bad_token, 8, "forwarding_header.relo_token");
    expect_failure(hex("d24500"), lim, codec_errc::bad_token, 8, "forwarding_header.relo_token");
    frame_decoder d(lim, oversize_policy::keep_header);
    CHECK(d.put(data_frame_start(5, 6000, hex("d2454c"))));  // a good start: need more
  }
  SUBCASE("a via list longer than the limits allow, seen in the fixed part") {
    limits l = lim;
    l.max_via_entries = 1;  // at most 257 bytes
    bytes b(good.begin(), good.begin() + 38);
    b[32] = 0x01;
    b[33] = 0x02;  // 258
    expect_failure(b, l, codec_errc::limit_exceeded, 8 + 32, "forwarding_header.via_list_length");
  }
  SUBCASE("a destination list longer than the limits allow") {
    limits l = lim;
    l.max_destination_entries = 1;
    bytes b(good.begin(), good.begin() + 38);
    b[34] = 0x01;
    b[35] = 0x02;
    expect_failure(b, l, codec_errc::limit_exceeded, 8 + 34,
                   "forwarding_header.destination_list_length");
  }
  SUBCASE("options where none are allowed") {
    limits l = lim;
    l.max_options = 0;
    bytes b(good.begin(), good.begin() + 38);
    b[37] = 0x04;
    expect_failure(b, l, codec_errc::limit_exceeded, 8 + 36, "forwarding_header.options_length");
  }
  SUBCASE("a header larger than max_message_size: no answer (RFC 6940 section 6.6)") {
    limits l = lim;
    l.max_message_size = header_size - 1;
    expect_failure(bytes(good.begin(), good.begin() + 38), l, codec_errc::limit_exceeded, 8,
                   "forwarding_header");
  }
  SUBCASE("a header that does not decode: version, length, empty destination list") {
    bytes version(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(header_size));
    version[10] = 0x01;
    expect_failure(version, lim, codec_errc::unsupported_version, 8 + 10,
                   "forwarding_header.version");
    bytes length = version;
    length[10] = 0x0A;
    length[19] ^= 0x01;  // the header's length disagrees with the frame's
    expect_failure(length, lim, codec_errc::bad_length, 8 + 16, "forwarding_header.length");
    bytes no_destination(good.begin(), good.begin() + 38);
    no_destination[34] = 0;
    no_destination[35] = 0;
    no_destination[32] = 0;
    no_destination[33] = 0;
    expect_failure(no_destination, lim, codec_errc::invalid_value, 8 + 38,
                   "forwarding_header.destination_list");
  }
  SUBCASE("a limit below the fixed part fails on the frame's length, as oversize_policy::fail") {
    limits l = lim;
    l.max_message_size = 37;
    expect_failure({}, l, codec_errc::limit_exceeded, 5, "framed_message.message", false);
  }
}

// ---------------------------------------------------------------------------------------------
// Acks. Bit k (value 1 << k) of `received` stands for ack_sequence - (k + 1); bit 31 (N-32) is
// never set by a receiver, because RFC 6940 section 6.6.2 asks for M > N-32. tshark 4.0 shows the
// same reading: received 0x00000001 on ack 100 is "Acked Frames: [99]", 0x40000000 is "[69]".

TEST_CASE("receive_window builds the RFC bitmask") {
  SUBCASE("in order from the first frame") {
    receive_window w;
    CHECK(w.on_data(0) == ack_frame{0, 0});
    CHECK(w.on_data(1) == ack_frame{1, 0x1});
    CHECK(w.on_data(2) == ack_frame{2, 0x3});
    CHECK(w.on_data(3) == ack_frame{3, 0x7});
  }
  SUBCASE("gaps and reordering") {
    receive_window w;
    (void)w.on_data(0);
    (void)w.on_data(1);
    (void)w.on_data(2);
    // 3 is missing: N-M = 2, 3, 4 for M = 2, 1, 0.
    CHECK(w.on_data(4) == ack_frame{4, 0xE});
    // 3 arrives late: 4 is newer, so it is not "less than N"; 2, 1, 0 are 1, 2, 3 back.
    CHECK(w.on_data(3) == ack_frame{3, 0x7});
    CHECK(w.on_data(5) == ack_frame{5, 0x1F});
  }
  SUBCASE("N-32 is outside, N-31 is the highest bit used") {
    receive_window w;
    for (std::uint32_t s = 0; s < 32; ++s) (void)w.on_data(s);
    CHECK(w.on_data(32) == ack_frame{32, 0x7FFFFFFF});
    // 33: the 32 remembered are 1..32 (0 was pushed out); 1 is 32 back, so not set.
    CHECK(w.on_data(33) == ack_frame{33, 0x7FFFFFFF});
  }
  SUBCASE("only the 32 most recent count") {
    receive_window w;
    for (std::uint32_t s = 0; s <= 80; s += 2) (void)w.on_data(s);
    // Remembered: 18..80 even. For 81 the distances 1, 3, ..., 31 are set.
    CHECK(w.on_data(81) == ack_frame{81, 0x55555555});
  }
  SUBCASE("wrap-around of the uint32 sequence") {
    receive_window w;
    (void)w.on_data(0xFFFFFFFD);
    (void)w.on_data(0xFFFFFFFE);
    CHECK(w.on_data(0xFFFFFFFF) == ack_frame{0xFFFFFFFF, 0x3});
    CHECK(w.on_data(0) == ack_frame{0, 0x7});
    CHECK(w.on_data(2) == ack_frame{2, 0x1E});  // 1 missing; 0, -1, -2, -3 set
  }
  SUBCASE("a jump forward forgets nothing but sets no far bits") {
    receive_window w;
    for (std::uint32_t s = 0; s < 5; ++s) (void)w.on_data(s);
    CHECK(w.on_data(100) == ack_frame{100, 0});
    // Old frames arriving after a newer one see only the older ones below them.
    CHECK(w.on_data(5) == ack_frame{5, 0x1F});
  }
  SUBCASE("a duplicate neither sets its own bit nor pushes out others") {
    receive_window w;
    (void)w.on_data(0);
    for (std::uint32_t s = 100; s <= 130; ++s) (void)w.on_data(s);  // 32 remembered now
    CHECK(w.on_data(130) == ack_frame{130, 0x3FFFFFFF});            // 100..129; 0 is too far back
    // Had the duplicate taken a slot, 0 would be gone; a late 1 still finds it one back.
    CHECK(w.on_data(1) == ack_frame{1, 0x1});
  }
}

TEST_CASE("ack_covers agrees with a brute-force model over random traffic") {
  std::mt19937 rng(7);
  for (const std::uint32_t start : {0u, 0xFFFFFFF0u}) {
    receive_window w;
    std::vector<std::uint32_t> recent;  // distinct, most recent last, at most 32
    std::uint32_t next = start;
    for (int i = 0; i < 2000; ++i) {
      // Mostly in order, with losses, duplicates and late arrivals.
      std::uint32_t s = next;
      const unsigned roll = static_cast<unsigned>(rng() % 10);
      if (roll == 0) s = next + 1 + static_cast<std::uint32_t>(rng() % 5);   // a few lost
      if (roll == 1) s = next - 1 - static_cast<std::uint32_t>(rng() % 40);  // late or duplicate
      if (roll != 1) next = s + 1;
      const ack_frame a = w.on_data(s);
      CHECK(a.ack_sequence == s);
      CHECK((a.received & 0x80000000u) == 0);
      for (std::uint32_t k = 1; k <= 40; ++k) {
        const std::uint32_t m = s - k;
        const bool model = k <= 31 && std::find(recent.begin(), recent.end(), m) != recent.end();
        CHECK(ack_covers(a, m) == model);
      }
      if (std::find(recent.begin(), recent.end(), s) == recent.end()) {
        recent.push_back(s);
        if (recent.size() > 32) recent.erase(recent.begin());
      }
    }
  }
}

TEST_CASE("ack_covers reads every bit, including a peer's N-32") {
  const ack_frame a{100, 0x80000001};
  CHECK(ack_covers(a, 100));
  CHECK(ack_covers(a, 99));
  CHECK_FALSE(ack_covers(a, 98));
  CHECK(ack_covers(a, 68));
  CHECK_FALSE(ack_covers(a, 67));
  CHECK_FALSE(ack_covers(a, 101));
  const ack_frame wrapped{1, 0x3};
  CHECK(ack_covers(wrapped, 0));
  CHECK(ack_covers(wrapped, 0xFFFFFFFF));
  CHECK_FALSE(ack_covers(wrapped, 0xFFFFFFFE));
}

// ---------------------------------------------------------------------------------------------
// RFC 6298 estimator and the sender's bookkeeping, driven by a fake clock.

TEST_CASE("rto_estimator follows RFC 6298") {
  rto_estimator e;
  CHECK(e.rto() == 1000ms);
  CHECK_FALSE(e.srtt());
  e.on_sample(100ms);  // 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
  CHECK(*e.srtt() == 100ms);
  CHECK(*e.rttvar() == 50ms);
  CHECK(e.rto() == 300ms);
  e.on_sample(200ms);  // 2.3: RTTVAR = 3/4 50 + 1/4 100 = 62.5; SRTT = 7/8 100 + 1/8 200 = 112.5
  CHECK(*e.rttvar() == 62500us);
  CHECK(*e.srtt() == 112500us);
  CHECK(e.rto() == 363ms);  // 362.5 ms, rounded up to the millisecond (RFC 6940 6.6.3.1)
  SUBCASE("back-off doubles and saturates at the ceiling") {
    e.backoff();
    CHECK(e.rto() == 726ms);
    for (int i = 0; i < 40; ++i) e.backoff();
    CHECK(e.rto() == 60000ms);
    e.on_sample(112500us);  // a new measurement ends the back-off
    CHECK(e.rto() < 1000ms);
  }
  SUBCASE("no one-second floor, the granularity term keeps it above zero") {
    rto_estimator fast;
    fast.on_sample(0ms);
    CHECK(fast.rto() == 1ms);
    fast.on_sample(-5ms);  // a clock that went backwards counts as zero
    CHECK(fast.rto() == 1ms);
  }
  SUBCASE("huge samples clamp to the ceiling without overflow") {
    rto_estimator slow;
    slow.on_sample(std::chrono::hours(24 * 365 * 100));
    CHECK(slow.rto() == 60000ms);
  }
  SUBCASE("configured bounds") {
    rto_estimator sr(rto_config{500ms, 200ms, 4000ms});
    CHECK(sr.rto() == 500ms);
    sr.on_sample(10ms);
    CHECK(sr.rto() == 200ms);
    for (int i = 0; i < 10; ++i) sr.backoff();
    CHECK(sr.rto() == 4000ms);
  }
}

TEST_CASE("send_window turns acks into RTT samples and a failure deadline") {
  const steady_time t0{};
  send_window s;
  CHECK_FALSE(s.next_deadline());
  CHECK(s.on_send(t0) == 0);
  CHECK(s.on_send(t0 + 10ms) == 1);
  CHECK(s.on_send(t0 + 20ms) == 2);
  CHECK(s.next_sequence() == 3);
  CHECK(s.oldest_outstanding() == t0);
  CHECK(s.next_deadline() == t0 + 1000ms);  // initial RTO before any measurement
  CHECK_FALSE(s.overdue(t0 + 999ms));
  CHECK(s.overdue(t0 + 1000ms));

  SUBCASE("one ack confirms the frames its bitmask names") {
    const auto out = s.on_ack(ack_frame{2, 0x3}, t0 + 120ms);
    CHECK(out.known);
    REQUIRE(out.rtt);
    CHECK(*out.rtt == 100ms);
    CHECK(out.newly_acked == 3);
    CHECK(s.acked(0));
    CHECK(s.acked(1));
    CHECK(s.acked(2));
    CHECK(s.estimator().rto() == 300ms);
    CHECK_FALSE(s.next_deadline());
    CHECK(s.last_ack() == t0 + 120ms);
  }
  SUBCASE("duplicate acks give no second sample") {
    (void)s.on_ack(ack_frame{0, 0}, t0 + 50ms);
    const auto again = s.on_ack(ack_frame{0, 0}, t0 + 70ms);
    CHECK(again.known);
    CHECK_FALSE(again.rtt);
    CHECK(again.newly_acked == 0);
  }
  SUBCASE("acks for frames never sent are ignored") {
    const auto out = s.on_ack(ack_frame{3, 0xFFFFFFFF}, t0 + 50ms);
    CHECK_FALSE(out.known);
    CHECK_FALSE(out.rtt);
    CHECK(out.newly_acked == 3);  // its bitmask still names 2, 1, 0
    CHECK_FALSE(s.last_ack());
  }
  SUBCASE("a lost frame behind an acked one does not keep the link suspect") {
    (void)s.on_ack(ack_frame{0, 0}, t0 + 50ms);
    (void)s.on_ack(ack_frame{2, 0x0}, t0 + 60ms);  // 1 is lost
    CHECK_FALSE(s.acked(1));
    CHECK_FALSE(s.next_deadline());
    (void)s.on_send(t0 + 2000ms);
    CHECK(s.oldest_outstanding() == t0 + 2000ms);
    CHECK(s.next_deadline() == t0 + 2000ms + s.estimator().rto());
  }
  SUBCASE("only the last `history` frames are remembered") {
    send_window small(rto_config{}, 4);
    for (int i = 0; i < 10; ++i) (void)small.on_send(t0);
    CHECK_FALSE(small.on_ack(ack_frame{5, 0}, t0).known);
    CHECK(small.on_ack(ack_frame{6, 0}, t0).known);
    CHECK(small.on_ack(ack_frame{9, 0}, t0).known);
  }
}

TEST_CASE("send_window: slots grow with the frames sent and keep every remembered frame") {
  const steady_time t0{};
  send_window s(rto_config{}, 64);
  // Across every growth (4, 8, ..., 64 slots) and well past the history: each frame is known
  // while it is one of the last 64, with its own send time, and its ack state survives growth.
  for (std::uint32_t i = 0; i < 200; ++i) {
    CHECK(s.on_send(t0 + std::chrono::milliseconds(i)) == i);
    if (i % 3 == 0) {
      const auto out = s.on_ack(ack_frame{i, 0}, t0 + std::chrono::milliseconds(i + 5));
      CHECK(out.known);
      REQUIRE(out.rtt);
      CHECK(*out.rtt == 5ms);
    }
    for (std::uint32_t j = (i >= 63 ? i - 63 : 0); j <= i; ++j) {
      CHECK(s.acked(j) == (j % 3 == 0));
    }
    if (i >= 64) CHECK_FALSE(s.on_ack(ack_frame{i - 64, 0}, t0).known);
  }
  // 198 is the newest acked frame, so 199 alone is outstanding.
  CHECK(s.oldest_outstanding() == t0 + 199ms);
}

TEST_CASE("fifo: first in first out across its compactions and releases") {
  fifo<bytes> q;
  CHECK(q.empty());
  q.push_back(bytes{1});
  q.push_back(bytes{2});
  CHECK(q.size() == 2);
  CHECK(q.front() == bytes{1});
  q.pop_front();
  CHECK(q.front() == bytes{2});
  q.pop_front();
  CHECK(q.empty());
  // A long run of one in, one out stays in order and small.
  std::uint8_t next_in = 0;
  std::uint8_t next_out = 0;
  for (int i = 0; i < 1000; ++i) {
    q.push_back(bytes{next_in++});
    q.push_back(bytes{next_in++});
    CHECK(q.front() == bytes{next_out++});
    q.pop_front();
  }
  CHECK(q.size() == 1000);
  while (!q.empty()) {
    CHECK(q.front() == bytes{next_out++});
    q.pop_front();
  }
  CHECK(next_out == next_in);
  q.push_back(bytes{7});
  q.clear();
  CHECK(q.empty());
  CHECK(q.size() == 0);
}
