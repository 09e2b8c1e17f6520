#include "accept_core.hpp"

#include <asio/co_spawn.hpp>

#include <algorithm>
#include <exception>
#include <string>

#include "p2psip/transport/errors.hpp"

namespace p2psip::transport::detail {

namespace pr = p2psip::protocol;

// ---- admission policy -----------------------------------------------------------------------

asio::ip::address admission_source(const asio::ip::address& remote) {
  if (remote.is_v4()) return remote;
  const auto v6 = remote.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes);
}

std::string endpoint_text(const asio::ip::tcp::endpoint& ep) {
  const auto a = ep.address().to_string();
  const auto port = std::to_string(ep.port());
  return ep.address().is_v6() ? "[" + a + "]:" + port : a + ":" + port;
}

std::chrono::milliseconds accepted_handshake_timeout(const accept_config& cfg,
                                                     std::chrono::milliseconds connection_timeout) {
  return std::max(std::chrono::milliseconds(1),
                  std::min(cfg.handshake_timeout, connection_timeout));
}

admission_table::admission_table(std::size_t max_total, std::size_t max_per_source)
    : max_total_(std::max<std::size_t>(max_total, 1)),
      max_per_source_(std::max<std::size_t>(max_per_source, 1)) {}

std::optional<admission_table::shed> admission_table::make_room(const asio::ip::address& source) {
  if (count(source) >= max_per_source_) {
    const auto it = std::find_if(entries_.begin(), entries_.end(),
                                 [&](const entry& e) { return e.source == source; });
    shed out{std::move(*it), shed_reason::per_source};
    entries_.erase(it);
    return out;
  }
  if (entries_.size() >= max_total_) {
    shed out{std::move(entries_.front()), shed_reason::oldest};
    entries_.pop_front();
    return out;
  }
  return std::nullopt;
}

void admission_table::add(entry e) {
  entries_.push_back(std::move(e));
}

std::optional<admission_table::entry> admission_table::remove(std::uint64_t id) {
  const auto it =
      std::find_if(entries_.begin(), entries_.end(), [id](const entry& e) { return e.id == id; });
  if (it == entries_.end()) return std::nullopt;
  entry out = std::move(*it);
  entries_.erase(it);
  return out;
}

std::deque<admission_table::entry> admission_table::take_all() {
  auto out = std::move(entries_);
  entries_.clear();
  return out;
}

std::size_t admission_table::count(const asio::ip::address& source) const {
  return static_cast<std::size_t>(std::count_if(
      entries_.begin(), entries_.end(), [&](const entry& e) { return e.source == source; }));
}

// ---- pressure lines -------------------------------------------------------------------------

