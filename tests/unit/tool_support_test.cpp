// p2psip::tool_support (what every program with a command line shares) and the codec's hex,
// both on Botan's codecs now: golden values, malformed input, and cxxopts' errors as the tools
// print them.
#include <doctest/doctest.h>

#include <array>
#include <cxxopts.hpp>
#include <string>

#include "p2psip/config/overlay_config.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/tool/encoding.hpp"
#include "p2psip/tool/exit_codes.hpp"
#include "p2psip/tool/log.hpp"
#include "p2psip/tool/options.hpp"

namespace tool = p2psip::tool;
namespace pr = p2psip::protocol;

TEST_CASE("tool hex and base64: RFC 4648 vectors, and malformed hex refused") {
  const std::string foobar = "foobar";
  const std::vector<std::uint8_t> b(foobar.begin(), foobar.end());
  CHECK(tool::to_base64(std::span(b).first(0)).empty());
  CHECK(tool::to_base64(std::span(b).first(1)) == "Zg==");
  CHECK(tool::to_base64(std::span(b).first(2)) == "Zm8=");
  CHECK(tool::to_base64(b) == "Zm9vYmFy");
  const std::array<std::uint8_t, 4> bytes{0x00, 0x0f, 0xab, 0xff};
  CHECK(tool::to_hex(bytes) == "000fabff");
  CHECK(tool::from_hex("000FabfF") == std::vector<std::uint8_t>{0x00, 0x0f, 0xab, 0xff});
  CHECK(tool::from_hex("")->empty());
  CHECK_FALSE(tool::from_hex("abc"));    // odd
  CHECK_FALSE(tool::from_hex("zz"));     // not hex
  CHECK_FALSE(tool::from_hex("ab cd"));  // no separators in a --dict-key
}

TEST_CASE("codec from_hex: whitespace and ':' separators, odd or bad digits refused") {
  pr::bytes out{1};
  CHECK(pr::from_hex("de:ad be\nef\t00", out));
  CHECK(out == pr::bytes{0xde, 0xad, 0xbe, 0xef, 0x00});
  CHECK(pr::to_hex(out) == "deadbeef00");
  pr::bytes kept{7};
  CHECK_FALSE(pr::from_hex("abc", kept));
  CHECK_FALSE(pr::from_hex("a b c", kept));
  CHECK_FALSE(pr::from_hex("0g", kept));
  CHECK(kept == pr::bytes{7});  // untouched on failure
  CHECK(pr::from_hex("", kept));
  CHECK(kept.empty());
}

TEST_CASE("one timestamp format: UTC with milliseconds") {
  CHECK(tool::utc_time_text_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(tool::utc_time_text_ms(1700000000123ULL) == "2023-11-14T22:13:20.123Z");
  CHECK(tool::utc_time_text_ms(~0ULL).empty());
  CHECK(tool::utc_time_text(std::chrono::system_clock::time_point(std::chrono::milliseconds(5))) ==
        "1970-01-01T00:00:00.005Z");
  CHECK(tool::one_line("a\nb\r\n") == "a b");
}

TEST_CASE("option errors: plain ASCII naming the option") {
  cxxopts::Options o("t");
  o.add_options()("count", "", cxxopts::value<long>())("flag", "")("name", "",
                                                                   cxxopts::value<std::string>());
  const auto message = [&o](std::vector<const char*> argv) -> std::string {
    argv.insert(argv.begin(), "t");
    try {
      (void)o.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const cxxopts::exceptions::exception& e) {
      return tool::usage_message(e, static_cast<int>(argv.size()), argv.data());
    }
    return "parsed";
  };
  CHECK(message({"--colour"}) == "unknown option --colour");
  CHECK(message({"-x"}) == "unknown option -x");
  CHECK(message({"--count", "many"}) == "--count 'many': not a valid number");
  CHECK(message({"--count=many"}) == "--count 'many': not a valid number");
  CHECK(message({"--name"}) == "--name needs a value");
  CHECK(message({"--flag=yes please"}).find("--flag") != std::string::npos);
  for (const auto& m : {message({"--colour"}), message({"--count", "x"}), message({"--name"})}) {
    for (const char c : m) CHECK((c >= 0x20 && c < 0x7f));
  }
  CHECK(tool::ascii_quotes("Option \xE2\x80\x98x\xE2\x80\x99") == "Option 'x'");
}

TEST_CASE("the exit-code table: one number per cause, for every tool") {
  CHECK(tool::status(tool::exit_code::usage) == 2);
  CHECK(tool::status(tool::exit_code::configuration) == 6);
  const auto help = tool::exit_codes_help({{tool::exit_code::configuration, "line one\nline two"}});
  CHECK(help == "\nExit status:\n  6  " +
                    std::string(tool::meaning(tool::exit_code::configuration)) +
                    "\n     line one\n     line two\n");
}

TEST_CASE("kinds by name in messages") {
  CHECK(p2psip::config::kind_display_name(1) == "sip-registration");
  CHECK(p2psip::config::kind_display_name(0x10) == "certificate-by-user");
  CHECK(p2psip::config::kind_display_name(0xF0000101) == "generic");
  CHECK(p2psip::config::kind_display_name(0xF0000102) == "sip-gateway");
  CHECK(p2psip::config::kind_display_name(74565) == "74565");
}
