#pragma once
// The project version (CMake's project(VERSION), the same the SDK's p2psip_version() reports).

#include <string>
#include <string_view>

namespace p2psip::tool {

/// "0.1.0".
std::string_view project_version() noexcept;

/// What --version prints: "PROGRAM (p2psip) VERSION" and a line saying what it is, in the
/// form help2man reads.
std::string version_text(std::string_view program);

}  // namespace p2psip::tool
