// p2psip-client: a RELOAD client (RFC 6940 section 4.2.1) on the command line. It attaches to one
// peer of an overlay through the client SDK (p2psip::client, its public API only), runs one
// command, prints the result on standard output and exits (sip listen: on SIGINT or SIGTERM).
//
//   p2psip-client [--config overlay.xml --cert alice.crt --key alice.key] [--peer HOST:PORT ...]
//                 [--overlay NAME] [--timeout MS] [--json] [--quiet]
//                 [--sip-routing direct|outbound-proxy] [--sip-listen IP:PORT] COMMAND ARGS...
//
// --config, --cert, --key and --peer default to P2PSIP_CONFIG, P2PSIP_CERT, P2PSIP_KEY and
// P2PSIP_PEER, then to the per-user file `p2psip-client setup` writes (defaults.hpp).
//
// Every error is one line on standard error, "p2psip-client: message", and nothing is written to
// standard output except, with --json, one error document {"error": NAME, "message": TEXT,
// "exit_code": N}. Exit codes: see exit_text below (and README.md).

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

// Repeated options (--peer, --dict-key, --index) are given once per value; a comma inside a value
// is part of it.
#define CXXOPTS_VECTOR_DELIMITER '\0'
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "defaults.hpp"
#include "p2psip/client/client.hpp"
#include "p2psip/client/errors.hpp"
#include "p2psip/client/p2psip_client.h"
#include "p2psip/tool/exit_codes.hpp"
#include "p2psip/tool/log.hpp"
#include "p2psip/tool/options.hpp"
#include "p2psip/tool/version.hpp"
#include "text.hpp"

