#pragma once
// Checking tshark's decoding of a RELOAD message (its PDML tree) against the sample we encoded:
// every field the dissector exposes is compared with the typed value, and every structure whose
// position and length it shows is compared byte for byte with the frame.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/protocol/bytes.hpp"
#include "pdml.hpp"
#include "sample_messages.hpp"

namespace p2psip::test_support {

/// How many checks ran and which failed ("where: what").
struct check_report {
  std::size_t checks = 0;
  std::vector<std::string> failures;

  void fail(const std::string& where, const std::string& what) {
    failures.push_back(where + ": " + what);
  }
};

/// A field's number as the dissector shows it: decimal or 0x-hex in `show`, else the hex `value`
/// (time stamps, whose show is a date).
std::optional<std::uint64_t> pdml_number(const pdml_node& n);

/// Field-level checks on one frame's PDML items; failures name `where`.
class field_checker {
 public:
  /// `frame` is the whole frame (Ethernet header on), as the items' pos/size count it.
  field_checker(const protocol::bytes& frame, check_report& rep, std::string where)
      : frame_(frame), rep_(rep), where_(std::move(where)) {}

  /// The frame bytes item `n` covers (empty if it runs past the frame).
  protocol::bytes raw(const pdml_node& n) const;
  /// `n` bytes of the frame starting `skip` bytes into `item` (empty past the frame's end).
  protocol::bytes raw_after(const pdml_node& item, std::size_t skip, std::size_t n) const;

  /// The first descendant of `parent` named `name`; a failure when there is none.
  const pdml_node* need(const pdml_node* parent, std::string_view name, std::string_view what);
  /// Item `n` shows the number `expected` (nothing is checked when n is null: need() failed).
  void num(const pdml_node* n, std::uint64_t expected, std::string_view what);
  void num(const pdml_node* parent, std::string_view field, std::uint64_t expected,
           std::string_view what);
  /// The bytes tshark attributes to item `n` equal `expected`: its position and length agree
  /// with ours, and so does every byte.
  void bytes_eq(const pdml_node* n, protocol::byte_view expected, std::string_view what);
  void bytes_eq(const pdml_node* parent, std::string_view field, protocol::byte_view expected,
                std::string_view what);
  void text_eq(const std::string& got, const std::string& expected, std::string_view what);
  void count(const std::vector<const pdml_node*>& items, std::size_t expected,
             std::string_view what);
  /// Records a failure of this frame.
  void fail(const std::string& what) { rep_.fail(where_, what); }

 protected:
  const protocol::bytes& frame_;
  check_report& rep_;
  std::string where_;
};

/// Checks the "reload" protocol item of a frame against sample `s`: forwarding header (via and
/// destination lists, options), message code, extensions, the typed body, the security block.
/// Known dissector quirks are documented and skipped narrowly in reload_checks.cpp.
void check_message(field_checker& fc, const pdml_node& reload, const sample_message& s);

}  // namespace p2psip::test_support
