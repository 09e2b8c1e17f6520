// Tests of p2psip-wire: the real binary run on the hand-written vectors under tests/wire/data
// (JSON fields, exit statuses, the one-line error on standard error), plus the library pieces
// (hex text, --kind parsing, printable text). With p2psip::test_support, every sample message is
// also decoded and re-encoded through the binary, alone and as a framed stream.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_dump.hpp"
#include "wire_decoder.hpp"

#ifdef P2PSIP_WIRE_HAVE_SAMPLES
#include "p2psip/protocol/framing.hpp"
#include "sample_messages.hpp"
#endif

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string wire_binary = P2PSIP_WIRE_BINARY;
const std::string data_dir = P2PSIP_WIRE_DATA;

std::string data(const std::string& name) {
  return data_dir + "/" + name;
}

struct run_result {
  int status = -1;
  std::string out;
  std::string err;

  json doc() const { return json::parse(out); }
  /// Standard error is exactly one line.
  bool one_error_line() const {
    return !err.empty() && err.back() == '\n' && err.find('\n') == err.size() - 1;
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A scratch directory removed at the end of the test case.
struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::string templ = (fs::temp_directory_path() / "p2psip-wire-test-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  fs::path write(const std::string& name, const std::string& content) const {
    const fs::path p = path / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
};

/// Runs p2psip-wire with `args`; standard input comes from `stdin_path`.
run_result run_wire(const std::vector<std::string>& args,
                    const std::string& stdin_path = "/dev/null") {
  scratch_dir dir;
  const fs::path out_path = dir.path / "stdout";
  const fs::path err_path = dir.path / "stderr";

  std::vector<std::string> argv_storage{wire_binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int in = open(stdin_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(wire_binary.c_str(), argv.data());
    _exit(127);
  }
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  run_result r;
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

run_result decode_hex(const std::string& file, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"decode", "--hex"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(data(file));
  return run_wire(args);
}

/// The bytes of a hex vector.
std::string vector_bytes(const std::string& file) {
  auto parsed = p2psip::wire::parse_hex_text(read_file(data(file)));
  REQUIRE(parsed);
  return std::string(parsed->begin(), parsed->end());
}

void check_malformed(const run_result& r, const std::string& line) {
  CHECK(r.status == 1);
  CHECK(r.err == "p2psip-wire: " + line + "\n");
  CHECK(r.one_error_line());
}

const char* const alice = "063d3c8b3867a2881074a99102d658d7";
const char* const proxy = "037b6e7a2ffb2a0995042ea570b28fa6";

}  // namespace

// ---- good messages ----

TEST_CASE("PingReq to the wildcard: forwarding header, contents and security block") {
  const auto r = decode_hex("ping_req_wildcard.hex");
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const json d = r.doc();
  CHECK(d["input_length"] == 77);
  const json& h = d["forwarding_header"];
  CHECK(h["relo_token"] == "0xd2454c4f");
  CHECK(h["overlay"] == "0x4e38fc3f");
  CHECK(h["configuration_sequence"] == 1);
  CHECK(h["version"] == 10);
  CHECK(h["ttl"] == 100);
  CHECK(h["fragment"] == "0xc0000000");
  CHECK(h["is_fragment"] == false);
  CHECK(h["last_fragment"] == true);
  CHECK(h["fragment_offset"] == 0);
  CHECK(h["length"] == 77);
  CHECK(h["transaction_id"] == "0x0102030405060708");
  CHECK(h["max_response_length"] == 0);
  CHECK(h["via_list"].empty());
  REQUIRE(h["destination_list"].size() == 1);
  CHECK(h["destination_list"][0]["type"] == "node");
  CHECK(h["destination_list"][0]["value"] == "ffffffffffffffffffffffffffffffff");
  CHECK(h["destination_list"][0]["wildcard"] == true);
  CHECK(h["options"].empty());
  CHECK(h["header_size"] == 56);

  const json& c = d["message_contents"];
  CHECK(c["message_code"] == 0x17);
  CHECK(c["message_code_hex"] == "0x0017");
  CHECK(c["message_code_name"] == "ping_req");
  CHECK(c["is_request"] == true);
  CHECK(c["is_response"] == false);
  CHECK(c["body_offset"] == 62);
  CHECK(c["body_length"] == 2);
  CHECK(c["body"]["type"] == "ping_req");
  CHECK(c["body"]["padding_length"] == 0);
  CHECK(c["extensions"].empty());

  const json& s = d["security_block"];
  CHECK(s["certificate_count"] == 0);
  CHECK(s["signature"]["unsigned"] == true);
  CHECK(s["signature"]["identity"]["type_name"] == "none");
  CHECK_FALSE(d.contains("reencoded_hex"));
}

TEST_CASE("binary input from a file and from standard input") {
  scratch_dir dir;
  const fs::path bin = dir.write("ping.bin", vector_bytes("ping_req_wildcard.hex"));
  const auto from_file = run_wire({"decode", bin.string()});
  REQUIRE(from_file.status == 0);
  const auto from_stdin = run_wire({"decode", "-"}, bin.string());
  REQUIRE(from_stdin.status == 0);
  CHECK(from_file.out == from_stdin.out);
  CHECK(from_file.doc()["message_contents"]["message_code_name"] == "ping_req");
  const auto hex_stdin = run_wire({"decode", "--hex", "-"}, data("ping_req_wildcard.hex"));
  REQUIRE(hex_stdin.status == 0);
  CHECK(hex_stdin.out == from_file.out);
}

TEST_CASE("--compact prints one line") {
  const auto r = decode_hex("ping_req_wildcard.hex", {"--compact"});
  REQUIRE(r.status == 0);
  CHECK(r.out.find('\n') == r.out.size() - 1);
  CHECK(r.doc()["forwarding_header"]["ttl"] == 100);
}

TEST_CASE("--reencode reproduces every hand-written vector") {
  for (const char* file :
       {"ping_req_wildcard.hex", "error_not_found.hex", "unknown_code.hex", "attach_req.hex",
        "update_req.hex", "store_req_sip_registration.hex", "fetch_ans.hex",
        "store_req_unknown_kind.hex", "error_generation_too_low.hex"}) {
    CAPTURE(file);
    const auto r = decode_hex(file, {"--reencode"});
    REQUIRE(r.status == 0);
    const json d = r.doc();
    CHECK(d["reencoded_equal"] == true);
    std::string hex;
    for (const char ch : vector_bytes(file)) {
      static constexpr char digits[] = "0123456789abcdef";
      const auto b = static_cast<unsigned char>(ch);
      hex.push_back(digits[b >> 4]);
      hex.push_back(digits[b & 0x0F]);
    }
    CHECK(d["reencoded_hex"] == hex);
    CHECK_FALSE(d.contains("reencoded_first_difference"));
  }
}

TEST_CASE("ErrorResponse: code, registry name, text and the signature summary") {
  const auto r = decode_hex("error_not_found.hex");
  REQUIRE(r.status == 0);
  const json d = r.doc();
  const json& c = d["message_contents"];
  CHECK(c["message_code"] == 0xFFFF);
  CHECK(c["message_code_name"] == "error");
  CHECK(c["is_request"] == false);
  CHECK(c["is_response"] == true);
  CHECK(c["body"]["type"] == "error_response");
  CHECK(c["body"]["error_code"] == 3);
  CHECK(c["body"]["error_name"] == "Error_Not_Found");
  CHECK(c["body"]["error_info"] == "no such resource");
  CHECK(d["forwarding_header"]["destination_list"][0]["value"] == alice);
  const json& sig = d["security_block"]["signature"];
  CHECK(sig["algorithm"]["hash"] == 4);
  CHECK(sig["algorithm"]["hash_name"] == "sha256");
  CHECK(sig["algorithm"]["signature"] == 3);
  CHECK(sig["algorithm"]["signature_name"] == "ecdsa");
  CHECK(sig["identity"]["type"] == 1);
  CHECK(sig["identity"]["type_name"] == "cert_hash");
  CHECK(sig["identity"]["hash_alg_name"] == "sha256");
  CHECK(sig["identity"]["hash"] ==
        "3bb6b5c1a0d4e2f3112233445566778899aabbccddeeff001122334455667788");
  CHECK(sig["value_length"] == 8);
  CHECK(sig["unsigned"] == false);
  CHECK_FALSE(sig.contains("signer_certificate"));
}

TEST_CASE("ErrorResponse Error_Generation_Counter_Too_Low carries a StoreAns") {
  const auto r = decode_hex("error_generation_too_low.hex", {"--reencode"});
  REQUIRE(r.status == 0);
  const json d = r.doc();
  CHECK(d["reencoded_equal"] == true);
  const json& b = d["message_contents"]["body"];
  CHECK(b["error_code"] == 5);
  CHECK(b["error_name"] == "Error_Generation_Counter_Too_Low");
  CHECK(b["error_info_hex"] == "000e0000000100000000000000070000");
  CHECK_FALSE(b.contains("error_info"));
  const json& ans = b["error_info_store_ans"];
  CHECK(ans["type"] == "store_ans");
  REQUIRE(ans["kind_responses"].size() == 1);
  CHECK(ans["kind_responses"][0]["kind_name"] == "SIP-REGISTRATION");
  CHECK(ans["kind_responses"][0]["generation_counter"] == 7);
  CHECK(ans["kind_responses"][0]["replicas"].empty());
}

TEST_CASE("unknown message code, every destination type, options and extensions") {
  const auto r = decode_hex("unknown_code.hex");
  REQUIRE(r.status == 0);
  const json d = r.doc();
  const json& h = d["forwarding_header"];
  CHECK(h["configuration_sequence"] == 7);
  CHECK(h["ttl"] == 32);
  CHECK(h["max_response_length"] == 4096);
  CHECK(h["transaction_id"] == "0xa1b2c3d4e5f60718");
  REQUIRE(h["via_list"].size() == 3);
  CHECK(h["via_list"][0] == json{{"type", "compressed"}, {"value", "0x8001"}});
  CHECK(h["via_list"][1] == json{{"type", "opaque_id"}, {"value", "abcd"}});
  CHECK(h["via_list"][2] == json{{"type", "node"}, {"value", proxy}});
  REQUIRE(h["destination_list"].size() == 2);
  CHECK(h["destination_list"][1] ==
        json{{"type", "resource"}, {"value", "45a6b241a242c97f0492d382c390dfa3"}});
  REQUIRE(h["options"].size() == 1);
  CHECK(h["options"][0]["type"] == 1);
  CHECK(h["options"][0]["flags"] == "0x01");
  CHECK(h["options"][0]["flag_names"] == json::array({"FORWARD_CRITICAL"}));
  CHECK(h["options"][0]["value"] == "aa");
  CHECK(h["header_size"] == 105);

  const json& c = d["message_contents"];
  CHECK(c["message_code"] == 5);
  CHECK(c["message_code_name"] == "unknown");
  CHECK(c["is_request"] == true);
  CHECK(c["body"]["type"] == "unknown");
  CHECK(c["body"]["body"] == "deadbeef");
  REQUIRE(c["extensions"].size() == 1);
  CHECK(c["extensions"][0]["type"] == 1);
  CHECK(c["extensions"][0]["critical"] == false);
  CHECK(c["extensions"][0]["contents"] == "0102");
}

TEST_CASE("AttachReq: ICE candidates with addresses as text") {
  const auto r = decode_hex("attach_req.hex");
  REQUIRE(r.status == 0);
  const json b = r.doc()["message_contents"]["body"];
  CHECK(b["type"] == "attach_req");
  CHECK(b["ufrag"] == "abcd");
  CHECK(b["password"] == "s3cr3tpw");
  CHECK(b["role"] == "passive");
  CHECK(b["send_update"] == true);
  REQUIRE(b["candidates"].size() == 2);
  CHECK(b["candidates"][0]["addr_port"] == "192.0.2.1:6084");
  CHECK(b["candidates"][0]["overlay_link_name"] == "TLS-TCP-FH-NO-ICE");
  CHECK(b["candidates"][0]["type_name"] == "host");
  CHECK(b["candidates"][0]["priority"] == 0x7e0000ffu);
  CHECK_FALSE(b["candidates"][0].contains("rel_addr_port"));
  CHECK(b["candidates"][1]["addr_port"] == "[2001:db8::1]:8000");
  CHECK(b["candidates"][1]["type_name"] == "srflx");
  CHECK(b["candidates"][1]["rel_addr_port"] == "192.168.0.1:6084");
  CHECK(b["candidates"][1]["extensions"] == json::array({{{"name", "foo"}, {"value", "bar"}}}));
}

TEST_CASE("Chord UpdateReq lists") {
  const auto r = decode_hex("update_req.hex");
  REQUIRE(r.status == 0);
  const json b = r.doc()["message_contents"]["body"];
  CHECK(b["type"] == "update_req");
  CHECK(b["uptime"] == 3600);
  CHECK(b["update_type_name"] == "neighbors");
  CHECK(b["predecessors"] == json::array({proxy}));
  CHECK(b["successors"] ==
        json::array({"1000000000000000000000000000000a", "2000000000000000000000000000000b"}));
  CHECK_FALSE(b.contains("fingers"));
}

TEST_CASE("StoreReq with a SIP-REGISTRATION route") {
  const auto r = decode_hex("store_req_sip_registration.hex");
  REQUIRE(r.status == 0);
  const json b = r.doc()["message_contents"]["body"];
  CHECK(b["type"] == "store_req");
  CHECK(b["resource"] == "45a6b241a242c97f0492d382c390dfa3");
  CHECK(b["replica_number"] == 0);
  REQUIRE(b["kind_data"].size() == 1);
  const json& k = b["kind_data"][0];
  CHECK(k["kind"] == 1);
  CHECK(k["kind_name"] == "SIP-REGISTRATION");
  CHECK(k["generation_counter"] == 0);
  CHECK_FALSE(k.contains("model_guessed"));
  REQUIRE(k["values"].size() == 1);
  const json& v = k["values"][0];
  CHECK(v["storage_time"] == 1700000000000ull);
  CHECK(v["storage_time_utc"] == "2023-11-14T22:13:20.000Z");
  CHECK(v["lifetime"] == 3600);
  CHECK(v["model"] == "DICTIONARY");
  CHECK(v["key"] == alice);
  CHECK(v["exists"] == true);
  CHECK(v["value_length"] == 43);
  CHECK(v["value"].get<std::string>().size() == 86);
  const json& reg = v["sip_registration"];
  CHECK(reg["type"] == 2);
  CHECK(reg["type_name"] == "route");
  CHECK(reg["contact_prefs"] == "");
  CHECK(reg["destination_list"] ==
        json::array({{{"type", "node"}, {"value", proxy}}, {{"type", "node"}, {"value", alice}}}));
  CHECK(v["signature"]["value_length"] == 8);
  CHECK(v["signature"]["identity"]["type_name"] == "cert_hash");
}

TEST_CASE("FetchAns: a registration of type uri and a synthetic non-existent value") {
  const auto r = decode_hex("fetch_ans.hex");
  REQUIRE(r.status == 0);
  const json d = r.doc();
  CHECK(d["forwarding_header"]["destination_list"].size() == 2);
  const json b = d["message_contents"]["body"];
  CHECK(b["type"] == "fetch_ans");
  REQUIRE(b["kind_responses"].size() == 1);
  const json& k = b["kind_responses"][0];
  CHECK(k["kind_name"] == "SIP-REGISTRATION");
  CHECK(k["generation"] == 3);
  REQUIRE(k["values"].size() == 2);
  CHECK(k["values"][0]["sip_registration"] ==
        json{{"type", 1}, {"type_name", "uri"}, {"uri", "sip:bob@example.org"}});
  CHECK(k["values"][0]["signature"]["unsigned"] == false);
  CHECK(k["values"][1]["exists"] == false);
  CHECK(k["values"][1]["value"] == "");
  CHECK(k["values"][1]["key"] == "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
  CHECK(k["values"][1]["signature"]["unsigned"] == true);
  CHECK_FALSE(k["values"][1].contains("sip_registration"));
}

TEST_CASE("a kind outside the registry: guessed model, --kind overrides") {
  const auto guessed = decode_hex("store_req_unknown_kind.hex");
  REQUIRE(guessed.status == 0);
  const json k = guessed.doc()["message_contents"]["body"]["kind_data"][0];
  CHECK(k["kind"] == 0xabcd);
  CHECK_FALSE(k.contains("kind_name"));
  CHECK(k["model_guessed"] == true);
  CHECK(k["values"][0]["model"] == "SINGLE");
  CHECK(k["values"][0]["value"] == "616263");

  for (const char* spec : {"0xabcd=single", "43981=SINGLE", "0xABCD=single_value"}) {
    CAPTURE(spec);
    const auto told = decode_hex("store_req_unknown_kind.hex", {"--kind", spec});
    REQUIRE(told.status == 0);
    const json kt = told.doc()["message_contents"]["body"]["kind_data"][0];
    CHECK_FALSE(kt.contains("model_guessed"));
    CHECK(kt["values"][0]["model"] == "SINGLE");
  }
  // Several --kind options and comma lists both work.
  const auto many = decode_hex("store_req_unknown_kind.hex",
                               {"--kind", "7=array,0xabcd=single", "--kind", "8=dictionary"});
  CHECK(many.status == 0);

  // A wrong model makes the body malformed; the offset is absolute in the message.
  check_malformed(decode_hex("store_req_unknown_kind.hex", {"--kind", "0xabcd=dictionary"}),
                  "malformed message: bad length at offset 117 in dictionary_entry.key");
}

TEST_CASE("--node-id-length changes what a node destination must hold") {
  const auto r = decode_hex("ping_req_wildcard.hex", {"--node-id-length", "20"});
  CHECK(r.status == 1);
  CHECK(r.one_error_line());
  CHECK(r.err.find("destination.node_id") != std::string::npos);
  CHECK(decode_hex("ping_req_wildcard.hex", {"--node-id-length", "16"}).status == 0);
}

TEST_CASE("--peer-limits still decodes a small message") {
  CHECK(decode_hex("store_req_sip_registration.hex", {"--peer-limits"}).status == 0);
}

// ---- fragments and frames ----

TEST_CASE("a fragment: the header is printed and the rest is left for reassembly") {
  const auto r = decode_hex("fragment.hex");
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const json d = r.doc();
  CHECK(d["forwarding_header"]["fragment"] == "0x80000000");
  CHECK(d["forwarding_header"]["is_fragment"] == true);
  CHECK(d["forwarding_header"]["last_fragment"] == false);
  CHECK(d["forwarding_header"]["length"] == 70);
  CHECK_FALSE(d.contains("message_contents"));
  CHECK(d["fragment"]["note"].get<std::string>().find("reassembly") != std::string::npos);
  CHECK(d["fragment"]["offset"] == 0);
  CHECK(d["fragment"]["payload_length"] == 13);
  CHECK(d["fragment"]["payload"] == "0007000001a11045a6b241a242");
  const auto again = decode_hex("fragment.hex", {"--reencode"});
  CHECK(again.status == 0);
  CHECK(again.doc().contains("reencode_skipped"));
  CHECK_FALSE(again.doc().contains("reencoded_hex"));
}

TEST_CASE("--frames: a data frame, an ack, a data frame") {
  const auto r = decode_hex("frames.hex", {"--frames"});
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const json d = r.doc();
  REQUIRE(d.is_array());
  REQUIRE(d.size() == 3);
  CHECK(d[0]["type"] == "data");
  CHECK(d[0]["offset"] == 0);
  CHECK(d[0]["sequence"] == 0);
  CHECK(d[0]["message_length"] == 77);
  CHECK(d[0]["message"]["message_contents"]["message_code_name"] == "ping_req");
  CHECK(d[1]["type"] == "ack");
  CHECK(d[1]["offset"] == 85);
  CHECK(d[1]["ack_sequence"] == 5);
  CHECK(d[1]["received"] == "0x00000003");
  CHECK(d[1]["received_sequences"] == json::array({4, 3}));
  CHECK(d[2]["type"] == "data");
  CHECK(d[2]["offset"] == 94);
  CHECK(d[2]["sequence"] == 1);
  CHECK(d[2]["message"]["message_contents"]["body"]["error_name"] == "Error_Not_Found");
}

TEST_CASE("--frames: a bad message inside a frame does not stop the stream") {
  const auto r = decode_hex("frames_bad_message.hex", {"--frames"});
  check_malformed(r,
                  "malformed message: bad RELOAD token at offset 8 in "
                  "forwarding_header.relo_token (frame 0)");
  const json d = r.doc();
  REQUIRE(d.size() == 2);
  CHECK(d[0]["sequence"] == 7);
  CHECK_FALSE(d[0].contains("message"));
  CHECK(d[0]["error"] ==
        "malformed message: bad RELOAD token at offset 8 in forwarding_header.relo_token");
  CHECK(d[1]["type"] == "ack");
  CHECK(d[1]["ack_sequence"] == 7);
}

TEST_CASE("--frames: a cut-off frame and an unknown frame type end the stream") {
  const auto cut = decode_hex("frames_truncated.hex", {"--frames"});
  check_malformed(cut,
                  "malformed frame stream: truncated at offset 9 in frame 1 (the input ends "
                  "inside it)");
  REQUIRE(cut.doc().size() == 2);
  CHECK(cut.doc()[0]["type"] == "ack");
  CHECK(cut.doc()[1]["offset"] == 9);

  const auto bad = decode_hex("frames_bad_type.hex", {"--frames"});
  CHECK(bad.status == 1);
  CHECK(bad.one_error_line());
  CHECK(bad.err.rfind("p2psip-wire: malformed frame stream: ", 0) == 0);
  CHECK(bad.err.find("offset 9") != std::string::npos);
  REQUIRE(bad.doc().size() == 2);
  CHECK(bad.doc()[1].contains("error"));
}

// ---- malformed input and usage errors ----

TEST_CASE("malformed messages: one line on stderr with an absolute offset, exit 1") {
  const auto truncated = decode_hex("malformed_truncated.hex");
  check_malformed(truncated,
                  "malformed message: truncated at offset 16 in forwarding_header.length");
  CHECK(truncated.out.empty());
  check_malformed(
      decode_hex("malformed_bad_token.hex"),
      "malformed message: bad RELOAD token at offset 0 in forwarding_header.relo_token");
  // The body starts at 56 (header) + 2 (code) + 4 (body length).
  check_malformed(decode_hex("malformed_body.hex"),
                  "malformed message: bad length at offset 62 in ping_req.padding");
  scratch_dir dir;
  const fs::path empty = dir.write("empty.bin", "");
  const auto nothing = run_wire({"decode", empty.string()});
  CHECK(nothing.status == 1);
  CHECK(nothing.one_error_line());
  CHECK(nothing.err.find("offset 0") != std::string::npos);
}

TEST_CASE("binary mode on hex text hints at --hex") {
  const auto r = run_wire({"decode", data("ping_req_wildcard.hex")});
  check_malformed(r,
                  "malformed message: bad RELOAD token at offset 0 in "
                  "forwarding_header.relo_token (the input looks like hex text: use --hex)");
  const auto not_hex = run_wire({"decode", data("bad_hex.hex")});
  CHECK(not_hex.status == 1);
  CHECK(not_hex.err.find("use --hex") == std::string::npos);
}

TEST_CASE("bad hex text") {
  check_malformed(decode_hex("bad_hex.hex"), "bad hex input: unexpected 'g' at line 1, column 21");
  check_malformed(decode_hex("odd_hex.hex"), "bad hex input: odd number of hex digits (17)");
}

TEST_CASE("unreadable input: exit 1") {
  const auto r = run_wire({"decode", "--hex", data("no-such-file.hex")});
  check_malformed(r, "cannot read " + data("no-such-file.hex") + ": No such file or directory");
  const auto dir = run_wire({"decode", data_dir});
  CHECK(dir.status == 1);
  CHECK(dir.one_error_line());
}

TEST_CASE("usage errors: exit 2 with one line") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {},
           {"decode"},
           {"decode", "--hex"},
           {"decode", "--bogus", data("ping_req_wildcard.hex")},
           {"encode", data("ping_req_wildcard.hex")},
           {"decode", data("ping_req_wildcard.hex"), data("error_not_found.hex")},
           {"decode", "--kind", "7", data("ping_req_wildcard.hex")},
           {"decode", "--kind", "7=list", data("ping_req_wildcard.hex")},
           {"decode", "--kind", "0x1ffffffff=single", data("ping_req_wildcard.hex")},
           {"decode", "--node-id-length", "15", data("ping_req_wildcard.hex")},
           {"decode", "--node-id-length", "x", data("ping_req_wildcard.hex")},
           {"decode", data("ping_req_wildcard.hex"), "--node-id-length"},
       }) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    CAPTURE(joined);
    const auto r = run_wire(args);
    CHECK(r.status == 2);
    CHECK(r.one_error_line());
    CHECK(r.err.rfind("p2psip-wire: ", 0) == 0);
    CHECK(r.out.empty());
  }
  CHECK(run_wire({"decode"}).err ==
        "p2psip-wire: missing FILE operand (use - for standard input; see --help)\n");
  CHECK(run_wire({"decode", "--bogus", "x"}).err ==
        "p2psip-wire: unknown option --bogus (see --help)\n");
  CHECK(run_wire({"decode", "--node-id-length"}).err ==
        "p2psip-wire: --node-id-length needs a value (see --help)\n");
}

