// p2psip-wire: decodes RELOAD messages (RFC 6940) and framed streams into JSON for people who
// debug the protocol. The work is in wire_decoder.cpp and json_dump.cpp; this file is the command
// line: options, input, output and exit statuses.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "p2psip/tool/exit_codes.hpp"
#include "p2psip/tool/log.hpp"
#include "p2psip/tool/options.hpp"
#include "p2psip/tool/version.hpp"
#include "wire_decoder.hpp"

namespace {

using namespace p2psip;

constexpr const char* program = "p2psip-wire";
constexpr int exit_ok = tool::status(tool::exit_code::ok);
constexpr int exit_malformed = tool::status(tool::exit_code::failure);  // malformed or unreadable
constexpr int exit_usage = tool::status(tool::exit_code::usage);

constexpr const char* help_text =
    R"(p2psip-wire: decode RELOAD (RFC 6940) messages and framed streams to JSON

Usage:
  p2psip-wire decode [options] FILE|-
  p2psip-wire --help | --version

Reads one binary RELOAD message from FILE, or from standard input when FILE is "-", and prints
one pretty-printed JSON document on standard output.

Options:
  --hex                   The input is hex text, not binary. ASCII whitespace and ':' are
                          ignored; '#' starts a comment that runs to the end of the line.
  --frames                The input is a stream of framing-layer frames (RFC 6940 section
                          6.6.2: DATA 0x80 with sequence and message, ACK 0x81 with
                          ack_sequence and received bitmask), as read from a TLS/TCP link.
                          The output is a JSON array with one object per frame.
  --reencode              Re-encode the decoded message (its body from the typed value) and
                          add "reencoded_hex" and "reencoded_equal" (with
                          "reencoded_first_difference" when they differ).
  --node-id-length N      NodeIdLength of the overlay, 16..20 bytes (default 16).
  --kind ID=MODEL         Data model of a kind: MODEL is single, array or dictionary; ID is
                          decimal or 0x-hex. Repeat the option, or separate with commas.
                          Registered kinds (1 SIP-REGISTRATION, 2 TURN-SERVICE,
                          3 CERTIFICATE_BY_NODE, 0x10 CERTIFICATE_BY_USER, 0x104 REDIR,
                          0xf0000101 p2psip's generic kind) are known; for other kinds the
                          model is guessed (the one that parses cleanly) and the JSON says
                          "model_guessed": true.
  --peer-limits           Enforce a peer's default limits (max-message-size 5000, 64 via
                          entries, 16 destinations, 8 options, 8 extensions, 8
                          certificates) instead of the tool's, which accept anything the
                          wire can say.
  --compact               Print the JSON on one line.
  -h, --help              Print this help and exit (also after decode).
  --version               Print the version and exit.

Output (one message):
  input_length
  forwarding_header       relo_token, overlay ("0x..."), configuration_sequence, version,
                          ttl, fragment ("0x...") with is_fragment, last_fragment and
                          fragment_offset, length, transaction_id ("0x" + 16 digits),
                          max_response_length, via_list and destination_list (entries
                          {"type": node|resource|opaque_id|compressed, "value": hex,
                          "wildcard": true for the wildcard Node-ID}), options (type, flags
                          and flag names, value), header_size.
  message_contents        offset, message_code, message_code_hex, message_code_name
                          ("unknown" outside the registry), is_request, is_response,
                          body_offset, body_length, body, extensions (type, critical,
                          contents).
    body                  "type" (ping_req, store_req, error_response, unknown, ...) and every
                          field of the body: stored data with storage_time (+ _utc),
                          lifetime, model, index or key, exists, value (hex), the decoded
                          value of SIP-REGISTRATION, TURN-SERVICE and certificate kinds, and
                          a signature summary; Attach candidates with addresses as text;
                          Chord Update lists; ErrorResponse error_code, error_name and
                          error_info (text, or error_info_hex when not printable; a StoreAns
                          for Error_Generation_Counter_Too_Low and the kind list for
                          Error_Unknown_Kind); ...
  security_block          certificate_count, certificates (type, DER length, SHA-256, subject,
                          issuer, subjectAltName URIs and e-mails, validity), signature
                          (algorithm hash/signature numbers and names, signer identity type,
                          hash algorithm and hash, value_length, unsigned, and
                          signer_certificate: the index of the certificate whose hash is
                          the cert_hash identity).
  A fragment is not an error: the header is printed, with "fragment" saying that the
  contents need reassembly (and the payload in hex).

Conventions: numbers are JSON numbers; bit patterns and tokens are "0x..." strings; ids and
binary fields are lowercase hex; opaque fields that normally hold text (ufrag, error_info,
URIs, XML, ...) are strings when printable UTF-8, otherwise the key gets "_hex" and holds hex.

Output (--frames): an array of {"frame", "offset", "type": "data", "sequence",
"message_length", "message": {...}} and {"frame", "offset", "type": "ack", "ack_sequence",
"received" ("0x" + 8 digits), "received_sequences": bit k of received read as sequence
ack_sequence - (k + 1)} objects. A data frame whose message is
malformed gets an "error" member instead of "message" and the stream goes on; a bad or cut-off
frame ends the array with an {"frame", "offset", "error"} object.

Exit status and errors:
  0  decoded.
  1  malformed input or unreadable file: one line on standard error, for example
       p2psip-wire: malformed message: truncated at offset 12 in forwarding_header.length
     Offsets count from the first byte of the input (for a body error too). Nothing is
     printed on standard output, except with --frames, where the array is still printed.
  2  usage error (unknown option, missing FILE, bad option value): one line on standard
     error.

Examples:
  p2psip-wire decode --hex message.hex
  p2psip-wire decode --frames link-dump.bin    (one direction of a link, after TLS)
  xxd -p message.bin | p2psip-wire decode --hex -
  p2psip-wire decode --kind 0xf0000201=dictionary --reencode capture.bin
)";

