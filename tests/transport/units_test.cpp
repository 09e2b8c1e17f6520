// Sans-I/O pieces of the transport: the token bucket, credentials checks, the Node-ID extraction
// from certificates, the key-log line and the error category.

#include <doctest/doctest.h>

#include <botan/pkcs8.h>
#include <botan/x509cert.h>

#include <unistd.h>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io_util.hpp"
#include "p2psip/crypto/certificate.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/errors.hpp"
#include "p2psip/transport/rate_limit.hpp"
#include "peer_identity.hpp"
#include "test_pki.hpp"
#include "tls_engine.hpp"

namespace pr = p2psip::protocol;
namespace tr = p2psip::transport;
namespace tp = p2psip::test_pki;
namespace cr = p2psip::crypto;
using namespace std::chrono_literals;

namespace {
const cr::overlay_params overlay = tp::example_overlay();
}

TEST_CASE("token bucket: burst, refill, cap, disabled, time going backwards") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
  tr::token_bucket b(10, 5, t0);
  for (int i = 0; i < 5; ++i) CHECK(b.take(t0));
  CHECK_FALSE(b.take(t0));
  CHECK_FALSE(b.take(t0 + 99ms));  // 0.99 tokens
  CHECK(b.take(t0 + 100ms));       // one token after 1/rate
  CHECK_FALSE(b.take(t0 + 100ms));
  CHECK(b.available(t0 + 1h) == 5);  // capped at burst, no overflow after a long pause
  CHECK(b.available(t0) == 5);       // time going backwards adds and removes nothing

  // Many small steps lose nothing: 999 steps of 100 us are not yet a token at 10/s.
  tr::token_bucket c(10, 1, t0);
  CHECK(c.take(t0));
  auto t = t0;
  for (int i = 0; i < 999; ++i) {
    t += 100us;
    CHECK_FALSE(c.take(t));
  }
  CHECK(c.take(t + 100us));

  tr::token_bucket off(0, 1, t0);
  for (int i = 0; i < 1000; ++i) CHECK(off.take(t0));

  tr::token_bucket huge(UINT32_MAX, UINT32_MAX, t0);
  for (int i = 0; i < 10; ++i) CHECK(huge.take(t0));
  CHECK(huge.available(t0 + std::chrono::hours(24 * 365 * 100)) == UINT32_MAX);
}

TEST_CASE("credentials: key must match, lists and overlay must be given, PEM round trip") {
  tp::test_ca ca;
  auto a = ca.issue(tp::link_spec({tp::random_node_id()}));
  auto b = ca.issue(tp::link_spec({tp::random_node_id()}));
  const auto invalid = tr::make_error_code(tr::transport_errc::invalid_credentials);

  CHECK(tr::tls_credentials::create({a.certificate}, a.key, {ca.certificate()}, overlay));
  auto mismatch = tr::tls_credentials::create({a.certificate}, b.key, {ca.certificate()}, overlay);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error() == invalid);
  CHECK_FALSE(tr::tls_credentials::create({}, a.key, {ca.certificate()}, overlay));
  CHECK_FALSE(tr::tls_credentials::create({a.certificate}, a.key, {}, overlay));
  CHECK_FALSE(tr::tls_credentials::create({a.certificate}, nullptr, {ca.certificate()}, overlay));
  CHECK_FALSE(tr::tls_credentials::create({a.certificate}, a.key, {ca.certificate()},
                                          cr::overlay_params{"", 16}));

  const std::string chain_pem = a.certificate.PEM_encode();
  const std::string key_pem = Botan::PKCS8::PEM_encode(*a.key);
  const std::string roots_pem = ca.certificate().PEM_encode();
  auto from_pem = tr::tls_credentials::from_pem(chain_pem, key_pem, roots_pem, overlay);
  REQUIRE(from_pem);
  CHECK((*from_pem)->chain().size() == 1);
  CHECK((*from_pem)->roots().size() == 1);
  CHECK((*from_pem)->overlay().name == overlay.name);
  CHECK_FALSE(tr::tls_credentials::from_pem("no certificate here", key_pem, roots_pem, overlay));
  CHECK_FALSE(tr::tls_credentials::from_pem(chain_pem, "garbage", roots_pem, overlay));
  CHECK_FALSE(tr::tls_credentials::from_pem(
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key_pem, roots_pem,
      overlay));
}