namespace {

/// Distinct sources counted per interval for the summary's "most from": bounds the map.
constexpr std::size_t max_counted_sources = 1024;

std::string seconds_text(clock_type::duration d) {
  const auto ms = to_ms(d).count();
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

}  // namespace

pressure_reporter::pressure_reporter(std::string listener, std::chrono::milliseconds interval,
                                     std::size_t max_handshakes, std::size_t max_per_source,
                                     std::chrono::milliseconds handshake_timeout)
    : listener_(std::move(listener)),
      interval_(std::max(interval, std::chrono::milliseconds(1))),
      max_handshakes_(max_handshakes),
      max_per_source_(max_per_source),
      handshake_timeout_(handshake_timeout) {}

std::optional<std::string> pressure_reporter::note(pressure_event event,
                                                   const asio::ip::address& source,
                                                   clock_type::duration age,
                                                   clock_type::time_point now) {
  if (!window_start_) window_start_ = now;
  ++counts_[static_cast<int>(event)];
  if (by_source_.size() < max_counted_sources || by_source_.count(source)) ++by_source_[source];

  const auto last = last_line_.find(source);
  const bool source_quiet = last == last_line_.end() || now >= last->second + interval_;
  if (!source_quiet || sources_reported_ >= max_sources_per_interval) {
    ++unreported_;
    return std::nullopt;
  }
  ++sources_reported_;
  last_line_[source] = now;
  const std::string from = source.to_string();
  const std::string old = std::to_string(to_ms(age).count()) + " ms old";
  std::string what;
  switch (event) {
    case pressure_event::shed_oldest:
      what = "all " + std::to_string(max_handshakes_) +
             " handshake slots taken: closed the oldest handshake in progress, from " + from +
             " (" + old + ")";
      break;
    case pressure_event::shed_per_source:
      what = from + " has " + std::to_string(max_per_source_) +
             " handshakes in progress (its limit): closed its oldest (" + old + ")";
      break;
    case pressure_event::handshake_timeout:
      what = "closed a connection from " + from + ": no TLS handshake within " +
             std::to_string(handshake_timeout_.count()) + " ms";
      break;
  }
  return "p2psip::transport: listener " + listener_ + " under pressure: " + what +
         "; at most one line per source every " + seconds_text(interval_);
}

std::optional<clock_type::time_point> pressure_reporter::next_deadline() const {
  if (!window_start_) return std::nullopt;
  return *window_start_ + interval_;
}

std::optional<std::string> pressure_reporter::on_timer(clock_type::time_point now) {
  if (!window_start_ || now < *window_start_ + interval_) return std::nullopt;
  return summary(now);
}

std::optional<std::string> pressure_reporter::flush(clock_type::time_point now) {
  if (!window_start_) return std::nullopt;
  return summary(now);
}

std::optional<std::string> pressure_reporter::summary(clock_type::time_point now) {
  std::optional<std::string> line;
  if (unreported_ > 0) {
    const std::uint64_t total = counts_[0] + counts_[1] + counts_[2];
    std::string text = "p2psip::transport: listener " + listener_ + ": " + std::to_string(total) +
                       " unauthenticated connections closed in the last " +
                       seconds_text(now - *window_start_) + " (" + std::to_string(counts_[0]) +
                       " shed as the oldest of " + std::to_string(max_handshakes_) +
                       " handshakes in progress, " + std::to_string(counts_[1]) +
                       " shed at the per-source limit of " + std::to_string(max_per_source_) +
                       ", " + std::to_string(counts_[2]) + " handshake timeouts)";
    const auto top =
        std::max_element(by_source_.begin(), by_source_.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    if (top != by_source_.end()) {
      text += "; most from " + top->first.to_string() + " (" + std::to_string(top->second) + ")";
      if (by_source_.size() > 1) text += ", " + std::to_string(by_source_.size()) + " sources";
    }
    line = std::move(text);
  }
  window_start_.reset();
  for (auto& c : counts_) c = 0;
  unreported_ = 0;
  sources_reported_ = 0;
  by_source_.clear();
  // A source whose line is older than one interval may have a line again: forget it.
  std::erase_if(last_line_, [&](const auto& e) { return now >= e.second + interval_; });
  return line;
}

// ---- the accept loop ------------------------------------------------------------------------

accept_core::accept_core(const asio::any_io_executor& executor, const accept_config& cfg)
    : acceptor_(executor),
      backoff_timer_(executor),
      pressure_timer_(executor),
      cfg_(cfg),
      table_(cfg.max_handshakes, cfg.max_handshakes_per_source) {}

pr::result<std::shared_ptr<accept_core>> accept_core::bind(const asio::any_io_executor& executor,
                                                           const asio::ip::tcp::endpoint& local,
                                                           const accept_config& cfg) {
  auto core = std::make_shared<accept_core>(executor, cfg);
  asio::error_code ec;
  core->acceptor_.open(local.protocol(), ec);
  if (!ec) core->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) core->acceptor_.bind(local, ec);
  if (!ec) core->acceptor_.listen(cfg.backlog, ec);
  if (!ec) core->local_ = core->acceptor_.local_endpoint(ec);
  if (ec) return std::error_code(ec);
  core->open_ = true;
  core->pressure_.emplace(endpoint_text(core->local_), cfg.pressure_log_interval,
                          std::max<std::size_t>(cfg.max_handshakes, 1),
                          std::max<std::size_t>(cfg.max_handshakes_per_source, 1),
                          cfg.handshake_timeout);
  return core;
}

void accept_core::start(start_fn start, log_fn log, std::shared_ptr<void> owner) {
  start_ = std::move(start);
  log_ = log;
  auto self = shared_from_this();
  asio::co_spawn(acceptor_.get_executor(), loop(self, std::move(owner)),
                 [self, log = std::move(log)](std::exception_ptr e) {
                   if (!e) return;
                   write_log(log, "p2psip::transport: accept loop failed: " + exception_text(e));
                   self->close();
                 });
}

void accept_core::close() {
  if (!open_) return;
  open_ = false;
  asio::error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();
  pressure_timer_.cancel();
  // Aborting posts each connection's handshake end; none runs back into the table meanwhile.
  auto in_progress = table_.take_all();
  for (auto& entry : in_progress) {
    if (entry.abort) entry.abort();
  }
  if (pressure_) {
    if (auto line = pressure_->flush(clock_type::now())) emit(*line);
  }
  start_ = nullptr;
}

bool accept_core::handshake_done(std::uint64_t id, std::error_code result) {
  const auto entry = table_.remove(id);
  if (!result) {
    if (open_) ++stats_.established;
    return open_;
  }
  ++stats_.handshakes_failed;
  // A shed connection left the table when it was shed: only a handshake that ran out of time by
  // itself counts as a timeout.
  if (entry && open_ && result == make_error_code(transport_errc::handshake_timeout)) {
    ++stats_.handshake_timeouts;
    report(pressure_event::handshake_timeout, entry->source, clock_type::now() - entry->started);
  }
  return open_;
}

void accept_core::admit(asio::ip::tcp::socket socket) {
  asio::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  // A connection reset before we looked has no address; it fails its handshake at once anyway.
  const auto source = ec ? asio::ip::address() : admission_source(remote.address());
  const auto now = clock_type::now();
  if (auto shed = table_.make_room(source)) {
    const bool per_source = shed->reason == admission_table::shed_reason::per_source;
    ++(per_source ? stats_.shed_per_source : stats_.shed_oldest);
    if (shed->victim.abort) shed->victim.abort();
    report(per_source ? pressure_event::shed_per_source : pressure_event::shed_oldest,
           shed->victim.source, now - shed->victim.started);
  }
  const std::uint64_t id = ++next_id_;
  // Links and streams post the end of their handshake, never report it from inside start_.
  table_.add({id, source, now, start_(std::move(socket), id)});
}

void accept_core::report(pressure_event event, const asio::ip::address& source,
                         clock_type::duration age) {
  if (!pressure_) return;
  const auto now = clock_type::now();
  // An interval whose timer has not run yet (it is due but queued) ends first.
  if (auto line = pressure_->on_timer(now)) emit(*line);
  if (auto line = pressure_->note(event, source, age, now)) emit(*line);
  arm_pressure_timer();
}

void accept_core::emit(const std::string& line) {
  ++stats_.pressure_lines;
  write_log(cfg_.pressure_log ? cfg_.pressure_log : log_, line);
}

void accept_core::arm_pressure_timer() {
  if (pressure_timer_armed_ || !open_) return;
  const auto deadline = pressure_->next_deadline();
  if (!deadline) return;
  pressure_timer_armed_ = true;
  pressure_timer_.expires_at(*deadline);
  pressure_timer_.async_wait([weak = weak_from_this()](const asio::error_code&) {
    const auto me = weak.lock();
    if (!me) return;
    me->pressure_timer_armed_ = false;
    if (!me->open_) return;
    if (auto line = me->pressure_->on_timer(clock_type::now())) me->emit(*line);
    me->arm_pressure_timer();
  });
}

asio::awaitable<void> accept_core::loop([[maybe_unused]] std::shared_ptr<accept_core> self,
                                        [[maybe_unused]] std::shared_ptr<void> owner) {
  auto backoff = cfg_.min_backoff;
  while (open_) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
    if (!open_) break;
    if (ec) {
      // EMFILE, ENFILE, ENOBUFS, ECONNABORTED...: the connection waits in the backlog; retry later
      // instead of spinning.
      ++stats_.accept_errors;
      backoff_timer_.expires_after(backoff);
      auto [wait_ec] = co_await backoff_timer_.async_wait(use_nothrow);
      (void)wait_ec;
      backoff = std::min(backoff * 2, cfg_.max_backoff);
      continue;
    }
    backoff = cfg_.min_backoff;
    ++stats_.accepted;
    admit(std::move(socket));
  }
}

}  // namespace p2psip::transport::detail
