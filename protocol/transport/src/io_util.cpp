#include "io_util.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <cstdlib>
#include <iostream>
#include <variant>

#include "p2psip/transport/errors.hpp"

namespace p2psip::transport::detail {

namespace pr = p2psip::protocol;

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

asio::awaitable<pr::result<asio::ip::tcp::socket>> connect_tcp(asio::ip::tcp::endpoint remote,
                                                               clock_type::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::socket socket(executor);
  asio::steady_timer timer(executor);
  timer.expires_at(deadline);
  auto outcome =
      co_await (socket.async_connect(remote, use_nothrow) || timer.async_wait(use_nothrow));
  if (outcome.index() == 1) co_return make_error_code(transport_errc::handshake_timeout);
  auto [ec] = std::get<0>(outcome);
  if (ec) co_return make_error_code(transport_errc::connect_failed);
  co_return std::move(socket);
}

}  // namespace p2psip::transport::detail