TEST_CASE("credentials from a crypto::node_identity") {
  tp::test_ca ca;
  const auto id = tp::random_node_id();
  auto issued = ca.issue(tp::link_spec({id}));
  auto parsed = cr::certificate::parse(issued.certificate.BER_encode(), overlay);
  REQUIRE(parsed);
  const auto pkcs8 = Botan::PKCS8::BER_encode(*issued.key);
  auto identity = cr::node_identity::create(*parsed, pr::bytes(pkcs8.begin(), pkcs8.end()));
  REQUIRE(identity);
  const std::vector<pr::bytes> roots{ca.certificate().BER_encode()};
  auto creds = tr::tls_credentials::from_identity(*identity, roots, overlay);
  REQUIRE(creds);
  CHECK((*creds)->chain().front() == issued.certificate);
}

TEST_CASE("peer identity: Node-IDs come from the certificate's reload:// URIs") {
  tp::test_ca ca;
  const auto id1 = tp::random_node_id();
  const auto id2 = tp::random_node_id();

  auto one = tr::detail::certificate_identity(ca.issue(tp::link_spec({id1})).certificate, overlay);
  REQUIRE(one);
  CHECK(one->node_ids == std::vector<pr::node_id>{id1});
  CHECK(one->user == "node@example.org");

  auto two =
      tr::detail::certificate_identity(ca.issue(tp::link_spec({id1, id2})).certificate, overlay);
  REQUIRE(two);
  REQUIRE(two->node_ids.size() == 2);
  CHECK(std::find(two->node_ids.begin(), two->node_ids.end(), id1) != two->node_ids.end());
  CHECK(std::find(two->node_ids.begin(), two->node_ids.end(), id2) != two->node_ids.end());

  auto none = tr::detail::certificate_identity(ca.issue(tp::link_spec({})).certificate, overlay);
  REQUIRE_FALSE(none);
  CHECK(none.error() == cr::crypto_errc::no_node_id);

  auto other = tr::detail::certificate_identity(
      ca.issue(tp::link_spec({id1}, "other.example")).certificate, overlay);
  REQUIRE_FALSE(other);
  CHECK(other.error() == cr::crypto_errc::wrong_overlay);

  // Another NodeIdLength: a 16-byte id in the URI does not read as a 20-byte one.
  auto longer = tr::detail::certificate_identity(ca.issue(tp::link_spec({id1})).certificate,
                                                 cr::overlay_params{overlay.name, 20});
  CHECK_FALSE(longer);
}

TEST_CASE("key log: NSS CLIENT_RANDOM lines appended") {
  const auto path = std::filesystem::temp_directory_path() /
                    ("p2psip_keylog_unit_" + std::to_string(::getpid()) + ".txt");
  std::filesystem::remove(path);
  const pr::bytes random(32, 0xAB);
  const pr::bytes secret(48, 0x01);
  tr::detail::append_key_log(path.string(), random, secret);
  tr::detail::append_key_log(path.string(), random, secret);
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    CHECK(line == "CLIENT_RANDOM " + pr::to_hex(random) + " " + pr::to_hex(secret));
  }
  CHECK(lines == 2);
  std::filesystem::remove(path);
}

TEST_CASE("transport error category names every code") {
  for (int e = 0; e <= static_cast<int>(tr::transport_errc::wrong_server_name); ++e) {
    const auto ec = tr::make_error_code(static_cast<tr::transport_errc>(e));
    CHECK(std::string(ec.category().name()) == "p2psip.transport");
    CHECK(ec.message().find("unknown") == std::string::npos);
  }
  CHECK(tr::make_error_code(tr::transport_errc::queue_full).message() == "send queue full");
}

TEST_CASE(
    "transport: a thread's read buffer grows for a read that fills it, shrinks after 64 small "
    "ones") {
  using tr::detail::read_chunk;
  using tr::detail::small_read_chunk;
  using tr::detail::small_reads_before_shrinking;
  tr::detail::thread_read_buffer b;
  CHECK(b.get().size() == small_read_chunk);
  b.note_read(small_read_chunk - 1);  // one byte short of full: stays small
  CHECK(b.get().size() == small_read_chunk);
  b.note_read(small_read_chunk);  // full: more was waiting
  CHECK(b.get().size() == read_chunk);
  // Reads that would fit the small buffer, one short of the run that shrinks it, and a bigger
  // one that starts the count again.
  for (std::uint32_t i = 0; i + 1 < small_reads_before_shrinking; ++i) b.note_read(100);
  b.note_read(small_read_chunk + 1);
  CHECK(b.get().size() == read_chunk);
  for (std::uint32_t i = 0; i + 1 < small_reads_before_shrinking; ++i)
    b.note_read(small_read_chunk);
  CHECK(b.get().size() == read_chunk);
  b.note_read(small_read_chunk);  // the 64th in a row
  CHECK(b.get().size() == small_read_chunk);
}
