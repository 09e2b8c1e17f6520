// The SIP users file: round trip, the exact text written, every refusal with its message, the mode
// rules, and the lookups by digest identity and by AOR.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "p2psip/peer/sip_users.hpp"
#include "p2psip/sip/uri.hpp"

namespace fs = std::filesystem;
namespace peer = p2psip::peer;
using peer::sip_user;
using peer::sip_users_errc;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "p2psip-sip-users.XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

sip_user alice() {
  return sip_user{"sip:alice@overlay.example",
                  "alice",
                  "overlay.example",
                  "deca57b364da59c666d257bca8311345",
                  "21b20a3e98c0b9d43329a7de823aafa78acdb781e9b8d2e9bdc47d2024eba88e",
                  "/etc/p2psip/users/alice@overlay.example.crt",
                  "/etc/p2psip/users/alice@overlay.example.key"};
}

sip_user bob() {
  sip_user u = alice();
  u.aor = "sip:bob@overlay.example";
  u.username = "bob";
  u.ha1_md5 = std::string(32, 'b');
  u.ha1_sha256 = std::string(64, 'b');
  u.certificate = "/etc/p2psip/users/bob.crt";
  u.private_key = "/etc/p2psip/users/bob.key";
  return u;
}

void write_text(const fs::path& p, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
  }
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<unsigned>(st.st_mode) & 07777u;
}

// The file with one user object whose field `field` is replaced by `json_value` (or removed when
// json_value is empty).
std::string with_field(const std::string& field, const std::string& json_value) {
  const std::vector<std::pair<std::string, std::string>> fields{
      {"aor", "\"sip:alice@overlay.example\""},
      {"username", "\"alice\""},
      {"realm", "\"overlay.example\""},
      {"ha1_md5", "\"deca57b364da59c666d257bca8311345\""},
      {"ha1_sha256", "\"21b20a3e98c0b9d43329a7de823aafa78acdb781e9b8d2e9bdc47d2024eba88e\""},
      {"certificate", "\"/x/alice.crt\""},
      {"private_key", "\"/x/alice.key\""}};
  std::string obj;
  bool replaced = false;
  for (const auto& [name, value] : fields) {
    std::string v = value;
    if (name == field) {
      replaced = true;
      if (json_value.empty()) continue;
      v = json_value;
    }
    obj += (obj.empty() ? "" : ", ") + ("\"" + name + "\": " + v);
  }
  if (!replaced) obj += ", \"" + field + "\": " + json_value;
  return "{\"version\": 1, \"users\": [{" + obj + "}]}";
}

// Loads `text` (mode 0600) and expects the refusal `code` with message FILE + ": " + `message`.
void expect_refused(const std::string& text, sip_users_errc code, const std::string& message) {
  temp_dir dir;
  const fs::path p = dir.path / "users.json";
  write_text(p, text);
  const auto r = peer::load_sip_users(p);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == code);
  CHECK(r.error().message == p.string() + ": " + message);
}

}  // namespace

