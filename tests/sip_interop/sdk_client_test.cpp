// An SDK client in outbound-proxy mode against a real p2psip-peer, without the SDK: a RELOAD
// client node (client_node on node_driver) attached to peer 0 AppAttaches the SIP application
// (5060) and speaks SIP over that mutually authenticated TLS stream. Its REGISTER carries no
// Authorization: the peer takes the certificate's user name as the proof (200 at once, with
// Require: outbound and Flow-Timer), refuses another user's AOR (403), and proxies the client's
// ;ob-routed requests as a UA's (an overlay lookup: 404 for an AOR nobody registered).

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "p2psip/node/client_node.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/node/node_driver.hpp"
#include "p2psip/node/node_setup.hpp"
#include "sip_harness.hpp"

namespace {

namespace pr = p2psip::protocol;
namespace nd = p2psip::node;
namespace sp = p2psip::test::sip;
using namespace std::chrono_literals;

constexpr std::uint16_t sip_application = 5060;

/// A RELOAD client attached to one peer, opening SIP connections by AppAttach.
struct sdk_like_client {
  nd::node_setup setup;
  nd::crypto_signer signer;
  nd::system_random rng;
  nd::client_node* node = nullptr;
  std::unique_ptr<nd::node_driver> driver;
  std::map<std::uint64_t, nd::app_connection> opened;

  static nd::node_setup load(p2psip::test::process_overlay& o, const std::string& user) {
    o.enroll(user);
    auto s = nd::load_node_setup(o.config_file(), o.cert_of(user), o.key_of(user));
    REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
    return std::move(*s);
  }

  sdk_like_client(asio::io_context& io, p2psip::test::process_overlay& o, const std::string& user,
                  const std::string& peer_address)
      : setup(load(o, user)),
        signer(setup.creds.signing, setup.creds.signing.default_node_id(), *setup.trust) {
    nd::client_config cc;
    cc.transport = setup.transport();
    cc.bootstrap = {*pr::ip_address_port::parse(peer_address)};
    nd::driver_config dc;
    dc.link.limits = cc.transport.limits;
    dc.make_node = [this, cc](std::uint16_t) {
      auto made = std::make_unique<nd::client_node>(cc, signer, rng);
      node = made.get();
      return made;
    };
    nd::application_endpoint app;
    app.id = sip_application;
    app.listen = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    app.connected = [this](nd::app_connection c) {
      if (c.token != 0) opened[c.token] = std::move(c);
    };
    dc.applications.push_back(std::move(app));
    driver = std::make_unique<nd::node_driver>(io, std::move(dc), setup.tls);
    REQUIRE(driver->start());
  }
  std::optional<pr::node_id> home_peer() const {
    for (const auto& [id, c] : node->links().rows()) return c.remote;
    return std::nullopt;
  }
};

template <class F>
bool run_until(asio::io_context& io, F done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    io.run_for(20ms);
    if (io.stopped()) io.restart();
  }
  return done();
}

/// Writes `text` on the stream and reads until a whole response (headers, Content-Length 0)
/// for `cseq_method` with a final status arrives; its text, or empty on timeout.
std::string exchange(asio::io_context& io, const std::shared_ptr<p2psip::transport::tls_stream>& s,
                     const std::string& text, std::chrono::milliseconds limit) {
  pr::bytes out(text.begin(), text.end());
  asio::co_spawn(
      io,
      [s, out = std::move(out)]() mutable -> asio::awaitable<void> {
        (void)co_await s->async_write(std::move(out));
      },
      asio::detached);
  std::string in;
  bool closed = false;
  std::string final_response;
  auto reader = [&, s]() -> asio::awaitable<void> {
    while (final_response.empty()) {
      auto got = co_await s->read_some();
      if (!got) {
        closed = true;
        co_return;
      }
      in.append(got->begin(), got->end());
      for (;;) {
        const auto end = in.find("\r\n\r\n");
        if (end == std::string::npos) break;
        std::string msg = in.substr(0, end + 4);
        in.erase(0, end + 4);
        // Provisional answers (100 Trying) are skipped.
        if (msg.rfind("SIP/2.0 1", 0) == 0) continue;
        if (msg.rfind("SIP/2.0 ", 0) == 0) {
          final_response = msg;
          break;
        }
      }
    }
  };
  asio::co_spawn(io, reader, asio::detached);
  run_until(
      io, [&] { return !final_response.empty() || closed; }, limit);
  return final_response;
}

