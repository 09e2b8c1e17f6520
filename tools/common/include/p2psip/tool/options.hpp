#pragma once
// Option errors in plain ASCII that name the option. cxxopts words its errors with U+2018/U+2019
// quotes and, for a value that does not parse, names the value but not the option
// ("Argument 'abc' failed to parse"); every tool turns them into "--status-interval 'abc': ..."
// here, so that no curly quote reaches a terminal, a log or a JSON error document.

#include <cxxopts.hpp>
#include <string>
#include <string_view>

namespace p2psip::tool {

/// `text` with cxxopts' curly quotes (U+2018, U+2019) turned into ASCII apostrophes.
std::string ascii_quotes(std::string text);

/// The usage error `e` (from cxxopts::Options::parse or ParseResult::as) as one ASCII line that
/// names the option: "unknown option --frobnicate", "--timeout needs a value", "--status-interval
/// 'abc': not a valid number". `argc`/`argv` are the parsed command line (to find which option a
/// refused value was given to).
std::string usage_message(const cxxopts::exceptions::exception& e, int argc,
                          const char* const* argv);

}  // namespace p2psip::tool
