#include "pcap_writer.hpp"

#include <fstream>
#include <stdexcept>

namespace p2psip::test_support {

namespace pr = p2psip::protocol;

namespace {

constexpr std::uint8_t tcp_fin = 0x01, tcp_syn = 0x02, tcp_psh = 0x08, tcp_ack = 0x10;
constexpr std::size_t ethernet_header = 14, ipv4_header = 20, tcp_header = 20;

void le32(pr::bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void le16(pr::bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
void be16(pr::bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void be24(pr::bytes& out, std::uint32_t v) {
  for (int shift = 16; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void be32(pr::bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void put_be16(pr::bytes& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<std::uint8_t>(v >> 8);
  out[at + 1] = static_cast<std::uint8_t>(v);
}

/// The Internet checksum (RFC 1071) over `data`, continuing from `sum`.
std::uint32_t ones_sum(pr::byte_view data, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < data.size(); i += 2) {
    sum += static_cast<std::uint32_t>((data[i] << 8) | data[i + 1]);
  }
  if (data.size() % 2 != 0) sum += static_cast<std::uint32_t>(data.back() << 8);
  return sum;
}
std::uint16_t fold(std::uint32_t sum) {
  while ((sum >> 16) != 0) sum = (sum & 0xFFFFu) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xFFFFu);
}

}  // namespace

pcap_tcp_writer::pcap_tcp_writer(const tcp_endpoint& client, const tcp_endpoint& server,
                                 std::uint32_t start_unix_seconds, std::uint32_t step_us)
    : time_us_(std::uint64_t{start_unix_seconds} * 1000000u), step_us_(step_us) {
  client_.ep = client;
  server_.ep = server;
  // Fixed initial sequence numbers: the capture is the same on every run.
  client_.next_seq = 0x1000;
  server_.next_seq = 0x8000;
  le32(out_, 0xa1b2c3d4);  // magic, microsecond timestamps (written little-endian)
  le16(out_, 2);           // version 2.4
  le16(out_, 4);
  le32(out_, 0);       // thiszone
  le32(out_, 0);       // sigfigs
  le32(out_, 262144);  // snaplen
  le32(out_, 1);       // LINKTYPE_ETHERNET
}

void pcap_tcp_writer::handshake() {
  segment(true, tcp_syn, {}, 1);
  segment(false, tcp_syn | tcp_ack, {}, 1);
  segment(true, tcp_ack, {}, 0);
}

void pcap_tcp_writer::client_sends(pr::byte_view payload) {
  segment(true, tcp_psh | tcp_ack, payload, static_cast<std::uint32_t>(payload.size()));
}

void pcap_tcp_writer::server_sends(pr::byte_view payload) {
  segment(false, tcp_psh | tcp_ack, payload, static_cast<std::uint32_t>(payload.size()));
}

void pcap_tcp_writer::close() {
  segment(true, tcp_fin | tcp_ack, {}, 1);
  segment(false, tcp_fin | tcp_ack, {}, 1);
  segment(true, tcp_ack, {}, 0);
}

void pcap_tcp_writer::segment(bool from_client, std::uint8_t flags, pr::byte_view payload,
                              std::uint32_t seq_consumed) {
  side& src = from_client ? client_ : server_;
  const side& dst = from_client ? server_ : client_;
  const std::size_t ip_total = ipv4_header + tcp_header + payload.size();
  if (ip_total > 0xFFFF)
    throw std::length_error("pcap_tcp_writer: segment larger than IPv4 allows");

  pr::bytes pkt;
  pkt.reserve(ethernet_header + ip_total);
  // Ethernet II
  pkt.insert(pkt.end(), dst.ep.mac.begin(), dst.ep.mac.end());
  pkt.insert(pkt.end(), src.ep.mac.begin(), src.ep.mac.end());
  be16(pkt, 0x0800);
  // IPv4, no options
  const std::size_t ip_at = pkt.size();
  pkt.push_back(0x45);
  pkt.push_back(0);
  be16(pkt, static_cast<std::uint16_t>(ip_total));
  be16(pkt, ip_id_++);
  be16(pkt, 0x4000);  // don't fragment
  pkt.push_back(64);  // ttl
  pkt.push_back(6);   // TCP
  be16(pkt, 0);       // checksum, patched below
  pkt.insert(pkt.end(), src.ep.ip.begin(), src.ep.ip.end());
  pkt.insert(pkt.end(), dst.ep.ip.begin(), dst.ep.ip.end());
  put_be16(pkt, ip_at + 10, fold(ones_sum(pr::byte_view(pkt).subspan(ip_at, ipv4_header))));
  // TCP, no options. Every segment but the first SYN acknowledges what the peer sent so far.
  const std::size_t tcp_at = pkt.size();
  be16(pkt, src.ep.port);
  be16(pkt, dst.ep.port);
  be32(pkt, src.next_seq);
  be32(pkt, (flags & tcp_ack) != 0 ? dst.next_seq : 0);
  pkt.push_back(static_cast<std::uint8_t>((tcp_header / 4) << 4));
  pkt.push_back(flags);
  be16(pkt, 65535);  // window
  be16(pkt, 0);      // checksum, patched below
  be16(pkt, 0);      // urgent pointer
  pkt.insert(pkt.end(), payload.begin(), payload.end());
  // Pseudo-header: source, destination, zero, protocol, TCP length.
  pr::bytes pseudo;
  pseudo.insert(pseudo.end(), src.ep.ip.begin(), src.ep.ip.end());
  pseudo.insert(pseudo.end(), dst.ep.ip.begin(), dst.ep.ip.end());
  pseudo.push_back(0);
  pseudo.push_back(6);
  be16(pseudo, static_cast<std::uint16_t>(tcp_header + payload.size()));
  const std::uint32_t sum = ones_sum(pr::byte_view(pkt).subspan(tcp_at), ones_sum(pseudo));
  put_be16(pkt, tcp_at + 16, fold(sum));
  src.next_seq += seq_consumed;

  // pcap record
  le32(out_, static_cast<std::uint32_t>(time_us_ / 1000000u));
  le32(out_, static_cast<std::uint32_t>(time_us_ % 1000000u));
  le32(out_, static_cast<std::uint32_t>(pkt.size()));
  le32(out_, static_cast<std::uint32_t>(pkt.size()));
  out_.insert(out_.end(), pkt.begin(), pkt.end());
  time_us_ += step_us_;
  frames_.push_back(std::move(pkt));
}

bool pcap_tcp_writer::save(const std::string& path) const {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(out_.data()),  // NOLINT: byte I/O
          static_cast<std::streamsize>(out_.size()));
  return static_cast<bool>(f);
}

pr::bytes frame_data(std::uint32_t sequence, pr::byte_view message) {
  if (message.size() > 0xFFFFFF) throw std::length_error("frame_data: message over 2^24-1 bytes");
  pr::bytes out;
  out.reserve(8 + message.size());
  out.push_back(0x80);
  be32(out, sequence);
  be24(out, static_cast<std::uint32_t>(message.size()));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

pr::bytes frame_ack(std::uint32_t ack_sequence, std::uint32_t received) {
  pr::bytes out;
  out.push_back(0x81);
  be32(out, ack_sequence);
  be32(out, received);
  return out;
}

}  // namespace p2psip::test_support
