#pragma once
// A classic-pcap writer (libpcap format 2.4, LINKTYPE_ETHERNET) for one TCP connection between a
// client and a server over IPv4, so that a test can hand tshark bytes without capturing anything.
// Segments carry whatever the caller gives them (here: one RELOAD framing-layer frame each); TCP
// sequence and acknowledgment numbers follow the bytes sent, and IPv4/TCP checksums are correct.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "p2psip/protocol/bytes.hpp"

namespace p2psip::test_support {

struct tcp_endpoint {
  std::array<std::uint8_t, 6> mac{};
  std::array<std::uint8_t, 4> ip{};
  std::uint16_t port = 0;
};

class pcap_tcp_writer {
 public:
  /// Starts a capture (global header) for a connection client -> server. Packet timestamps start
  /// at `start_unix_seconds` and advance by `step_us` microseconds per packet.
  pcap_tcp_writer(const tcp_endpoint& client, const tcp_endpoint& server,
                  std::uint32_t start_unix_seconds = 1700000000, std::uint32_t step_us = 1000);

  /// SYN, SYN-ACK, ACK.
  void handshake();
  /// One segment (PSH|ACK) from the client / the server carrying `payload`.
  void client_sends(protocol::byte_view payload);
  void server_sends(protocol::byte_view payload);
  /// FIN|ACK from the client, FIN|ACK from the server, the client's last ACK.
  void close();

  std::size_t packets() const noexcept { return frames_.size(); }
  /// The bytes of frame `number` (1-based, as tshark counts), from the Ethernet header on.
  const protocol::bytes& frame(std::size_t number) const { return frames_.at(number - 1); }
  const protocol::bytes& data() const noexcept { return out_; }
  /// Writes the capture to `path`; false on an I/O error.
  bool save(const std::string& path) const;

 private:
  struct side {
    tcp_endpoint ep;
    std::uint32_t next_seq = 0;  ///< sequence number of the next byte this side sends
  };
  void segment(bool from_client, std::uint8_t flags, protocol::byte_view payload,
               std::uint32_t seq_consumed);

  side client_;
  side server_;
  protocol::bytes out_;
  std::uint64_t time_us_ = 0;
  std::uint32_t step_us_ = 0;
  std::uint16_t ip_id_ = 1;
  std::vector<protocol::bytes> frames_;
};

/// RELOAD framing (RFC 6940 section 6.6.2), written by hand so this test does not depend on the
/// codec it checks: DATA = 0x80 | u32 sequence | u24 length | message.
protocol::bytes frame_data(std::uint32_t sequence, protocol::byte_view message);
/// ACK = 0x81 | u32 ack_sequence | u32 received.
protocol::bytes frame_ack(std::uint32_t ack_sequence, std::uint32_t received);

}  // namespace p2psip::test_support
