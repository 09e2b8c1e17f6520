// Our TLS record layer after Botan's handshake (tls_records.hpp), in memory: two tls_engines pass
// their outboxes to each other. Each combination of record layers (ours on both ends, ours against
// Botan's own channel kept for the whole session, both ways round) must carry data both ways in
// records of every size around the 16 KiB limit, delivered in pieces split at every offset and
// several records at once; close_notify is answered; a changed byte is refused.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "p2psip/transport/errors.hpp"
#include "p2psip/transport/link.hpp"
#include "test_pki_tls.hpp"
#include "tls_engine.hpp"

namespace tr = p2psip::transport;
namespace tp = p2psip::test_pki;

namespace {

using engine = tr::detail::tls_engine;

struct pair_of_engines {
  tp::test_ca ca;
  std::unique_ptr<engine> client;
  std::unique_ptr<engine> server;

  /// `own_client` / `own_server`: whether that end switches to our record layer.
  pair_of_engines(bool own_client, bool own_server) {
    const auto client_id = tp::test_node(1);
    const auto server_id = tp::test_node(2);
    client = std::make_unique<engine>(false, tp::link_credentials(ca, {client_id}),
                                      tr::detail::peer_requirements{server_id, false, {}}, "");
    server = std::make_unique<engine>(true, tp::link_credentials(ca, {server_id}),
                                      tr::detail::peer_requirements{}, "");
    if (!own_client) client->keep_botan_record_layer();
    if (!own_server) server->keep_botan_record_layer();
    REQUIRE_FALSE(client->start());
    REQUIRE_FALSE(server->start());
    for (int round = 0; round < 10 && !(client->active() && server->active()); ++round) {
      pass(*client, *server);
      pass(*server, *client);
    }
    REQUIRE(client->active());
    REQUIRE(server->active());
    CHECK(client->own_record_layer() == own_client);
    CHECK(server->own_record_layer() == own_server);
  }

  /// Moves `from`'s outbox into `to` in one piece.
  static void pass(engine& from, engine& to) {
    auto bytes = std::move(from.outbox());
    from.outbox().clear();
    if (!bytes.empty()) REQUIRE_FALSE(to.feed(bytes.data(), bytes.size()));
  }
};

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

void exchange(engine& from, engine& to, std::size_t size, std::uint8_t seed) {
  const auto data = pattern(size, seed);
  REQUIRE_FALSE(from.send(data.data(), data.size()));
  pair_of_engines::pass(from, to);
  CHECK(to.plaintext() == data);
  to.plaintext().clear();
}

}  // namespace

TEST_CASE("tls records: ours and Botan's interoperate, every size around a record's limit") {
  for (const auto& [own_client, own_server] :
       {std::pair{true, true}, std::pair{true, false}, std::pair{false, true}}) {
    CAPTURE(own_client);
    CAPTURE(own_server);
    pair_of_engines p(own_client, own_server);
    std::uint8_t seed = 0;
    for (const std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{16383},
                                   std::size_t{16384}, std::size_t{16385}, std::size_t{40000}}) {
      CAPTURE(size);
      exchange(*p.client, *p.server, size, ++seed);
      exchange(*p.server, *p.client, size, ++seed);
    }
    // Several records in one piece, and records cut in pieces of 1 to 17 bytes (cuts at many
    // offsets of headers, nonces, ciphertexts and tags).
    std::vector<std::uint8_t> sent;
    for (int i = 0; i < 6; ++i) {
      const auto part = pattern(50 + static_cast<std::size_t>(i), static_cast<std::uint8_t>(i));
      sent.insert(sent.end(), part.begin(), part.end());
      REQUIRE_FALSE(p.client->send(part.data(), part.size()));
    }
    const auto wire = std::move(p.client->outbox());
    p.client->outbox().clear();
    const std::size_t half = wire.size() / 2;
    REQUIRE_FALSE(p.server->feed(wire.data(), half - half % 5));
    for (std::size_t at = half - half % 5, piece = 1; at < wire.size(); piece = piece % 17 + 1) {
      const std::size_t n = std::min(piece, wire.size() - at);
      REQUIRE_FALSE(p.server->feed(wire.data() + at, n));
      at += n;
    }
    CHECK(p.server->plaintext() == sent);
    p.server->plaintext().clear();
    // One byte at a time.
    const auto bytes = pattern(300, 9);
    REQUIRE_FALSE(p.server->send(bytes.data(), bytes.size()));
    const auto one = std::move(p.server->outbox());
    p.server->outbox().clear();
    for (const auto b : one) REQUIRE_FALSE(p.client->feed(&b, 1));
    CHECK(p.client->plaintext() == bytes);
    p.client->plaintext().clear();

    // close_notify from the client; the server answers with its own and sends no more.
    p.client->close();
    CHECK_FALSE(p.client->can_send());
    pair_of_engines::pass(*p.client, *p.server);
    CHECK(p.server->peer_closed());
    CHECK_FALSE(p.server->can_send());
    pair_of_engines::pass(*p.server, *p.client);
    CHECK(p.client->peer_closed());
  }
}