TEST_CASE("--help documents every option") {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"decode", "--help"}}) {
    const auto r = run_wire(args);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    for (const char* word :
         {"Usage:", "decode", "--hex", "--frames", "--reencode", "--node-id-length", "--kind",
          "--peer-limits", "--compact", "Exit status", "malformed message"}) {
      CAPTURE(word);
      CHECK(r.out.find(word) != std::string::npos);
    }
  }
}

// ---- the library pieces ----

TEST_CASE("hex text: separators, comments and errors") {
  using p2psip::wire::parse_hex_text;
  auto ok = parse_hex_text("d2:45 4c\n4F # comment with zz\n\t01");
  REQUIRE(ok);
  CHECK(*ok == p2psip::protocol::bytes{0xd2, 0x45, 0x4c, 0x4f, 0x01});
  CHECK(parse_hex_text("")->empty());
  CHECK(parse_hex_text("# only a comment")->empty());
  CHECK(parse_hex_text("0x12").error() == "bad hex input: unexpected 'x' at line 1, column 2");
  CHECK(parse_hex_text("12\n 3").error() == "bad hex input: odd number of hex digits (3)");
  CHECK(parse_hex_text("12\x01").error() ==
        "bad hex input: unexpected byte 0x01 at line 1, column 3");
}

TEST_CASE("--kind values") {
  using p2psip::protocol::data_model;
  using p2psip::wire::parse_kind_override;
  CHECK(parse_kind_override("1=dictionary")->first == 1);
  CHECK(parse_kind_override("1=dictionary")->second == data_model::dictionary);
  CHECK(parse_kind_override("0xF0000101=Array")->first == 0xF0000101u);
  CHECK(parse_kind_override("0xF0000101=Array")->second == data_model::array);
  CHECK(parse_kind_override("4294967295=single")->first == 0xFFFFFFFFu);
  CHECK_FALSE(parse_kind_override("4294967296=single"));
  CHECK_FALSE(parse_kind_override("=single"));
  CHECK_FALSE(parse_kind_override("0x=single"));
  CHECK_FALSE(parse_kind_override("12a=single"));
  CHECK_FALSE(parse_kind_override("12=trie"));
}

