#include "io_util.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <span>
#include <variant>

#include "p2psip/transport/errors.hpp"

namespace p2psip::transport::detail {

namespace pr = p2psip::protocol;

namespace {

/// This thread's buffer. A function of its own (not inlined into the coroutine), so that the
/// thread_local is looked up on the thread that resumed it.
[[gnu::noinline]] thread_read_buffer& this_thread_read_buffer() {
  thread_local thread_read_buffer buffer;
  return buffer;
}

}  // namespace

asio::awaitable<std::tuple<asio::error_code, pr::byte_view>> read_into_thread_buffer(
    asio::ip::tcp::socket& socket) {
  for (;;) {
    // A one-byte peek waits like async_read_some (edge-triggered readiness is handled by Asio),
    // consuming nothing. Its completion is posted, so a busy connection still yields to the
    // others on this thread between reads.
    std::uint8_t probe = 0;
    auto [ec, peeked] = co_await socket.async_receive(asio::buffer(&probe, 1),
                                                      asio::socket_base::message_peek, use_nothrow);
    (void)peeked;
    if (ec) co_return std::tuple{ec, pr::byte_view{}};
    thread_read_buffer& buffer = this_thread_read_buffer();
    const std::span<std::uint8_t> into = buffer.get();
    asio::error_code read_ec;
    const std::size_t n = socket.read_some(asio::buffer(into.data(), into.size()), read_ec);
    if (read_ec == asio::error::would_block || read_ec == asio::error::try_again) continue;
    if (read_ec) co_return std::tuple{read_ec, pr::byte_view{}};
    buffer.note_read(n);
    co_return std::tuple{read_ec, pr::byte_view(into.data(), n)};
  }
}

std::string exception_text(std::exception_ptr e) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  return what;
}

void write_log(const std::function<void(std::string_view)>& log, const std::string& line) {
  if (log) {
    log(line);
  } else {
    std::cerr << line << '\n';
  }
}

std::string key_log_path(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("SSLKEYLOGFILE")) return env;
  return {};
}

asio::awaitable<pr::result<asio::ip::tcp::socket, pr::error_record>> connect_tcp(
    asio::ip::tcp::endpoint remote, clock_type::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::socket socket(executor);
  asio::steady_timer timer(executor);
  timer.expires_at(deadline);
  auto outcome =
      co_await (socket.async_connect(remote, use_nothrow) || timer.async_wait(use_nothrow));
  if (outcome.index() == 1) {
    const auto code = make_error_code(transport_errc::handshake_timeout);
    co_return pr::error_record{code, code.message() + " (TCP connect unanswered)"};
  }
  auto [ec] = std::get<0>(outcome);
  if (ec) {
    const auto code = make_error_code(transport_errc::connect_failed);
    co_return pr::error_record{code, code.message() + ": " + ec.message()};
  }
  co_return std::move(socket);
}

}  // namespace p2psip::transport::detail
