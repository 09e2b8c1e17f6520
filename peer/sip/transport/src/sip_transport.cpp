#include "p2psip/peer/sip_transport.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <deque>
#include <exception>
#include <list>
#include <map>
#include <span>
#include <variant>

#include "p2psip/sip/error_response.hpp"
#include "p2psip/sip/stream_parser.hpp"
#include "p2psip/transport/errors.hpp"
#include "p2psip/transport/rate_limit.hpp"
#include "p2psip/transport/stream_listener.hpp"
#include "stun.hpp"

// How it runs (one io_context thread):
//  - one receive coroutine per UDP socket; UDP sends are non-blocking send_to calls (a full
//    socket buffer drops the datagram, counted), so nothing queues for UDP;
//  - one accept coroutine per TCP acceptor; TLS listeners are transport::stream_listeners that
//    hand up established streams (their admission bounds handshakes in progress);
//  - per TCP/TLS connection one reader coroutine (feeding a sip::stream_parser) and, for plain
//    TCP, a writer coroutine while bytes are queued; TLS streams queue and write themselves;
//  - one housekeeping coroutine forgets idle UDP flows and idle source buckets.
// A plain TCP close: the writer flushes, then shuts down the sending side; the reader reads and
// drops until the peer's FIN or a linger deadline, so the last answer (a 400, say) is not lost to
// an RST. The reader is the one that ends a TCP flow.

namespace p2psip::peer {

namespace {

using clock = std::chrono::steady_clock;
using asio::ip::tcp;
using asio::ip::udp;
constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds close_linger{2000};
constexpr std::chrono::seconds source_memory{60};
/// The receive buffer asked for on each UDP listener (the kernel grants at most net.core.rmem_max).
constexpr int udp_receive_buffer_bytes = 2 << 20;

std::string endpoint_text(sip_transport_kind kind, const asio::ip::address& a, std::uint16_t port) {
  return to_string(sip_listen_spec{kind, a, port});
}

protocol::bytes to_bytes(std::string_view s) {
  return protocol::bytes(s.begin(), s.end());
}

/// Adds received (and the rport value, RFC 3581) to the top Via of a request (RFC 3261 18.2.1).
void stamp_via(sip::message& m, const asio::ip::address& address, std::uint16_t port) {
  sip::header* top = nullptr;
  for (auto& h : m.headers) {
    if (h.name == "Via") {
      top = &h;
      break;
    }
  }
  if (top == nullptr) return;
  auto elements = sip::split_list(top->value);
  if (elements.empty()) return;
  auto v = sip::parse_via(elements.front());
  if (!v) return;
  std::string host = v->host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  asio::error_code ec;
  const auto sent_by = asio::ip::make_address(host, ec);
  const bool wants_rport = v->rport().has_value();
  const bool differs = ec || sent_by != address;
  if (!differs && !wants_rport) return;
  auto set_param = [&](std::string_view name, std::string value) {
    for (auto& p : v->params) {
      if (p.name.size() == name.size() &&
          std::equal(p.name.begin(), p.name.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == b;
          })) {
        p.value = std::move(value);
        p.has_value = true;
        p.quoted = false;
        return;
      }
    }
    v->params.push_back(sip::param{std::string(name), std::move(value), true, false});
  };
  set_param("received", address.to_string());
  if (wants_rport) set_param("rport", std::to_string(port));
  std::string value = sip::to_string(*v);
  for (std::size_t i = 1; i < elements.size(); ++i) {
    value += ", ";
    value += elements[i];
  }
  top->value = std::move(value);
}

bool all_crlf(std::span<const std::uint8_t> d) {
  return std::all_of(d.begin(), d.end(), [](std::uint8_t c) { return c == '\r' || c == '\n'; });
}

bool looks_like_response(std::string_view raw) {
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  return raw.size() >= 4 && (raw.substr(0, 4) == "SIP/" || raw.substr(0, 4) == "sip/");
}

}  // namespace

struct sip_transport::impl : std::enable_shared_from_this<impl> {
  struct udp_socket {
    udp::socket socket;
    sip_local_endpoint local;
  };

  struct flow {
    sip_source source;
    clock::time_point last_activity;
    // UDP
    std::size_t udp_index = 0;
    udp::endpoint udp_remote;
    std::list<sip_flow_id>::iterator lru;
    // streams
    std::optional<tcp::socket> socket;              // plain TCP, once connected
    std::shared_ptr<transport::tls_stream> stream;  // TLS or adopted, once established
    bool adopted = false;
    std::shared_ptr<const sip_named_server> named;  // opened by flow_to_server
    bool opened = false;                            // we opened it (send_to)
    bool connecting = false;                        // send_to's connect is running
    bool closing = false;                           // no more messages: flush, then close
    bool ended = false;
    bool silent = false;  // no on_flow_closed (close_flow, stop)
    clock::time_point close_deadline;
    std::deque<std::string> out;  // plain TCP queue, or anything while connecting
    std::size_t out_bytes = 0;
    bool writing = false;
    std::unique_ptr<asio::steady_timer> read_timer;

    bool is_stream() const noexcept { return source.reliable; }
  };

  struct source_state {
    transport::token_bucket bucket;
    clock::time_point last_seen;
    std::optional<clock::time_point> last_503;
  };

  impl(asio::io_context& io_ctx, sip_transport_config c, handlers hs)
      : io(io_ctx), cfg(std::move(c)), h(std::move(hs)), housekeeping(io_ctx) {}

