// p2psip-opendht-node: one OpenDHT node (libopendht's DhtRunner) on 127.0.0.1, for p2psip-bench's
// OpenDHT baseline. Rate limits, search and storage limits are off, so that the node is bound by
// its CPU as our peers are. Values are plain (no SecureDht identity): OpenDHT's default put
// signs nothing.
//
//   p2psip-opendht-node --port P [--bootstrap 127.0.0.1:Q]...
//
// Prints "ready 127.0.0.1:P" on standard output once it listens, then runs until SIGTERM or
// SIGINT.
#include <netinet/in.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include <opendht.h>
#include <cxxopts.hpp>

#include "opendht_common.hpp"

int main(int argc, char** argv) {
  cxxopts::Options options("p2psip-opendht-node", "One OpenDHT node for p2psip-bench");
  // clang-format off
  options.add_options()
      ("port", "UDP port on 127.0.0.1", cxxopts::value<int>())
      ("bootstrap", "127.0.0.1:PORT of a node to join through (repeatable)", cxxopts::value<std::vector<std::string>>()->default_value(""))
      ("h,help", "help");
  // clang-format on
  int port = 0;
  std::vector<std::string> bootstrap;
  try {
    auto r = options.parse(argc, argv);
    if (r.count("help")) {
      std::cout << options.help();
      return 0;
    }
    port = r["port"].as<int>();
    bootstrap = r["bootstrap"].as<std::vector<std::string>>();
  } catch (const std::exception& e) {
    std::cerr << "p2psip-opendht-node: " << e.what() << "\n";
    return 2;
  }

  // Block the signals in every thread (the runner's threads inherit the mask); wait for them here.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    dht::DhtRunner node;
    p2psip::bench::run_opendht(node, static_cast<in_port_t>(port));
    for (const auto& b : bootstrap) {
      if (!b.empty()) p2psip::bench::bootstrap_opendht(node, b);
    }
    std::printf("ready 127.0.0.1:%u\n", static_cast<unsigned>(node.getBoundPort(AF_INET)));
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    node.join();
  } catch (const std::exception& e) {
    std::cerr << "p2psip-opendht-node: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
