#pragma once
// `p2psip-admin ring`: walks the overlay's ring as a RELOAD client and lists every peer.

namespace p2psip::admin {

/// The `ring` command (argv[0] is "ring"). Exit status: 0 the walk came back to its start,
/// 1 it broke off (an inconsistent ring, --max-steps reached, an error answer), 5 a peer could not
/// be reached or did not answer in time (what was found is printed all the same), 2 usage,
/// 6 configuration or credentials unusable.
int cmd_ring(int argc, char** argv);

}  // namespace p2psip::admin
