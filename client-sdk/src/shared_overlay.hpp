#pragma once
// What the clients of one process share: the overlay setup (checked configuration, trust store
// with its parsed roots, the roots parsed for TLS, the document's bytes) of each configuration
// document in use. A process that runs many clients of one overlay would otherwise hold all of
// it once per client (about 30 KiB each, docs/benchmarks.md "Client and peer memory"). Internal
// to the SDK.

#include <filesystem>
#include <memory>
#include <string>

#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::client::detail {

/// The overlay setup of `config_file` for a client expecting `overlay_name` (empty: the
/// document's own). Every call reads and checks the file as node::load_overlay_setup does (same
/// errors: the signature, the expected overlay and the expiry are checked for every client);
/// when a live setup of the same document bytes exists, that one is returned and the fresh
/// parse dropped. Kept while a client holds it (weak references only), so a changed file gives
/// the next client a setup of its own. Thread-safe. Never throws.
protocol::result<std::shared_ptr<const node::overlay_setup>, protocol::error_record>
shared_overlay_setup(const std::filesystem::path& config_file, const std::string& overlay_name);

}  // namespace p2psip::client::detail
