// The built-in REGISTER load generator of p2psip-sip-bench (see register_load.hpp).
#include "register_load.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <queue>
#include <random>
#include <string_view>

#include "p2psip/sip/digest.hpp"
#include "p2psip/sip/message.hpp"

namespace p2psip::bench {
namespace {

namespace sip = p2psip::sip;
using clock_type = std::chrono::steady_clock;

enum class phase : std::uint8_t { waiting_challenge, waiting_ok, done };

/// One registration: REGISTER (CSeq 1), 401, REGISTER (CSeq 2) with credentials, 200.
struct registration {
  std::uint32_t user = 0;
  phase state = phase::waiting_challenge;
  std::uint32_t cseq = 1;
  clock_type::time_point first_sent;  // of the current request: timer F counts from here
  clock_type::time_point next_retransmit;
  clock_type::duration interval{};
  std::string request;  // the current request as sent, for retransmissions
};

/// A retransmission deadline. Entries are not removed when a response arrives: one whose
/// registration moved on (other CSeq, other deadline, done) is skipped when it comes up.
struct timer_entry {
  clock_type::time_point at;
  std::uint32_t index;
  std::uint32_t cseq;
  bool operator>(const timer_entry& o) const noexcept { return at > o.at; }
};

/// What a user's MD5 HA1 is in the last realm it was challenged in (computed once per realm).
struct cached_ha1 {
  std::string realm;
  std::string ha1;
};

class file_descriptor {
 public:
  explicit file_descriptor(int fd) noexcept : fd_(fd) {}
  ~file_descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  file_descriptor(const file_descriptor&) = delete;
  file_descriptor& operator=(const file_descriptor&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

std::optional<sockaddr_in> parse_ipv4_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, text.substr(0, colon).c_str(), &a.sin_addr) != 1) return std::nullopt;
  unsigned port = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc{} || end != last || port == 0 || port > 65535) return std::nullopt;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  return a;
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == token) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

class load_run {
 public:
  load_run(const register_load_config& config, int fd, std::string local)
      : config_(config), fd_(fd), local_(std::move(local)), ha1_(config.users.size()) {
    std::random_device rd;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%08x", static_cast<unsigned>(rd()));
    run_tag_ = tag;
    call_id_suffix_ = "-" + run_tag_ + "@p2psip-bench";
    timer_f_ = 64 * std::chrono::duration_cast<clock_type::duration>(config_.t1);
  }