int status_of(const std::string& response) {
  if (response.size() < 12) return 0;
  return std::atoi(response.substr(8, 3).c_str());
}

}  // namespace

TEST_SUITE("sip_interop") {
  TEST_CASE("SDK client over AppAttach - REGISTER by certificate, 403 for another AOR, ob lookup") {
    if (sp::sip_target::kamailio_mode()) return;  // AppAttach: p2psip only
    sp::sip_target t({"alice"});
    auto& o = t.overlay();
    asio::io_context io;
    sdk_like_client client(io, o, "sdkuser", o.peers().at(0).address);
    REQUIRE(run_until(
        io, [&] { return client.home_peer().has_value(); }, 10s));
    const auto peer = *client.home_peer();

    std::optional<std::string> failure;
    bool answered = false;
    client.driver->with_node([&](nd::node_engine& n, nd::time_point now) {
      REQUIRE(n.app_attach().connect(
          {pr::to_destination(peer)}, sip_application, 1,
          [&](std::optional<std::string> error, nd::time_point) {
            answered = true;
            failure = std::move(error);
          },
          now));
    });
    REQUIRE(run_until(
        io, [&] { return answered; }, 15s));
    REQUIRE_MESSAGE(!failure, *failure);
    REQUIRE(run_until(
        io, [&] { return client.opened.count(1) != 0; }, 10s));
    const auto stream = client.opened.at(1).stream;

    const std::string domain = t.domain();
    const std::string route = "Route: <sip:p2p-" + peer.hex() + ".invalid;lr;ob>\r\n";
    const auto reg = [&](const std::string& user, int cseq) {
      return "REGISTER sip:" + domain +
             " SIP/2.0\r\n"
             "Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-sdk-reg-" +
             std::to_string(cseq) +
             "\r\n"
             "Max-Forwards: 70\r\n"
             "From: <sip:" +
             user + "@" + domain + ">;tag=sdk" + std::to_string(cseq) +
             "\r\n"
             "To: <sip:" +
             user + "@" + domain +
             ">\r\n"
             "Call-ID: sdk-reg-1\r\n"
             "CSeq: " +
             std::to_string(cseq) +
             " REGISTER\r\n"
             "Contact: <sip:" +
             user +
             "@127.0.0.1:5999;transport=tls;ob>;+sip.instance=\""
             "<urn:uuid:6a1c4b3e-0000-4000-8000-00000000a11c>\";reg-id=1\r\n"
             "Supported: outbound, path\r\n" +
             route +
             "Expires: 600\r\n"
             "Content-Length: 0\r\n\r\n";
    };
    auto r = exchange(io, stream, reg("sdkuser", 1), 10s);
    CHECK_MESSAGE(status_of(r) == 200, "answer: '" << r << "'\n" << t.logs());
    CHECK(r.find("Flow-Timer: 120") != std::string::npos);
    CHECK(r.find("Require: outbound") != std::string::npos);
    CHECK(r.find("WWW-Authenticate") == std::string::npos);

    r = exchange(io, stream, reg("alice", 2), 10s);
    CHECK_MESSAGE(status_of(r) == 403, "answer: '" << r << "'\n" << t.logs());

    // Through us as outbound proxy: the AOR is looked up in the overlay (nobody: 404; a peer's
    // hop would have been 480 without a lookup).
    const std::string message = "MESSAGE sip:nobody@" + domain +
                                " SIP/2.0\r\n"
                                "Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-sdk-msg-1\r\n"
                                "Max-Forwards: 70\r\n" +
                                route + "From: <sip:sdkuser@" + domain +
                                ">;tag=sdkm1\r\n"
                                "To: <sip:nobody@" +
                                domain +
                                ">\r\n"
                                "Call-ID: sdk-msg-1\r\n"
                                "CSeq: 1 MESSAGE\r\n"
                                "Content-Length: 0\r\n\r\n";
    r = exchange(io, stream, message, 15s);
    CHECK_MESSAGE(status_of(r) == 404, "answer: '" << r << "'\n" << t.logs());
    stream->close();
    io.run_for(100ms);
  }
}
