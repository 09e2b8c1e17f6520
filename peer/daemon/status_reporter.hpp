#pragma once
// The daemon's status line, event-driven: a line when what it says of the ring changes, and one
// every interval otherwise, with one timer armed only for the next line that may be due. An idle
// peer used to wake five times a second to build the line and compare it; now it wakes once per
// interval (and within `coalesce` of a change the runtime reports).
//
// Threading: the io_context's thread only, like the runtime whose changes it reports.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <system_error>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace p2psip::peer_daemon {

class status_reporter {
 public:
  using clock = std::chrono::steady_clock;

  /// The status as text, both from one look at the runtime.
  struct texts {
    /// The part of the line whose change is worth a line of its own (the ring: joined, the
    /// routing table, outbox, dropped; not link, client or value counts).
    std::string ring;
    /// The whole line, as logged.
    std::string line;
  };

  struct callbacks {
    std::function<texts()> status;
    /// Receives each line to log.
    std::function<void(const std::string& line)> emit;
  };

  /// `interval`: a line at least this often; `coalesce`: how long after a change the line is
  /// built, so that a burst of changes (a join) is one line. Nothing runs before start().
  status_reporter(asio::io_context& io, std::chrono::milliseconds interval,
                  std::chrono::milliseconds coalesce, callbacks cb);
  status_reporter(const status_reporter&) = delete;
  status_reporter& operator=(const status_reporter&) = delete;

  /// Looks at the status once `coalesce` from now (the first line), then as above.
  void start();
  /// What the ring part says may have changed: look within `coalesce` (the runtime's
  /// ring_changed). Cheap: re-arms the timer only when it would fire later than that.
  void changed();
  /// No line from now on (the peer is leaving); idempotent.
  void stop();

 private:
  void arm(clock::time_point when);
  void on_timer(const std::error_code& ec);

  asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds coalesce_;
  callbacks cb_;
  std::string last_ring_;
  clock::time_point last_line_at_{};
  std::optional<clock::time_point> armed_;  ///< when the pending wait ends; nullopt: none
  bool stopped_ = true;
  std::uint64_t lines_ = 0;  ///< lines emitted: the first is logged whatever it says
};

}  // namespace p2psip::peer_daemon