TEST_CASE("round trip and the exact text") {
  temp_dir dir;
  const fs::path p = dir.path / "users.json";
  const std::vector<sip_user> users{alice(), bob()};
  REQUIRE(peer::save_sip_users(p, users));
  CHECK(mode_of(p) == 0600);
  const auto back = peer::load_sip_users(p);
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  CHECK(*back == users);
  CHECK(read_text(p) == peer::format_sip_users(users));
  CHECK(peer::format_sip_users({alice()}) ==
        "{\n"
        "  \"version\": 1,\n"
        "  \"users\": [\n"
        "    {\n"
        "      \"aor\": \"sip:alice@overlay.example\",\n"
        "      \"username\": \"alice\",\n"
        "      \"realm\": \"overlay.example\",\n"
        "      \"ha1_md5\": \"deca57b364da59c666d257bca8311345\",\n"
        "      \"ha1_sha256\": "
        "\"21b20a3e98c0b9d43329a7de823aafa78acdb781e9b8d2e9bdc47d2024eba88e\",\n"
        "      \"certificate\": \"/etc/p2psip/users/alice@overlay.example.crt\",\n"
        "      \"private_key\": \"/etc/p2psip/users/alice@overlay.example.key\"\n"
        "    }\n"
        "  ]\n"
        "}\n");
  // An empty list is a valid file.
  REQUIRE(peer::save_sip_users(p, {}));
  CHECK(peer::load_sip_users(p)->empty());
  // No temporary file is left behind.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("save replaces the file atomically with mode 0600") {
  temp_dir dir;
  const fs::path p = dir.path / "users.json";
  write_text(p, "old", 0644);
  const mode_t old_umask = ::umask(0);
  const auto ok = peer::save_sip_users(p, {alice()});
  ::umask(old_umask);
  REQUIRE(ok);
  CHECK(mode_of(p) == 0600);
  CHECK(peer::load_sip_users(p));
  // An invalid user: nothing written.
  sip_user bad = bob();
  bad.ha1_md5 = "abc";
  const auto r = peer::save_sip_users(p, {alice(), bad});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == sip_users_errc::bad_entry);
  CHECK(r.error().message == p.string() + ": users[1].ha1_md5: expected 32 hex digits, found 3");
  CHECK(*peer::load_sip_users(p) == std::vector<sip_user>{alice()});
  // A duplicate: nothing written.
  const auto dup = peer::save_sip_users(p, {alice(), bob(), alice()});
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code == sip_users_errc::duplicate);
  // A directory that does not exist.
  const auto missing = peer::save_sip_users(dir.path / "none" / "users.json", {alice()});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == sip_users_errc::cannot_write);
}

TEST_CASE("file modes: wider than 0600 is refused like ssh refuses a key") {
  temp_dir dir;
  const fs::path p = dir.path / "users.json";
  REQUIRE(peer::save_sip_users(p, {alice()}));
  for (const mode_t mode : {0644u, 0640u, 0604u, 0660u, 0700u, 0610u}) {
    CAPTURE(mode);
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    const auto r = peer::load_sip_users(p);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == sip_users_errc::too_open);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    CHECK(r.error().message == p.string() + ": permissions " + octal +
                                   " are too open: the file holds password hashes and must be "
                                   "readable by its owner only (chmod 600 " +
                                   p.string() + ")");
  }
  for (const mode_t mode : {0600u, 0400u}) {
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    CHECK(peer::load_sip_users(p));
  }
  // Not a file, or no file.
  CHECK(peer::load_sip_users(dir.path).error().code == sip_users_errc::cannot_read);
  const auto missing = peer::load_sip_users(dir.path / "none.json");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == sip_users_errc::cannot_read);
  CHECK(missing.error().message ==
        (dir.path / "none.json").string() + ": cannot open: No such file or directory");
}

TEST_CASE("malformed files name the file and the problem") {
  expect_refused("{\"version\": 1, \"users\": [", sip_users_errc::malformed,
                 "not JSON: parse error at line 1, column 26: syntax error while parsing value - "
                 "unexpected end of input; expected '[', '{', or a literal");
  expect_refused("[]", sip_users_errc::malformed,
                 "expected an object with \"version\" and \"users\"");
  expect_refused("{\"users\": []}", sip_users_errc::malformed, "no \"version\" number");
  expect_refused("{\"version\": \"1\", \"users\": []}", sip_users_errc::malformed,
                 "no \"version\" number");
  expect_refused("{\"version\": 2, \"users\": []}", sip_users_errc::malformed,
                 "version 2 is not one this p2psip reads (1)");
  expect_refused("{\"version\": 1}", sip_users_errc::malformed, "no \"users\" array");
  expect_refused("{\"version\": 1, \"users\": {}}", sip_users_errc::malformed,
                 "no \"users\" array");
  expect_refused("{\"version\": 1, \"users\": [], \"extra\": 1}", sip_users_errc::malformed,
                 "unknown field \"extra\"");
  expect_refused("{\"version\": 1, \"users\": [7]}", sip_users_errc::bad_entry,
                 "users[0]: expected an object");
}

