#pragma once
// The built-in REGISTER load generator of p2psip-sip-bench: one thread, one non-blocking UDP
// socket, an open-loop sender (registration i starts at t0 + i / rate, whatever the server
// answers, as sipp -r does). Each registration is RFC 3261's REGISTER, 401, REGISTER with MD5
// digest credentials computed from the challenge, 200, for one of many AORs in turn, each with its
// own user name and password. Responses match a registration by Call-ID and CSeq. Requests are
// retransmitted on timer E (RFC 3261 17.1.2.2: T1, doubling to T2) and give up at timer F (64*T1);
// RFC 7502 counts a trial with any retransmission or failure as failed, so both are counted.
//
// Why not sipp: on a 2-core machine sipp spends about as much CPU per REGISTER as the server
// under test, so the search measured the two sharing the cores. This generator parses with the
// project's SIP codec, computes the digest with its helpers, and batches receives (recvmmsg).

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace p2psip::bench {

/// One AOR of the load: sip:USERNAME@DOMAIN with this digest password.
struct register_user {
  std::string username;
  std::string password;
};

struct register_load_config {
  std::string target;  ///< "IP:PORT" (IPv4) of the registrar, UDP
  std::string domain;  ///< the AORs' host and the Request-URI: sip:DOMAIN
  std::vector<register_user> users;
  double rate = 100;    ///< registrations started per second
  double seconds = 10;  ///< how long registrations are started for
  std::uint32_t expires = 3600;
  std::chrono::milliseconds t1{500};  ///< RFC 3261 T1
  std::chrono::milliseconds t2{4000};
  /// The sender's timer resolution: starts due within a tick go out together (sipp: 1 ms).
  std::chrono::microseconds tick{1000};
  /// After the last start, how long unfinished registrations are waited for (then they fail);
  /// bounded by timer F as well.
  std::chrono::milliseconds tail{10000};
};

struct register_load_result {
  long started = 0;          ///< registrations begun (rate * seconds)
  long successful = 0;       ///< ended with a 200 carrying a Contact
  long failed = 0;           ///< a final response other than 401/200, a timeout, a send error
  long timeouts = 0;         ///< of `failed`: no final response within timer F or the tail
  long retransmissions = 0;  ///< requests sent again on timer E
  long stray = 0;         ///< datagrams matching no open transaction (late, duplicated, unparsable)
  double max_lag_ms = 0;  ///< the latest a registration started after its scheduled time
  double cpu_seconds = 0;  ///< this thread's CPU time (user + system) during the run
  double wall_seconds = 0;
  std::string first_failure;  ///< what the first failure was, for the report
  /// RFC 7502: every registration successful, no failure and no retransmission.
  bool pass() const noexcept {
    return started > 0 && successful == started && failed == 0 && retransmissions == 0;
  }
};

/// Runs one trial. Setup problems (bad target, no users, a socket that cannot be made) are the
/// error; what happens on the wire is counted in the result.
struct register_load_outcome {
  std::error_code error;
  std::string error_text;
  register_load_result result;
};
register_load_outcome run_register_load(const register_load_config& config);

}  // namespace p2psip::bench