  asio::io_context& io;
  sip_transport_config cfg;
  handlers h;
  std::vector<std::unique_ptr<udp_socket>> udp_sockets;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::shared_ptr<transport::stream_listener>> tls_listeners;
  std::vector<sip_local_endpoint> endpoints;
  std::map<sip_flow_id, std::shared_ptr<flow>> flows;
  /// Stream flows closing (after close_flow, a parse error, stop): no longer addressable, still
  /// flushing or waiting for the peer's FIN.
  std::map<sip_flow_id, std::shared_ptr<flow>> closing_flows;
  std::map<std::pair<std::size_t, udp::endpoint>, sip_flow_id> udp_flows;
  std::list<sip_flow_id> udp_lru;  // least recently active first
  std::map<asio::ip::address, source_state> sources;
  std::map<std::string, node::log_throttle, std::less<>> throttles;
  sip_flow_id next_flow = 1;
  sip_transport_stats counters;
  asio::steady_timer housekeeping;
  /// The housekeeping timer waits with no deadline: there is no UDP flow or source to forget.
  bool housekeeping_parked = false;
  std::size_t running = 0;  // coroutines of ours in progress
  bool started = false;
  bool stopping = false;
  bool stopped = false;

  // ---- plumbing -------------------------------------------------------------------------

  void log(node::log_level level, std::string_view text) const {
    if (cfg.log) cfg.log(level, text);
  }

  /// Logs at most once per 10 s per key, with the count of events since the last line.
  void log_throttled(node::log_level level, const std::string& key, const std::string& text) {
    auto it = throttles.find(key);
    if (it == throttles.end()) it = throttles.emplace(key, node::log_throttle{}).first;
    if (auto n = it->second.note(clock::now())) {
      log(level, text + (*n > 1 ? " (" + std::to_string(*n) + " times since the last line)" : ""));
    }
  }