struct usage_error {
  std::string message;
};

int fail(int status, const std::string& message) {
  tool::error_line(program, message);
  return status;
}

// Reads all of a file (or stdin for "-"); nullopt with `error` set on failure.
std::optional<std::string> read_all(const std::string& path, std::string& error) {
  std::FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string out;
  char buf[65536];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f);
    out.append(buf, n);
    if (n < sizeof buf) break;
  }
  const bool bad = std::ferror(f) != 0;
  const int saved = errno;
  if (f != stdin) std::fclose(f);
  if (bad) {
    error = "cannot read " + (path == "-" ? std::string("standard input") : path) + ": " +
            std::strerror(saved);
    return std::nullopt;
  }
  return out;
}

// True when binary input looks like hex text (comments allowed), to hint at --hex in the error.
bool looks_like_hex_text(std::string_view in) {
  bool digits = false;
  bool comment = false;
  for (const char c : in) {
    if (comment) {
      comment = c != '\n';
      continue;
    }
    if (c == '#') {
      comment = true;
    } else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
      digits = true;
    } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t' && c != ':') {
      return false;
    }
  }
  return digits;
}

struct cli {
  std::string input;
  bool hex = false;
  bool frames = false;
  bool compact = false;
  wire::decode_options options;
};

// Parses the command line; throws usage_error. Returns nullopt when help was printed.
std::optional<cli> parse_command_line(int argc, char** argv) {
  cxxopts::Options spec(program, "decode RELOAD messages to JSON");
  // clang-format off
  spec.add_options()
      ("h,help", "help")
      ("version", "version")
      ("hex", "hex input")
      ("frames", "framed stream")
      ("reencode", "re-encode and compare")
      ("node-id-length", "NodeIdLength", cxxopts::value<std::string>())
      ("kind", "ID=MODEL", cxxopts::value<std::vector<std::string>>())
      ("peer-limits", "a peer's limits")
      ("compact", "one-line JSON")
      ("command", "command", cxxopts::value<std::string>())
      ("input", "FILE or -", cxxopts::value<std::string>())
      ("extra", "extra operands", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  spec.parse_positional({"command", "input", "extra"});

  cxxopts::ParseResult args;
  try {
    args = spec.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw usage_error{tool::usage_message(e, argc, argv) + " (see --help)"};
  }
  if (args.count("help") != 0) {
    std::cout << help_text;
    return std::nullopt;
  }
  if (args.count("version") != 0) {
    std::cout << tool::version_text(program);
    return std::nullopt;
  }
  if (args.count("command") == 0) throw usage_error{"missing command: use 'decode' (see --help)"};
  const auto command = args["command"].as<std::string>();
  if (command != "decode") throw usage_error{"unknown command '" + command + "' (see --help)"};
  if (args.count("input") == 0) {
    throw usage_error{"missing FILE operand (use - for standard input; see --help)"};
  }
  if (args.count("extra") != 0) {
    throw usage_error{"unexpected operand '" + args["extra"].as<std::vector<std::string>>()[0] +
                      "' (one FILE only)"};
  }

  cli c;
  c.input = args["input"].as<std::string>();
  c.hex = args.count("hex") != 0;
  c.frames = args.count("frames") != 0;
  c.compact = args.count("compact") != 0;
  c.options.reencode = args.count("reencode") != 0;
  if (args.count("peer-limits") != 0) c.options.lim = protocol::limits{};
  if (args.count("node-id-length") != 0) {
    const auto text = args["node-id-length"].as<std::string>();
    std::size_t n = 0;
    bool ok = !text.empty() && text.size() <= 2;
    for (const char ch : text) {
      ok = ok && ch >= '0' && ch <= '9';
      n = n * 10 + static_cast<std::size_t>(ch - '0');
    }
    if (!ok || n < protocol::min_node_id_length || n > protocol::max_node_id_length) {
      throw usage_error{"bad --node-id-length '" + text + "': expected 16..20"};
    }
    c.options.lim.node_id_length = n;
  }
  if (args.count("kind") != 0) {
    for (const auto& k : args["kind"].as<std::vector<std::string>>()) {
      auto parsed = wire::parse_kind_override(k);
      if (!parsed) throw usage_error{parsed.error()};
      c.options.kind_models[parsed->first] = parsed->second;
    }
  }
  return c;
}

void print(const wire::json& doc, bool compact) {
  std::cout << doc.dump(compact ? -1 : 2, ' ', false, wire::json::error_handler_t::replace) << '\n';
}

int run(const cli& c) {
  std::string error;
  const auto raw = read_all(c.input, error);
  if (!raw) return fail(exit_malformed, error);

  protocol::bytes in;
  if (c.hex) {
    auto parsed = wire::parse_hex_text(*raw);
    if (!parsed) return fail(exit_malformed, parsed.error());
    in = std::move(*parsed);
  } else {
    in.assign(raw->begin(), raw->end());
  }
  const std::string hint =
      !c.hex && looks_like_hex_text(*raw) ? " (the input looks like hex text: use --hex)" : "";

  if (c.frames) {
    auto frames = wire::decode_frames_json(in, c.options);
    print(frames.frames, c.compact);
    if (!frames.error.empty()) return fail(exit_malformed, frames.error + hint);
    return exit_ok;
  }
  auto doc = wire::decode_message_json(in, c.options);
  if (!doc) return fail(exit_malformed, doc.error() + hint);
  print(*doc, c.compact);
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto c = parse_command_line(argc, argv);
    if (!c) return exit_ok;
    return run(*c);
  } catch (const usage_error& e) {
    return fail(exit_usage, e.message);
  } catch (const std::exception& e) {
    // Not expected (the codec reports errors as values); still one line and a clear status.
    return fail(exit_malformed, std::string("internal error: ") + e.what());
  }
}
