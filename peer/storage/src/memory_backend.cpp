// The memory-only backend: the data store already holds everything in memory, so there is
// nothing to keep here; nothing survives the process.

#include "p2psip/peer/storage_backend.hpp"

namespace p2psip::peer {

namespace {

class memory_backend final : public storage_backend {
 public:
  stored_state load() override { return {}; }
  storage_result<void> apply(const change_set&) override { return {}; }
  std::string describe() const override { return "memory"; }
};

}  // namespace

std::unique_ptr<storage_backend> make_memory_backend() {
  return std::make_unique<memory_backend>();
}

namespace {

class storage_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.storage"; }
  std::string message(int ev) const override {
    switch (static_cast<storage_errc>(ev)) {
      case storage_errc::ok: return "success";
      case storage_errc::cannot_open: return "the store cannot be opened";
      case storage_errc::not_writable: return "the store is not writable";
      case storage_errc::corrupt: return "the store is corrupt";
      case storage_errc::schema_too_new: return "the store was written by a newer version";
      case storage_errc::write_failed: return "a write to the store failed";
      case storage_errc::backend_failed: return "the store failed earlier";
      case storage_errc::load_failed: return "the store's contents could not be loaded";
      case storage_errc::store_changed: return "the store is not the one its manifest records";
    }
    return "unknown storage error";
  }
};

}  // namespace

const std::error_category& storage_category() noexcept {
  static const storage_category_impl category;
  return category;
}

std::error_code make_error_code(storage_errc e) noexcept {
  return {static_cast<int>(e), storage_category()};
}

}  // namespace p2psip::peer
