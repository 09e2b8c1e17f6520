#include "io_thread.hpp"

#include <pthread.h>

#include <cstdio>
#include <exception>

namespace p2psip::client::detail {

namespace {
thread_local bool this_is_an_io_thread = false;
}  // namespace

bool on_an_io_thread() noexcept {
  return this_is_an_io_thread;
}

io_thread::io_thread() {
  thread_ = std::thread([c = core_] {
    this_is_an_io_thread = true;
    ::pthread_setname_np(::pthread_self(), "p2psip-io");
    // Every client of the process runs here: a handler that throws (a bug: nothing throws out of
    // an Asio completion by design) must not end the others' I/O.
    for (;;) {
      try {
        c->io.run();
        break;
      } catch (const std::exception& e) {
        // No client's log to give it to (the thread is every client's): a bug must not pass
        // unseen.
        std::fprintf(stderr, "p2psip client SDK: I/O thread: a handler threw: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "p2psip client SDK: I/O thread: a handler threw\n");
      }
    }
    // What was ready at the stop runs now (links winding down); what is still waiting is
    // destroyed with the io_context, here or by the joining thread.
    try {
      c->io.restart();
      c->io.poll();
    } catch (...) {
    }
  });
  id_ = thread_.get_id();
}

io_thread::~io_thread() {
  // Every client is gone (each held this object): what is left on the context are their links
  // closing, which their drivers' stops have bounded already.
  core_->work.reset();
  core_->io.stop();
  if (!thread_.joinable()) return;
  if (is_current()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

}  // namespace p2psip::client::detail
