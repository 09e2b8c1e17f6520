// p2psip-fuzz-seeds --for message|frames|reassembly|config OUTDIR: seeds for one fuzz target, made
// from the sample messages (which carry a certificate made at run time, so they are never
// committed).

#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "p2psip/protocol/fragment.hpp"
#include "p2psip/protocol/framing.hpp"
#include "sample_messages.hpp"

namespace pr = p2psip::protocol;
namespace ts = p2psip::test_support;

namespace {

void write_file(const std::filesystem::path& path, const pr::bytes& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()),
            static_cast<std::streamsize>(data.size()));  // NOLINT
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void append(pr::bytes& out, const pr::bytes& more) {
  out.insert(out.end(), more.begin(), more.end());
}

pr::bytes framed(const pr::frame& f) {
  auto e = pr::encode_frame(f);
  if (!e) throw std::runtime_error("cannot frame a sample");
  return *e;
}

/// A reassembly record: [u8 link][u8 time step][u16 length][bytes].
void add_record(pr::bytes& out, std::uint8_t link, std::uint8_t step, const pr::bytes& fragment) {
  out.push_back(link);
  out.push_back(step);
  out.push_back(static_cast<std::uint8_t>(fragment.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(fragment.size()));
  append(out, fragment);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::string(argv[1]) != "--for") {
    std::cerr << "usage: p2psip-fuzz-seeds --for message|frames|reassembly|config OUTDIR\n";
    return 2;
  }
  const std::string target = argv[2];
  const std::filesystem::path dir = argv[3];
  try {
    std::filesystem::create_directories(dir);
    const auto samples = ts::make_sample_messages(ts::make_sample_identity(1), 1);
    std::size_t written = 0;
    if (target == "message") {
      for (const auto& s : samples) write_file(dir / (s.name + ".bin"), s.encoded), ++written;
    } else if (target == "frames") {
      // Streams of a few messages with acks between them; the first byte picks the split size.
      for (std::size_t i = 0; i + 1 < samples.size(); i += 2) {
        pr::bytes stream{static_cast<std::uint8_t>(i * 7 % 251)};
        append(stream, framed(pr::data_frame{static_cast<std::uint32_t>(i), samples[i].encoded}));
        append(stream, framed(pr::ack_frame{static_cast<std::uint32_t>(i), 0x5}));
        append(stream,
               framed(pr::data_frame{static_cast<std::uint32_t>(i + 1), samples[i + 1].encoded}));
        write_file(dir / ("stream_" + samples[i].name + ".bin"), stream);
        ++written;
      }
      // A message over the target's 4096-byte limit after a normal one: the keep_header decoder
      // hands out its forwarding header (RFC 6940 6.6), the plain one fails.
      pr::limits big;
      big.max_message_size = 1 << 20;
      for (std::size_t i = 0; i < samples.size() && i < 6; ++i) {
        auto m = pr::decode_message(samples[i].encoded, big);
        if (!m) continue;
        m->contents.body.resize(m->contents.body.size() + 6000, 0x5A);
        auto encoded = pr::encode_message(*m, big);
        if (!encoded) continue;
        pr::bytes stream{static_cast<std::uint8_t>(i * 13 % 251)};
        append(stream, framed(pr::data_frame{1, samples[i].encoded}));
        append(stream, framed(pr::data_frame{2, *encoded}));
        write_file(dir / ("oversized_" + samples[i].name + ".bin"), stream);
        ++written;
      }
    } else if (target == "config") {
      // Unsigned edge cases beside the committed corpus: the largest sequence, and a document
      // with two configurations of which the second is selected by nobody.
      const std::string edge =
          "<?xml version=\"1.0\"?><overlay xmlns=\"urn:ietf:params:xml:ns:p2p:config-base\">"
          "<configuration instance-name=\"a.example\" sequence=\"65534\">"
          "<node-id-length>16</node-id-length></configuration>"
          "<configuration instance-name=\"b.example\" sequence=\"0\"/>"
          "<signature>not base64</signature></overlay>";
      write_file(dir / "edge.xml", pr::bytes(edge.begin(), edge.end()));
      ++written;
    } else if (target == "reassembly") {
      pr::limits lim;
      lim.max_message_size = 8192;
      for (const auto& s : samples) {
        auto fragments = pr::fragment_message(s.encoded, 320, lim);
        if (!fragments || fragments->size() < 2) continue;
        pr::bytes in_order, reversed;
        for (const auto& f : *fragments) add_record(in_order, 0, 1, f);
        for (auto it = fragments->rbegin(); it != fragments->rend(); ++it)
          add_record(reversed, 1, 3, *it);
        write_file(dir / (s.name + "_in_order.bin"), in_order);
        write_file(dir / (s.name + "_reversed.bin"), reversed);
        written += 2;
      }
    } else {
      std::cerr << "p2psip-fuzz-seeds: unknown target '" << target << "'\n";
      return 2;
    }
    if (written == 0) {
      std::cerr << "p2psip-fuzz-seeds: no seeds for " << target << "\n";
      return 1;
    }
    std::cout << "wrote " << written << " seeds for " << target << " to " << dir << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "p2psip-fuzz-seeds: " << e.what() << "\n";
    return 1;
  }
}
