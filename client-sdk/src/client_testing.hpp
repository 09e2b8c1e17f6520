#pragma once
// Test hooks of libp2psip-client: internal state the SDK's tests check. Not part of the API (not
// installed); exported only because the tests link the shared library.

#include <cstddef>
#include <string>
#include <vector>

#include "p2psip/client/errors.hpp"

namespace p2psip::client::testing {

/// One overlay setup shared by the clients of this process (shared_overlay.hpp).
struct shared_overlay_info {
  std::string config_file;  ///< the file of the client that loaded it first
  long references = 0;      ///< references held: the same number (two) for each client using it
  const void* identity = nullptr;  ///< its address: the same for every client sharing it
};

/// The live shared overlay setups of this process.
P2PSIP_CLIENT_API std::vector<shared_overlay_info> shared_overlays();

/// detail::release_unused_stack (thread_stack.hpp) on the calling thread, with its margin.
P2PSIP_CLIENT_API std::size_t release_unused_stack();

}  // namespace p2psip::client::testing