  register_load_result run() {
    const long total = std::max<long>(1, std::lround(config_.rate * config_.seconds));
    registrations_.resize(static_cast<std::size_t>(total));
    const double period_ns = 1e9 / config_.rate;
    const auto t0 = clock_type::now() + std::chrono::milliseconds(20);
    auto scheduled = [&](long i) {
      return t0 +
             std::chrono::nanoseconds(static_cast<long long>(period_ns * static_cast<double>(i)));
    };
    const auto tail_end = scheduled(total - 1) + config_.tail;
    const double cpu0 = thread_cpu_seconds();
    long next = 0;
    for (;;) {
      auto now = clock_type::now();
      // Starts that are due, in bounded bursts so that answers keep being read when behind.
      for (int burst = 0; next < total && scheduled(next) <= now && burst < 256; ++burst) {
        const double lag = std::chrono::duration<double, std::milli>(now - scheduled(next)).count();
        result_.max_lag_ms = std::max(result_.max_lag_ms, lag);
        start(static_cast<std::uint32_t>(next), now);
        ++next;
      }
      receive(now);
      now = clock_type::now();
      fire_timers(now);
      if (next == total) {
        if (open_ == 0) break;
        if (now >= tail_end) {
          give_up_open();
          break;
        }
      }
      // One wake per tick, like sipp's timer resolution (1 ms): what is due and what arrived in
      // the meantime is handled in one round. Waking for every start and every datagram cost
      // about as much CPU as the server under test (a context switch each, on a VM).
      const auto wake = std::min(now + config_.tick, tail_end);
      if (wake > now) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - now).count();
        timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        ::nanosleep(&ts, nullptr);
      }
    }
    result_.started = total;
    result_.cpu_seconds = thread_cpu_seconds() - cpu0;
    result_.wall_seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    return result_;
  }

 private:
  void fail(registration& r, std::string why) {
    if (r.state == phase::done) return;
    r.state = phase::done;
    r.request.clear();
    r.request.shrink_to_fit();
    --open_;
    ++result_.failed;
    if (result_.first_failure.empty()) result_.first_failure = std::move(why);
  }

  void start(std::uint32_t index, clock_type::time_point now) {
    registration& r = registrations_[index];
    r.user = static_cast<std::uint32_t>(index % config_.users.size());
    r.state = phase::waiting_challenge;
    r.cseq = 1;
    r.request = build_request(index, r, {});
    ++open_;
    send_new(index, r, now);
  }

  /// The REGISTER of registration `index` at its current CSeq, with `authorization` if not empty.
  std::string build_request(std::uint32_t index, const registration& r,
                            std::string_view authorization) const {
    const std::string& user = config_.users[r.user].username;
    const std::string idx = std::to_string(index);
    const std::string cseq = std::to_string(r.cseq);
    std::string m;
    m.reserve(512 + authorization.size());
    m += "REGISTER sip:" + config_.domain + " SIP/2.0\r\n";
    m += "Via: SIP/2.0/UDP " + local_ + ";branch=z9hG4bK-" + run_tag_ + "-" + idx + "-" + cseq +
         ";rport\r\n";
    m += "Max-Forwards: 70\r\n";
    m += "From: <sip:" + user + "@" + config_.domain + ">;tag=" + run_tag_ + "-" + idx + "\r\n";
    m += "To: <sip:" + user + "@" + config_.domain + ">\r\n";
    m += "Call-ID: " + idx + call_id_suffix_ + "\r\n";
    m += "CSeq: " + cseq + " REGISTER\r\n";
    m += "Contact: <sip:" + user + "@" + local_ + ";transport=udp>\r\n";
    m += "Expires: " + std::to_string(config_.expires) + "\r\n";
    if (!authorization.empty()) {
      m += "Authorization: ";
      m += authorization;
      m += "\r\n";
    }
    m += "User-Agent: p2psip-sip-bench\r\nContent-Length: 0\r\n\r\n";
    return m;
  }

  void send_new(std::uint32_t index, registration& r, clock_type::time_point now) {
    r.first_sent = now;
    r.interval = config_.t1;
    r.next_retransmit = now + r.interval;
    timers_.push({r.next_retransmit, index, r.cseq});
    transmit(r);
  }

  /// A send the kernel refused for lack of buffer is a lost datagram: timer E sends it again
  /// (and the retransmission fails the trial, as a loss on the wire would).
  void transmit(const registration& r) {
    if (::send(fd_, r.request.data(), r.request.size(), 0) < 0 && errno != EAGAIN &&
        errno != EWOULDBLOCK && errno != ENOBUFS) {
      note_socket_error("send", errno);
    }
  }

  void note_socket_error(const char* what, int err) {
    ++result_.failed;
    if (result_.first_failure.empty()) {
      result_.first_failure = std::string(what) + ": " + std::generic_category().message(err);
    }
  }

  void fire_timers(clock_type::time_point now) {
    while (!timers_.empty() && timers_.top().at <= now) {
      const timer_entry e = timers_.top();
      timers_.pop();
      registration& r = registrations_[e.index];
      if (r.state == phase::done || r.cseq != e.cseq || r.next_retransmit != e.at) continue;
      if (now - r.first_sent >= timer_f_) {
        ++result_.timeouts;
        fail(r, "no final response to CSeq " + std::to_string(r.cseq) + " within timer F");
        continue;
      }
      // RFC 3261 17.1.2.2: timer E doubles up to T2 (stays T2 once a provisional came).
      transmit(r);
      ++result_.retransmissions;
      r.interval = std::min<clock_type::duration>(2 * r.interval, config_.t2);
      r.next_retransmit = std::min(now + r.interval, r.first_sent + timer_f_);
      timers_.push({r.next_retransmit, e.index, r.cseq});
    }
  }

  void give_up_open() {
    for (auto& r : registrations_) {
      if (r.state != phase::done) {
        ++result_.timeouts;
        fail(r, "no final response to CSeq " + std::to_string(r.cseq) + " by the end of the run");
      }
    }
  }

  void receive(clock_type::time_point now) {
    constexpr std::size_t batch = 64;
    constexpr std::size_t buffer_size = 8192;
    if (buffers_.empty()) buffers_.resize(batch * buffer_size);
    std::array<mmsghdr, batch> headers{};
    std::array<iovec, batch> iov{};
    // Everything queued, before any timer fires: after the generator itself was off the CPU, the
    // answers waiting in its socket must not count as missing (a retransmission the server did
    // not cause). Bounded all the same (the server answers what was sent, at most a few each).
    for (int round = 0; round < 4096; ++round) {
      for (std::size_t i = 0; i < batch; ++i) {
        iov[i] = {buffers_.data() + i * buffer_size, buffer_size};
        headers[i] = {};
        headers[i].msg_hdr.msg_iov = &iov[i];
        headers[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::recvmmsg(fd_, headers.data(), batch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          note_socket_error("receive", errno);
        }
        return;
      }
      for (int i = 0; i < n; ++i) {
        const auto& h = headers[static_cast<std::size_t>(i)];
        if ((h.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
          ++result_.stray;
          continue;
        }
        on_datagram(std::string_view(buffers_.data() + static_cast<std::size_t>(i) * buffer_size,
                                     h.msg_len),
                    now);
      }
      if (static_cast<std::size_t>(n) < batch) return;
    }
  }

  /// The registration a response is for: Call-ID INDEX-RUNTAG@p2psip-bench and the CSeq it
  /// waits for; null (a stray datagram) otherwise.
  registration* match(const sip::message& m, std::uint32_t& index) {
    const auto id = sip::call_id(m);
    const auto cs = sip::cseq_of(m);
    if (!id || !cs || cs->method != "REGISTER") return nullptr;
    const std::string_view text = *id;
    if (text.size() <= call_id_suffix_.size() ||
        text.substr(text.size() - call_id_suffix_.size()) != call_id_suffix_) {
      return nullptr;
    }
    const auto digits = text.substr(0, text.size() - call_id_suffix_.size());
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec != std::errc{} || end != digits.data() + digits.size() ||
        index >= registrations_.size()) {
      return nullptr;
    }
    registration& r = registrations_[index];
    if (r.state == phase::done || r.cseq != cs->number) return nullptr;
    return &r;
  }

  void on_datagram(std::string_view datagram, clock_type::time_point now) {
    const auto parsed = sip::parse_datagram(datagram);
    if (!parsed || parsed->is_request()) {
      ++result_.stray;
      return;
    }
    const sip::message& m = *parsed;
    std::uint32_t index = 0;
    registration* r = match(m, index);
    if (r == nullptr) {
      ++result_.stray;
      return;
    }
    if (m.status < 200) {
      // Proceeding: timer E continues at T2 (RFC 3261 17.1.2.2).
      r->interval = config_.t2;
      r->next_retransmit = std::min(now + r->interval, r->first_sent + timer_f_);
      timers_.push({r->next_retransmit, index, r->cseq});
      return;
    }
    if (m.status == 401 && r->state == phase::waiting_challenge) {
      answer_challenge(index, *r, m, now);
      return;
    }
    if (m.status >= 200 && m.status < 300 && r->state == phase::waiting_ok) {
      const auto bound = sip::contacts(m);
      // As the sipp scenario checks: the binding comes back with its expiry.
      const bool with_expiry =
          bound && std::any_of(bound->contacts.begin(), bound->contacts.end(),
                               [](const auto& c) { return sip::contact_expires(c).has_value(); });
      if (!with_expiry) {
        fail(*r, "a 200 to REGISTER without a Contact carrying expires");
        return;
      }
      r->state = phase::done;
      r->request.clear();
      r->request.shrink_to_fit();
      --open_;
      ++result_.successful;
      return;
    }
    fail(*r, std::to_string(m.status) + " " + m.reason + " to CSeq " + std::to_string(r->cseq));
  }

  /// REGISTER again with MD5 credentials for the challenge (qop=auth when offered).
  void answer_challenge(std::uint32_t index, registration& r, const sip::message& m,
                        clock_type::time_point now) {
    const auto challenges = sip::auth_values(m, "WWW-Authenticate");
    if (!challenges) {
      fail(r, "a 401 whose WWW-Authenticate does not parse");
      return;
    }
    const sip::auth_value* md5 = nullptr;
    for (const auto& c : *challenges) {
      if (!iequals(c.scheme, "Digest")) continue;
      const auto algorithm = c.get("algorithm");
      if (!algorithm || sip::parse_digest_algorithm(*algorithm) == sip::digest_algorithm::md5) {
        md5 = &c;
        break;
      }
    }
    const auto realm = md5 ? md5->get("realm") : std::nullopt;
    const auto nonce = md5 ? md5->get("nonce") : std::nullopt;
    if (!realm || !nonce) {
      fail(r, "a 401 without an MD5 Digest challenge (realm and nonce)");
      return;
    }
    const register_user& user = config_.users[r.user];
    cached_ha1& cached = ha1_[r.user];
    if (cached.ha1.empty() || cached.realm != *realm) {
      cached.realm = *realm;
      cached.ha1 =
          sip::digest_ha1(sip::digest_algorithm::md5, user.username, *realm, user.password);
    }
    sip::digest_credentials c;
    c.username = user.username;
    c.realm = *realm;
    c.nonce = *nonce;
    c.uri = "sip:" + config_.domain;
    c.algorithm = sip::digest_algorithm::md5;
    const auto qop = md5->get("qop");
    if (qop && has_token(*qop, "auth")) {
      c.qop = "auth";
      c.nc = "00000001";
      c.cnonce = run_tag_ + std::to_string(index);
    }
    c.opaque = md5->get("opaque");
    const std::string response = sip::digest_response(c, cached.ha1, "REGISTER");
    std::string auth = "Digest username=\"" + c.username + "\", realm=\"" + c.realm +
                       "\", nonce=\"" + c.nonce + "\", uri=\"" + c.uri + "\", response=\"" +
                       response + "\", algorithm=MD5";
    if (c.qop) auth += ", qop=auth, nc=" + *c.nc + ", cnonce=\"" + *c.cnonce + "\"";
    if (c.opaque) auth += ", opaque=\"" + *c.opaque + "\"";
    r.state = phase::waiting_ok;
    r.cseq = 2;
    r.request = build_request(index, r, auth);
    send_new(index, r, now);
  }

  const register_load_config& config_;
  int fd_;
  std::string local_;  // "IP:PORT" of the socket, for Via and Contact
  std::string run_tag_;
  std::string call_id_suffix_;
  clock_type::duration timer_f_{};
  std::vector<cached_ha1> ha1_;
  std::vector<registration> registrations_;
  std::priority_queue<timer_entry, std::vector<timer_entry>, std::greater<>> timers_;
  std::vector<char> buffers_;
  long open_ = 0;
  register_load_result result_;
};

