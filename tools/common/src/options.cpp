#include "p2psip/tool/options.hpp"

#include <optional>

namespace p2psip::tool {

namespace {

constexpr std::string_view left_quote = "\xE2\x80\x98";
constexpr std::string_view right_quote = "\xE2\x80\x99";

/// The text between the first pair of quotes of cxxopts' message after `prefix`, if it starts so.
std::optional<std::string> quoted_after(std::string_view message, std::string_view prefix,
                                        std::size_t skip = 0) {
  if (message.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::size_t at = prefix.size();
  for (std::size_t i = 0; i <= skip; ++i) {
    const auto open = message.find(left_quote, at);
    if (open == std::string_view::npos) return std::nullopt;
    const auto close = message.find(right_quote, open + left_quote.size());
    if (close == std::string_view::npos) return std::nullopt;
    if (i == skip) {
      const auto begin = open + left_quote.size();
      return std::string(message.substr(begin, close - begin));
    }
    at = close + right_quote.size();
  }
  return std::nullopt;
}

/// "--name" for a long option, "-n" for a one-letter one (as cxxopts names them, without dashes).
std::string dashed(const std::string& name) {
  if (name.rfind('-', 0) == 0) return name;
  return (name.size() == 1 ? "-" : "--") + name;
}

/// The option a refused `value` was given to: "--opt=value" or "--opt value" in argv.
std::optional<std::string> option_given(std::string_view value, int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const auto eq = a.find('=');
    if (eq != std::string_view::npos) {
      if (a.substr(eq + 1) == value) return std::string(a.substr(0, eq));
    } else if (i + 1 < argc && std::string_view(argv[i + 1]) == value) {
      return std::string(a);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string ascii_quotes(std::string text) {
  for (const std::string_view quote : {left_quote, right_quote}) {
    for (auto at = text.find(quote); at != std::string::npos; at = text.find(quote, at)) {
      text.replace(at, quote.size(), "'");
    }
  }
  return text;
}

std::string usage_message(const cxxopts::exceptions::exception& e, int argc,
                          const char* const* argv) {
  const std::string_view m = e.what();
  if (m.find(" does not exist") != std::string_view::npos) {
    if (auto name = quoted_after(m, "Option ")) return "unknown option " + dashed(*name);
  }
  if (m.find(" is missing an argument") != std::string_view::npos ||
      m.find(" requires an argument") != std::string_view::npos) {
    if (auto name = quoted_after(m, "Option ")) return dashed(*name) + " needs a value";
  }
  if (m.find(" does not take an argument") != std::string_view::npos) {
    auto name = quoted_after(m, "Option ");
    auto value = quoted_after(m, "Option ", 1);
    if (name && value) return dashed(*name) + " takes no value (given '" + *value + "')";
  }
  if (m.find(" failed to parse") != std::string_view::npos) {
    if (auto value = quoted_after(m, "Argument ")) {
      if (auto option = option_given(*value, argc, argv)) {
        return *option + " '" + *value + "': not a valid number";
      }
      return "'" + *value + "': not a valid number";
    }
  }
  if (m.find(" has no value") != std::string_view::npos) {
    if (auto name = quoted_after(m, "Option ")) return dashed(*name) + " is required";
  }
  return ascii_quotes(std::string(m));
}

}  // namespace p2psip::tool
