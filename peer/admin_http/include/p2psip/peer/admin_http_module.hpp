#pragma once
// `p2psip-peer --admin-listen IP:PORT`: the admin HTTP server lives in a module,
// p2psip-admin-http.so (peer/admin_http/module, the interface in admin_module.hpp), that the
// peer opens only when asked, so that civetweb and prometheus-cpp are not loaded into every
// peer. This is the peer's side: finding and opening the module, and handing it snapshots taken
// on the peer's I/O thread.
//
// Where the module is: beside the program (a build tree: the module is built into the peer's
// directory), else at the installed place, the program's directory then ../LIBDIR/p2psip
// (P2PSIP_ADMIN_MODULE_INSTALLED, e.g. /usr/bin/../lib/x86_64-linux-gnu/p2psip). Once opened it
// stays loaded until the process exits: civetweb and prometheus-cpp keep state of their own
// (thread-locals, statics) that we do not control, so it is never dlclose'd.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include <asio/io_context.hpp>

#include "p2psip/peer/admin_module.hpp"
#include "p2psip/peer/peer_runtime.hpp"
#include "p2psip/peer/sip_front_end.hpp"
#include "p2psip/protocol/errors.hpp"

namespace p2psip::peer {

enum class admin_module_errc {
  ok = 0,
  not_found = 1,   ///< the program's own path could not be read (/proc/self/exe)
  load_failed,     ///< dlopen failed (missing file, not a library, a missing dependency)
  no_entry_point,  ///< the library has no p2psip_admin_http_module_start
  start_failed,    ///< the module refused to start: the address, or another interface version
};
const std::error_category& admin_module_category() noexcept;
std::error_code make_error_code(admin_module_errc e) noexcept;

/// Hands the module snapshots: posts take_admin_snapshot to the peer's io_context and waits for
/// it at most `timeout` (then nullopt: the module answers 503). Waits on the calling (HTTP)
/// thread; the copy runs on the I/O thread, the only one that reads the runtime.
class io_thread_snapshot_source final : public admin::snapshot_source {
 public:
  /// `runtime` (and `sip`, may be null) must outlive this source and are read only on `io`'s
  /// thread.
  io_thread_snapshot_source(asio::io_context& io, const peer_runtime& runtime,
                            const sip_front_end* sip, std::chrono::milliseconds timeout);
  std::optional<admin::snapshot> take() noexcept override;

 private:
  asio::io_context& io_;
  const peer_runtime& runtime_;
  const sip_front_end* sip_;
  std::chrono::milliseconds timeout_;
};

/// The opened module, from which servers are started.
class admin_http_module {
 public:
  /// Where this program looks for the module: beside itself if it is there, else the installed
  /// place. Errors: admin_module_errc::not_found when the program's own path cannot be read.
  static protocol::result<std::filesystem::path, protocol::error_record> locate();
  /// Opens the module at `path` and finds its entry point. Errors: load_failed and
  /// no_entry_point, the message naming `path` and dlerror's reason.
  static protocol::result<admin_http_module, protocol::error_record> open(
      const std::filesystem::path& path);

  /// The server listening at `config.listen`, serving `source` (which must outlive it).
  /// Errors: start_failed with the module's reason (the address and civetweb's reason).
  protocol::result<std::unique_ptr<admin::server>, protocol::error_record> start(
      const admin::server_config& config, admin::snapshot_source& source) const;

  const std::filesystem::path& path() const { return path_; }

 private:
  admin_http_module(std::filesystem::path path, admin::module_start_function entry)
      : path_(std::move(path)), start_(entry) {}

  std::filesystem::path path_;
  admin::module_start_function start_;
};

}  // namespace p2psip::peer

template <>
struct std::is_error_code_enum<p2psip::peer::admin_module_errc> : std::true_type {};
