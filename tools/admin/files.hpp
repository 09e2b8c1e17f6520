#pragma once
// Files of p2psip-admin: read with a size limit; write atomically, with an exact mode, and never
// over an existing file unless asked to.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "issuance.hpp"

namespace p2psip::admin {

/// Mode of private key files.
inline constexpr mode_t key_file_mode = 0600;
/// Mode of certificates and configuration documents.
inline constexpr mode_t public_file_mode = 0644;

/// The whole file, refusing files larger than `max_size`. Errors name the file.
result<std::string> read_file(const std::filesystem::path& path,
                              std::size_t max_size = std::size_t{1} << 20);

/// Writes `content` to a temporary file in the same directory with exactly `mode`, syncs it, then
/// moves it into place: over an existing file when `overwrite`, otherwise only if `path` does not
/// exist ("PATH exists (use --force to overwrite)").
result<void> write_file(const std::filesystem::path& path, std::string_view content, mode_t mode,
                        bool overwrite);

/// Fails with "PATH exists (use --force to overwrite)" for the first path that exists, unless
/// `overwrite`. Lets a command refuse before it does any work.
result<void> refuse_existing(std::initializer_list<std::filesystem::path> paths, bool overwrite);

/// Creates `dir` and its parents (new directories get `mode`); fine if it exists as a directory.
result<void> make_directory(const std::filesystem::path& dir, mode_t mode);

}  // namespace p2psip::admin
