#include "shared_overlay.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

#include "client_testing.hpp"

namespace p2psip::client::detail {

namespace {

/// The setups clients hold, by weak reference: an entry ends with its last client.
struct registry {
  std::mutex mutex;
  std::vector<std::weak_ptr<const node::overlay_setup>> setups;

  /// With `mutex` held: forgets setups no client holds any more.
  void prune_locked() {
    std::erase_if(setups, [](const auto& w) { return w.expired(); });
  }
};

registry& the_registry() {
  static registry r;  // never destroyed before a client: clients hold what it points to
  return r;
}

}  // namespace

protocol::result<std::shared_ptr<const node::overlay_setup>, protocol::error_record>
shared_overlay_setup(const std::filesystem::path& config_file, const std::string& overlay_name) {
  // Every check runs for every client (the document may have expired, or a client may expect
  // another overlay name): only the result is shared.
  auto fresh = node::load_overlay_setup(config_file, overlay_name);
  if (!fresh) return protocol::unexpected(fresh.error());
  auto& r = the_registry();
  std::lock_guard lock(r.mutex);
  r.prune_locked();
  // Equal bytes parse to an equal configuration, roots and trust settings. A document that
  // could not be read again after its checks (empty) is not shared.
  if (!fresh->document.empty()) {
    for (const auto& w : r.setups) {
      auto held = w.lock();
      if (held && held->document == fresh->document) return held;
    }
  }
  auto made = std::make_shared<const node::overlay_setup>(std::move(*fresh));
  if (!made->document.empty()) r.setups.push_back(made);
  return made;
}

}  // namespace p2psip::client::detail

namespace p2psip::client::testing {

std::vector<shared_overlay_info> shared_overlays() {
  auto& r = detail::the_registry();
  std::lock_guard lock(r.mutex);
  r.prune_locked();
  std::vector<shared_overlay_info> out;
  for (const auto& w : r.setups) {
    if (auto held = w.lock()) {
      // Less the reference taken here.
      out.push_back({held->config_file.string(), held.use_count() - 1, held.get()});
    }
  }
  return out;
}

}  // namespace p2psip::client::testing