TEST_CASE("bad entries name the user and the field") {
  // The template itself is fine.
  {
    temp_dir dir;
    write_text(dir.path / "u.json", with_field("aor", "\"sip:alice@overlay.example\""));
    const auto r = peer::load_sip_users(dir.path / "u.json");
    CHECK_MESSAGE(r, (r ? "" : r.error().message));
  }
  const auto bad = sip_users_errc::bad_entry;
  for (const char* field :
       {"aor", "username", "realm", "ha1_md5", "ha1_sha256", "certificate", "private_key"}) {
    expect_refused(with_field(field, ""), bad, std::string("users[0]: no \"") + field + "\"");
  }
  expect_refused(with_field("password", "\"secret\""), bad, "users[0]: unknown field \"password\"");
  expect_refused(with_field("realm", "7"), bad, "users[0]: realm: expected a string");
  expect_refused(with_field("ha1_md5", "\"deca57b364da59c666d257bca831134\""), bad,
                 "users[0].ha1_md5: expected 32 hex digits, found 31");
  expect_refused(with_field("ha1_md5", "\"DECA57B364DA59C666D257BCA8311345\""), bad,
                 "users[0].ha1_md5: expected lower-case hex digits");
  expect_refused(with_field("ha1_sha256", "\"deca57b364da59c666d257bca8311345\""), bad,
                 "users[0].ha1_sha256: expected 64 hex digits, found 32");
  expect_refused(with_field("aor", "\"alice@overlay.example\""), bad,
                 "users[0].aor: 'alice@overlay.example' is not a sip: URI with a user part");
  expect_refused(with_field("aor", "\"sip:overlay.example\""), bad,
                 "users[0].aor: 'sip:overlay.example' is not a sip: URI with a user part");
  expect_refused(with_field("aor", "\"tel:+15551234\""), bad,
                 "users[0].aor: 'tel:+15551234' is not a sip: URI with a user part");
  expect_refused(with_field("aor", "\"sip:alice@overlay.example:5060\""), bad,
                 "users[0].aor: 'sip:alice@overlay.example:5060' is not an address-of-record (no "
                 "password, port, parameters or headers)");
  expect_refused(with_field("aor", "\"sip:alice@overlay.example;transport=tcp\""), bad,
                 "users[0].aor: 'sip:alice@overlay.example;transport=tcp' is not an "
                 "address-of-record (no password, port, parameters or headers)");
  expect_refused(with_field("username", "\"Alice\""), bad,
                 "users[0].username: 'Alice' is not the AOR's user part 'alice'");
  expect_refused(with_field("realm", "\"\""), bad, "users[0].realm: empty");
  expect_refused(with_field("realm", "\"a\\u0001b\""), bad,
                 "users[0].realm: holds a control character");
  expect_refused(with_field("certificate", "\"alice.crt\""), bad,
                 "users[0].certificate: 'alice.crt' is not an absolute path");
  expect_refused(with_field("private_key", "\"\""), bad, "users[0].private_key: empty");
}

TEST_CASE("duplicates are refused") {
  temp_dir dir;
  const fs::path p = dir.path / "users.json";
  // The same AOR under the registrar's comparison: host case and escapes do not make a new user.
  sip_user twin = bob();
  twin.aor = "sip:%61lice@OVERLAY.example";
  twin.username = "alice";
  twin.realm = "other.example";
  write_text(p, peer::format_sip_users({alice(), twin}));
  auto r = peer::load_sip_users(p);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == sip_users_errc::duplicate);
  CHECK(r.error().message ==
        p.string() + ": users[1].aor: sip:%61lice@OVERLAY.example is also users[0]'s");
  // The same digest user name in the same realm (another host): ambiguous, refused.
  sip_user other_host = alice();
  other_host.aor = "sip:alice@elsewhere.example";
  write_text(p, peer::format_sip_users({alice(), bob(), other_host}));
  r = peer::load_sip_users(p);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == sip_users_errc::duplicate);
  CHECK(r.error().message == p.string() +
                                 ": users[2].username: 'alice' in realm 'overlay.example' is also "
                                 "users[0]'s");
  // In another realm it is another identity.
  other_host.realm = "elsewhere.example";
  write_text(p, peer::format_sip_users({alice(), bob(), other_host}));
  CHECK(peer::load_sip_users(p));
}