  template <class F>
  void spawn(std::string what, F make) {
    ++running;
    asio::co_spawn(
        io, make(), [self = shared_from_this(), what = std::move(what)](std::exception_ptr e) {
          --self->running;
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            self->log(node::log_level::error,
                      "sip transport: " + what + ": unexpected exception: " + ex.what());
          } catch (...) {
            self->log(node::log_level::error, "sip transport: " + what + ": unexpected exception");
          }
        });
  }

  asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(io);
    t.expires_after(d);
    auto [ec] = co_await t.async_wait(nothrow);
    (void)ec;
  }

  // ---- start ----------------------------------------------------------------------------

  protocol::result<void, protocol::error_record> start() {
    if (started) return {};
    for (const auto& spec : cfg.listen) {
      auto opened = open_listener(spec);
      if (!opened) {
        close_listeners();
        endpoints.clear();
        return opened.error();
      }
    }
    started = true;
    for (std::size_t i = 0; i < udp_sockets.size(); ++i) {
      spawn("udp receive", [self = shared_from_this(), i] { return self->udp_loop(i); });
    }
    for (std::size_t i = 0; i < acceptors.size(); ++i) {
      spawn("tcp accept", [self = shared_from_this(), i] { return self->accept_loop(i); });
    }
    spawn("housekeeping", [self = shared_from_this()] { return self->housekeeping_loop(); });
    return {};
  }

  protocol::result<void, protocol::error_record> open_listener(const sip_listen_spec& spec) {
    const std::string where = to_string(spec);
    auto failed = [&](std::error_code ec) {
      return protocol::error_record{ec, "cannot listen on " + where + ": " + ec.message()};
    };
    asio::error_code ec;
    switch (spec.kind) {
      case sip_transport_kind::udp: {
        const udp::endpoint local(spec.address, spec.port);
        auto s = std::make_unique<udp_socket>(udp_socket{udp::socket(io), {}});
        s->socket.open(local.protocol(), ec);
        if (!ec && spec.address.is_v6()) s->socket.set_option(asio::ip::v6_only(true), ec);
        if (!ec) s->socket.bind(local, ec);
        if (!ec) s->socket.non_blocking(true, ec);
        if (ec) return failed(ec);
        // One socket takes every UDP request: the default buffer (rmem_default, 208 KiB, about
        // a hundred loopback datagrams by kernel accounting) overflowed whenever the process was
        // off the CPU for a few tens of milliseconds at a few thousand REGISTER/s, and each drop
        // came back as a retransmission. The kernel caps the request at rmem_max; a refusal
        // leaves the default, so it is not an error.
        asio::error_code ignored;
        s->socket.set_option(udp::socket::receive_buffer_size(udp_receive_buffer_bytes), ignored);
        const auto bound = s->socket.local_endpoint(ec);
        if (ec) return failed(ec);
        s->local = sip_local_endpoint{spec.kind, bound.address(), bound.port()};
        endpoints.push_back(s->local);
        udp_sockets.push_back(std::move(s));
        return {};
      }
      case sip_transport_kind::tcp: {
        const tcp::endpoint local(spec.address, spec.port);
        auto a = std::make_unique<tcp::acceptor>(io);
        a->open(local.protocol(), ec);
        if (!ec) a->set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec && spec.address.is_v6()) a->set_option(asio::ip::v6_only(true), ec);
        if (!ec) a->bind(local, ec);
        if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) return failed(ec);
        const auto bound = a->local_endpoint(ec);
        if (ec) return failed(ec);
        endpoints.push_back(sip_local_endpoint{spec.kind, bound.address(), bound.port()});
        acceptors.push_back(std::move(a));
        return {};
      }
      case sip_transport_kind::tls: {
        if (!cfg.tls) {
          return protocol::error_record{
              transport::make_error_code(transport::transport_errc::invalid_credentials),
              "cannot listen on " + where + ": no TLS credentials"};
        }
        transport::stream_listener_config lc;
        lc.stream = stream_config();
        lc.pressure_log = [w = weak_from_this()](std::string_view line) {
          if (auto self = w.lock()) self->log(node::log_level::warn, line);
        };
        auto l = transport::stream_listener::open(
            io.get_executor(), tcp::endpoint(spec.address, spec.port), cfg.tls, std::move(lc),
            [w = weak_from_this()](std::shared_ptr<transport::tls_stream> s) {
              if (auto self = w.lock()) self->accepted_tls(std::move(s));
            });
        if (!l) return failed(l.error());
        const auto bound = (*l)->local_endpoint();
        endpoints.push_back(sip_local_endpoint{spec.kind, bound.address(), bound.port()});
        tls_listeners.push_back(std::move(*l));
        return {};
      }
    }
    return {};
  }

  transport::stream_config stream_config() const {
    transport::stream_config sc;
    sc.max_queued_bytes = cfg.max_queued_bytes;
    sc.handshake_timeout = cfg.connect_timeout;
    sc.idle_timeout = cfg.idle_timeout;
    sc.write_timeout = cfg.write_timeout;
    sc.close_linger = close_linger;
    // Plain SIP user agents have no certificate: a TLS listener does not ask for one.
    sc.client_certificate_required = false;
    sc.log = [w = weak_from_this()](std::string_view line) {
      if (auto self = w.lock()) self->log(node::log_level::error, line);
    };
    return sc;
  }

  void close_listeners() {
    asio::error_code ec;
    for (auto& s : udp_sockets) s->socket.close(ec);
    for (auto& a : acceptors) a->close(ec);
    for (auto& l : tls_listeners) l->close();
  }

  // ---- flows ----------------------------------------------------------------------------

  std::shared_ptr<flow> find(sip_flow_id id) const {
    auto it = flows.find(id);
    return it == flows.end() ? nullptr : it->second;
  }

  std::shared_ptr<flow> new_flow(sip_transport_kind kind, bool reliable,
                                 const asio::ip::address& remote, std::uint16_t remote_port,
                                 const asio::ip::address& local, std::uint16_t local_port) {
    auto f = std::make_shared<flow>();
    f->source = sip_source{next_flow++, kind,       reliable,     remote, remote_port,
                           local,       local_port, std::nullopt, {}};
    f->last_activity = clock::now();
    flows.emplace(f->source.flow, f);
    return f;
  }

  /// Ends a flow once: forgets it, closes its socket or stream, and reports it unless silent.
  void end_flow(const std::shared_ptr<flow>& f, bool report = true) {
    if (f->ended) return;
    f->ended = true;
    const sip_flow_id id = f->source.flow;
    flows.erase(id);
    closing_flows.erase(id);
    if (!f->is_stream()) {
      udp_flows.erase({f->udp_index, f->udp_remote});
      udp_lru.erase(f->lru);
    }
    asio::error_code ec;
    if (f->socket) f->socket->close(ec);
    if (f->stream) f->stream->close();
    if (f->read_timer) f->read_timer->cancel();
    f->out.clear();
    f->out_bytes = 0;
    if (report && !f->silent && !stopping && h.on_flow_closed) h.on_flow_closed(id);
  }

  /// Stops taking messages on a stream flow and closes it after what is queued.
  void begin_close(const std::shared_ptr<flow>& f) {
    if (f->ended || f->closing) return;
    f->closing = true;
    f->close_deadline = clock::now() + close_linger;
    if (flows.erase(f->source.flow) > 0) closing_flows.emplace(f->source.flow, f);
    if (f->connecting) {
      end_flow(f);
      return;
    }
    if (f->stream) {
      f->stream->close();  // flushes, then close_notify; the reader sees the end
      return;
    }
    if (f->socket) {
      if (!f->writing) {
        asio::error_code ec;
        f->socket->shutdown(tcp::socket::shutdown_send, ec);
      }
      if (f->read_timer) f->read_timer->cancel();  // the reader recomputes its deadline
    }
  }

  void touch_udp(const std::shared_ptr<flow>& f) {
    f->last_activity = clock::now();
    udp_lru.splice(udp_lru.end(), udp_lru, f->lru);
  }

  std::shared_ptr<flow> udp_flow(std::size_t index, const udp::endpoint& remote, bool create) {
    auto it = udp_flows.find({index, remote});
    if (it != udp_flows.end()) {
      auto f = find(it->second);
      if (f) touch_udp(f);
      return f;
    }
    if (!create) return nullptr;
    while (!udp_lru.empty() &&
           udp_flows.size() >= std::max<std::size_t>(cfg.source.max_udp_flows, 1)) {
      if (auto old = find(udp_lru.front())) {
        end_flow(old);
      } else {
        udp_lru.pop_front();
      }
    }
    const auto& local = udp_sockets[index]->local;
    auto f = new_flow(sip_transport_kind::udp, false, remote.address(), remote.port(),
                      local.address, local.port);
    f->udp_index = index;
    f->udp_remote = remote;
    f->lru = udp_lru.insert(udp_lru.end(), f->source.flow);
    udp_flows.emplace(std::make_pair(index, remote), f->source.flow);
    wake_housekeeping();
    return f;
  }

  /// Connections (accepted and opened, adopted ones not counted) from `address`, and in all.
  void admit_connection(const asio::ip::address& address, sip_flow_id newcomer) {
    for (;;) {
      std::shared_ptr<flow> oldest_here, oldest_all;
      std::size_t here = 0, all = 0;
      for (const auto& [id, f] : flows) {
        if (id == newcomer || !f->is_stream() || f->adopted || f->ended) continue;
        ++all;
        if (!oldest_all || f->last_activity < oldest_all->last_activity) oldest_all = f;
        if (f->source.remote_address == address) {
          ++here;
          if (!oldest_here || f->last_activity < oldest_here->last_activity) oldest_here = f;
        }
      }
      std::shared_ptr<flow> shed;
      if (here >= std::max<std::size_t>(cfg.source.max_connections_per_source, 1)) {
        shed = oldest_here;
      } else if (all >= std::max<std::size_t>(cfg.source.max_connections, 1)) {
        shed = oldest_all;
      }
      if (!shed) return;
      ++counters.connections_shed;
      log_throttled(node::log_level::warn, "shed",
                    "sip transport: closed the longest idle connection (" +
                        endpoint_text(shed->source.kind, shed->source.remote_address,
                                      shed->source.remote_port) +
                        ") to admit one from " + address.to_string());
      end_flow(shed);
    }
  }

  // ---- rate limit -----------------------------------------------------------------------

  source_state& source(const asio::ip::address& address, clock::time_point now) {
    auto it = sources.find(address);
    if (it == sources.end()) {
      if (sources.size() >= std::max<std::size_t>(cfg.source.max_tracked_sources, 1)) {
        prune_sources(now, true);
      }
      it =
          sources
              .emplace(address, source_state{transport::token_bucket(cfg.source.messages_per_second,
                                                                     cfg.source.burst, now),
                                             now, std::nullopt})
              .first;
      wake_housekeeping();
    }
    it->second.last_seen = now;
    return it->second;
  }

  /// Forgets sources not seen for a while (their buckets would be full again); when `force`,
  /// also the least recently seen one so that a new source fits.
  void prune_sources(clock::time_point now, bool force) {
    const auto refill =
        cfg.source.messages_per_second == 0
            ? std::chrono::seconds(0)
            : std::chrono::seconds(cfg.source.burst / cfg.source.messages_per_second + 1);
    const auto keep = std::max<clock::duration>(source_memory, refill);
    auto oldest = sources.end();
    for (auto it = sources.begin(); it != sources.end();) {
      if (now - it->second.last_seen > keep) {
        it = sources.erase(it);
        continue;
      }
      if (oldest == sources.end() || it->second.last_seen < oldest->second.last_seen) oldest = it;
      ++it;
    }
    if (force && oldest != sources.end() &&
        sources.size() >= std::max<std::size_t>(cfg.source.max_tracked_sources, 1)) {
      sources.erase(oldest);
    }
  }

  bool take_token(const asio::ip::address& address) {
    if (cfg.source.messages_per_second == 0) return true;
    return source(address, clock::now()).bucket.take(clock::now());
  }

  sip::message overload_response(const sip::message& request) const {
    auto r = sip::error_response(request, 503, "Service Unavailable");
    r.add("Retry-After", std::to_string(cfg.source.retry_after_seconds));
    return r;
  }

  void over_rate(const asio::ip::address& address) {
    log_throttled(node::log_level::warn, "rate:" + address.to_string(),
                  "sip transport: " + address.to_string() +
                      " is over its message rate; its messages are refused or dropped");
  }

  // ---- UDP ------------------------------------------------------------------------------

  bool send_udp(std::size_t index, const udp::endpoint& to, std::string_view bytes) {
    if (index >= udp_sockets.size()) return false;
    asio::error_code ec;
    udp_sockets[index]->socket.send_to(asio::buffer(bytes.data(), bytes.size()), to, 0, ec);
    if (ec) {
      ++counters.send_failures;
      log_throttled(node::log_level::warn, "udp send",
                    "sip transport: UDP send to " + to.address().to_string() + ":" +
                        std::to_string(to.port()) + " failed: " + ec.message());
      return false;
    }
    return true;
  }

  asio::awaitable<void> udp_loop(std::size_t index) {
    auto self = shared_from_this();
    std::vector<std::uint8_t> buffer(65536);
    std::chrono::milliseconds backoff{10};
    while (!stopping) {
      udp::endpoint from;
      auto [ec, n] = co_await udp_sockets[index]->socket.async_receive_from(asio::buffer(buffer),
                                                                            from, nothrow);
      if (stopping || ec == asio::error::operation_aborted) break;
      if (ec) {
        // ICMP errors (connection refused) surface here once each; anything else repeating
        // must not spin.
        if (ec != asio::error::connection_refused) {
          log_throttled(node::log_level::warn, "udp receive",
                        "sip transport: UDP receive failed: " + ec.message());
          co_await sleep_for(backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        }
        continue;
      }
      backoff = std::chrono::milliseconds(10);
      on_datagram(index, from, std::span<const std::uint8_t>(buffer.data(), n));
    }
  }

  void on_datagram(std::size_t index, const udp::endpoint& from,
                   std::span<const std::uint8_t> data) {
    if (data.size() > std::min<std::size_t>(cfg.max_datagram, 65535)) {
      ++counters.dropped_oversized;
      return;
    }
    if (stun::is_stun(data)) {
      auto id = stun::decode_binding_request(data);
      if (!id) {
        ++counters.dropped_stun;
        return;
      }
      if (!take_token(from.address())) {
        ++counters.dropped_rate_limited;
        over_rate(from.address());
        return;
      }
      // A keepalive: it keeps an existing flow alive, never creates one.
      udp_flow(index, from, false);
      const auto answer = stun::encode_binding_success(*id, from.address(), from.port(),
                                                       stun::has_fingerprint(data));
      if (send_udp(index, from,
                   std::string_view(reinterpret_cast<const char*>(answer.data()), answer.size()))) {
        ++counters.keepalives_answered;
      }
      return;
    }
    if (all_crlf(data)) {
      udp_flow(index, from, false);
      return;
    }
    const std::string_view raw(reinterpret_cast<const char*>(data.data()), data.size());
    if (!take_token(from.address())) {
      over_rate(from.address());
      // At most one 503 per source per second: a flood (maybe with a forged source) is dropped.
      auto& s = source(from.address(), clock::now());
      const auto now = clock::now();
      if (!looks_like_response(raw) &&
          (!s.last_503 || now - *s.last_503 >= std::chrono::seconds(1))) {
        auto parsed = sip::parse_datagram(raw, cfg.limits);
        if (parsed && parsed->is_request() && parsed->method != "ACK") {
          s.last_503 = now;
          if (send_udp(index, from, sip::serialize(overload_response(*parsed)))) {
            ++counters.rate_limited_answered;
            return;
          }
        }
      }
      ++counters.dropped_rate_limited;
      return;
    }
    auto parsed = sip::parse_datagram(raw, cfg.limits);
    if (!parsed) {
      const auto& error = parsed.error();
      if (error.response || looks_like_response(raw)) {
        ++counters.dropped_bad_response;
        log_throttled(node::log_level::debug, "bad response",
                      "sip transport: dropped an unparseable response from " +
                          from.address().to_string() + ": " + error.reason);
        return;
      }
      if (auto answer = sip::error_response_bytes(raw, error)) {
        if (send_udp(index, from, *answer)) ++counters.parse_errors_answered;
      } else {
        ++counters.dropped_unanswerable;
      }
      log_throttled(node::log_level::debug, "bad request",
                    "sip transport: unparseable request from " + from.address().to_string() + ": " +
                        std::to_string(error.status) + " " + error.reason);
      return;
    }
    auto f = udp_flow(index, from, true);
    deliver(f, std::move(*parsed));
  }

  void deliver(const std::shared_ptr<flow>& f, sip::message m) {
    if (stopping || f->ended) return;
    if (m.is_request()) stamp_via(m, f->source.remote_address, f->source.remote_port);
    ++counters.messages_in;
    const sip_source src = f->source;  // the handler may close the flow
    if (h.on_message) h.on_message(std::move(m), src);
  }

  // ---- streams --------------------------------------------------------------------------

  asio::awaitable<void> accept_loop(std::size_t index) {
    auto self = shared_from_this();
    std::chrono::milliseconds backoff{10};
    while (!stopping) {
      auto [ec, socket] = co_await acceptors[index]->async_accept(nothrow);
      if (stopping || ec == asio::error::operation_aborted) break;
      if (ec) {
        log_throttled(node::log_level::warn, "accept",
                      "sip transport: TCP accept failed: " + ec.message());
        co_await sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        continue;
      }
      backoff = std::chrono::milliseconds(10);
      asio::error_code e2;
      const auto remote = socket.remote_endpoint(e2);
      const auto local = socket.local_endpoint(e2);
      if (e2) continue;  // already gone
      socket.set_option(tcp::no_delay(true), e2);
      auto f = new_flow(sip_transport_kind::tcp, true, remote.address(), remote.port(),
                        local.address(), local.port());
      f->socket.emplace(std::move(socket));
      admit_connection(remote.address(), f->source.flow);
      spawn("tcp reader", [self, f] { return self->stream_reader(f); });
    }
  }

  void accepted_tls(std::shared_ptr<transport::tls_stream> s) {
    if (stopping) {
      s->close();
      return;
    }
    const auto remote = s->remote_endpoint();
    const auto local = s->local_endpoint();
    auto f = new_flow(sip_transport_kind::tls, true, remote.address(), remote.port(),
                      local.address(), local.port());
    f->stream = std::move(s);
    admit_connection(remote.address(), f->source.flow);
    spawn("tls reader", [self = shared_from_this(), f] { return self->stream_reader(f); });
  }

  /// Reads a stream flow until it ends: messages to on_message, pings answered, a parse error
  /// answered and the connection closed.
  asio::awaitable<void> stream_reader(std::shared_ptr<flow> f) {
    using namespace asio::experimental::awaitable_operators;
    auto self = shared_from_this();
    sip::stream_parser parser(cfg.limits, f->opened ? sip::stream_parser::side::client
                                                    : sip::stream_parser::side::server);
    std::string window;  // the parser's unconsumed bytes: the start of a failing message
    std::vector<std::uint8_t> buffer;
    if (f->socket) {
      buffer.resize(64 * 1024);
      f->read_timer = std::make_unique<asio::steady_timer>(io);
    }
    while (!f->ended) {
      std::string chunk;
      if (f->socket) {
        const auto deadline = f->closing ? f->close_deadline : f->last_activity + cfg.idle_timeout;
        f->read_timer->expires_at(deadline);
        auto r = co_await (f->socket->async_read_some(asio::buffer(buffer), nothrow) ||
                           f->read_timer->async_wait(nothrow));
        if (f->ended) break;
        if (r.index() == 1) {
          const auto now = clock::now();
          const auto due = f->closing ? f->close_deadline : f->last_activity + cfg.idle_timeout;
          if (now < due) continue;  // woken to recompute the deadline
          if (!f->closing) {
            log(node::log_level::debug,
                "sip transport: idle timeout on " +
                    endpoint_text(f->source.kind, f->source.remote_address, f->source.remote_port));
          }
          break;
        }
        auto [ec, n] = std::get<0>(r);
        if (ec) break;
        chunk.assign(reinterpret_cast<const char*>(buffer.data()), n);
      } else {
        auto r = co_await f->stream->read_some();
        if (f->ended || !r) break;
        chunk.assign(r->begin(), r->end());
      }
      f->last_activity = clock::now();
      if (f->closing || parser.closed()) continue;  // draining until the peer's close
      window += chunk;
      auto events = parser.feed(chunk);
      std::size_t done = 0;
      for (auto& ev : events) {
        if (f->ended || f->closing) break;
        if (auto* m = std::get_if<sip::message>(&ev)) {
          on_stream_message(f, std::move(*m));
        } else if (auto* k = std::get_if<sip::keepalive>(&ev)) {
          if (k->ping && (f->adopted || take_token(f->source.remote_address))) {
            if (queue(f, "\r\n")) ++counters.keepalives_answered;
          }
        } else if (auto* e = std::get_if<sip::parse_error>(&ev)) {
          on_stream_error(f, *e, failing_message(window, done, f->opened));
        }
        ++done;
      }
      if (parser.closed()) {
        window.clear();
        window.shrink_to_fit();
        if (!f->closing) begin_close(f);
      } else if (window.size() > parser.buffered()) {
        window.erase(0, window.size() - parser.buffered());
      }
    }
    end_flow(f);
  }

  /// The bytes of the message that failed after `complete` events of the latest feed: `data`
  /// from the end of the last complete event (found by parsing prefixes; errors are rare and
  /// close the connection).
  std::string failing_message(const std::string& data, std::size_t complete, bool client) const {
    if (complete == 0) return data;
    std::size_t lo = 0, hi = data.size();
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      sip::stream_parser p(
          cfg.limits, client ? sip::stream_parser::side::client : sip::stream_parser::side::server);
      const auto ev = p.feed(std::string_view(data).substr(0, mid));
      std::size_t good = 0;
      for (const auto& e : ev) {
        if (!std::holds_alternative<sip::parse_error>(e)) ++good;
      }
      if (good >= complete) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return data.substr(lo);
  }

  void on_stream_message(const std::shared_ptr<flow>& f, sip::message m) {
    if (!f->adopted && !take_token(f->source.remote_address)) {
      over_rate(f->source.remote_address);
      if (m.is_request() && m.method != "ACK") {
        if (queue(f, sip::serialize(overload_response(m)))) {
          ++counters.rate_limited_answered;
          return;
        }
      }
      ++counters.dropped_rate_limited;
      return;
    }
    deliver(f, std::move(m));
  }

  void on_stream_error(const std::shared_ptr<flow>& f, const sip::parse_error& error,
                       const std::string& raw) {
    const std::string where =
        endpoint_text(f->source.kind, f->source.remote_address, f->source.remote_port);
    if (error.response || looks_like_response(raw)) {
      ++counters.dropped_bad_response;
    } else if (auto answer = sip::error_response_bytes(raw, error)) {
      if (queue(f, std::move(*answer))) ++counters.parse_errors_answered;
    } else {
      ++counters.dropped_unanswerable;
    }
    log_throttled(node::log_level::debug, "stream parse error",
                  "sip transport: closing " + where +
                      " after a parse error: " + std::to_string(error.status) + " " + error.reason);
  }

  /// Queues bytes on a stream flow; false when it is gone, closing or full.
  bool queue(const std::shared_ptr<flow>& f, std::string bytes) {
    if (f->ended || f->closing) return false;
    if (f->stream && !f->connecting) {
      auto r = f->stream->write(to_bytes(bytes));
      return r.has_value();
    }
    if (f->out_bytes + bytes.size() > cfg.max_queued_bytes) return false;
    f->out_bytes += bytes.size();
    f->out.push_back(std::move(bytes));
    if (f->socket && !f->connecting && !f->writing) {
      f->writing = true;
      spawn("tcp writer", [self = shared_from_this(), f] { return self->tcp_writer(f); });
    }
    return true;
  }

  asio::awaitable<void> tcp_writer(std::shared_ptr<flow> f) {
    using namespace asio::experimental::awaitable_operators;
    auto self = shared_from_this();
    asio::steady_timer timer(io);
    while (!f->ended && !f->out.empty()) {
      // Gather what is queued into one write.
      std::string data;
      while (!f->out.empty() && data.size() < 64 * 1024) {
        data += f->out.front();
        f->out.pop_front();
      }
      f->out_bytes = 0;
      for (const auto& s : f->out) f->out_bytes += s.size();
      timer.expires_after(cfg.write_timeout);
      auto r = co_await (asio::async_write(*f->socket, asio::buffer(data), nothrow) ||
                         timer.async_wait(nothrow));
      if (f->ended) break;
      if (r.index() == 1 || std::get<0>(std::get<0>(r))) {
        log_throttled(node::log_level::debug, "tcp write",
                      "sip transport: write to " + f->source.remote_address.to_string() +
                          (r.index() == 1 ? " timed out" : " failed"));
        end_flow(f);
        break;
      }
    }
    f->writing = false;
    if (!f->ended && f->closing && f->socket) {
      asio::error_code ec;
      f->socket->shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  // ---- send_to --------------------------------------------------------------------------

  sip_flow_id send_to(sip_transport_kind kind, const asio::ip::address& address, std::uint16_t port,
                      const sip::message& m) {
    const auto id = flow_to(kind, address, port);
    if (id == 0) return 0;
    send(id, m);
    return id;
  }

  bool send(sip_flow_id id, const sip::message& m) {
    auto f = find(id);
    if (!f || f->ended || stopping) {
      ++counters.send_failures;
      return false;
    }
    bool ok = false;
    if (f->is_stream()) {
      ok = queue(f, sip::serialize(m));
    } else {
      ok = send_udp(f->udp_index, f->udp_remote, sip::serialize(m));
    }
    if (ok) {
      ++counters.messages_out;
    } else if (f->is_stream()) {
      ++counters.send_failures;
    }
    return ok;
  }

  sip_flow_id flow_to(sip_transport_kind kind, const asio::ip::address& address,
                      std::uint16_t port) {
    if (stopping || !started) return 0;
    if (kind == sip_transport_kind::udp) {
      for (std::size_t i = 0; i < udp_sockets.size(); ++i) {
        if (udp_sockets[i]->local.address.is_v4() != address.is_v4()) continue;
        return udp_flow(i, udp::endpoint(address, port), true)->source.flow;
      }
      ++counters.send_failures;
      return 0;
    }
    for (const auto& [id, f] : flows) {
      if (f->source.kind == kind && !f->adopted && !f->ended && !f->closing &&
          f->source.remote_address == address && f->source.remote_port == port) {
        return id;
      }
    }
    if (kind == sip_transport_kind::tls && !cfg.tls) {
      ++counters.send_failures;
      return 0;
    }
    auto f = new_flow(kind, true, address, port, {}, 0);
    f->opened = true;
    f->connecting = true;
    admit_connection(address, f->source.flow);
    spawn("connect", [self = shared_from_this(), f] { return self->connect_flow(f); });
    return f->source.flow;
  }

  sip_flow_id flow_to_server(const sip_named_server& server) {
    if (stopping || !started || !server.tls || !server.tls->verifies_server_names()) {
      ++counters.send_failures;
      return 0;
    }
    for (const auto& [id, f] : flows) {
      if (f->named && !f->ended && !f->closing && f->named->port == server.port &&
          f->named->tls == server.tls && same_host(f->named->host, server.host)) {
        return id;
      }
    }
    // The remote address is known once connected; admission counts it then (it is ours, one per
    // server, not a remote's).
    auto f = new_flow(sip_transport_kind::tls, true, {}, server.port, {}, 0);
    f->named = std::make_shared<const sip_named_server>(server);
    f->opened = true;
    f->connecting = true;
    spawn("connect", [self = shared_from_this(), f] { return self->connect_flow(f); });
    return f->source.flow;
  }

  static bool same_host(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  }

  /// A connected, verified TLS stream to a named server, or why not (in words).
  asio::awaitable<protocol::result<std::shared_ptr<transport::tls_stream>, std::string>>
  connect_named(const sip_named_server& server) {
    using namespace asio::experimental::awaitable_operators;
    auto self = shared_from_this();
    const auto deadline = clock::now() + cfg.connect_timeout;
    std::string host = server.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    asio::steady_timer timer(io);
    std::vector<tcp::endpoint> addresses;
    asio::error_code literal_error;
    const auto literal = asio::ip::make_address(host, literal_error);
    if (!literal_error) {
      addresses.emplace_back(literal, server.port);
    } else {
      tcp::resolver resolver(io);
      timer.expires_at(deadline);
      auto r = co_await (resolver.async_resolve(host, std::to_string(server.port), nothrow) ||
                         timer.async_wait(nothrow));
      if (r.index() == 1) co_return std::string("cannot resolve " + host + ": timed out");
      auto [ec, results] = std::get<0>(std::move(r));
      if (ec) co_return std::string("cannot resolve " + host + ": " + ec.message());
      for (const auto& entry : results) addresses.push_back(entry.endpoint());
    }
    std::string failure = "cannot resolve " + host + ": no address";
    for (const auto& address : addresses) {
      const std::string where =
          endpoint_text(sip_transport_kind::tls, address.address(), address.port());
      tcp::socket socket(io);
      timer.expires_at(deadline);
      auto r = co_await (socket.async_connect(address, nothrow) || timer.async_wait(nothrow));
      if (r.index() == 1) {
        failure = "cannot connect to " + where + ": timed out";
        break;
      }
      if (auto [ec] = std::get<0>(r); ec) {
        failure = "cannot connect to " + where + ": " + ec.message();
        continue;  // the next address of the name
      }
      auto sc = stream_config();
      sc.server_name = host;
      sc.handshake_timeout =
          std::max(std::chrono::milliseconds(1),
                   std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()));
      auto stream = transport::start_stream(std::move(socket), transport::tls_role::client,
                                            server.tls, std::move(sc));
      const std::error_code handshake = co_await stream->handshake();
      if (!handshake) co_return stream;
      // The server is there but TLS with it failed: another address of it would fail alike.
      // Botan's words (the validation status, the alert) say more than the code's.
      const std::string& detail = stream->close_detail();
      co_return std::string("TLS with " + where +
                            " failed: " + (detail.empty() ? handshake.message() : detail));
    }
    co_return failure;
  }

  asio::awaitable<void> connect_flow(std::shared_ptr<flow> f) {
    using namespace asio::experimental::awaitable_operators;
    auto self = shared_from_this();
    const tcp::endpoint remote(f->source.remote_address, f->source.remote_port);
    const std::string where = endpoint_text(f->source.kind, remote.address(), remote.port());
    std::string failure;
    if (f->named) {
      auto r = co_await connect_named(*f->named);
      if (!r) {
        failure = std::move(r.error());
      } else if (f->ended) {
        (*r)->close();
      } else {
        f->stream = std::move(*r);
        f->source.remote_address = f->stream->remote_endpoint().address();
        f->source.remote_port = f->stream->remote_endpoint().port();
        f->source.local_address = f->stream->local_endpoint().address();
        f->source.local_port = f->stream->local_endpoint().port();
        admit_connection(f->source.remote_address, f->source.flow);
      }
    } else if (f->source.kind == sip_transport_kind::tcp) {
      tcp::socket socket(io);
      asio::steady_timer timer(io);
      timer.expires_after(cfg.connect_timeout);
      auto r = co_await (socket.async_connect(remote, nothrow) || timer.async_wait(nothrow));
      if (r.index() == 1) {
        failure = "timed out";
      } else if (auto [ec] = std::get<0>(r); ec) {
        failure = ec.message();
      } else if (!f->ended) {
        asio::error_code e2;
        socket.set_option(tcp::no_delay(true), e2);
        const auto local = socket.local_endpoint(e2);
        f->source.local_address = local.address();
        f->source.local_port = local.port();
        f->socket.emplace(std::move(socket));
      }
    } else {
      auto sc = stream_config();
      sc.client_certificate_required = true;
      auto r = co_await transport::connect_stream(remote, cfg.tls, std::move(sc));
      if (!r) {
        failure = r.error().message();
      } else if (f->ended) {
        (*r)->close();
      } else {
        f->stream = std::move(*r);
        f->source.local_address = f->stream->local_endpoint().address();
        f->source.local_port = f->stream->local_endpoint().port();
      }
    }
    if (f->ended) co_return;
    f->connecting = false;
    if (!failure.empty()) {
      ++counters.connect_failures;
      if (f->named) {
        // A named server is configured (a trunk): its failure is the operator's to see, at
        // WARN, with the reason; each reason on its own throttle, so a new one is not hidden.
        const auto& n = *f->named;
        log_throttled(node::log_level::warn, "server:" + n.label + ":" + failure,
                      n.label + ": " + failure);
      } else {
        log_throttled(node::log_level::info, "connect:" + where,
                      "sip transport: cannot connect to " + where + ": " + failure);
      }
      end_flow(f);
      co_return;
    }
    f->last_activity = clock::now();
    // What waited for the connection goes out first.
    auto pending = std::move(f->out);
    f->out.clear();
    f->out_bytes = 0;
    for (auto& bytes : pending) {
      if (!queue(f, std::move(bytes))) break;
    }
    co_await stream_reader(f);
  }

  sip_flow_id adopt(std::shared_ptr<transport::tls_stream> s, protocol::node_id remote) {
    if (stopping || !s) {
      if (s) s->close();
      return 0;
    }
    const auto r = s->remote_endpoint();
    const auto l = s->local_endpoint();
    auto f = new_flow(sip_transport_kind::tls, true, r.address(), r.port(), l.address(), l.port());
    f->source.node = remote;
    f->source.peer_user = s->peer_user();
    f->adopted = true;
    f->stream = std::move(s);
    spawn("appattach reader", [self = shared_from_this(), f] { return self->stream_reader(f); });
    return f->source.flow;
  }

  // ---- housekeeping and stop ------------------------------------------------------------

  /// Something to forget later has come: the parked housekeeping timer starts its rounds.
  void wake_housekeeping() {
    if (!housekeeping_parked) return;
    housekeeping_parked = false;
    housekeeping.cancel();
  }

  asio::awaitable<void> housekeeping_loop() {
    auto self = shared_from_this();
    const auto period = std::clamp<std::chrono::milliseconds>(
        std::chrono::duration_cast<std::chrono::milliseconds>(cfg.idle_timeout / 4),
        std::chrono::milliseconds(50), std::chrono::milliseconds(1000));
    while (!stopping) {
      // With nothing to forget, no rounds: an idle peer's CPU is mostly its wake-ups (issue 16),
      // and a round a second was more than all its overlay upkeep.
      housekeeping_parked = udp_lru.empty() && sources.empty();
      if (housekeeping_parked) {
        housekeeping.expires_at(asio::steady_timer::time_point::max());
      } else {
        housekeeping.expires_after(period);
      }
      auto [ec] = co_await housekeeping.async_wait(nothrow);
      if (stopping) break;
      if (ec == asio::error::operation_aborted) continue;  // woken by wake_housekeeping
      ++counters.housekeeping_rounds;
      const auto now = clock::now();
      while (!udp_lru.empty()) {
        auto f = find(udp_lru.front());
        if (!f) {
          udp_lru.pop_front();
          continue;
        }
        if (now - f->last_activity < cfg.idle_timeout) break;
        end_flow(f);
      }
      prune_sources(now, false);
    }
  }

  void close_all_now() {
    stopping = true;
    close_listeners();
    housekeeping.cancel();
    auto all = flows;
    all.insert(closing_flows.begin(), closing_flows.end());
    for (auto& [id, f] : all) {
      f->silent = true;
      end_flow(f, false);
    }
  }

  asio::awaitable<void> stop() {
    auto self = shared_from_this();
    if (stopping) co_return;
    stopping = true;
    close_listeners();
    housekeeping.cancel();
    auto all = flows;
    for (auto& [id, f] : all) {
      f->silent = true;
      if (f->is_stream()) {
        begin_close(f);
      } else {
        end_flow(f, false);
      }
    }
    const auto deadline = clock::now() + cfg.stop_timeout;
    while (running > 0 && clock::now() < deadline)
      co_await sleep_for(std::chrono::milliseconds(10));
    close_all_now();
    stopped = true;
  }

  sip_transport_stats stats() const {
    sip_transport_stats s = counters;
    for (const auto& [id, f] : flows) {
      if (f->adopted) {
        ++s.adopted_flows;
      } else if (f->source.kind == sip_transport_kind::udp) {
        ++s.udp_flows;
      } else if (f->source.kind == sip_transport_kind::tcp) {
        ++s.tcp_flows;
      } else {
        ++s.tls_flows;
      }
    }
    return s;
  }
};

sip_transport::sip_transport(asio::io_context& io, sip_transport_config cfg, handlers h)
    : impl_(std::make_shared<impl>(io, std::move(cfg), std::move(h))) {}

sip_transport::~sip_transport() {
  impl_->h = {};
  impl_->close_all_now();
}

protocol::result<void, protocol::error_record> sip_transport::start() {
  return impl_->start();
}

std::vector<sip_local_endpoint> sip_transport::local_endpoints() const {
  return impl_->endpoints;
}

bool sip_transport::send(sip_flow_id flow, const sip::message& m) {
  return impl_->send(flow, m);
}

sip_flow_id sip_transport::flow_to(sip_transport_kind kind, const asio::ip::address& address,
                                   std::uint16_t port) {
  return impl_->flow_to(kind, address, port);
}

sip_flow_id sip_transport::send_to(sip_transport_kind kind, const asio::ip::address& address,
                                   std::uint16_t port, const sip::message& m) {
  return impl_->send_to(kind, address, port, m);
}

sip_flow_id sip_transport::flow_to_server(const sip_named_server& server) {
  return impl_->flow_to_server(server);
}

sip_flow_id sip_transport::adopt(std::shared_ptr<transport::tls_stream> stream,
                                 protocol::node_id remote) {
  return impl_->adopt(std::move(stream), remote);
}

std::optional<sip_source> sip_transport::source_of(sip_flow_id flow) const {
  auto f = impl_->find(flow);
  if (!f) return std::nullopt;
  return f->source;
}

void sip_transport::close_flow(sip_flow_id flow) {
  auto f = impl_->find(flow);
  if (!f) return;
  f->silent = true;
  if (f->is_stream()) {
    impl_->begin_close(f);
  } else {
    impl_->end_flow(f, false);
  }
}

asio::awaitable<void> sip_transport::stop() {
  auto i = impl_;
  co_await i->stop();
}

sip_transport_stats sip_transport::stats() const {
  return impl_->stats();
}

}  // namespace p2psip::peer