namespace {

namespace cl = p2psip::client;
using namespace p2psip::client_cli;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace tool = p2psip::tool;
using tool::exit_code;
constexpr int exit_ok = tool::status(exit_code::ok);
constexpr int exit_error = tool::status(exit_code::failure);
constexpr int exit_usage = tool::status(exit_code::usage);
constexpr int exit_not_found = tool::status(exit_code::not_found);
constexpr int exit_forbidden = tool::status(exit_code::forbidden);
constexpr int exit_network = tool::status(exit_code::network);
constexpr int exit_config = tool::status(exit_code::configuration);
constexpr int exit_invalid = tool::status(exit_code::invalid);
constexpr int exit_sip_error = tool::status(exit_code::sip_error);

/// A command: its name, its arguments, and what it does (the help's "Commands" section and
/// `p2psip-client COMMAND --help`).
struct command_doc {
  std::string_view name;
  std::string_view synopsis;
  std::string_view description;
};

const command_doc command_docs[] = {
    {"setup", "[--config FILE --cert FILE --key FILE] [--peer HOST:PORT ...]",
     "check the configuration, credentials and peers (and --overlay) given as options, else\n"
     "in P2PSIP_CONFIG, ..., and write them to the per-user defaults file\n"
     "($XDG_CONFIG_HOME/p2psip/client.conf, default ~/.config/p2psip/client.conf): later\n"
     "commands need none of these options"},
    {"put", "NAME (VALUE | - | --file PATH) [--lifetime S]",
     "store VALUE (-: standard input) as this client's entry under NAME (generic kind)"},
    {"get", "NAME [--owner USER|NODE] [--raw]",
     "every writer's value under NAME, one line each: OWNER_USER (NODE_ID): VALUE\n"
     "(--owner: only the value of that user or Node-ID; --raw: the bytes of the only value,\n"
     "nothing else)"},
    {"remove", "NAME", "delete this client's entry under NAME"},
    {"store",
     "RESOURCE --kind K (--value V | --file PATH) [--dict-key KEY | --index I]\n"
     "        [--lifetime S] [--generation G]",
     "store one item of kind K; dictionaries need --dict-key, arrays --index (a number, or\n"
     "'append'), single values neither; --value - and --file - read standard input"},
    {"fetch", "RESOURCE --kind K [--dict-key KEY ...] [--index A[-B] ...]",
     "the kind's values (default: all), one line each, with their signers"},
    {"stat", "RESOURCE --kind K [--dict-key KEY ...] [--index A[-B] ...]",
     "like fetch, but lengths and SHA-256 hashes instead of values"},
    {"find", "RESOURCE --kind K",
     "the Resource-ID nearest to RESOURCE's that holds data of kind K"},
    {"remove-item", "RESOURCE --kind K (--dict-key KEY ... | --index I ...)",
     "delete items of kind K (a single value: no --dict-key or --index)"},
    {"ping", "[RESOURCE]",
     "ping the attached peer (or the peer responsible for RESOURCE): node id, round trip"},
    {"register", "AOR [TARGET_AOR] [--lifetime S]",
     "register this client under AOR (RFC 7904 SIP-REGISTRATION): a route through its\n"
     "peer to it, or with TARGET_AOR, a forward to that AOR; AOR is the certificate's user"},
    {"unregister", "AOR", "remove this client's registration under AOR"},
    {"resolve", "AOR",
     "every binding of AOR, following forwards: OWNER_USER (NODE_ID): route N1,N2,... or\n"
     "uri U"},
    {"sip register", "AOR [--contact URI] [--lifetime S]",
     "store this client's registration under AOR (a route through its peer to it, or with\n"
     "--contact a forward to URI) and exit; sip unregister AOR removes it"},
    {"sip unregister", "AOR", "remove this client's registration under AOR"},
    {"sip resolve", "AOR", "as resolve"},
    {"sip message", "AOR TEXT [--content-type T]",
     "send a SIP MESSAGE (TEXT -: standard input); prints the final status line"},
    {"sip call", "AOR [--hangup-after S]",
     "call AOR (INVITE, signalling only): prints the progress lines (180 Ringing, ...) and\n"
     "the final status; after a 2xx waits S seconds (default 0) and hangs up; SIGINT while\n"
     "it rings cancels the call"},
    {"sip listen", "AOR [--accept | --reject] [--answer-after S] [--lifetime S]",
     "be reachable as AOR until SIGINT or SIGTERM: prints each incoming request as a line\n"
     "(--json: a JSON document per line), answers MESSAGE 200 and INVITE 200 (--accept,\n"
     "the default) or 486 (--reject)"},
};

/// An option only some commands take: its help starts with those commands, then ": ".
struct option_doc {
  std::string_view name;
  std::string_view argument;  // empty: a flag
  std::string_view help;
  bool repeatable = false;
};

const option_doc command_option_docs[] = {
    {"lifetime", "S",
     "put, store, remove-item, register, sip register, sip listen: lifetime in seconds (default "
     "3600)"},
    {"file", "PATH", "put, store: read the value from PATH (-: standard input)"},
    {"raw", "", "get: print the bytes of the only value, nothing else"},
    {"owner", "USER|NODE",
     "get: only the value written by this user (alice@example.org) or Node-ID (hex)"},
    {"kind", "K", "store, fetch, stat, find, remove-item: the kind"},
    {"value", "V", "store: the value (-: standard input)"},
    {"dict-key", "KEY",
     "store, fetch, stat, remove-item: a dictionary key (text, or hex:HEX; repeatable)", true},
    {"index", "I",
     "store, fetch, stat, remove-item: store: an array index or 'append'; fetch, stat: N or A-B; "
     "remove-item: N (repeatable)",
     true},
    {"generation", "G", "store, remove-item: the generation counter expected at the peer"},
    {"contact", "URI",
     "sip register: register a forward to this URI instead of a route to this client"},
    {"content-type", "T", "sip message: the body's media type (default text/plain)"},
    {"hangup-after", "S",
     "sip call: seconds to stay in an established call before hanging up (default 0)"},
    {"accept", "", "sip listen: answer INVITE 200 (the default)"},
    {"reject", "", "sip listen: answer INVITE 486 Busy Here"},
    {"answer-after", "S",
     "sip listen: let an INVITE ring this many seconds before answering (default 0)"},
};

constexpr std::string_view notes_text =
    "\n"
    "Kinds: a number (decimal or 0x hex) or sip-registration (1), turn-service (2),\n"
    "certificate-by-node (3), certificate-by-user (0x10), generic (0xf0000101), sip-gateway\n"
    "(0xf0000102). Dictionary keys (--dict-key; --key is the private key file): text, or hex:HEX\n"
    "for bytes. A VALUE starting with '-' goes after '--'.\n"
    "Values are printed as text; text with control characters (a newline, ...) in double quotes\n"
    "with C escapes (\\n, \\t, \\\", \\\\, \\xNN), binary values (not UTF-8) as base64:...; with\n"
    "--json a value is \"value\" when it is UTF-8, else \"value_base64\".\n"
    "\n"
    "Defaults: --config, --cert, --key and --peer come from the options, else from P2PSIP_CONFIG,\n"
    "P2PSIP_CERT, P2PSIP_KEY and P2PSIP_PEER (peers separated by commas), else from the file\n"
    "'p2psip-client setup' writes: $XDG_CONFIG_HOME/p2psip/client.conf (default\n"
    "~/.config/p2psip/client.conf; key = value lines: config, cert, key, overlay, peer).\n"
    "--peer takes host names too (resolved once, at start; every address is tried in order).\n"
    "\n"
    "Output: results on standard output (with --json: one JSON document; sip listen: one per\n"
    "line). Errors: one line on standard error \"p2psip-client: MESSAGE\"; with --json also\n"
    "{\"error\": NAME, \"message\": MESSAGE, \"exit_code\": N} on standard output. sip call\n"
    "prints its progress lines as they come, before a failure.\n";

const std::string exit_text = tool::exit_codes_help({
    {exit_code::ok, ""},
    {exit_code::failure, "unreadable --file, generation conflict, invalid answer, ..."},
    {exit_code::usage, ""},
    {exit_code::not_found,
     "get, fetch, stat: nothing stored; find: no such data; resolve: nothing registered;\n"
     "sip: no binding, 404, 480 or 604"},
    {exit_code::forbidden, ""},
    {exit_code::network,
     "no peer attached (or its name not resolved), no answer in time, client stopped;\n"
     "sip: also the SDK's own 408 and 503"},
    {exit_code::configuration, "the configuration, the credentials or the defaults file"},
    {exit_code::invalid, ""},
    {exit_code::sip_error, "sip message, sip call: the status line on standard error"},
});

/// "  NAME SYNOPSIS" and the description indented below it.
std::string command_summary(const command_doc& c, std::string_view indent) {
  std::string out = "  " + std::string(c.name) + " " + std::string(c.synopsis) + "\n";
  std::size_t start = 0;
  while (start <= c.description.size()) {
    const auto end = std::min(c.description.find('\n', start), c.description.size());
    out += std::string(indent) + std::string(c.description.substr(start, end - start)) + "\n";
    start = end + 1;
  }
  return out;
}

std::string commands_text() {
  std::string out = "\nCommands:\n";
  for (const auto& c : command_docs) out += command_summary(c, "      ");
  return out;
}

/// A failed command: exit code, machine name (the --json "error"), one-line message.
struct failure {
  int exit_code = exit_error;
  std::string name;
  std::string message;
};

bool g_json = false;
std::mutex g_stderr_mutex;

void write_stderr(const std::string& text) {
  std::lock_guard lock(g_stderr_mutex);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

std::string dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::mutex g_stdout_mutex;

/// Writes `text` to standard output at once; false if it could not be written. Any thread.
bool write_stdout(const std::string& text) {
  std::lock_guard lock(g_stdout_mutex);
  const auto n = std::fwrite(text.data(), 1, text.size(), stdout);
  return n == text.size() && std::fflush(stdout) == 0;
}

int report(const failure& f) {
  const std::string message = one_line(f.message);
  {
    std::lock_guard lock(g_stderr_mutex);  // not inside a progress line
    tool::error_line("p2psip-client", message);
  }
  if (g_json) {
    (void)write_stdout(dump({{"error", f.name}, {"message", message}, {"exit_code", f.exit_code}}));
  }
  return f.exit_code;
}

failure usage(std::string message) {
  return {exit_usage, "usage", std::move(message)};
}

/// The exit code and name of an SDK error.
failure from_sdk(const cl::error& e, const std::string& context) {
  failure f;
  f.message = context.empty() ? e.message : context + ": " + e.message;
  if (e.code.category() != cl::client_category()) {
    f.name = "error";
    return f;
  }
  switch (static_cast<cl::errc>(e.code.value())) {
    case cl::errc::invalid_argument: f = {exit_invalid, "invalid_argument", f.message}; break;
    case cl::errc::bad_configuration: f = {exit_config, "bad_configuration", f.message}; break;
    case cl::errc::bad_credentials: f = {exit_config, "bad_credentials", f.message}; break;
    case cl::errc::no_peer: f = {exit_network, "no_peer", f.message}; break;
    case cl::errc::timeout: f = {exit_network, "timeout", f.message}; break;
    case cl::errc::not_found: f = {exit_not_found, "not_found", f.message}; break;
    case cl::errc::forbidden: f = {exit_forbidden, "forbidden", f.message}; break;
    case cl::errc::unknown_kind: f = {exit_invalid, "unknown_kind", f.message}; break;
    case cl::errc::too_large: f = {exit_invalid, "too_large", f.message}; break;
    case cl::errc::generation_conflict: f = {exit_error, "generation_conflict", f.message}; break;
    case cl::errc::invalid_answer: f = {exit_error, "invalid_answer", f.message}; break;
    case cl::errc::overlay_error: f = {exit_error, "overlay_error", f.message}; break;
    case cl::errc::stopped: f = {exit_network, "stopped", f.message}; break;
    case cl::errc::would_deadlock: f = {exit_error, "would_deadlock", f.message}; break;
    default: f.name = "error"; break;
  }
  return f;
}

// ---- arguments ----

/// Options only some commands take (the rest are global).
const std::map<std::string, std::set<std::string>, std::less<>> command_options = {
    {"setup", {}},
    {"put", {"lifetime", "file"}},
    {"get", {"raw", "owner"}},
    {"remove", {}},
    {"store", {"kind", "value", "file", "dict-key", "index", "lifetime", "generation"}},
    {"fetch", {"kind", "dict-key", "index"}},
    {"stat", {"kind", "dict-key", "index"}},
    {"find", {"kind"}},
    {"remove-item", {"kind", "dict-key", "index", "lifetime", "generation"}},
    {"ping", {}},
    {"register", {"lifetime"}},
    {"unregister", {}},
    {"resolve", {}},
    {"sip register", {"lifetime", "contact"}},
    {"sip unregister", {}},
    {"sip resolve", {}},
    {"sip message", {"content-type"}},
    {"sip call", {"hangup-after"}},
    {"sip listen", {"accept", "reject", "lifetime", "answer-after"}},
};

/// How many positional arguments each command takes: [min, max].
const std::map<std::string, std::pair<std::size_t, std::size_t>, std::less<>> command_arity = {
    {"setup", {0, 0}},       {"put", {1, 2}},          {"get", {1, 1}},
    {"remove", {1, 1}},      {"store", {1, 1}},        {"fetch", {1, 1}},
    {"stat", {1, 1}},        {"find", {1, 1}},         {"remove-item", {1, 1}},
    {"ping", {0, 1}},        {"register", {1, 2}},     {"unregister", {1, 1}},
    {"resolve", {1, 1}},     {"sip register", {1, 1}}, {"sip unregister", {1, 1}},
    {"sip resolve", {1, 1}}, {"sip message", {2, 2}},  {"sip call", {1, 1}},
    {"sip listen", {1, 1}},
};
constexpr std::string_view sip_commands = "register, unregister, resolve, message, call or listen";

const std::map<std::string, std::uint32_t, std::less<>> kind_names = {
    {"sip-registration", 1},       {"certificate-by-node", 3},
    {"certificate-by-user", 0x10}, {"generic", cl::client::generic_kind},
    {"turn-service", 2},           {"sip-gateway", 0xF0000102},
};

std::optional<std::uint32_t> parse_kind(const std::string& s) {
  if (const auto it = kind_names.find(s); it != kind_names.end()) return it->second;
  const auto v = parse_unsigned(s, 0xFFFFFFFF);
  if (!v) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

/// A dictionary key: "hex:HEX" for bytes, anything else as its text.
std::optional<cl::bytes> parse_key(const std::string& s) {
  constexpr std::string_view prefix = "hex:";
  if (s.rfind(prefix, 0) == 0) return unhex(std::string_view(s).substr(prefix.size()));
  return cl::to_bytes(s);
}

/// Reads a whole file ("-": standard input).
std::optional<cl::bytes> read_input(const std::string& path, std::string& error) {
  if (path == "-") {
    std::cin >> std::noskipws;
    std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) {
      error = "standard input: read error";
      return std::nullopt;
    }
    return cl::to_bytes(s);
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    error = path + ": is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open for reading";
    return std::nullopt;
  }
  try {
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
      error = path + ": read error";
      return std::nullopt;
    }
    return cl::to_bytes(s);
  } catch (const std::exception& e) {
    error = path + ": read error: " + e.what();
    return std::nullopt;
  }
}

/// Everything a command needs, checked before any file is loaded or peer contacted.
struct invocation {
  std::string command;
  std::vector<std::string> args;
  cl::client_options options;
  std::chrono::milliseconds timeout{10'000};
  bool quiet = false;
  bool raw = false;
  std::string owner;  // get --owner: a user (with '@') or a Node-ID (hex)
  std::optional<std::uint32_t> kind;
  std::vector<cl::bytes> keys;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;
  bool append = false;  // store --index append
  std::uint32_t lifetime = 3600;
  std::uint64_t generation = 0;
  std::optional<cl::bytes> value;
  std::string contact;  // register TARGET_AOR, sip register --contact
  std::string content_type = "text/plain";
  std::uint32_t hangup_after = 0;
  bool accept = true;              // sip listen: INVITE 200 (else 486)
  std::uint32_t answer_after = 0;  // sip listen: seconds an INVITE rings before the answer
};

bool is_sip(const invocation& inv) {
  return inv.command.rfind("sip ", 0) == 0;
}

std::string peers_text(const invocation& inv) {
  if (inv.options.peers.empty()) return "the configuration's bootstrap peers";
  std::string s;
  for (const auto& p : inv.options.peers) {
    if (!s.empty()) s += ", ";
    s += p;
  }
  return s;
}

std::string in_quotes(const std::string& s) {
  return "'" + s + "'";
}

std::string model_name(cl::data_model m) {
  switch (m) {
    case cl::data_model::single_value: return "single_value";
    case cl::data_model::array: return "array";
    case cl::data_model::dictionary: return "dictionary";
  }
  return "unknown";
}

std::string kind_text(std::uint32_t kind) {
  for (const auto& [name, id] : kind_names) {
    if (id == kind) return name;
  }
  return std::to_string(kind);
}

// ---- output ----

/// A value (or key) as JSON: `field` when UTF-8, else `field`_base64 (keys: `field`_hex).
void put_bytes(json& j, const std::string& field, const cl::bytes& b, bool key) {
  if (valid_utf8(b)) {
    j[field] = std::string(b.begin(), b.end());
  } else if (key) {
    j[field + "_hex"] = hex(b);
  } else {
    j[field + "_base64"] = base64(b);
  }
}

/// Where an item sits in its kind, as text: "index=3 ", "key=... ", or nothing.
std::string where_text(const cl::item& it, cl::data_model model) {
  switch (model) {
    case cl::data_model::array: return "index=" + std::to_string(it.index) + " ";
    case cl::data_model::dictionary: return "key=" + display_key(it.key) + " ";
    case cl::data_model::single_value: return "";
  }
  return "";
}

void where_json(json& j, const cl::item& it, cl::data_model model) {
  if (model == cl::data_model::array) j["index"] = it.index;
  if (model == cl::data_model::dictionary) put_bytes(j, "key", it.key, true);
}

// ---- commands: each returns what to print, or a failure ----

using outcome = std::variant<std::string, failure>;

outcome cmd_put(cl::client& c, const invocation& inv, bool json_out) {
  const auto& name = inv.args[0];
  auto r = c.put(name, *inv.value, inv.lifetime);
  if (!r) return from_sdk(r.error(), "put " + in_quotes(name));
  if (json_out) {
    return dump({{"name", name},
                 {"bytes", inv.value->size()},
                 {"lifetime", inv.lifetime},
                 {"owner_node_id", c.node_id()}});
  }
  if (inv.quiet) return std::string();
  return "stored " + in_quotes(name) + " (" + std::to_string(inv.value->size()) +
         " bytes, lifetime " + std::to_string(inv.lifetime) + " s)\n";
}

/// What get, fetch and stat say when nothing is stored, whether the peer answered with no value
/// or with Error_Not_Found: the same exit status (3), JSON name and words for all three.
failure nothing_stored(const std::string& name, std::uint32_t kind, const std::string& detail) {
  return {exit_not_found, "not_found",
          "nothing stored under " + in_quotes(name) + " (kind " + kind_text(kind) + detail + ")"};
}

bool is_not_found(const cl::error& e) {
  return e.code == cl::make_error_code(cl::errc::not_found);
}

/// Whether `v` was written by `owner`: a user name (case-insensitive) or a Node-ID (hex).
bool owned_by(const cl::owned_value& v, const std::string& owner) {
  const auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s;
  };
  const std::string want = lower(owner);
  return lower(v.owner_user) == want || lower(v.owner_node_id) == want;
}

outcome cmd_get(cl::client& c, const invocation& inv, bool json_out) {
  const auto& name = inv.args[0];
  auto r = c.get(name);
  const auto kind = cl::client::generic_kind;
  if (!r && is_not_found(r.error())) return nothing_stored(name, kind, "");
  if (!r) return from_sdk(r.error(), "get " + in_quotes(name));
  if (!inv.owner.empty()) {
    std::erase_if(*r, [&](const cl::owned_value& v) { return !owned_by(v, inv.owner); });
    if (r->empty()) return nothing_stored(name, kind, ", by " + inv.owner);
  }
  if (r->empty()) return nothing_stored(name, kind, "");
  if (inv.raw) {
    if (r->size() != 1) {
      return failure{exit_error, "ambiguous",
                     std::to_string(r->size()) + " values under " + in_quotes(name) +
                         ": --raw needs exactly one (choose with --owner)"};
    }
    return cl::to_string(r->front().value);
  }
  if (json_out) {
    json a = json::array();
    for (const auto& v : *r) {
      json j = {{"owner_user", v.owner_user},
                {"owner_node_id", v.owner_node_id},
                {"storage_time", v.storage_time},
                {"lifetime", v.lifetime}};
      put_bytes(j, "value", v.value, false);
      a.push_back(std::move(j));
    }
    return dump(a);
  }
  std::string out;
  for (const auto& v : *r) {
    out += v.owner_user + " (" + v.owner_node_id + "): " + display_value(v.value) + "\n";
  }
  return out;
}

outcome cmd_remove(cl::client& c, const invocation& inv, bool json_out) {
  const auto& name = inv.args[0];
  auto r = c.remove(name);
  if (!r) return from_sdk(r.error(), "remove " + in_quotes(name));
  if (json_out) return dump({{"name", name}, {"removed", true}});
  if (inv.quiet) return std::string();
  return "removed " + in_quotes(name) + "\n";
}

outcome cmd_store(cl::client& c, const invocation& inv, cl::data_model model, bool json_out) {
  const auto& resource = inv.args[0];
  cl::item it;
  it.value = *inv.value;
  if (model == cl::data_model::array) {
    it.index = inv.append ? 0xFFFFFFFF : inv.ranges.front().first;
  }
  if (model == cl::data_model::dictionary) it.key = inv.keys.front();
  cl::store_options o;
  o.lifetime = inv.lifetime;
  o.generation = inv.generation;
  auto r = c.store(resource, *inv.kind, {std::move(it)}, o);
  if (!r) return from_sdk(r.error(), "store " + in_quotes(resource));
  if (json_out) {
    return dump({{"resource", resource},
                 {"kind", *inv.kind},
                 {"kind_name", kind_text(*inv.kind)},
                 {"generation", *r}});
  }
  if (inv.quiet) return std::string();
  return "stored kind " + kind_text(*inv.kind) + " at " + in_quotes(resource) + " (generation " +
         std::to_string(*r) + ")\n";
}

outcome cmd_remove_item(cl::client& c, const invocation& inv, cl::data_model model, bool json_out) {
  const auto& resource = inv.args[0];
  std::vector<cl::item> items;
  if (model == cl::data_model::array) {
    for (const auto& [first, last] : inv.ranges) {
      cl::item it;
      it.index = first;
      (void)last;
      items.push_back(std::move(it));
    }
  } else if (model == cl::data_model::dictionary) {
    for (const auto& k : inv.keys) {
      cl::item it;
      it.key = k;
      items.push_back(std::move(it));
    }
  } else {
    items.emplace_back();
  }
  cl::store_options o;
  o.lifetime = inv.lifetime;
  o.generation = inv.generation;
  const auto count = items.size();
  auto r = c.remove_items(resource, *inv.kind, std::move(items), o);
  if (!r) return from_sdk(r.error(), "remove-item " + in_quotes(resource));
  if (json_out) {
    return dump({{"resource", resource},
                 {"kind", *inv.kind},
                 {"kind_name", kind_text(*inv.kind)},
                 {"removed", count},
                 {"generation", *r}});
  }
  if (inv.quiet) return std::string();
  return "removed " + std::to_string(count) + (count == 1 ? " item" : " items") + " of kind " +
         kind_text(*inv.kind) + " at " + in_quotes(resource) + " (generation " +
         std::to_string(*r) + ")\n";
}

cl::selection selection_of(const invocation& inv) {
  if (!inv.keys.empty()) return cl::selection::keys(inv.keys);
  if (!inv.ranges.empty()) return cl::selection::indices(inv.ranges);
  return cl::selection::all();
}

outcome cmd_fetch(cl::client& c, const invocation& inv, bool stat, bool json_out) {
  const auto& resource = inv.args[0];
  const std::string what = (stat ? "stat " : "fetch ") + in_quotes(resource);
  auto r = stat ? c.stat(resource, *inv.kind, selection_of(inv))
                : c.fetch(resource, *inv.kind, selection_of(inv));
  if (!r && is_not_found(r.error())) return nothing_stored(resource, *inv.kind, "");
  if (!r) return from_sdk(r.error(), what);
  const bool any =
      std::any_of(r->items.begin(), r->items.end(), [](const cl::item& it) { return it.exists; });
  if (!any) {
    const bool some = !inv.keys.empty() || !inv.ranges.empty();
    return nothing_stored(resource, *inv.kind, some ? ", at the items asked for" : "");
  }
  if (json_out) {
    json items = json::array();
    for (const auto& it : r->items) {
      json j;
      where_json(j, it, r->model);
      j["exists"] = it.exists;
      if (stat) {
        j["value_length"] = it.value_length;
        j["hash"] = hex(it.hash);
      } else {
        put_bytes(j, "value", it.value, false);
        j["signer_user"] = it.signer_user;
        j["signer_node_id"] = it.signer_node_id;
      }
      j["storage_time"] = it.storage_time;
      j["lifetime"] = it.lifetime;
      items.push_back(std::move(j));
    }
    return dump({{"resource", resource},
                 {"kind", r->kind},
                 {"kind_name", kind_text(r->kind)},
                 {"model", model_name(r->model)},
                 {"generation", r->generation},
                 {"items", std::move(items)}});
  }
  std::string out;
  if (stat) out += "generation=" + std::to_string(r->generation) + "\n";
  for (const auto& it : r->items) {
    if (!it.exists) continue;
    if (stat) {
      out += where_text(it, r->model) + "length=" + std::to_string(it.value_length) +
             " hash=" + hex(it.hash) + " stored=" + iso_time(it.storage_time) +
             " lifetime=" + std::to_string(it.lifetime) + "\n";
    } else {
      out += where_text(it, r->model) + it.signer_user + " (" + it.signer_node_id +
             "): " + display_value(it.value) + "\n";
    }
  }
  return out;
}

outcome cmd_find(cl::client& c, const invocation& inv, bool json_out) {
  const auto& resource = inv.args[0];
  auto r = c.find(resource, *inv.kind);
  if (!r) return from_sdk(r.error(), "find " + in_quotes(resource));
  if (!*r) {
    return failure{exit_not_found, "not_found",
                   "no data of kind " + kind_text(*inv.kind) + " near " + in_quotes(resource)};
  }
  if (json_out) {
    return dump({{"resource", resource},
                 {"kind", *inv.kind},
                 {"kind_name", kind_text(*inv.kind)},
                 {"resource_id", **r}});
  }
  return **r + "\n";
}

outcome cmd_ping(cl::client& c, const invocation& inv, bool json_out) {
  const std::string resource = inv.args.empty() ? std::string() : inv.args[0];
  auto r = c.ping(resource);
  if (!r) return from_sdk(r.error(), resource.empty() ? "ping" : "ping " + in_quotes(resource));
  const double ms = static_cast<double>(r->round_trip.count()) / 1000.0;
  if (json_out) {
    json j = {{"responder_node_id", r->responder_node_id},
              {"round_trip_us", r->round_trip.count()},
              {"round_trip_ms", ms}};
    if (!resource.empty()) j["resource"] = resource;
    if (const auto peer = c.attached_peer()) {
      j["peer"] = {{"address", peer->address}, {"node_id", peer->node_id}};
    }
    return dump(j);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", ms);
  return "pong from " + r->responder_node_id + " in " + buf + " ms\n";
}

outcome cmd_register(cl::client& c, const invocation& inv, bool json_out) {
  const auto& aor = inv.args[0];
  cl::sip_contact contact;
  contact.uri = inv.contact;
  auto r = c.register_aor(aor, contact, inv.lifetime);
  if (!r) return from_sdk(r.error(), inv.command + " " + in_quotes(aor));
  if (json_out) {
    json j = {{"aor", aor}, {"generation", *r}, {"lifetime", inv.lifetime}};
    if (!contact.uri.empty()) j["uri"] = contact.uri;
    return dump(j);
  }
  if (inv.quiet) return std::string();
  return "registered " + in_quotes(aor) +
         (contact.uri.empty() ? std::string() : " -> " + in_quotes(contact.uri)) + " for " +
         std::to_string(inv.lifetime) + " s\n";
}

outcome cmd_unregister(cl::client& c, const invocation& inv, bool json_out) {
  const auto& aor = inv.args[0];
  auto r = c.unregister_aor(aor);
  if (!r) return from_sdk(r.error(), inv.command + " " + in_quotes(aor));
  if (json_out) return dump({{"aor", aor}, {"removed", true}, {"generation", *r}});
  if (inv.quiet) return std::string();
  return "unregistered " + in_quotes(aor) + "\n";
}

outcome cmd_resolve(cl::client& c, const invocation& inv, bool json_out) {
  const auto& aor = inv.args[0];
  auto r = c.resolve(aor);
  if (!r) return from_sdk(r.error(), inv.command + " " + in_quotes(aor));
  if (r->empty())
    return failure{exit_not_found, "not_found", "nothing registered under " + in_quotes(aor)};
  if (json_out) {
    json a = json::array();
    for (const auto& b : *r) {
      json j = {{"aor", b.aor},
                {"owner_node_id", b.owner_node_id},
                {"owner_user", b.owner_user},
                {"lifetime", b.lifetime}};
      if (!b.contact.uri.empty()) j["uri"] = b.contact.uri;
      if (!b.contact.route.empty()) j["route"] = b.contact.route;
      if (!b.contact.contact_prefs.empty()) j["contact_prefs"] = b.contact.contact_prefs;
      a.push_back(std::move(j));
    }
    return dump({{"aor", aor}, {"bindings", a}});
  }
  std::string out;
  for (const auto& b : *r) {
    out += b.owner_user + " (" + b.owner_node_id + "): ";
    if (!b.contact.uri.empty()) {
      out += "uri " + b.contact.uri;
    } else {
      out += "route ";
      for (std::size_t i = 0; i < b.contact.route.size(); ++i) {
        out += (i ? "," : "") + b.contact.route[i];
      }
    }
    out += "\n";
  }
  return out;
}

// ---- the SIP user agent ----

std::string routing_name(cl::sip_routing r) {
  return r == cl::sip_routing::outbound_proxy ? "outbound-proxy" : "direct";
}

/// "486 Busy Here", and " (local)" when the SDK made the response up.
std::string status_line(const cl::sip_response& r) {
  return std::to_string(r.status) + (r.reason.empty() ? "" : " " + r.reason) +
         (r.local ? " (local)" : "");
}

/// The failure a final response means, if it is not a 2xx: not found (no binding, 404, 480,
/// 604), network (the SDK's own 408 and 503), else a SIP error.
std::optional<failure> sip_failure(const cl::sip_response& r, const std::string& context) {
  if (r.status >= 200 && r.status < 300) return std::nullopt;
  const std::string message = context + ": " + status_line(r);
  if (r.status == 404 || r.status == 480 || r.status == 604) {
    return failure{exit_not_found, "not_found", message};
  }
  if (r.local && (r.status == 408 || r.status == 503)) {
    return failure{exit_network, r.status == 408 ? "timeout" : "unreachable", message};
  }
  return failure{exit_sip_error, "sip_error", message};
}

void put_response(json& j, const cl::sip_response& r) {
  j["status"] = r.status;
  j["reason"] = r.reason;
  j["call_id"] = r.call_id;
  j["local"] = r.local;
  if (!r.content_type.empty()) j["content_type"] = r.content_type;
  if (!r.body.empty()) put_bytes(j, "body", r.body, false);
}

/// A fresh Call-ID, known before the INVITE leaves so that SIGINT can cancel the call.
std::string new_call_id() {
  std::random_device rd;
  cl::bytes b(16);
  for (auto& x : b) x = static_cast<std::uint8_t>(rd());
  return hex(b) + "@p2psip-client";
}

/// The signals sip call and sip listen wait for (blocked in every thread, taken by sigwait).
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void no_op_handler(int) {}

/// Blocks SIGINT and SIGTERM in this thread and the threads it starts later (the SDK's), after
/// giving them a handler: a shell starts background jobs with SIGINT ignored, and an ignored
/// signal never reaches sigwait.
void block_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = no_op_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

/// Waits up to `timeout` for SIGINT or SIGTERM; true if one came.
bool wait_signal(std::chrono::milliseconds timeout) {
  const sigset_t set = stop_signals();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000) * 1'000'000L;
  return sigtimedwait(&set, nullptr, &ts) > 0;
}

outcome cmd_sip_message(cl::client& c, const invocation& inv, bool json_out) {
  const auto& to = inv.args[0];
  const std::string what = "sip message " + in_quotes(to);
  auto r = c.send_message(to, *inv.value, inv.content_type);
  if (!r) return from_sdk(r.error(), what);
  if (auto f = sip_failure(*r, what)) return *f;
  if (json_out) {
    json j = {{"to", to}};
    put_response(j, *r);
    return dump(j);
  }
  return status_line(*r) + "\n";
}

outcome cmd_sip_call(cl::client& c, const invocation& inv, bool json_out) {
  const auto& to = inv.args[0];
  const std::string what = "sip call " + in_quotes(to);
  // Shared with the SDK's callbacks, which may outlive this function's wait by a little.
  struct state {
    std::mutex m;
    std::condition_variable cv;
    std::optional<cl::result<cl::sip_response>> final;
    json progress = json::array();
  };
  auto st = std::make_shared<state>();
  cl::call_options o;
  o.call_id = new_call_id();
  o.progress = [st, json_out](const cl::sip_response& p) {
    if (json_out) {
      std::lock_guard lock(st->m);
      st->progress.push_back({{"status", p.status}, {"reason", p.reason}});
    } else {
      (void)write_stdout(status_line(p) + "\n");
    }
  };
  c.call_async(to, o, [st](cl::result<cl::sip_response> r) {
    std::lock_guard lock(st->m);
    st->final = std::move(r);
    st->cv.notify_all();
  });
  bool cancelled = false;
  for (;;) {
    {
      std::unique_lock lock(st->m);
      if (st->cv.wait_for(lock, 50ms, [&] { return st->final.has_value(); })) break;
    }
    if (wait_signal(50ms) && !cancelled) {
      cancelled = true;  // CANCEL; the call then ends with 487
      (void)c.hang_up(o.call_id);
    }
  }
  std::unique_lock lock(st->m);
  auto r = std::move(*st->final);
  json progress = st->progress;
  lock.unlock();
  if (!r) return from_sdk(r.error(), what);
  if (auto f = sip_failure(*r, what)) return *f;
  if (!json_out) (void)write_stdout(status_line(*r) + "\n");

  // Established: wait (a signal ends the wait early), then hang up unless the other side did.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(inv.hangup_after);
  while (std::chrono::steady_clock::now() < until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (wait_signal(std::max(left, 1ms))) break;
  }
  bool by_us = true;
  if (auto h = c.hang_up(o.call_id); !h) {
    if (h.code() != cl::make_error_code(cl::errc::not_found)) {
      return from_sdk(h.error(), what + ": hang up");
    }
    by_us = false;  // the other side's BYE came first
  }
  if (json_out) {
    json j = {{"to", to}, {"progress", progress}};
    put_response(j, *r);
    j["hung_up_by"] = by_us ? "us" : "them";
    return dump(j);
  }
  return by_us ? "hung up\n" : "the other side hung up\n";
}

/// One incoming request as a line of text or compact JSON; `answer` 0: the SDK answers it.
std::string request_line(const cl::sip_request& rq, int answer, bool json_out) {
  if (json_out) {
    json j = {{"method", rq.method},
              {"from", rq.from},
              {"to", rq.to},
              {"call_id", rq.call_id},
              {"content_type", rq.content_type}};
    if (answer != 0) j["answer"] = answer;
    put_bytes(j, "body", rq.body, false);
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  std::string line =
      rq.method + " from=" + rq.from + " to=" + rq.to + " call_id=" + one_line(rq.call_id);
  if (answer != 0) line += " answer=" + std::to_string(answer);
  if (!rq.body.empty()) {
    line += " content_type=" + one_line(rq.content_type) + " body=" + display_value(rq.body);
  }
  return line + "\n";
}

outcome cmd_sip_listen(cl::client& c, const invocation& inv, bool json_out) {
  const auto& aor = inv.args[0];
  const bool accept = inv.accept;
  const auto ring = std::chrono::seconds(inv.answer_after);
  c.on_sip_request([accept, json_out, ring](const cl::sip_request& rq) {
    cl::sip_response a;
    int shown = 0;
    if (rq.method == "INVITE") {
      // Rings this long first (the caller sees 180 and may CANCEL meanwhile).
      if (ring.count() > 0) std::this_thread::sleep_for(ring);
      a.status = accept ? 200 : 486;
      shown = a.status;
    } else if (rq.method == "MESSAGE" || rq.method == "OPTIONS") {
      a.status = 200;
      shown = a.status;
    } else if (rq.method != "BYE" && rq.method != "CANCEL") {
      a.status = 501;  // nothing else is served here
      shown = a.status;
    }
    (void)write_stdout(request_line(rq, shown, json_out));
    return a;
  });
  auto r = c.sip_register(aor, inv.lifetime);
  if (!r) return from_sdk(r.error(), "sip listen " + in_quotes(aor));
  const auto routing = routing_name(inv.options.sip_routing_mode);
  if (json_out) {
    json j = {{"listening", aor}, {"routing", routing}};
    (void)write_stdout(j.dump() + "\n");
  } else {
    (void)write_stdout("listening as " + aor + " (" + routing + ")\n");
  }
  while (!wait_signal(1000ms)) {
  }
  c.on_sip_request({});
  auto u = c.sip_unregister();
  if (!u) return from_sdk(u.error(), "sip unregister " + in_quotes(aor));
  if (json_out) return json{{"unregistered", aor}}.dump() + "\n";
  return "unregistered " + aor + "\n";
}

// ---- the run ----

/// Checks the command's key/index options against the kind's data model.
std::optional<failure> check_model(const invocation& inv, cl::data_model model) {
  const std::string k = "kind " + kind_text(*inv.kind) + " (" + model_name(model) + ")";
  const bool store = inv.command == "store";
  const bool removing = inv.command == "remove-item";
  const bool has_index = !inv.ranges.empty() || inv.append;
  switch (model) {
    case cl::data_model::single_value:
      if (!inv.keys.empty() || has_index) return usage(k + " takes neither --dict-key nor --index");
      break;
    case cl::data_model::array:
      if (!inv.keys.empty()) return usage(k + " takes --index, not --dict-key");
      if ((store || removing) && !has_index) return usage(k + " needs --index");
      if (store && inv.ranges.size() + (inv.append ? 1 : 0) > 1) {
        return usage("store takes one --index");
      }
      if (store && !inv.append && inv.ranges.front().first != inv.ranges.front().second) {
        return usage("store takes one --index, not a range");
      }
      if (removing) {
        for (const auto& [a, b] : inv.ranges) {
          if (a != b) return usage("remove-item takes single indices, not ranges");
        }
      }
      break;
    case cl::data_model::dictionary:
      if (has_index) return usage(k + " takes --dict-key, not --index");
      if ((store || removing) && inv.keys.empty()) return usage(k + " needs --dict-key");
      if (store && inv.keys.size() > 1) return usage("store takes one --dict-key");
      break;
  }
  return std::nullopt;
}

/// Parses and checks the command line; a usage failure (or an I/O one for --file) if wrong.
std::variant<invocation, failure> parse_command_line(cxxopts::ParseResult& r) {
  invocation inv;
  std::vector<std::string> positional;
  if (r.count("command")) positional.push_back(r["command"].as<std::string>());
  if (r.count("args")) {
    const auto rest = r["args"].as<std::vector<std::string>>();
    positional.insert(positional.end(), rest.begin(), rest.end());
  }
  if (!r.unmatched().empty()) {
    positional.insert(positional.end(), r.unmatched().begin(), r.unmatched().end());
  }
  if (positional.empty()) {
    return usage(
        "no command given: setup, put, get, remove, store, fetch, stat, find, remove-item, ping, "
        "register, unregister, resolve or sip (see --help)");
  }
  inv.command = positional.front();
  inv.args.assign(positional.begin() + 1, positional.end());
  if (inv.command == "sip") {
    if (inv.args.empty()) return usage("sip: missing subcommand: " + std::string(sip_commands));
    inv.command += " " + inv.args.front();
    inv.args.erase(inv.args.begin());
  }
  const auto allowed = command_options.find(inv.command);
  if (allowed == command_options.end()) {
    if (is_sip(inv)) {
      return usage("sip: unknown subcommand " + in_quotes(inv.command.substr(4)) + " (" +
                   std::string(sip_commands) + ")");
    }
    return usage("unknown command " + in_quotes(inv.command) + " (see --help)");
  }
  for (const auto& doc : command_option_docs) {
    const std::string o(doc.name);
    if (r.count(o) && !allowed->second.count(o)) {
      return usage("--" + o + " does not apply to " + inv.command);
    }
  }
  const auto [min_args, max_args] = command_arity.at(inv.command);
  if (inv.args.size() < min_args) {
    return usage(inv.command + ": missing " +
                 (inv.command == "put" || inv.command == "get" || inv.command == "remove" ? "NAME"
                  : inv.command == "sip message" && inv.args.size() == 1                  ? "TEXT"
                  : inv.command == "register" || inv.command == "unregister" ||
                          inv.command == "resolve" || is_sip(inv)
                      ? "AOR"
                      : "RESOURCE"));
  }
  if (inv.args.size() > max_args) {
    return usage(inv.command + ": unexpected argument " + in_quotes(inv.args[max_args]));
  }

  // Global options, each from the command line, else the environment, else the defaults file.
  const auto environment = defaults_from_environment();
  const auto option_or_env = [&r](const char* option, const std::string& from_env) {
    return r.count(option) ? r[option].as<std::string>() : from_env;
  };
  inv.options.config_file = option_or_env("config", environment.config);
  inv.options.certificate_file = option_or_env("cert", environment.cert);
  inv.options.key_file = option_or_env("key", environment.key);
  inv.options.overlay = option_or_env("overlay", environment.overlay);
  inv.options.peers =
      r.count("peer") ? r["peer"].as<std::vector<std::string>>() : environment.peers;
  const bool complete = !inv.options.config_file.empty() && !inv.options.certificate_file.empty() &&
                        !inv.options.key_file.empty() && !inv.options.peers.empty();
  if (!complete) {
    const auto file = defaults_file_path();
    auto read = read_defaults_file(file);
    if (auto* e = std::get_if<std::string>(&read)) {
      return failure{exit_config, "bad_configuration", *e};
    }
    const auto& from_file = std::get<client_defaults>(read);
    if (inv.options.config_file.empty()) inv.options.config_file = from_file.config;
    if (inv.options.certificate_file.empty()) inv.options.certificate_file = from_file.cert;
    if (inv.options.key_file.empty()) inv.options.key_file = from_file.key;
    if (inv.options.overlay.empty()) inv.options.overlay = from_file.overlay;
    if (inv.options.peers.empty()) inv.options.peers = from_file.peers;
    const std::string where = file.empty() ? std::string("'p2psip-client setup'")
                                           : "'p2psip-client setup' (" + file.string() + ")";
    for (const auto& [value, option, variable] :
         {std::tuple{&inv.options.config_file, "--config", "P2PSIP_CONFIG"},
          std::tuple{&inv.options.certificate_file, "--cert", "P2PSIP_CERT"},
          std::tuple{&inv.options.key_file, "--key", "P2PSIP_KEY"}}) {
      if (value->empty()) {
        return usage(std::string(option) + " is required: give it, set " + variable + ", or run " +
                     where + " once");
      }
    }
  }
  {
    const auto text = r["timeout"].as<std::string>();
    const auto ms = parse_unsigned(text, 24ULL * 3600 * 1000);
    if (!ms || *ms == 0) {
      return usage("--timeout " + in_quotes(text) + ": expected milliseconds (1 to 86400000)");
    }
    inv.timeout = std::chrono::milliseconds(*ms);
  }
  inv.options.operation_timeout = inv.timeout;
  inv.options.request_timeout = std::min(inv.timeout, std::chrono::milliseconds(10'000));
  inv.quiet = r.count("quiet") > 0;
  if (r.count("sip-routing")) {
    const auto text = r["sip-routing"].as<std::string>();
    if (text == "direct") {
      inv.options.sip_routing_mode = cl::sip_routing::direct;
    } else if (text == "outbound-proxy") {
      inv.options.sip_routing_mode = cl::sip_routing::outbound_proxy;
    } else {
      return usage("--sip-routing " + in_quotes(text) + ": expected direct or outbound-proxy");
    }
  }
  if (r.count("sip-listen")) inv.options.sip_listen = r["sip-listen"].as<std::string>();
  inv.raw = r.count("raw") > 0;
  if (inv.raw && g_json) return usage("--raw and --json exclude each other");
  if (r.count("owner")) {
    inv.owner = r["owner"].as<std::string>();
    if (inv.owner.empty())
      return usage("--owner: expected a user (alice@example.org) or a Node-ID");
  }

  // Command options.
  const bool typed = allowed->second.count("kind") > 0;
  if (typed) {
    if (!r.count("kind")) return usage(inv.command + ": --kind is required");
    const auto text = r["kind"].as<std::string>();
    inv.kind = parse_kind(text);
    if (!inv.kind) {
      return usage("--kind " + in_quotes(text) +
                   ": expected a number or sip-registration, certificate-by-node, "
                   "certificate-by-user, generic");
    }
  }
  if (r.count("dict-key")) {
    for (const auto& k : r["dict-key"].as<std::vector<std::string>>()) {
      auto b = parse_key(k);
      if (!b) return usage("--dict-key " + in_quotes(k) + ": malformed hex after 'hex:'");
      inv.keys.push_back(std::move(*b));
    }
  }
  if (r.count("index")) {
    for (const auto& i : r["index"].as<std::vector<std::string>>()) {
      if (inv.command == "store" && i == "append") {
        inv.append = true;
        continue;
      }
      const auto range = parse_range(i);
      if (!range) {
        return usage("--index " + in_quotes(i) +
                     (inv.command == "store" ? ": expected a number or 'append'"
                                             : ": expected N or A-B (numbers, A <= B)"));
      }
      inv.ranges.push_back(*range);
    }
  }
  if (r.count("lifetime")) {
    const auto text = r["lifetime"].as<std::string>();
    const auto v = parse_unsigned(text, 0xFFFFFFFF);
    if (!v || *v == 0) return usage("--lifetime " + in_quotes(text) + ": expected seconds (> 0)");
    inv.lifetime = static_cast<std::uint32_t>(*v);
  }
  if (r.count("generation")) {
    const auto text = r["generation"].as<std::string>();
    const auto v = parse_unsigned(text, ~std::uint64_t{0});
    if (!v) return usage("--generation " + in_quotes(text) + ": expected a number");
    inv.generation = *v;
  }

  if (inv.command == "register" && inv.args.size() == 2) inv.contact = inv.args[1];
  if (r.count("contact")) inv.contact = r["contact"].as<std::string>();
  if (r.count("content-type")) {
    inv.content_type = r["content-type"].as<std::string>();
    if (inv.content_type.empty()) return usage("--content-type: expected a media type");
  }
  if (r.count("hangup-after")) {
    const auto text = r["hangup-after"].as<std::string>();
    const auto v = parse_unsigned(text, 86400);
    if (!v) return usage("--hangup-after " + in_quotes(text) + ": expected seconds (0 to 86400)");
    inv.hangup_after = static_cast<std::uint32_t>(*v);
  }
  if (r.count("answer-after")) {
    const auto text = r["answer-after"].as<std::string>();
    const auto v = parse_unsigned(text, 3600);
    if (!v) return usage("--answer-after " + in_quotes(text) + ": expected seconds (0 to 3600)");
    inv.answer_after = static_cast<std::uint32_t>(*v);
  }
  if (r.count("accept") && r.count("reject"))
    return usage("--accept and --reject exclude each other");
  inv.accept = r.count("reject") == 0;
  if (inv.command == "sip message") {
    if (inv.args[1] == "-") {
      std::string error;
      inv.value = read_input("-", error);
      if (!inv.value) return failure{exit_error, "io_error", error};
    } else {
      inv.value = cl::to_bytes(inv.args[1]);
    }
  }

  // The value of put and store: exactly one source.
  if (inv.command == "put" || inv.command == "store") {
    std::optional<std::string> literal;
    if (inv.command == "put" && inv.args.size() == 2) literal = inv.args[1];
    if (inv.command == "store" && r.count("value")) literal = r["value"].as<std::string>();
    const bool file = r.count("file") > 0;
    const std::string value_name = inv.command == "put" ? "VALUE" : "--value";
    if (literal && file) return usage(value_name + " and --file exclude each other");
    if (!literal && !file) return usage(inv.command + ": give " + value_name + " or --file");
    const std::string source = file ? r["file"].as<std::string>() : "-";
    if (literal && *literal != "-") {
      inv.value = cl::to_bytes(*literal);
    } else {
      std::string error;
      inv.value = read_input(source, error);
      if (!inv.value) return failure{exit_error, "io_error", error};
    }
  }
  return inv;
}

/// Waits until attached (bounded by --timeout), with a progress line on a terminal after 1 s.
std::optional<failure> attach(cl::client& c, const invocation& inv) {
  // One wait without a progress line, so that the SDK's message names the whole timeout.
  const bool progress = !inv.quiet && isatty(STDERR_FILENO) == 1;
  const auto started = std::chrono::steady_clock::now();
  const auto first_wait =
      progress ? std::min(inv.timeout, std::chrono::milliseconds(1000)) : inv.timeout;
  auto r = c.wait_attached(first_wait);
  // Waited the whole first second (an early no_peer means every peer refused: final).
  const bool still_trying = std::chrono::steady_clock::now() - started >= first_wait;
  if (!r && r.code() == cl::make_error_code(cl::errc::no_peer) && still_trying &&
      inv.timeout > first_wait) {
    if (progress) write_stderr("attaching to " + peers_text(inv) + "...");
    r = c.wait_attached(inv.timeout - first_wait);
    if (progress) write_stderr("\r\033[K");
  }
  if (r) return std::nullopt;
  if (r.code() == cl::make_error_code(cl::errc::no_peer)) {
    // The SDK's message names every peer address and how it fared: refused (at once), or
    // still pending when the time ran out.
    return failure{exit_network, "no_peer", r.error().message};
  }
  return from_sdk(r.error(), "");
}

/// `p2psip-client COMMAND --help`: the command's synopsis, description and options.
int command_help(const cxxopts::ParseResult& r) {
  std::string name = r["command"].as<std::string>();
  if (name == "sip" && r.count("args")) name += " " + r["args"].as<std::vector<std::string>>()[0];
  const auto* doc = std::find_if(std::begin(command_docs), std::end(command_docs),
                                 [&](const command_doc& d) { return d.name == name; });
  if (doc == std::end(command_docs)) {
    if (name == "sip") {
      std::string out = "Usage: p2psip-client [OPTIONS] sip SUBCOMMAND [ARGS...]\n\nSubcommands:\n";
      for (const auto& d : command_docs) {
        if (d.name.rfind("sip ", 0) == 0) out += command_summary(d, "      ");
      }
      return write_stdout(out) ? exit_ok : exit_error;
    }
    return report(usage("unknown command " + in_quotes(name) + " (see --help)"));
  }
  std::string out = "Usage: p2psip-client [OPTIONS] " + std::string(doc->name) + " " +
                    std::string(doc->synopsis) + "\n\n" + std::string(doc->description) + "\n";
  const auto& allowed = command_options.at(std::string(doc->name));
  std::vector<std::pair<std::string, std::string>> rows;
  std::size_t width = 0;
  for (const auto& o : command_option_docs) {
    if (!allowed.count(std::string(o.name))) continue;
    std::string left = "  --" + std::string(o.name);
    if (!o.argument.empty()) left += " " + std::string(o.argument);
    std::string_view help = o.help;
    if (const auto colon = help.find(": "); colon != std::string_view::npos) {
      help.remove_prefix(colon + 2);  // the list of commands it applies to
    }
    width = std::max(width, left.size());
    rows.emplace_back(std::move(left), std::string(help));
  }
  if (!rows.empty()) {
    out += "\nOptions:\n";
    for (const auto& [left, help] : rows) {
      out += left + std::string(width + 2 - left.size(), ' ') + help + "\n";
    }
  }
  out +=
      "\nGlobal options (--config, --cert, --key, --peer, --json, --timeout, ...): "
      "p2psip-client --help\n";
  out += exit_text;
  return write_stdout(out) ? exit_ok : exit_error;
}

/// `p2psip-client setup`: checks what the options (else the environment, else the file as it
/// is) name by loading it as a client would, then writes it, with absolute paths, to the
/// per-user defaults file.
int report_setup(const invocation& inv) {
  const auto file = defaults_file_path();
  if (file.empty()) {
    return report({exit_config, "bad_configuration",
                   "setup: neither XDG_CONFIG_HOME nor HOME is set: no place for the defaults "
                   "file"});
  }
  client_defaults d;
  std::error_code ec;
  const auto absolute = [&ec](const std::string& path) {
    const auto a = std::filesystem::absolute(path, ec).lexically_normal();
    return ec ? path : a.string();
  };
  d.config = absolute(inv.options.config_file);
  d.cert = absolute(inv.options.certificate_file);
  d.key = absolute(inv.options.key_file);
  d.overlay = inv.options.overlay;
  d.peers = inv.options.peers;
  {
    // Loads the configuration and credentials and resolves the peers; attaches to nothing.
    cl::client_options check = inv.options;
    check.config_file = d.config;
    check.certificate_file = d.cert;
    check.key_file = d.key;
    auto created = cl::client::create(check);
    if (!created) {
      auto f = from_sdk(created.error(), "setup");
      if (created.code() == cl::make_error_code(cl::errc::invalid_argument)) {
        f.exit_code = exit_usage;
        f.name = "usage";
      }
      return report(f);
    }
    (*created)->stop();
  }
  if (auto error = write_defaults_file(file, d); !error.empty()) {
    return report({exit_config, "bad_configuration", "setup: " + error});
  }
  if (g_json) {
    json j = {{"file", file.string()}, {"config", d.config}, {"cert", d.cert}, {"key", d.key}};
    j["peers"] = d.peers;
    if (!d.overlay.empty()) j["overlay"] = d.overlay;
    return write_stdout(dump(j)) ? exit_ok : exit_error;
  }
  if (inv.quiet) return exit_ok;
  std::string out = "wrote " + file.string() + ":\n  config = " + d.config +
                    "\n  cert = " + d.cert + "\n  key = " + d.key + "\n";
  for (const auto& p : d.peers) out += "  peer = " + p + "\n";
  out += "now 'p2psip-client get NAME' needs no options\n";
  return write_stdout(out) ? exit_ok : exit_error;
}

int run(int argc, char** argv) {
  // Known before parsing, so that even a usage error gives its JSON document.
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--json") g_json = true;
  }

  cxxopts::Options options("p2psip-client",
                           "RELOAD (RFC 6940) client: attaches to a peer of an overlay and reads "
                           "or writes its data.");
  options.custom_help("[OPTIONS]");
  options.positional_help("COMMAND [ARGS...]");
  // clang-format off
  // clang-format off
  options.add_options()
      ("config", "overlay configuration document (overlay.xml; default: P2PSIP_CONFIG, else the defaults file)", cxxopts::value<std::string>(), "FILE")
      ("cert", "certificate file (from p2psip-admin enroll; one Node-ID; default: P2PSIP_CERT, else the defaults file)", cxxopts::value<std::string>(), "FILE")
      ("key", "private key file of the certificate (default: P2PSIP_KEY, else the defaults file)", cxxopts::value<std::string>(), "FILE")
      ("peer", "peer to attach to, IP:PORT, [IPv6]:PORT or HOST:PORT (repeatable, tried in order; default: P2PSIP_PEER, else the defaults file, else the configuration's bootstrap peers)", cxxopts::value<std::vector<std::string>>(), "HOST:PORT")
      ("overlay", "refuse a configuration of another overlay than NAME", cxxopts::value<std::string>(), "NAME")
      ("timeout", "time allowed to attach, and then for the operation", cxxopts::value<std::string>()->default_value("10000"), "MS")
      ("json", "print the result (or the error) as one JSON document")
      ("quiet", "no progress line; put, remove, store and remove-item print nothing")
      ("verbose", "the SDK's debug lines on standard error")
      ("sip-routing", "sip message, call, listen: how SIP requests travel: direct (AppAttach to the target's node) or outbound-proxy (through the attached peer, which must serve SIP: p2psip-peer --sip-listen)", cxxopts::value<std::string>()->default_value("direct"), "MODE")
      ("sip-listen", "sip listen with direct routing: where to accept SIP connections (port 0: any; default: the address used toward the peer)", cxxopts::value<std::string>(), "IP:PORT")
      ("version", "show the version")
      ("h,help", "show this help (after a command: that command's)");
  // clang-format on
  {
    auto add = options.add_options("command");
    for (const auto& o : command_option_docs) {
      const std::string name(o.name);
      const std::string help(o.help);
      if (o.argument.empty()) {
        add(name, help);
      } else if (o.repeatable) {
        add(name, help, cxxopts::value<std::vector<std::string>>(), std::string(o.argument));
      } else {
        add(name, help, cxxopts::value<std::string>(), std::string(o.argument));
      }
    }
  }
  // clang-format off
  options.add_options("positional")
      ("command", "", cxxopts::value<std::string>())
      ("args", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"command", "args"});

  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    return report(usage(tool::usage_message(e, argc, argv)));
  }
  if (r.count("help")) {
    if (r.count("command")) return command_help(r);
    std::string help = options.help({"", "command"});
    help += commands_text();
    help += notes_text;
    help += exit_text;
    return write_stdout(help) ? exit_ok : exit_error;
  }
  if (r.count("version")) {
    // The SDK is a shared library: say which one this run uses, too.
    return write_stdout(tool::version_text("p2psip-client") + "libp2psip-client " +
                        p2psip_version() + "\n")
               ? exit_ok
               : exit_error;
  }

  invocation inv;
  try {
    auto parsed = parse_command_line(r);
    if (auto* f = std::get_if<failure>(&parsed)) return report(*f);
    inv = std::move(std::get<invocation>(parsed));
  } catch (const cxxopts::exceptions::exception& e) {
    return report(usage(tool::usage_message(e, argc, argv)));
  }
  if (r.count("verbose")) {
    inv.options.log = [](std::string_view text) {
      std::lock_guard lock(g_stderr_mutex);
      tool::log_line("DEBUG", text);
    };
  }
  if (inv.command == "setup") return report_setup(inv);

  // Before the SDK starts its threads, so that they inherit the mask and only sigwait sees these.
  if (inv.command == "sip call" || inv.command == "sip listen") block_stop_signals();
  auto created = cl::client::create(inv.options);
  if (!created) {
    auto f = from_sdk(created.error(), "");
    // At creation an invalid argument is one of ours: a malformed --peer, or no peer at all.
    if (created.code() == cl::make_error_code(cl::errc::invalid_argument)) {
      f.exit_code = exit_usage;
      f.name = "usage";
    }
    return report(f);
  }
  auto& c = **created;

  std::optional<cl::data_model> model;
  if (inv.kind) {
    model = c.model_of(*inv.kind);
    if (!model) {
      return report({exit_invalid, "unknown_kind",
                     "kind " + kind_text(*inv.kind) + " is not in the overlay configuration " +
                         inv.options.config_file});
    }
    if (auto f = check_model(inv, *model)) return report(*f);
    if (*inv.kind == 1 && (inv.command == "store" || inv.command == "remove-item")) {
      // USER-NODE-MATCH (RFC 7904 section 7): a writer's only key is its own Node-ID, and the
      // value a SipRegistration; say so here rather than let the peer answer Forbidden.
      const auto own = c.node_id();
      for (const auto& key : inv.keys) {
        if (hex(key) != own) {
          return report(
              usage("SIP-REGISTRATION keys are the writer's Node-ID: yours is hex:" + own +
                    " (`p2psip-client sip register AOR [--contact URI]` writes a "
                    "correct registration)"));
        }
      }
    }
    // RFC 7904 section 2: a SIP-REGISTRATION's Resource Name is the AOR without its scheme, so
    // `fetch sip:alice@example.org --kind sip-registration` reads what registrars store.
    if (*inv.kind == 1 && !inv.args.empty()) {
      for (std::string_view scheme : {"sip:", "sips:"}) {
        if (inv.args[0].size() > scheme.size() && inv.args[0].rfind(scheme, 0) == 0) {
          inv.args[0] = inv.args[0].substr(scheme.size());
          break;
        }
      }
    }
  }
  if (auto f = attach(c, inv)) return report(*f);

  outcome out;
  if (inv.command == "put") {
    out = cmd_put(c, inv, g_json);
  } else if (inv.command == "get") {
    out = cmd_get(c, inv, g_json);
  } else if (inv.command == "remove") {
    out = cmd_remove(c, inv, g_json);
  } else if (inv.command == "store") {
    out = cmd_store(c, inv, *model, g_json);
  } else if (inv.command == "fetch") {
    out = cmd_fetch(c, inv, false, g_json);
  } else if (inv.command == "stat") {
    out = cmd_fetch(c, inv, true, g_json);
  } else if (inv.command == "find") {
    out = cmd_find(c, inv, g_json);
  } else if (inv.command == "remove-item") {
    out = cmd_remove_item(c, inv, *model, g_json);
  } else if (inv.command == "register" || inv.command == "sip register") {
    out = cmd_register(c, inv, g_json);
  } else if (inv.command == "unregister" || inv.command == "sip unregister") {
    out = cmd_unregister(c, inv, g_json);
  } else if (inv.command == "resolve" || inv.command == "sip resolve") {
    out = cmd_resolve(c, inv, g_json);
  } else if (inv.command == "sip message") {
    out = cmd_sip_message(c, inv, g_json);
  } else if (inv.command == "sip call") {
    out = cmd_sip_call(c, inv, g_json);
  } else if (inv.command == "sip listen") {
    out = cmd_sip_listen(c, inv, g_json);
  } else {
    out = cmd_ping(c, inv, g_json);
  }
  c.stop();
  if (auto* f = std::get_if<failure>(&out)) return report(*f);
  if (!write_stdout(std::get<std::string>(out))) {
    return report({exit_error, "io_error", "standard output: write error"});
  }
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return report({exit_error, "error", std::string("unexpected exception: ") + e.what()});
  }
}