TEST_CASE("printable text and times") {
  using p2psip::protocol::to_bytes;
  using p2psip::wire::is_printable_text;
  CHECK(is_printable_text(to_bytes("no such resource")));
  CHECK(is_printable_text(to_bytes("tab\tand\r\nnewline")));
  CHECK(is_printable_text(to_bytes("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")));
  CHECK_FALSE(is_printable_text(to_bytes(std::string("nul\0", 4))));
  CHECK_FALSE(is_printable_text(to_bytes("\x7f")));
  CHECK_FALSE(is_printable_text(to_bytes("\xc3")));          // cut off
  CHECK_FALSE(is_printable_text(to_bytes("\xc0\xaf")));      // overlong
  CHECK_FALSE(is_printable_text(to_bytes("\xed\xa0\x80")));  // surrogate
  CHECK_FALSE(is_printable_text(to_bytes("\xc2\x85")));      // C1 control
  CHECK(p2psip::wire::utc_from_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(p2psip::wire::utc_from_ms(1700000000123ull) == "2023-11-14T22:13:20.123Z");
  CHECK(p2psip::wire::utc_from_ms(~0ull).empty());
}

TEST_CASE("non-printable error_info is shown as hex") {
  p2psip::protocol::error_response e;
  e.error_code = 2;
  e.error_info = {0x00, 0xff};
  const auto j = p2psip::wire::body_json(e, {});
  CHECK(j["error_name"] == "Error_Forbidden");
  CHECK(j["error_info_hex"] == "00ff");
  CHECK_FALSE(j.contains("error_info"));
}

TEST_CASE("ErrorResponse Error_Unknown_Kind lists the kinds") {
  p2psip::protocol::error_response e;
  e.error_code = 12;
  e.error_info = {0x08, 0xf0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01};
  const auto j = p2psip::wire::body_json(e, {});
  CHECK(j["error_name"] == "Error_Unknown_Kind");
  CHECK(j["error_info_hex"] == "08f000000100000001");
  CHECK(json::parse(j["error_info_unknown_kinds"].dump()) ==
        json::array({{{"kind", 0xf0000001u}}, {{"kind", 1}, {"kind_name", "SIP-REGISTRATION"}}}));
}

// ---- every sample message of the test support library ----

#ifdef P2PSIP_WIRE_HAVE_SAMPLES
TEST_CASE("every sample message decodes and re-encodes, alone and framed") {
  namespace pr = p2psip::protocol;
  const auto samples =
      p2psip::test_support::make_sample_messages(p2psip::test_support::make_sample_identity());
  REQUIRE_FALSE(samples.empty());
  scratch_dir dir;
  pr::bytes stream;
  pr::writer w(stream);
  std::uint32_t sequence = 0;
  for (const auto& s : samples) {
    CAPTURE(s.name);
    const fs::path file =
        dir.write(s.name + ".bin", std::string(s.encoded.begin(), s.encoded.end()));
    const auto r = run_wire({"decode", "--reencode", file.string()});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    const json d = r.doc();
    CHECK(d["reencoded_equal"] == true);
    const auto code = s.message.contents.code;
    CHECK(d["message_contents"]["message_code"] == code);
    const std::string body_type = code == pr::codes::error
                                      ? std::string("error_response")
                                      : std::string(pr::message_code_name(code));
    CHECK(d["message_contents"]["body"]["type"] == body_type);
    // The samples carry the signer's certificate; the signer identity points at it.
    const json& sec = d["security_block"];
    REQUIRE(sec["certificate_count"].get<std::size_t>() >= 1);
    CHECK(sec["certificates"][0]["type_name"] == "X.509");
    CHECK(sec["certificates"][0]["sha256"].get<std::string>().size() == 64);
    CHECK_FALSE(sec["certificates"][0].contains("parse_error"));
    CHECK(sec["signature"]["signer_certificate"] == 0);
    pr::encode_data_frame(w, sequence++, s.encoded);
    pr::encode_ack_frame(w, pr::ack_frame{sequence, 1});
  }
  REQUIRE(w.ok());
  const fs::path framed = dir.write("stream.bin", std::string(stream.begin(), stream.end()));
  const auto r = run_wire({"decode", "--frames", "--compact", framed.string()});
  REQUIRE(r.status == 0);
  const json d = r.doc();
  REQUIRE(d.size() == 2 * samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(samples[i].name);
    CHECK(d[2 * i]["sequence"] == i);
    CHECK(d[2 * i]["message"]["message_contents"]["message_code"] ==
          samples[i].message.contents.code);
    CHECK(d[2 * i + 1]["received_sequences"] == json::array({i}));
  }
}
#endif
