#include "p2psip/peer/admin_http_module.hpp"

#include <dlfcn.h>

#include <exception>
#include <future>
#include <utility>

#include <asio/post.hpp>

#include "p2psip/peer/admin_module_json.hpp"
#include "p2psip/peer/admin_snapshot.hpp"

#ifndef P2PSIP_ADMIN_MODULE_INSTALLED
#error "P2PSIP_ADMIN_MODULE_INSTALLED: the module's path relative to the program's directory"
#endif

namespace p2psip::peer {

namespace {

class admin_module_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.admin_module"; }
  std::string message(int ev) const override {
    switch (static_cast<admin_module_errc>(ev)) {
      case admin_module_errc::ok: return "success";
      case admin_module_errc::not_found: return "the admin HTTP module cannot be located";
      case admin_module_errc::load_failed: return "the admin HTTP module cannot be loaded";
      case admin_module_errc::no_entry_point: return "the admin HTTP module has no entry point";
      case admin_module_errc::start_failed: return "the admin HTTP server did not start";
    }
    return "unknown admin module error";
  }
};

protocol::error_record module_error(admin_module_errc code, std::string message) {
  return {make_error_code(code), std::move(message)};
}

/// The module's server behind the C boundary.
class module_server final : public admin::server {
 public:
  module_server(const p2psip_admin_module& functions, p2psip_admin_server* started)
      : functions_(functions), server_(started) {}
  module_server(const module_server&) = delete;
  module_server& operator=(const module_server&) = delete;
  ~module_server() override { functions_.stop(server_); }

  std::string bound_address() const override {
    return admin::take_malloced(functions_.bound_address(server_));
  }
  void note_log(std::string_view level, std::string_view time, std::string_view text) override {
    functions_.note_log(server_, level.data(), level.size(), time.data(), time.size(), text.data(),
                        text.size());
  }

 private:
  const p2psip_admin_module& functions_;
  p2psip_admin_server* server_;
};

/// p2psip_admin_source::take for an admin::snapshot_source: its snapshot as JSON text.
char* take_snapshot_json(void* context) {
  try {
    auto s = static_cast<admin::snapshot_source*>(context)->take();
    if (!s) return nullptr;
    // Invalid UTF-8 in a string (none is expected: hex, addresses, names) is replaced, not an
    // exception that would make every scrape a 503.
    return admin::malloc_copy(
        nlohmann::json(*s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (const std::exception&) {
    return nullptr;  // out of memory: the module answers 503
  }
}

}  // namespace

const std::error_category& admin_module_category() noexcept {
  static const admin_module_category_impl category;
  return category;
}

std::error_code make_error_code(admin_module_errc e) noexcept {
  return {static_cast<int>(e), admin_module_category()};
}

io_thread_snapshot_source::io_thread_snapshot_source(asio::io_context& io,
                                                     const peer_runtime& runtime,
                                                     const sip_front_end* sip,
                                                     std::chrono::milliseconds timeout)
    : io_(io), runtime_(runtime), sip_(sip), timeout_(timeout) {}

std::optional<admin::snapshot> io_thread_snapshot_source::take() noexcept {
  try {
    auto promise = std::make_shared<std::promise<admin::snapshot>>();
    auto future = promise->get_future();
    // Captures no `this`: a snapshot the module stopped waiting for may still run later.
    asio::post(io_, [promise, runtime = &runtime_, sip = sip_] {
      try {
        promise->set_value(take_admin_snapshot(*runtime, sip));
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
    if (future.wait_for(timeout_) != std::future_status::ready) return std::nullopt;
    return future.get();
  } catch (const std::exception&) {
    return std::nullopt;  // a copy that failed (out of memory): the module answers 503
  }
}

protocol::result<std::filesystem::path, protocol::error_record> admin_http_module::locate() {
  std::error_code ec;
  const auto program = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return module_error(
        admin_module_errc::not_found,
        "--admin-listen: cannot find the admin HTTP module: /proc/self/exe: " + ec.message());
  }
  const auto dir = program.parent_path();
  auto beside = dir / admin::module_file_name;
  if (std::filesystem::exists(beside, ec)) return beside;
  return (dir / P2PSIP_ADMIN_MODULE_INSTALLED).lexically_normal();
}

protocol::result<admin_http_module, protocol::error_record> admin_http_module::open(
    const std::filesystem::path& path) {
  // RTLD_NOW: a dependency or symbol missing shows here, with the path, not at the first
  // request; RTLD_LOCAL: civetweb's and prometheus-cpp's symbols stay the module's.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return module_error(admin_module_errc::load_failed,
                        "--admin-listen: cannot load the admin HTTP module " + path.string() +
                            ": " + (why ? why : "dlopen failed"));
  }
  ::dlerror();
  void* entry = ::dlsym(handle, admin::module_start_symbol);
  if (!entry) {
    // Copied before dlclose, which frees the string dlerror() returned.
    const char* error_text = ::dlerror();
    const std::string why =
        error_text ? error_text : "no " + std::string(admin::module_start_symbol);
    ::dlclose(handle);  // nothing of ours ran in it
    return module_error(
        admin_module_errc::no_entry_point,
        "--admin-listen: " + path.string() + " is not the admin HTTP module: " + why);
  }
  // dlsym gives an object pointer; POSIX guarantees it converts to the function's.
  return admin_http_module(path, reinterpret_cast<admin::module_start_function>(entry));  // NOLINT
}

protocol::result<std::unique_ptr<admin::server>, protocol::error_record> admin_http_module::start(
    const admin::server_config& config, admin::snapshot_source& source) const {
  const auto failed = [&](char* error) {
    auto why = admin::take_malloced(error);
    return module_error(
        admin_module_errc::start_failed,
        why.empty() ? "--admin-listen " + config.listen + ": the module failed" : std::move(why));
  };
  char* error = nullptr;
  const p2psip_admin_module* functions = start_(admin::module_interface_version, &error);
  if (!functions) return failed(error);
  p2psip_admin_server* server = functions->start(nlohmann::json(config).dump().c_str(),
                                                 {&source, take_snapshot_json}, &error);
  if (!server) return failed(error);
  return std::unique_ptr<admin::server>(std::make_unique<module_server>(*functions, server));
}

}  // namespace p2psip::peer
