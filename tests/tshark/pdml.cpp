#include "pdml.hpp"

#include <charconv>

namespace p2psip::test_support {

namespace {

void find_all_into(const pdml_node& n, std::string_view name, std::vector<const pdml_node*>& out) {
  for (const auto& c : n.children) {
    if (c.name == name) out.push_back(&c);
    find_all_into(c, name, out);
  }
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Replaces &lt; &gt; &amp; &quot; &apos; &#N; &#xN; in an attribute value.
bool unescape(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '&') {
      out.push_back(in[i]);
      continue;
    }
    const std::size_t semi = in.find(';', i);
    if (semi == std::string_view::npos) return false;
    const std::string_view ent = in.substr(i + 1, semi - i - 1);
    if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() > 1 && ent[0] == '#') {
      const bool hex = ent[1] == 'x' || ent[1] == 'X';
      const std::string_view digits = ent.substr(hex ? 2 : 1);
      std::uint32_t cp = 0;
      const auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (ec != std::errc{} || p != digits.data() + digits.size()) return false;
      append_utf8(out, cp);
    } else {
      return false;
    }
    i = semi;
  }
  return true;
}

class parser {
 public:
  explicit parser(std::string_view text) : s_(text) {}

  std::optional<std::vector<pdml_node>> run(std::string& error) {
    std::vector<pdml_node> stack;  // open elements; stack[0] is a synthetic root
    stack.emplace_back();
    while (true) {
      const std::size_t lt = s_.find('<', i_);
      if (lt == std::string_view::npos) break;
      i_ = lt;
      if (s_.substr(i_, 2) == "<?" || s_.substr(i_, 2) == "<!") {
        const std::size_t gt = s_.find('>', i_);
        if (gt == std::string_view::npos) return fail(error, "unterminated declaration");
        i_ = gt + 1;
        continue;
      }
      if (s_.substr(i_, 2) == "</") {
        const std::size_t gt = s_.find('>', i_);
        if (gt == std::string_view::npos) return fail(error, "unterminated end tag");
        const std::string_view tag = trim(s_.substr(i_ + 2, gt - i_ - 2));
        if (stack.size() < 2 || stack.back().tag != tag) {
          return fail(error, "mismatched end tag </" + std::string(tag) + ">");
        }
        pdml_node done = std::move(stack.back());
        stack.pop_back();
        stack.back().children.push_back(std::move(done));
        i_ = gt + 1;
        continue;
      }
      pdml_node n;
      bool self_closing = false;
      if (!start_tag(n, self_closing, error)) return std::nullopt;
      if (self_closing) {
        stack.back().children.push_back(std::move(n));
      } else {
        stack.push_back(std::move(n));
      }
    }
    if (stack.size() != 1) return fail(error, "unclosed element <" + stack.back().tag + ">");
    // The document is <pdml> holding <packet>s.
    std::vector<pdml_node> packets;
    for (auto& top : stack[0].children) {
      if (top.tag != "pdml") continue;
      for (auto& p : top.children) {
        if (p.tag == "packet") packets.push_back(std::move(p));
      }
    }
    return packets;
  }

 private:
  static std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\n' || v.front() == '\t'))
      v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\n' || v.back() == '\t'))
      v.remove_suffix(1);
    return v;
  }
  static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

  std::nullopt_t fail(std::string& error, std::string what) const {
    error = "PDML at byte " + std::to_string(i_) + ": " + std::move(what);
    return std::nullopt;
  }

  bool start_tag(pdml_node& n, bool& self_closing, std::string& error) {
    ++i_;  // '<'
    const std::size_t name_start = i_;
    while (i_ < s_.size() && !is_space(s_[i_]) && s_[i_] != '>' && s_[i_] != '/') ++i_;
    n.tag = std::string(s_.substr(name_start, i_ - name_start));
    for (;;) {
      while (i_ < s_.size() && is_space(s_[i_])) ++i_;
      if (i_ >= s_.size()) {
        fail(error, "unterminated start tag");
        return false;
      }
      if (s_[i_] == '>') {
        ++i_;
        return true;
      }
      if (s_.substr(i_, 2) == "/>") {
        i_ += 2;
        self_closing = true;
        return true;
      }
      const std::size_t eq = s_.find('=', i_);
      if (eq == std::string_view::npos || eq + 1 >= s_.size() || s_[eq + 1] != '"') {
        fail(error, "bad attribute");
        return false;
      }
      const std::string_view attr = trim(s_.substr(i_, eq - i_));
      const std::size_t close = s_.find('"', eq + 2);
      if (close == std::string_view::npos) {
        fail(error, "unterminated attribute");
        return false;
      }
      std::string v;
      if (!unescape(s_.substr(eq + 2, close - eq - 2), v)) {
        fail(error, "bad entity in attribute");
        return false;
      }
      set(n, attr, std::move(v));
      i_ = close + 1;
    }
  }

  static void set(pdml_node& n, std::string_view attr, std::string v) {
    if (attr == "name") {
      n.name = std::move(v);
    } else if (attr == "show") {
      n.show = std::move(v);
    } else if (attr == "showname") {
      n.showname = std::move(v);
    } else if (attr == "value") {
      n.value = std::move(v);
    } else if (attr == "pos" || attr == "size") {
      std::size_t x = 0;
      std::from_chars(v.data(), v.data() + v.size(), x);
      (attr == "pos" ? n.pos : n.size) = x;
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

const pdml_node* pdml_node::find(std::string_view n) const {
  for (const auto& c : children) {
    if (c.name == n) return &c;
    if (const auto* hit = c.find(n)) return hit;
  }
  return nullptr;
}

std::vector<const pdml_node*> pdml_node::find_all(std::string_view n) const {
  std::vector<const pdml_node*> out;
  find_all_into(*this, n, out);
  return out;
}

std::vector<const pdml_node*> pdml_node::children_named(std::string_view n) const {
  std::vector<const pdml_node*> out;
  for (const auto& c : children) {
    if (c.name == n) out.push_back(&c);
  }
  return out;
}

std::optional<std::vector<pdml_node>> parse_pdml(std::string_view text, std::string& error) {
  return parser(text).run(error);
}

}  // namespace p2psip::test_support
