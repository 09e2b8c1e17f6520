#pragma once
// The Connection Table (RFC 6940 10.3/10.7): one row per link, which remote it proved (its
// certificate's Node-ID), whether that remote has shown itself to be a peer (sent Join or Update
// over it) or is a client, and what upkeep needs (traffic, origin, surplus since when). Which of
// two links to one node is used is decided here, the same way at both ends.

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "p2psip/node/node_types.hpp"

namespace p2psip::node {

/// One row of the connection table.
struct connection {
  link_id link;
  /// From the link's certificate; set before connection_table::add and never changed after
  /// (the table indexes rows by it).
  protocol::node_id remote;
  bool is_peer = false;  ///< it sent Join or Update: may enter the routing table
  /// It attached to us (AttachReq) before opening the link: a peer using us as a finger, even
  /// if no Join or Update ever comes over the link (not a client).
  bool attached_peer = false;
  unsigned malformed = 0;
  bool leaving = false;
  link_origin origin = link_origin::unknown;  ///< outbound or inbound (told or inferred)
  bool origin_told = false;                   ///< the runtime said which end opened it
  /// Since when the link has been surplus (unneeded, or the second link to a peer); nullopt
  /// while it is needed.
  std::optional<time_point> surplus_since;
  /// Last message sent or received on it: a link is closed only when quiet (a request we
  /// forwarded over it may still be waiting for its answer, which comes back the same way).
  time_point last_traffic{};
  /// Last message received on it: of two links the remote opened to us, the one it uses.
  time_point last_received{};
  /// Opened to a bootstrap peer for a partition check: closed once quiet, like a bootstrap link.
  bool partition_check = false;

  /// Nothing over this link has shown its remote to be a peer (no Join, Update, or Attach
  /// before it): a client's, as far as we know (RFC 6940 4.2.1).
  bool from_client() const noexcept { return !is_peer && !attached_peer; }
};

class connection_table {
 public:
  explicit connection_table(protocol::node_id self) : self_(self) {}

  const std::map<link_id, connection>& rows() const noexcept { return rows_; }
  std::size_t size() const noexcept { return rows_.size(); }
  bool contains(link_id link) const { return rows_.count(link) != 0; }
  const connection* find(link_id link) const;
  connection* find(link_id link);
  void add(connection c);
  /// Removes the row; returns it (nullopt when unknown).
  std::optional<connection> remove(link_id link);

  /// The link to use for `node`. Two links to one peer (both attached at once): both ends send on
  /// the one the lower Node-ID opened, so that the other falls idle and can be closed. Two links
  /// opened by the same end (a node that connected twice): the one it last sent on.
  std::optional<link_id> link_to(const protocol::node_id& node) const;
  /// link_to()'s choice for every linked node, in one pass.
  std::map<protocol::node_id, link_id> preferred_links() const;
  /// A peer link (Join or Update came over it) to `node`, not leaving.
  bool has_peer_link(const protocol::node_id& node) const;
  /// Any link to `node` (peer or not).
  bool has_link(const protocol::node_id& node) const;

  void note_traffic(link_id link, time_point now);
  void note_received(link_id link, time_point now);
  /// Counts an undecodable message on `link`; true when it reached `limit` (close the link).
  bool count_malformed(link_id link, unsigned limit);

  /// Nodes linked to us that are clients (RFC 6940 4.2.1): no Join, Update or Attach came from
  /// them over any of their links.
  std::size_t clients() const;

 private:
  /// Whether link_to() picks `c` over `best` (two links to the same node).
  bool better(const connection& c, const connection& best) const;
  protocol::node_id self_;
  std::map<link_id, connection> rows_;
  /// (remote, link) for every row: the links to one node without walking every row (asked for
  /// each Node-ID an Update names and for every message sent or forwarded).
  std::set<std::pair<protocol::node_id, link_id>> by_remote_;
};

}  // namespace p2psip::node
