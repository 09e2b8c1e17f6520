#pragma once
// SIGHUP's part for the configuration: the --config file is read again and, when it holds a
// newer document signed by the current document's authority (the checks a ConfigUpdate passes,
// node_setup::take_update), the peer takes it and sends it to the nodes linked to it in
// ConfigUpdates, from where it spreads over the overlay. A document that does not parse, is not
// signed so, is for another overlay, or is not newer is refused: the peer keeps its document and
// runs on.

#include <string>

#include "p2psip/node/node_setup.hpp"
#include "p2psip/peer/peer_runtime.hpp"

namespace p2psip::peer_daemon {

/// What a reload did, for the log.
struct reload_report {
  node::log_level level = node::log_level::info;  ///< warn when refused
  std::string text;                               ///< one line
  bool applied = false;                           ///< a newer document was taken
};

/// The file's bytes, at most `max_bytes`. Errors: the file and the reason, in words.
protocol::result<protocol::bytes, std::string> read_document(const std::string& file,
                                                             std::size_t max_bytes);

/// Reads setup.config_file again and applies it to `runtime` (see above). Never throws.
reload_report reload_configuration(node::node_setup& setup, peer::peer_runtime& runtime);

}  // namespace p2psip::peer_daemon
