#pragma once
// The peer's state as the admin HTTP module shows it, copied in one piece on the peer's I/O
// thread (the only thread that may read the runtime) into the module's plain snapshot: Node-IDs
// in hex, message codes and Error-Codes by name.

#include "p2psip/peer/admin_module.hpp"
#include "p2psip/peer/peer_runtime.hpp"
#include "p2psip/peer/sip_front_end.hpp"

namespace p2psip::peer {

/// The snapshot of `runtime` (and `sip`, when serving SIP). Call on the I/O thread.
admin::snapshot take_admin_snapshot(const peer_runtime& runtime, const sip_front_end* sip);

}  // namespace p2psip::peer