register_load_outcome setup_error(std::string text) {
  register_load_outcome out;
  out.error = std::make_error_code(std::errc::invalid_argument);
  out.error_text = std::move(text);
  return out;
}

}  // namespace

register_load_outcome run_register_load(const register_load_config& config) {
  if (config.users.empty()) return setup_error("no users to register");
  if (!(config.rate > 0) || !(config.seconds > 0) || config.rate * config.seconds > 1e7) {
    return setup_error(
        "the rate and the run length must be positive (and at most 1e7 registrations in all)");
  }
  if (config.t1.count() <= 0 || config.t2 < config.t1) {
    return setup_error("timers: T1 must be positive and T2 at least T1");
  }
  if (config.tick.count() <= 0 || config.tick > config.t1) {
    return setup_error("the tick must be positive and at most T1");
  }
  const auto target = parse_ipv4_endpoint(config.target);
  if (!target) return setup_error("'" + config.target + "' is not IPv4-ADDRESS:PORT");

  file_descriptor fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    register_load_outcome out;
    out.error = std::error_code(errno, std::generic_category());
    out.error_text = "socket: " + out.error.message();
    return out;
  }
  // Room for a burst of answers: a datagram the generator drops would look like the server's
  // loss. SO_RCVBUFFORCE passes rmem_max when privileged; otherwise the plain option is capped.
  const int buffer_bytes = 8 << 20;
  for (const int opt : {SO_RCVBUF, SO_SNDBUF}) {
    const int force = opt == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
    if (::setsockopt(fd.get(), SOL_SOCKET, force, &buffer_bytes, sizeof buffer_bytes) != 0) {
      ::setsockopt(fd.get(), SOL_SOCKET, opt, &buffer_bytes, sizeof buffer_bytes);
    }
  }
  // Connected: the kernel keeps other sources' datagrams out and reports ICMP errors.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*target), sizeof *target) != 0) {
    register_load_outcome out;
    out.error = std::error_code(errno, std::generic_category());
    out.error_text = "connect to " + config.target + ": " + out.error.message();
    return out;
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len);
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &local.sin_addr, ip, sizeof ip);
  const std::string local_text = std::string(ip) + ":" + std::to_string(ntohs(local.sin_port));

  load_run run(config, fd.get(), local_text);
  register_load_outcome out;
  out.result = run.run();
  return out;
}

}  // namespace p2psip::bench
