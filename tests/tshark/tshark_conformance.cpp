// tshark_conformance: an external check of our RELOAD encoding by Wireshark's dissectors.
//
// Writes every sample message (tests/support) as RELOAD framing-layer DATA frames on TCP port
// 6084 into a classic pcap (requests client -> server, answers server -> client, each frame
// acknowledged by an ACK frame from the other side), runs Debian's tshark over it and checks:
//   1. no packet is malformed (-Y _ws.malformed gives nothing);
//   2. RELOAD raises no expert info at warning level or above (-q -z expert,warn, and the
//      _ws.expert items of the PDML tree), apart from the whitelisted dissector quirks below;
//   3. every value the dissector exposes equals what we encoded (-T pdml): framing fields, the
//      whole forwarding header with its via/destination lists and options, message code,
//      extensions, every body field, the security block, and nested StoredData signatures.
// A missing tshark is installed (as root, non-interactively); if that fails the test FAILS.
//
// Usage: p2psip_tshark_conformance [--keep]   (--keep leaves the pcap and tshark output behind)

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "p2psip/protocol/framing.hpp"
#include "pcap_writer.hpp"
#include "pdml.hpp"
#include "reload_checks.hpp"
#include "sample_messages.hpp"

namespace {

namespace pr = p2psip::protocol;
namespace ts = p2psip::test_support;
using ts::pdml_node;
using report = ts::check_report;

// ---------------------------------------------------------------------------------------------
// Known expert-info quirks of Wireshark 4.0.17 (warning or above) that may be ignored. The value
// quirks are documented where they are skipped, in reload_checks.cpp.
// None is needed today. Add an entry
// as {protocol column, summary substring, why} only after checking RFC 6940 says we are right.
struct expert_quirk {
  std::string_view protocol;
  std::string_view summary;
  std::string_view why;
};
constexpr std::array<expert_quirk, 0> expert_whitelist{};

bool is_whitelisted(std::string_view protocol, std::string_view summary) {
  for (const auto& q : expert_whitelist) {
    if (protocol.find(q.protocol) != std::string_view::npos &&
        summary.find(q.summary) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Running commands

struct command_result {
  int status = -1;
  std::string out;
  std::string err;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Runs `cmd` through /bin/sh with stdout and stderr captured into files in `dir`.
command_result run(const std::string& cmd, const std::filesystem::path& dir) {
  const auto out = dir / "cmd.out";
  const auto err = dir / "cmd.err";
  const std::string full = "(" + cmd + ") >'" + out.string() + "' 2>'" + err.string() + "'";
  const int raw = std::system(full.c_str());
  command_result r;
  r.status = raw == -1 ? -1 : (WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw));
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

std::string tshark_binary() {
  const char* env = std::getenv("TSHARK");
  return env != nullptr && *env != '\0' ? env : "tshark";
}

bool tshark_works(const std::filesystem::path& dir) {
  return run(tshark_binary() + " -v", dir).status == 0;
}

/// Installs Debian's tshark without questions (tshark.md's recipe). Returns a description of what
/// failed, or nothing on success.
std::optional<std::string> ensure_tshark(const std::filesystem::path& dir) {
  if (tshark_works(dir)) return std::nullopt;
  std::cerr << "tshark_conformance: tshark not found; installing it with apt-get\n";
  if (geteuid() != 0) return "tshark is not installed and this test is not running as root";
  const std::string preseed =
      "echo 'wireshark-common wireshark-common/install-setuid boolean false' | "
      "debconf-set-selections";
  const std::string install = "DEBIAN_FRONTEND=noninteractive apt-get install -y tshark";
  run(preseed, dir);
  auto r = run(install, dir);
  if (r.status != 0) {
    std::cerr << "tshark_conformance: apt-get install failed; running apt-get update first\n";
    run("DEBIAN_FRONTEND=noninteractive apt-get update", dir);
    r = run(install, dir);
  }
  if (r.status != 0) {
    return "could not install tshark (apt-get exit " + std::to_string(r.status) +
           "): " + r.err.substr(0, 2000);
  }
  if (!tshark_works(dir)) {
    return "apt-get installed tshark but '" + tshark_binary() + " -v' still fails";
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Expert info

constexpr std::uint64_t pi_warn = 0x00600000;  // epan/proto.h PI_WARN; PI_ERROR is 0x00800000

/// Expert items (severity >= warning) in RELOAD protocol trees of a PDML packet.
void expert_items(const pdml_node& n, bool in_reload, std::vector<std::string>& out) {
  for (const auto& c : n.children) {
    const bool reload_here =
        in_reload || (c.tag == "proto" && (c.name == "reload" || c.name == "reload-framing"));
    if (c.name == "_ws.expert" && reload_here) {
      const auto* sev = c.find("_ws.expert.severity");
      const auto s = sev != nullptr ? ts::pdml_number(*sev) : std::nullopt;
      const auto* msg = c.find("_ws.expert.message");
      const std::string text = msg != nullptr ? msg->show : c.showname;
      if (s && *s >= pi_warn && !is_whitelisted("RELOAD", text)) out.push_back(text);
    }
    if (c.name == "_ws.malformed") out.push_back("malformed: " + c.showname);
    expert_items(c, reload_here, out);
  }
}

/// RELOAD lines of `tshark -q -z expert,warn` (sections "Errors" and "Warns").
std::vector<std::string> expert_summary_findings(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("Errors (", 0) == 0 || line.rfind("Warns (", 0) == 0) {
      in_section = true;
      continue;
    }
    if (line.rfind("Notes (", 0) == 0 || line.rfind("Chats (", 0) == 0 ||
        line.rfind("Comments (", 0) == 0) {
      in_section = false;
      continue;
    }
    if (!in_section) continue;
    // "   Frequency      Group           Protocol  Summary": find the protocol column.
    std::istringstream cols(line);
    std::string freq, group, proto;
    if (!(cols >> freq >> group >> proto)) continue;
    if (freq == "Frequency") continue;
    std::string summary;
    std::getline(cols, summary);
    if (proto.find("RELOAD") != std::string::npos || line.find("RELOAD") != std::string::npos) {
      if (!is_whitelisted(proto, summary)) out.push_back(line);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/// "Acked Frames:[0,2-4]" -> "0,2,3,4"; anything unexpected is returned as it stands.
std::string expand_ranges(const std::string& label) {
  const auto open = label.find('[');
  const auto close = label.rfind(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return label;
  std::string out;
  std::istringstream in(label.substr(open + 1, close - open - 1));
  std::string part;
  while (std::getline(in, part, ',')) {
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    const auto dash = part.find('-');
    try {
      const unsigned long first = std::stoul(part.substr(0, dash));
      const unsigned long last =
          dash == std::string::npos ? first : std::stoul(part.substr(dash + 1));
      for (unsigned long v = first; v <= last; ++v)
        out += (out.empty() ? "" : ",") + std::to_string(v);
    } catch (const std::exception&) {
      return label;
    }
  }
  return out;
}

struct frame_plan {
  enum class kind { data, ack } type = kind::data;
  std::size_t sample = 0;  ///< data: index into samples
  bool from_client = true;
  std::uint32_t sequence = 0;        ///< data: sequence; ack: ack_sequence
  std::uint32_t received = 0;        ///< ack
  std::vector<std::uint32_t> acked;  ///< ack: the sequences `received` names
  std::size_t data_frame = 0;        ///< ack: frame number of the DATA it acknowledges
};

/// RFC 6940 section 6.6.2: for an ACK of N, bit (N-M) of `received` is set for every M received
/// with N-32 < M < N. Bit 1 is the least significant bit, the reading Wireshark uses too.
std::uint32_t received_mask(std::uint32_t n, std::vector<std::uint32_t>& acked) {
  std::uint32_t mask = 0;
  for (std::uint32_t d = 1; d <= 31 && d <= n; ++d) {
    mask |= 1u << (d - 1);
    acked.push_back(n - d);
  }
  std::sort(acked.begin(), acked.end());
  return mask;
}

}  // namespace

int main(int argc, char** argv) {
  const bool keep = argc > 1 && std::string_view(argv[1]) == "--keep";
  std::string tmpl = (std::filesystem::temp_directory_path() / "p2psip-tshark-XXXXXX").string();
  if (tmpl.find('\'') != std::string::npos || mkdtemp(tmpl.data()) == nullptr) {
    std::cerr << "FAIL: cannot create a temporary directory\n";
    return 1;
  }
  const std::filesystem::path dir = tmpl;
  // Removed on every exit unless the run failed late enough to leave evidence (or --keep).
  struct scratch_dir {
    std::filesystem::path path;
    bool keep = false;
    ~scratch_dir() {
      std::error_code ec;
      if (!keep) std::filesystem::remove_all(path, ec);
    }
  } scratch{dir, keep};

  if (auto problem = ensure_tshark(dir)) {
    std::cerr << "FAIL: tshark_conformance needs Debian's tshark: " << *problem << "\n"
              << "      install it: echo 'wireshark-common wireshark-common/install-setuid "
                 "boolean false' | debconf-set-selections; apt-get install -y tshark\n";
    return 1;
  }

  // ---- the samples, and what our own codec says of them ----
  std::optional<ts::test_identity> id;
  std::vector<ts::sample_message> samples;
  try {
    id = ts::make_sample_identity(1);
    samples = ts::make_sample_messages(*id, 1);
  } catch (const std::exception& e) {
    std::cerr << "FAIL: cannot build the sample messages: " << e.what() << "\n";
    return 1;
  }
  report rep;
  for (const auto& s : samples) {
    ++rep.checks;
    auto back = pr::decode_message(s.encoded, pr::limits{});
    if (!back) {
      rep.fail(s.name, "our decoder rejects our encoding: " + back.error().message());
    } else if (!(*back == s.message)) {
      rep.fail(s.name, "decode(encode(m)) != m");
    }
    ++rep.checks;
    if (!ts::verify_message(s.message, *id)) rep.fail(s.name, "message signature does not verify");
    // StoredData signatures (RFC 6940 section 7.1) of the values a sample carries.
    auto verify_values = [&](const pr::resource_id& res, std::uint32_t kind,
                             const std::vector<pr::stored_data>& values) {
      for (const auto& v : values) {
        ++rep.checks;
        if (!ts::verify_stored_data(v, res, kind, *id)) {
          rep.fail(s.name,
                   "StoredData signature of kind " + std::to_string(kind) + " does not verify");
        }
      }
    };
    if (const auto* st = std::get_if<pr::store_req>(&s.body)) {
      for (const auto& kd : st->kind_data) verify_values(st->resource, kd.kind, kd.values);
    }
    if (const auto* fa = std::get_if<pr::fetch_ans>(&s.body)) {
      const auto aor = pr::hash_resource_name(ts::sample_aor);
      for (const auto& kr : fa->kind_responses) verify_values(aor, kr.kind, kr.values);
    }
  }

  const ts::tcp_endpoint client{{0x02, 0, 0, 0, 0, 0x01}, {192, 0, 2, 10}, 49152};
  const ts::tcp_endpoint server{{0x02, 0, 0, 0, 0, 0x02}, {192, 0, 2, 1}, 6084};
  ts::pcap_tcp_writer pcap(client, server);
  pcap.handshake();
  std::map<std::size_t, frame_plan> plan;  // frame number -> what it carries
  std::map<std::size_t, std::size_t> frame_of_sample;
  // Frames come from the codec's framing layer (framing.hpp), so tshark checks it too; each is
  // also compared with the RFC layout written out by hand in pcap_writer.cpp.
  std::uint32_t client_seq = 0, server_seq = 0;
  pr::receive_window client_rx, server_rx;  // what each side has received
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const bool from_client = samples[i].is_request();
    std::uint32_t& seq = from_client ? client_seq : server_seq;
    const auto data = pr::encode_frame(pr::data_frame{seq, samples[i].encoded});
    ++rep.checks;
    if (!data || *data != ts::frame_data(seq, samples[i].encoded)) {
      rep.fail(samples[i].name, "encode_frame(data) differs from RFC 6940 section 6.6.2's layout");
    }
    const pr::bytes& data_bytes = data ? *data : ts::frame_data(seq, samples[i].encoded);
    from_client ? pcap.client_sends(data_bytes) : pcap.server_sends(data_bytes);
    const std::size_t data_frame = pcap.packets();
    plan[data_frame] = frame_plan{frame_plan::kind::data, i, from_client, seq, 0, {}, 0};
    frame_of_sample[i] = data_frame;
    // The other side acknowledges at once (RFC 6940 section 6.6.2: "SHOULD immediately").
    frame_plan ack{frame_plan::kind::ack, i, !from_client, seq, 0, {}, data_frame};
    ack.received = received_mask(seq, ack.acked);
    const pr::ack_frame codec_ack = (from_client ? server_rx : client_rx).on_data(seq);
    ++rep.checks;
    if (codec_ack.ack_sequence != seq || codec_ack.received != ack.received) {
      rep.fail(samples[i].name, "receive_window acks " + std::to_string(codec_ack.ack_sequence) +
                                    "/" + std::to_string(codec_ack.received) + ", expected " +
                                    std::to_string(seq) + "/" + std::to_string(ack.received));
    }
    const auto ack_bytes = pr::encode_frame(codec_ack);
    ++rep.checks;
    if (!ack_bytes || *ack_bytes != ts::frame_ack(codec_ack.ack_sequence, codec_ack.received)) {
      rep.fail(samples[i].name, "encode_frame(ack) differs from RFC 6940 section 6.6.2's layout");
    }
    const pr::bytes& ack_out =
        ack_bytes ? *ack_bytes : ts::frame_ack(codec_ack.ack_sequence, codec_ack.received);
    from_client ? pcap.server_sends(ack_out) : pcap.client_sends(ack_out);
    ack.received = codec_ack.received;  // what is on the wire is what tshark must show
    plan[pcap.packets()] = ack;
    ++seq;
  }
  pcap.close();
  const auto pcap_path = dir / "samples.pcap";
  if (!pcap.save(pcap_path.string())) {
    std::cerr << "FAIL: cannot write " << pcap_path << "\n";
    return 1;
  }

  // Own configuration directory: personal Wireshark preferences cannot change the decoding.
  const std::string tshark = "WIRESHARK_CONFIG_DIR='" + dir.string() + "' " + tshark_binary() +
                             " -n -r '" + pcap_path.string() +
                             "' -d tcp.port==6084,reload-framing"
                             " -o reload.nodeid_length:16 -o reload.topology_plugin:CHORD-RELOAD";

  // ---- 1. malformed packets ----
  const auto malformed = run(tshark + " -Y _ws.malformed -T fields -e frame.number", dir);
  ++rep.checks;
  if (malformed.status != 0) {
    rep.fail("tshark -Y _ws.malformed",
             "exit " + std::to_string(malformed.status) + ": " + malformed.err);
  } else if (malformed.out.find_first_not_of(" \n") != std::string::npos) {
    rep.fail("tshark -Y _ws.malformed", "malformed frames: " + malformed.out);
  }

  // ---- 2. expert info, warning and above ----
  const auto expert = run(tshark + " -q -z expert,warn", dir);
  ++rep.checks;
  if (expert.status != 0) {
    rep.fail("tshark -z expert,warn", "exit " + std::to_string(expert.status) + ": " + expert.err);
  }
  for (const auto& line : expert_summary_findings(expert.out)) {
    rep.fail("tshark -z expert,warn", "RELOAD expert info: " + line);
  }

  // ---- 3. decoded values ----
  const auto pdml_run = run(tshark + " -T pdml", dir);
  std::string pdml_error;
  std::optional<std::vector<pdml_node>> packets;
  ++rep.checks;
  if (pdml_run.status != 0) {
    rep.fail("tshark -T pdml", "exit " + std::to_string(pdml_run.status) + ": " + pdml_run.err);
  } else {
    packets = ts::parse_pdml(pdml_run.out, pdml_error);
    if (!packets) rep.fail("tshark -T pdml", pdml_error);
  }
  if (packets) {
    ++rep.checks;
    if (packets->size() != pcap.packets()) {
      rep.fail("tshark -T pdml", std::to_string(packets->size()) + " packets decoded, " +
                                     std::to_string(pcap.packets()) + " written");
    }
    for (std::size_t k = 0; k < packets->size() && k < pcap.packets(); ++k) {
      const std::size_t number = k + 1;
      const pdml_node& p = (*packets)[k];
      const auto it = plan.find(number);
      std::vector<std::string> experts;
      expert_items(p, false, experts);
      const std::string where =
          "frame " + std::to_string(number) +
          (it != plan.end() ? " (" + samples[it->second.sample].name +
                                  (it->second.type == frame_plan::kind::ack ? " ACK)" : ")")
                            : std::string());
      for (const auto& e : experts) rep.fail(where, "expert info: " + e);
      if (it == plan.end()) continue;  // TCP handshake and close
      const frame_plan& f = it->second;
      ts::field_checker pc(pcap.frame(number), rep, where);
      const pdml_node* framing = nullptr;
      const pdml_node* reload = nullptr;
      for (const auto& c : p.children) {
        if (c.tag == "proto" && c.name == "reload-framing") framing = &c;
        if (c.tag == "proto" && c.name == "reload") reload = &c;
      }
      ++rep.checks;
      if (framing == nullptr) {
        rep.fail(where, "not decoded as RELOAD framing");
        continue;
      }
      if (f.type == frame_plan::kind::ack) {
        pc.num(framing, "reload_framing.type", 129, "framing type");
        pc.num(framing, "reload_framing.ack_sequence", f.sequence, "ack_sequence");
        pc.num(framing, "reload_framing.received", f.received, "received");
        // Wireshark lists the sequences `received` names: "Acked Frames:[0,1]", "[0-5]"; no
        // item when none.
        std::string expected;
        for (const auto a : f.acked) expected += (expected.empty() ? "" : ",") + std::to_string(a);
        std::string shown;
        if (const auto* acked = framing->find("reload_framing.parsed_received")) {
          shown = expand_ranges(acked->showname);
        }
        pc.text_eq(shown, expected, "acked frames");
        pc.num(framing, "reload_framing.response-to", f.data_frame, "ACK matched to its DATA");
        continue;
      }
      const auto& s = samples[f.sample];
      pc.num(framing, "reload_framing.type", 128, "framing type");
      pc.num(framing, "reload_framing.sequence", f.sequence, "framing sequence");
      pc.num(framing, "reload_framing.message.length", s.encoded.size(), "framing length");
      pc.bytes_eq(framing, "reload_framing.message.data", s.encoded, "framed message");
      ++rep.checks;
      if (reload == nullptr) {
        rep.fail(where, "the DATA frame's message is not decoded as RELOAD");
        continue;
      }
      ts::check_message(pc, *reload, s);
      // Transaction matching: an answer points at its request (same transaction id).
      if (!s.is_request()) {
        for (std::size_t j = 0; j < samples.size(); ++j) {
          if (samples[j].is_request() &&
              samples[j].message.header.transaction_id == s.message.header.transaction_id) {
            pc.num(reload, "reload.response-to", frame_of_sample[j], "answer matched to request");
          }
        }
      }
    }
  }

  // ---- 4. the checker itself: a wrong expectation must be caught ----
  // Each mutation changes what we claim to have encoded (the bytes stay as they are); checking the
  // same tshark output against it must fail, or the checks above prove nothing.
  if (packets) {
    auto must_catch = [&](std::string_view sample, std::string_view what, auto mutate) {
      ++rep.checks;
      std::size_t i = 0;
      while (i < samples.size() && samples[i].name != sample) ++i;
      if (i == samples.size()) {
        rep.fail("self-check", "no sample " + std::string(sample));
        return;
      }
      ts::sample_message wrong = samples[i];
      mutate(wrong);
      const std::size_t number = frame_of_sample[i];
      const pdml_node* reload = nullptr;
      for (const auto& c : (*packets)[number - 1].children) {
        if (c.tag == "proto" && c.name == "reload") reload = &c;
      }
      report mutated;
      ts::field_checker pc(pcap.frame(number), mutated, "self-check");
      if (reload != nullptr) ts::check_message(pc, *reload, wrong);
      if (mutated.failures.empty()) {
        rep.fail("self-check",
                 "a wrong " + std::string(what) + " in " + std::string(sample) + " went unnoticed");
      }
    };
    must_catch("ping_req", "ttl", [](ts::sample_message& m) { ++m.message.header.ttl; });
    must_catch("routed_ping_req", "via entry", [](ts::sample_message& m) {
      m.message.header.via_list[1] = pr::to_destination(pr::node_id::power_of_two(7));
    });
    must_catch("routed_ping_req", "extension", [](ts::sample_message& m) {
      m.message.contents.extensions[0].contents.push_back(0);
    });
    must_catch("store_req", "lifetime", [](ts::sample_message& m) {
      ++std::get<pr::store_req>(m.body).kind_data[0].values[0].lifetime;
    });
    must_catch("fetch_ans", "certificate value", [](ts::sample_message& m) {
      auto& v = std::get<pr::fetch_ans>(m.body).kind_responses[1].values[0].value;
      std::get<pr::array_entry>(v).value.value[10] ^= 1;
    });
    must_catch("attach_req", "rel_addr port", [](ts::sample_message& m) {
      auto& c = std::get<pr::attach_req>(m.body).candidates[1];
      std::get<pr::ipv4_address_port>(c.rel_addr_port->value).port += 1;
    });
    must_catch("fetch_req", "array range", [](ts::sample_message& m) {
      auto& spec = std::get<pr::fetch_req>(m.body).specifiers[1];
      std::get<std::vector<pr::array_range>>(spec.model)[1].first += 1;
    });
    must_catch("stat_req", "dictionary key", [](ts::sample_message& m) {
      auto& spec = std::get<pr::stat_req>(m.body).specifiers[0];
      std::get<std::vector<pr::bytes>>(spec.model)[0][0] ^= 1;
    });
    must_catch("update_req_full", "finger",
               [](ts::sample_message& m) { std::get<pr::update_req>(m.body).fingers.pop_back(); });
    must_catch("error_unknown_kind", "error code",
               [](ts::sample_message& m) { std::get<pr::error_response>(m.body).error_code = 3; });
    must_catch("probe_ans", "message signature",
               [](ts::sample_message& m) { m.message.security.signature.value[5] ^= 1; });
  }

  // ---- verdict ----
  std::cout << "tshark_conformance: " << samples.size() << " samples, " << pcap.packets()
            << " packets, " << rep.checks << " checks, " << rep.failures.size() << " failures\n";
  for (const auto& f : rep.failures) std::cout << "  FAIL " << f << "\n";
  if (!rep.failures.empty() || keep) {
    scratch.keep = true;
    std::cout << "capture and tshark output kept in " << dir << "\n";
    std::ofstream(dir / "tshark.pdml") << pdml_run.out;
    std::ofstream(dir / "expert.txt") << expert.out;
  }
  return rep.failures.empty() ? 0 : 1;
}
