// POSIX file handling of p2psip-admin.

#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

namespace p2psip::admin {

namespace fs = std::filesystem;

namespace {

admin_error errno_error(const fs::path& path, std::string_view what, int err) {
  return admin_error{path.string() + ": " + std::string(what) + ": " + std::strerror(err)};
}

admin_error exists_error(const fs::path& path) {
  return admin_error{path.string() + " exists (use --force to overwrite)"};
}

bool exists_no_follow(const fs::path& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

}  // namespace

result<std::string> read_file(const fs::path& path, std::size_t max_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error(path, "cannot open", errno);
  std::string text(max_size + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return admin_error{path.string() + ": read error"};
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_size) {
    return admin_error{path.string() + ": larger than " + std::to_string(max_size) + " bytes"};
  }
  return text;
}

result<void> refuse_existing(std::initializer_list<fs::path> paths, bool overwrite) {
  if (overwrite) return {};
  for (const auto& p : paths) {
    if (exists_no_follow(p)) return exists_error(p);
  }
  return {};
}

result<void> make_directory(const fs::path& dir, mode_t mode) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  if (!dir.parent_path().empty() && dir.parent_path() != dir) {
    if (auto r = make_directory(dir.parent_path(), mode); !r) return r;
  }
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return errno_error(dir, "cannot create directory", errno);
  }
  if (!fs::is_directory(dir, ec)) return admin_error{dir.string() + ": not a directory"};
  return {};
}

result<void> write_file(const fs::path& path, std::string_view content, mode_t mode,
                        bool overwrite) {
  if (!overwrite && exists_no_follow(path)) return exists_error(path);
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::string tmp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  // mkstemp creates the file with mode 0600, so a key is never readable by others, even briefly.
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return errno_error(path, "cannot create a temporary file", errno);
  auto fail = [&](std::string_view what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return errno_error(path, what, err);
  };
  if (::fchmod(fd, mode) != 0) return fail("cannot set the mode", errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write failed", errno);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync failed", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errno_error(path, "close failed", err);
  }
  if (overwrite) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return errno_error(path, "cannot move into place", err);
    }
    return {};
  }
  // link() fails if the name exists: no window in which another writer's file is replaced.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST) return exists_error(path);
    return errno_error(path, "cannot move into place", err);
  }
  ::unlink(tmp.c_str());
  return {};
}

}  // namespace p2psip::admin