TEST_CASE("tls records: a changed byte, a record that is not TLS, renegotiation") {
  for (const bool own_server : {true, false}) {
    CAPTURE(own_server);
    {
      pair_of_engines p(true, own_server);
      const auto data = pattern(64, 3);
      REQUIRE_FALSE(p.client->send(data.data(), data.size()));
      auto wire = std::move(p.client->outbox());
      p.client->outbox().clear();
      wire[wire.size() - 20] ^= 0x01;  // inside the ciphertext
      CHECK(p.server->feed(wire.data(), wire.size()));
      CHECK(p.server->plaintext().empty());
      CHECK_FALSE(p.server->can_send());
    }
    {
      pair_of_engines p(true, own_server);
      const std::uint8_t not_tls[] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'};
      CHECK(p.server->feed(not_tls, sizeof not_tls));
      CHECK_FALSE(p.server->can_send());
    }
  }
  // Sequence numbers continue where Botan's handshake left them: a record replayed (the same
  // bytes again) does not verify at our end.
  pair_of_engines p(true, true);
  const auto data = pattern(10, 1);
  REQUIRE_FALSE(p.client->send(data.data(), data.size()));
  const auto wire = p.client->outbox();
  pair_of_engines::pass(*p.client, *p.server);
  CHECK(p.server->plaintext() == data);
  CHECK(p.server->feed(wire.data(), wire.size()));
}

TEST_CASE("tls records: links keep their ciphers up to the process's budget, drop them past it") {
  const auto before = tr::ciphers_held();
  {
    pair_of_engines e(true, true);
    const auto settle = [&] {
      e.client->release_idle_state();
      e.server->release_idle_state();
    };
    // No budget (the default): nothing stays once the records are through.
    tr::set_cipher_budget(0);
    exchange(*e.client, *e.server, 100, 1);
    exchange(*e.server, *e.client, 100, 2);
    settle();
    CHECK(tr::ciphers_held() == before);
    // Room for them: both ends keep a cipher each way.
    tr::set_cipher_budget(before + 100);
    exchange(*e.client, *e.server, 100, 3);
    exchange(*e.server, *e.client, 100, 4);
    settle();
    CHECK(tr::ciphers_held() == before + 4);
    // Over the budget: each end drops its own after use until the process is within it.
    tr::set_cipher_budget(before + 2);
    exchange(*e.client, *e.server, 100, 5);  // the server's reader goes after the read
    CHECK(tr::ciphers_held() == before + 3);
    settle();  // the client drops both of its own; then the count is within the budget
    CHECK(tr::ciphers_held() == before + 1);
    // Still speaking, with ciphers made again where they were dropped.
    exchange(*e.client, *e.server, 20000, 6);
    exchange(*e.server, *e.client, 20000, 7);
    tr::set_cipher_budget(0);
  }
  CHECK(tr::ciphers_held() == before);  // a closed link holds none
}
