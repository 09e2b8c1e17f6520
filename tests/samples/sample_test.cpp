// Runs one sample program against a real 3-peer overlay and checks its output and exit status.
//
//   p2psip_sample_test put_get|c_api|typed_dictionary|sip_register|sip_chat_direct|
//                      sip_chat_outbound SAMPLE-BINARY
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "process_overlay.hpp"

namespace {

struct run_result {
  int status = -1;  ///< exit status; -1 if it did not exit normally
  std::string out;
  std::string err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs `args` (args[0] the binary) with stdout and stderr captured in files under `dir`.
run_result run(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  static int n = 0;
  const auto out = dir / ("sample" + std::to_string(n) + ".out");
  const auto err = dir / ("sample" + std::to_string(n++) + ".err");
  const pid_t pid = p2psip::test::spawn_process(args, out, err, /*append=*/false);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run_result r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

int failures = 0;

void check(bool ok, const std::string& what, const run_result& r) {
  if (ok) {
    std::cout << "ok: " << what << "\n";
    return;
  }
  ++failures;
  std::cout << "FAILED: " << what << "\n  exit status " << r.status << "\n  stdout:\n"
            << r.out << "\n  stderr:\n"
            << r.err << "\n";
}

bool has(const run_result& r, const std::string& text) {
  return r.out.find(text) != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: p2psip_sample_test put_get|c_api|typed_dictionary|sip_register|"
                 "sip_chat_direct|sip_chat_outbound SAMPLE-BINARY\n";
    return 2;
  }
  const std::string mode = argv[1];
  const std::string binary = argv[2];
  try {
    p2psip::test::process_overlay overlay(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
    if (mode.rfind("sip_chat", 0) == 0) {
      // Peers that serve SIP (the SDK's user agent needs them in both routing modes).
      for (int i = 0; i < 3; ++i) {
        overlay.start_peer("p" + std::to_string(i), false, {"--sip-listen", "tls:127.0.0.1:0"});
      }
      if (!overlay.wait_ring(std::chrono::seconds(60))) throw std::runtime_error("no ring");
    } else {
      overlay.start_ring(3);
    }
    const std::string domain = "@test.p2psip.example";
    auto args_of = [&](const std::string& user, std::size_t peer) {
      overlay.enroll(user);
      return std::vector<std::string>{binary,
                                      "--config",
                                      overlay.config_file().string(),
                                      "--cert",
                                      overlay.cert_of(user).string(),
                                      "--key",
                                      overlay.key_of(user).string(),
                                      "--peer",
                                      overlay.peers().at(peer).address};
    };
    const auto dir = overlay.dir();

    // Wrong usage: exit status 2 and a usage line.
    const auto usage = run({binary}, dir);
    check(usage.status == 2 && usage.err.find("usage:") != std::string::npos, "usage", usage);
    // --version: "NAME (p2psip) VERSION", the SDK's version.
    const auto version = run({binary, "--version"}, dir);
    check(version.status == 0 &&
              version.out.find(" (p2psip) " P2PSIP_PROJECT_VERSION "\n") != std::string::npos,
          "--version", version);

    if (mode == "put_get" || mode == "c_api") {
      // Alice writes through peer 0; Bob writes through peer 2 and sees both values.
      auto a = args_of("alice", 0);
      a.insert(a.end(), {"greeting", "hello from alice"});
      const auto alice = run(a, dir);
      check(alice.status == 0 && has(alice, "attached to ") &&
                has(alice, "got greeting = hello from alice from alice" + domain + " (me)"),
            "alice puts and gets", alice);
      auto b = args_of("bob", 2);
      b.insert(b.end(), {"greeting", "hi from bob"});
      const auto bob = run(b, dir);
      check(bob.status == 0 &&
                has(bob, "got greeting = hello from alice from alice" + domain + "\n") &&
                has(bob, "got greeting = hi from bob from bob" + domain + " (me)"),
            "bob sees both writers", bob);
      // A missing certificate: exit status 1 and the SDK's message.
      auto bad = args_of("carol", 1);
      bad[4] = (dir / "nowhere.crt").string();
      bad.insert(bad.end(), {"x", "y"});
      const auto refused = run(bad, dir);
      check(refused.status == 1 && refused.err.find("nowhere.crt") != std::string::npos,
            "bad certificate is reported", refused);
    } else if (mode == "typed_dictionary") {
      auto a = args_of("alice", 1);
      a.insert(a.end(), {"--user", "alice" + domain, "sip:alice@192.0.2.10"});
      const auto alice = run(a, dir);
      check(alice.status == 0 && has(alice, "stored alice" + domain + " generation ") &&
                has(alice, "fetched 1 entries") &&
                has(alice, " -> sip:alice@192.0.2.10 signed by alice" + domain) &&
                has(alice, "by key: 1 entry") && has(alice, " length 25 hash ") &&
                has(alice, "removed; live entries for this device: 0"),
            "alice registers, fetches, stats and removes", alice);
      // Bob may not write Alice's registration (USER-NODE-MATCH): exit status 1, Forbidden.
      auto b = args_of("bob", 2);
      b.insert(b.end(), {"--user", "alice" + domain, "sip:mallory@192.0.2.66"});
      const auto bob = run(b, dir);
      check(bob.status == 1 && bob.err.find("store: ") != std::string::npos &&
                bob.err.find("Forbidden") != std::string::npos,
            "bob cannot register as alice", bob);
    } else if (mode == "sip_register") {
      auto a = args_of("alice", 0);
      a.insert(a.end(), {"sip:alice" + domain});
      const auto alice = run(a, dir);
      check(alice.status == 0 && has(alice, "registered sip:alice" + domain + " via peer ") &&
                has(alice, "sip:alice" + domain + ": 1 binding(s)") &&
                has(alice, "  alice" + domain + " by alice" + domain + ": route ") &&
                has(alice, " (me)") &&
                has(alice, "unregistered; 0 binding(s) left under sip:alice" + domain),
            "alice registers, resolves herself and unregisters", alice);
      // Bob may not register under Alice's AOR: exit status 1, Forbidden.
      auto b = args_of("bob", 2);
      b.insert(b.end(), {"sip:alice" + domain});
      const auto bob = run(b, dir);
      check(bob.status == 1 && bob.err.find("register: ") != std::string::npos &&
                bob.err.find("Forbidden") != std::string::npos,
            "bob cannot register as alice", bob);
    } else if (mode == "sip_chat_direct" || mode == "sip_chat_outbound") {
      // Alice through peer 0 and Bob through peer 2 message each other.
      const std::string routing = mode == "sip_chat_direct" ? "direct" : "outbound-proxy";
      const auto alice = args_of("alice", 0);
      const auto bob = args_of("bob", 2);
      std::vector<std::string> a{binary, "--config", alice[2], "--routing", routing};
      for (const auto* who : {&alice, &bob}) {
        a.insert(a.end(), {"--cert", (*who)[4], "--key", (*who)[6], "--peer", (*who)[8]});
      }
      const std::string alice_aor = "sip:alice" + domain;
      const std::string bob_aor = "sip:bob" + domain;
      a.insert(a.end(), {alice_aor, bob_aor});
      const auto chat = run(a, dir);
      check(chat.status == 0 && has(chat, alice_aor + " is reachable (" + routing + ")") &&
                has(chat, bob_aor + " received from ") &&
                has(chat, ": hello " + bob_aor + ", this is " + alice_aor + "\n") &&
                has(chat, alice_aor + " received from ") &&
                has(chat, ": hello " + alice_aor + ", this is " + bob_aor + "\n") &&
                has(chat, alice_aor + " got 200 ") && has(chat, bob_aor + " got 200 ") &&
                has(chat, "both messages arrived"),
            "alice and bob message each other (" + routing + ")", chat);
      // A bad routing mode is a usage error.
      a[4] = "carrier-pigeon";
      const auto bad = run(a, dir);
      check(bad.status == 2 && bad.err.find("usage:") != std::string::npos, "bad --routing", bad);
    } else {
      std::cerr << "unknown mode " << mode << "\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cout << "FAILED: " << e.what() << "\n";
    return 1;
  }
  std::cout << (failures == 0 ? "all checks passed\n" : "some checks failed\n");
  return failures == 0 ? 0 : 1;
}
