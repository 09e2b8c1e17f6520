#pragma once
// Giving back the pages of an SDK thread's stack that deep calls touched once and that an idle
// client no longer uses. Internal to the SDK.

#include <cstddef>

namespace p2psip::client::detail {

/// Tells the kernel that the calling thread's stack below the caller's frame (less a margin of
/// `keep_below` bytes) holds nothing, so that its pages stop counting in RSS until a deep call
/// touches them again (they come back zero-filled, which is all a stack below its pointer may
/// hold: the x86-64 and AArch64 ABIs keep nothing live there but a red zone of at most 128
/// bytes, well inside the margin). An SDK client's I/O thread touches about 16 KiB of stack in
/// the TLS handshake and the X.509 checks (Botan's frames) and then idles in the event loop a
/// few frames deep. Call it from a shallow frame (a handler posted to the event loop). Returns
/// the bytes given back (0 when the stack's bounds are unknown or nothing lies below the
/// margin). Never throws.
std::size_t release_unused_stack(std::size_t keep_below = 2 * 1024) noexcept;

}  // namespace p2psip::client::detail
