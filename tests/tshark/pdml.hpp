#pragma once
// A reader for tshark's PDML output (-T pdml): packets, protocols and fields as a tree, with each
// item's name, show, showname, value, pos and size. Just enough XML for what tshark writes:
// elements, attributes with the five named entities and numeric character references, the XML
// declaration and processing instructions.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p2psip::test_support {

struct pdml_node {
  std::string tag;       ///< "packet", "proto" or "field"
  std::string name;      ///< "reload.forwarding.ttl"
  std::string show;      ///< the displayed value ("100", "0x0a", "de:f5:...")
  std::string showname;  ///< the whole tree line ("ttl (uint8): 100")
  std::string value;     ///< hex of the field's value or bytes ("" for FT_NONE)
  std::size_t pos = 0;   ///< byte offset in the frame
  std::size_t size = 0;  ///< bytes the item covers
  std::vector<pdml_node> children;

  /// The first descendant (depth first, document order) named `n`, or nullptr.
  const pdml_node* find(std::string_view n) const;
  /// Every descendant named `n`, in document order (matches inside matches included).
  std::vector<const pdml_node*> find_all(std::string_view n) const;
  /// Direct children named `n`.
  std::vector<const pdml_node*> children_named(std::string_view n) const;
};

/// Parses a whole PDML document into its packets; nullopt (with `error` set) on malformed input.
std::optional<std::vector<pdml_node>> parse_pdml(std::string_view text, std::string& error);

}  // namespace p2psip::test_support
