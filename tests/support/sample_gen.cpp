// p2psip-sample-gen OUTDIR [SEED]: writes every sample message to OUTDIR/<name>.bin (fuzz seeds,
// wire-tool tests). The key and certificate are fresh on each run; everything else follows SEED.

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "sample_messages.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: p2psip-sample-gen OUTDIR [SEED]\n";
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    const std::uint64_t seed = argc == 3 ? std::stoull(argv[2], nullptr, 0) : 1;
    std::filesystem::create_directories(dir);
    const auto id = p2psip::test_support::make_sample_identity(seed);
    const auto samples = p2psip::test_support::make_sample_messages(id, seed);
    for (const auto& s : samples) {
      const auto path = dir / (s.name + ".bin");
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(s.encoded.data()),  // NOLINT: byte I/O
                static_cast<std::streamsize>(s.encoded.size()));
      if (!out) {
        std::cerr << "p2psip-sample-gen: cannot write " << path << "\n";
        return 1;
      }
    }
    std::cout << "wrote " << samples.size() << " samples to " << dir << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "p2psip-sample-gen: " << e.what() << "\n";
    return 1;
  }
}