TEST_CASE("canonical AORs") {
  CHECK(peer::canonical_aor("sip:alice@overlay.example") == "alice@overlay.example");
  CHECK(peer::canonical_aor("sips:alice@Overlay.Example") == "alice@overlay.example");
  CHECK(peer::canonical_aor("SIP:alice@overlay.example;user=phone?subject=x") ==
        "alice@overlay.example");
  CHECK(peer::canonical_aor("sip:%61lice@overlay.example") == "alice@overlay.example");
  CHECK(peer::canonical_aor("sip:Alice@overlay.example") == "Alice@overlay.example");
  CHECK_FALSE(peer::canonical_aor("sip:overlay.example"));
  CHECK_FALSE(peer::canonical_aor("sip:alice@overlay.example:5060"));
  CHECK_FALSE(peer::canonical_aor("sip:alice:pw@overlay.example"));
  CHECK_FALSE(peer::canonical_aor("tel:+15551234"));
  CHECK_FALSE(peer::canonical_aor("mailto:alice@overlay.example"));
  CHECK_FALSE(peer::canonical_aor("alice@overlay.example"));
  CHECK_FALSE(peer::canonical_aor(""));
}

TEST_CASE("directory lookups") {
  sip_user other = bob();
  other.realm = "elsewhere.example";
  other.aor = "sip:bob@elsewhere.example";
  const peer::sip_user_directory dir({alice(), bob(), other});
  CHECK(dir.size() == 3);
  // By digest identity: exact user name and realm.
  REQUIRE(dir.find("alice", "overlay.example") != nullptr);
  CHECK(dir.find("alice", "overlay.example")->aor == "sip:alice@overlay.example");
  CHECK(dir.find("bob", "elsewhere.example")->aor == "sip:bob@elsewhere.example");
  CHECK(dir.find("bob", "overlay.example")->aor == "sip:bob@overlay.example");
  CHECK(dir.find("Alice", "overlay.example") == nullptr);
  CHECK(dir.find("alice", "OVERLAY.example") == nullptr);
  CHECK(dir.find("alice", "elsewhere.example") == nullptr);
  CHECK(dir.find("", "") == nullptr);
  // By AOR, with the registrar's rules.
  for (const char* aor : {"sip:alice@overlay.example", "sips:alice@overlay.example",
                          "sip:alice@OVERLAY.EXAMPLE", "sip:%61lice@overlay.example",
                          "sip:alice@overlay.example;transport=tls", "SIP:alice@overlay.example"}) {
    CAPTURE(aor);
    const auto* u = dir.find_aor(aor);
    REQUIRE(u != nullptr);
    CHECK(u->username == "alice");
  }
  for (const char* aor :
       {"sip:Alice@overlay.example", "sip:alice@overlay.example:5060",
        "sip:alice@elsewhere.example", "tel:alice", "sip:overlay.example", "not a uri"}) {
    CAPTURE(aor);
    CHECK(dir.find_aor(aor) == nullptr);
  }
  const auto uri = p2psip::sip::parse_uri("sips:bob@Elsewhere.Example");
  REQUIRE(uri);
  REQUIRE(dir.find_aor(*uri) != nullptr);
  CHECK(dir.find_aor(*uri)->realm == "elsewhere.example");
  // An empty directory finds nothing.
  const peer::sip_user_directory empty;
  CHECK(empty.find("alice", "overlay.example") == nullptr);
  CHECK(empty.find_aor("sip:alice@overlay.example") == nullptr);
}
