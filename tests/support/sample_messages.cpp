#include "sample_messages.hpp"

#include <botan/hash.h>

#include <random>
#include <stdexcept>
#include <utility>

namespace p2psip::test_support {

namespace pr = p2psip::protocol;

namespace {

// std::mt19937_64's output sequence is fixed by the standard, so samples are the same on every
// platform for a given seed.
class sample_rng {
 public:
  explicit sample_rng(std::uint64_t seed) : engine_(seed) {}

  std::uint64_t u64() { return engine_(); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(engine_() >> 32); }
  pr::bytes fill(std::size_t n) {
    pr::bytes out(n);
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % 8 == 0) word = engine_();
      out[i] = static_cast<std::uint8_t>(word >> (8 * (i % 8)));
    }
    return out;
  }
  /// A Node-ID that is neither all-zero (invalid) nor the wildcard.
  pr::node_id node() {
    for (;;) {
      auto id = pr::node_id::from_bytes(fill(pr::default_node_id_length));
      if (id && !id->is_zero() && !id->is_wildcard()) return *id;
    }
  }
  /// A transaction id (never zero, so that a zeroed header cannot pass for a sample).
  std::uint64_t transaction_id() {
    for (;;) {
      const std::uint64_t v = engine_();
      if (v != 0) return v;
    }
  }

 private:
  std::mt19937_64 engine_;
};

pr::ip_address_port v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                       std::uint16_t port) {
  return pr::ip_address_port{pr::ipv4_address_port{{a, b, c, d}, port}};
}

/// 2001:db8::<last> (RFC 3849 documentation prefix).
pr::ip_address_port v6_doc(std::uint8_t last, std::uint16_t port) {
  pr::ipv6_address_port a;
  a.address = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
  a.port = port;
  return pr::ip_address_port{a};
}

/// ICE priority (RFC 8445 section 5.1.2.1) for component 1 with the given type preference.
constexpr std::uint32_t ice_priority(std::uint32_t type_pref, std::uint32_t local_pref) {
  return (type_pref << 24) | (local_pref << 8) | (256u - 1u);
}

pr::ice_candidate host_candidate(const pr::ip_address_port& addr, std::string_view foundation,
                                 std::uint32_t local_pref) {
  pr::ice_candidate c;
  c.addr_port = addr;
  c.overlay_link = pr::overlay_link_type::tls_tcp_fh_no_ice;
  c.foundation = pr::to_bytes(foundation);
  c.priority = ice_priority(126, local_pref);
  c.type = pr::candidate_type::host;
  return c;
}

pr::ice_candidate srflx_candidate(const pr::ip_address_port& addr, const pr::ip_address_port& base,
                                  std::string_view foundation) {
  pr::ice_candidate c;
  c.addr_port = addr;
  c.overlay_link = pr::overlay_link_type::tls_tcp_fh_no_ice;
  c.foundation = pr::to_bytes(foundation);
  c.priority = ice_priority(100, 65535);
  c.type = pr::candidate_type::srflx;
  c.rel_addr_port = base;
  return c;
}

pr::bytes must(pr::result<pr::bytes> r, const std::string& what) {
  if (!r) throw std::runtime_error("sample " + what + ": " + r.error().message());
  return std::move(*r);
}

pr::bytes sha256_of(pr::byte_view data) {
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  const auto d = h->process(data.data(), data.size());
  return pr::bytes(d.begin(), d.end());
}

/// MetaData for a DataValue: RFC 6940 section 7.4.3.2 hashes the value with its length prefix.
pr::meta_data meta_of(const pr::data_value& v) {
  pr::meta_data m;
  m.exists = v.exists;
  m.value_length = static_cast<std::uint32_t>(v.value.size());
  m.hash_algorithm = pr::hash_algorithm::sha256;
  pr::bytes prefixed;
  const auto n = static_cast<std::uint32_t>(v.value.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    prefixed.push_back(static_cast<std::uint8_t>(n >> shift));
  prefixed.insert(prefixed.end(), v.value.begin(), v.value.end());
  m.hash_value = sha256_of(prefixed);
  return m;
}

/// StoredMetaData for a StoredData (its leading length is computed by the encoder).
pr::stored_meta_data meta_of(const pr::stored_data& d) {
  pr::stored_meta_data out;
  out.storage_time = d.storage_time;
  out.lifetime = d.lifetime;
  if (const auto* dv = std::get_if<pr::data_value>(&d.value)) {
    out.metadata = meta_of(*dv);
  } else if (const auto* ae = std::get_if<pr::array_entry>(&d.value)) {
    out.metadata = pr::array_entry_meta{ae->index, meta_of(ae->value)};
  } else if (const auto* de = std::get_if<pr::dictionary_entry>(&d.value)) {
    out.metadata = pr::dictionary_entry_meta{de->key, meta_of(de->value)};
  }
  return out;
}

class builder {
 public:
  builder(const test_identity& id, std::uint64_t seed)
      : id_(id),
        rng_(seed),
        cast_(make_sample_cast(seed)),
        overlay_(pr::overlay_hash(sample_overlay_name)),
        aor_(pr::hash_resource_name(sample_aor)) {}

  sample_rng& rng() { return rng_; }
  const sample_cast& cast() const { return cast_; }
  const test_identity& id() const { return id_; }
  const pr::resource_id& aor() const { return aor_; }

  /// A request header from alice to `dest`, with a fresh transaction id.
  pr::forwarding_header request(std::vector<pr::destination> dest) {
    pr::forwarding_header h = base();
    h.transaction_id = rng_.transaction_id();
    h.destination_list = std::move(dest);
    return h;
  }
  /// The answer header for `req`: same transaction id, back to alice. The responder sent it with
  /// destinations [proxy, alice]; the proxy popped itself, so alice receives [alice].
  pr::forwarding_header answer(const pr::forwarding_header& req) {
    pr::forwarding_header h = base();
    h.transaction_id = req.transaction_id;
    h.destination_list = {pr::to_destination(id_.node())};
    return h;
  }
  /// A stand-alone answer (its request is not among the samples).
  pr::forwarding_header answer_fresh() {
    pr::forwarding_header h = base();
    h.transaction_id = rng_.transaction_id();
    h.destination_list = {pr::to_destination(id_.node())};
    return h;
  }

  const sample_message& add(std::string name, pr::forwarding_header h, pr::message_body body,
                            std::vector<pr::message_extension> extensions = {}) {
    sample_message s;
    s.name = std::move(name);
    s.message.header = std::move(h);
    s.message.contents.code = pr::code_of(body);
    s.message.contents.body = must(pr::encode_body(body), s.name + " body");
    s.message.contents.extensions = std::move(extensions);
    sign_message(s.message, id_);
    s.encoded = must(pr::encode_message(s.message, pr::limits{}), s.name);
    s.message.header.length = static_cast<std::uint32_t>(s.encoded.size());
    s.body = std::move(body);
    out_.push_back(std::move(s));
    return out_.back();
  }

  /// A signed StoredData for kind `kind` at alice's AOR.
  pr::stored_data stored(std::uint32_t kind, std::uint32_t lifetime, pr::stored_data_value v,
                         std::uint64_t storage_time = sample_storage_time) {
    pr::stored_data d;
    d.storage_time = storage_time;
    d.lifetime = lifetime;
    d.value = std::move(v);
    sign_stored_data(d, aor_, kind, id_);
    return d;
  }

  std::vector<sample_message> take() { return std::move(out_); }

 private:
  pr::forwarding_header base() const {
    pr::forwarding_header h;
    h.overlay = overlay_;
    h.configuration_sequence = 1;
    h.ttl = 100;
    return h;
  }

  const test_identity& id_;
  sample_rng rng_;
  sample_cast cast_;
  std::uint32_t overlay_;
  pr::resource_id aor_;
  std::vector<sample_message> out_;
};

/// alice's registration: reach her through her proxy peer (RFC 7904 section 3.1, route type).
pr::sip_registration route_registration(const sample_cast& cast, const pr::node_id& alice) {
  pr::sip_registration reg;
  reg.type = pr::sip_registration_type::route;
  reg.contact_prefs = pr::to_bytes("audio;video");
  reg.destination_list = {pr::to_destination(cast.proxy), pr::to_destination(alice)};
  return reg;
}

/// A registration that points at another AOR (RFC 7904 uri type).
pr::sip_registration uri_registration() {
  pr::sip_registration reg;
  reg.type = pr::sip_registration_type::uri;
  reg.uri = pr::to_bytes("sip:alice-mobile@example.org");
  return reg;
}

pr::bytes key_of(const pr::node_id& n) {
  return pr::to_bytes(n.view());
}

}  // namespace

sample_cast make_sample_cast(std::uint64_t seed) {
  // A separate stream (seed ^ constant) so that adding a sample does not move the cast.
  sample_rng rng(seed ^ 0x5ca1ab1e0ddba11ull);
  sample_cast c;
  c.proxy = rng.node();
  c.responsible = rng.node();
  c.alice_phone = rng.node();
  for (int i = 0; i < 2; ++i) c.successors.push_back(rng.node());
  for (int i = 0; i < 2; ++i) c.predecessors.push_back(rng.node());
  for (int i = 0; i < 5; ++i) c.fingers.push_back(rng.node());
  return c;
}

test_identity make_sample_identity(std::uint64_t seed) {
  sample_rng rng(seed ^ 0xa11ceull);
  return test_identity::generate(rng.node(), sample_aor, sample_overlay_name);
}

std::vector<sample_message> make_sample_messages(const test_identity& id, std::uint64_t seed) {
  builder b(id, seed);
  const sample_cast& cast = b.cast();
  const auto to_responsible = std::vector<pr::destination>{pr::to_destination(cast.responsible)};
  const auto to_aor = std::vector<pr::destination>{pr::to_destination(b.aor())};

  // ---- Probe ----
  {
    auto h = b.request(to_responsible);
    pr::probe_req req;
    req.requested_info = {pr::probe_info_type::responsible_set, pr::probe_info_type::num_resources,
                          pr::probe_info_type::uptime};
    const auto& r = b.add("probe_req", h, req);
    pr::probe_ans ans;
    ans.probe_info = {{pr::probe_info_type::responsible_set, 250000000u, {}},
                      {pr::probe_info_type::num_resources, 42u, {}},
                      {pr::probe_info_type::uptime, 86400u, {}}};
    b.add("probe_ans", b.answer(r.message.header), ans);
  }

  // ---- Attach: a TLS-TCP-FH-NO-ICE host candidate and a server-reflexive one ----
  {
    auto h = b.request({pr::to_destination(cast.responsible)});
    pr::attach_req req;
    req.ufrag = pr::to_bytes("a1b2c3d4");
    req.password = pr::to_bytes("0123456789abcdef01234567");
    req.role = pr::to_bytes("passive");
    auto host = host_candidate(v4(192, 0, 2, 10, 6084), "1", 65535);
    host.extensions = {{pr::to_bytes("network-cost"), pr::to_bytes("10")}};
    req.candidates = {host,
                      srflx_candidate(v4(198, 51, 100, 7, 40001), v4(192, 0, 2, 10, 6084), "2")};
    req.send_update = true;
    const auto& r = b.add("attach_req", h, req);
    pr::attach_ans ans;
    ans.ufrag = pr::to_bytes("e5f6a7b8");
    ans.password = pr::to_bytes("fedcba9876543210fedcba98");
    ans.role = pr::to_bytes("active");
    ans.candidates = {host_candidate(v4(203, 0, 113, 5, 6084), "1", 65535),
                      host_candidate(v6_doc(5, 6084), "3", 65534)};
    ans.send_update = false;
    b.add("attach_ans", b.answer(r.message.header), ans);
  }

  // ---- Store: alice's SIP-REGISTRATION, keyed by her Node-ID, routed through her proxy ----
  {
    auto h = b.request(to_aor);
    pr::store_req req;
    req.resource = b.aor();
    req.replica_number = 0;
    pr::store_kind_data kd;
    kd.kind = pr::kinds::sip_registration;
    kd.generation_counter = 0;
    const pr::bytes reg = must(pr::encode_sip_registration(route_registration(cast, id.node())),
                               "store_req registration");
    kd.values.push_back(b.stored(pr::kinds::sip_registration, 3600,
                                 pr::dictionary_entry{key_of(id.node()), {true, reg}}));
    req.kind_data.push_back(std::move(kd));
    const auto& r = b.add("store_req", h, req);
    pr::store_ans ans;
    ans.kind_responses = {{pr::kinds::sip_registration, 1, cast.successors}};
    b.add("store_ans", b.answer(r.message.header), ans);
  }

  // ---- Fetch: dictionary wildcard, array range, single value ----
  {
    auto h = b.request(to_aor);
    h.max_response_length = 4000;
    pr::fetch_req req;
    req.resource = b.aor();
    pr::stored_data_specifier sip;
    sip.kind = pr::kinds::sip_registration;
    sip.generation = 0;
    sip.model = std::vector<pr::bytes>{};  // no keys: every entry
    pr::stored_data_specifier certs;
    certs.kind = pr::kinds::certificate_by_user;
    certs.generation = 0;
    certs.model = std::vector<pr::array_range>{{0, 0}, {2, pr::array_append_index}};
    pr::stored_data_specifier turn;
    turn.kind = pr::kinds::turn_service;
    turn.generation = 5;
    turn.model = std::monostate{};
    req.specifiers = {sip, certs, turn};
    const auto& r = b.add("fetch_req", h, req);

    pr::fetch_ans ans;
    pr::fetch_kind_response sip_r;
    sip_r.kind = pr::kinds::sip_registration;
    sip_r.generation = 7;
    const pr::bytes route =
        must(pr::encode_sip_registration(route_registration(cast, id.node())), "fetch_ans route");
    const pr::bytes uri = must(pr::encode_sip_registration(uri_registration()), "fetch_ans uri");
    sip_r.values.push_back(b.stored(pr::kinds::sip_registration, 3600,
                                    pr::dictionary_entry{key_of(id.node()), {true, route}}));
    sip_r.values.push_back(b.stored(pr::kinds::sip_registration, 1800,
                                    pr::dictionary_entry{key_of(cast.alice_phone), {true, uri}},
                                    sample_storage_time + 1000));
    pr::fetch_kind_response cert_r;
    cert_r.kind = pr::kinds::certificate_by_user;
    cert_r.generation = 3;
    cert_r.values.push_back(b.stored(pr::kinds::certificate_by_user, 86400,
                                     pr::array_entry{0, {true, id.certificate_der()}}));
    pr::fetch_kind_response turn_r;
    turn_r.kind = pr::kinds::turn_service;
    turn_r.generation = 5;
    const pr::bytes turn_value =
        must(pr::encode_turn_server(pr::turn_server{2, v4(192, 0, 2, 77, 3478)}), "turn value");
    turn_r.values.push_back(
        b.stored(pr::kinds::turn_service, 600, pr::data_value{true, turn_value}));
    ans.kind_responses = {sip_r, cert_r, turn_r};
    b.add("fetch_ans", b.answer(r.message.header), ans);
  }

  // ---- Stat: one dictionary key, one array range, a single value ----
  {
    auto h = b.request(to_aor);
    pr::stat_req req;
    req.resource = b.aor();
    pr::stored_data_specifier sip;
    sip.kind = pr::kinds::sip_registration;
    sip.model = std::vector<pr::bytes>{key_of(id.node())};
    pr::stored_data_specifier certs;
    certs.kind = pr::kinds::certificate_by_user;
    certs.model = std::vector<pr::array_range>{{0, 3}};
    pr::stored_data_specifier turn;
    turn.kind = pr::kinds::turn_service;
    turn.model = std::monostate{};
    req.specifiers = {sip, certs, turn};
    const auto& r = b.add("stat_req", h, req);

    const pr::bytes route =
        must(pr::encode_sip_registration(route_registration(cast, id.node())), "stat_ans route");
    const auto sip_value = b.stored(pr::kinds::sip_registration, 3600,
                                    pr::dictionary_entry{key_of(id.node()), {true, route}});
    const auto cert_value = b.stored(pr::kinds::certificate_by_user, 86400,
                                     pr::array_entry{0, {true, id.certificate_der()}});
    const auto turn_value =
        b.stored(pr::kinds::turn_service, 600,
                 pr::data_value{
                     true, must(pr::encode_turn_server(pr::turn_server{2, v4(192, 0, 2, 77, 3478)}),
                                "stat turn")});
    pr::stat_ans ans;
    pr::stat_kind_response s1;
    s1.kind = pr::kinds::sip_registration;
    s1.generation = 7;
    s1.values = {meta_of(sip_value)};
    pr::stat_kind_response s2;
    s2.kind = pr::kinds::certificate_by_user;
    s2.generation = 3;
    s2.values = {meta_of(cert_value)};
    pr::stat_kind_response s3;
    s3.kind = pr::kinds::turn_service;
    s3.generation = 5;
    s3.values = {meta_of(turn_value)};
    ans.kind_responses = {s1, s2, s3};
    b.add("stat_ans", b.answer(r.message.header), ans);
  }

  // ---- Find ----
  {
    auto h = b.request(to_aor);
    pr::find_req req;
    req.resource = b.aor();
    req.kinds = {pr::kinds::sip_registration, pr::kinds::certificate_by_user};
    const auto& r = b.add("find_req", h, req);
    pr::find_ans ans;
    ans.results = {{pr::kinds::sip_registration, b.aor()},
                   {pr::kinds::certificate_by_user, pr::hash_resource_name("alicia@example.org")}};
    b.add("find_ans", b.answer(r.message.header), ans);
  }

  // ---- Join: alice (here acting as a joining peer) to her admitting peer ----
  {
    auto h = b.request(to_responsible);
    pr::join_req req;
    req.joining_peer_id = id.node();
    const auto& r = b.add("join_req", h, req);
    b.add("join_ans", b.answer(r.message.header), pr::join_ans{});
  }

  // ---- Leave, with ChordLeaveData (both types) ----
  {
    auto h = b.request({pr::to_destination(cast.successors[0])});
    pr::leave_req req;
    req.leaving_peer_id = id.node();
    pr::chord_leave_data leave;
    leave.type = pr::chord_leave_type::from_succ;
    leave.successors = cast.successors;
    req.overlay_specific_data = must(pr::encode_chord_leave_data(leave), "leave data");
    const auto& r = b.add("leave_req", h, req);
    b.add("leave_ans", b.answer(r.message.header), pr::leave_ans{});

    auto h2 = b.request({pr::to_destination(cast.predecessors[0])});
    pr::leave_req req2;
    req2.leaving_peer_id = id.node();
    pr::chord_leave_data leave2;
    leave2.type = pr::chord_leave_type::from_pred;
    leave2.predecessors = cast.predecessors;
    req2.overlay_specific_data = must(pr::encode_chord_leave_data(leave2), "leave data pred");
    b.add("leave_req_from_pred", h2, req2);
  }

  // ---- Update: peer_ready, neighbors, full ----
  {
    auto h1 = b.request(to_responsible);
    pr::update_req ready;
    ready.uptime = 0;
    ready.type = pr::chord_update_type::peer_ready;
    b.add("update_req_peer_ready", h1, ready);

    auto h2 = b.request(to_responsible);
    pr::update_req neighbors;
    neighbors.uptime = 120;
    neighbors.type = pr::chord_update_type::neighbors;
    neighbors.predecessors = cast.predecessors;
    neighbors.successors = cast.successors;
    b.add("update_req_neighbors", h2, neighbors);

    auto h3 = b.request(to_responsible);
    pr::update_req full;
    full.uptime = 3600;
    full.type = pr::chord_update_type::full;
    full.predecessors = cast.predecessors;
    full.successors = cast.successors;
    full.fingers = cast.fingers;
    const auto& r = b.add("update_req_full", h3, full);
    b.add("update_ans", b.answer(r.message.header), pr::update_ans{});
  }

  // ---- RouteQuery ----
  {
    auto h = b.request(to_responsible);
    pr::route_query_req req;
    req.send_update = true;
    req.destination = pr::to_destination(b.aor());
    const auto& r = b.add("route_query_req", h, req);
    pr::route_query_ans ans;
    ans.next_peer = cast.fingers[2];
    b.add("route_query_ans", b.answer(r.message.header), ans);
  }

  // ---- Ping (to the wildcard, answered by the proxy) ----
  {
    auto h = b.request({pr::to_destination(pr::node_id::wildcard())});
    pr::ping_req req;
    req.padding = b.rng().fill(16);
    const auto& r = b.add("ping_req", h, req);
    pr::ping_ans ans;
    ans.response_id = b.rng().u64();
    ans.time = sample_storage_time + 123;
    b.add("ping_ans", b.answer(r.message.header), ans);
  }

  // ---- AppAttach for SIP (application 5060) ----
  {
    auto h = b.request({pr::to_destination(cast.alice_phone)});
    pr::app_attach_req req;
    req.ufrag = pr::to_bytes("sipufrag");
    req.password = pr::to_bytes("sip-password-0123456789");
    req.application = 5060;
    req.role = pr::to_bytes("passive");
    req.candidates = {host_candidate(v4(192, 0, 2, 10, 5060), "1", 65535),
                      host_candidate(v6_doc(10, 5060), "2", 65534)};
    const auto& r = b.add("app_attach_req", h, req);
    pr::app_attach_ans ans;
    ans.ufrag = pr::to_bytes("phoneufr");
    ans.password = pr::to_bytes("phone-password-98765432");
    ans.application = 5060;
    ans.role = pr::to_bytes("active");
    ans.candidates = {srflx_candidate(v4(198, 51, 100, 20, 35060), v4(10, 0, 0, 20, 5060), "4")};
    b.add("app_attach_ans", b.answer(r.message.header), ans);
  }

  // ---- ConfigUpdate: a whole configuration, then kind definitions ----
  {
    auto h = b.request({pr::to_destination(cast.proxy)});
    pr::config_update_req req;
    req.type = pr::config_update_type::config;
    req.config_data = pr::to_bytes(
        "<overlay xmlns=\"urn:ietf:params:xml:ns:p2p:config-base\">"
        "<configuration instance-name=\"example.org\" sequence=\"2\">"
        "<topology-plugin>CHORD-RELOAD</topology-plugin>"
        "<node-id-length>16</node-id-length>"
        "<bootstrap-node address=\"192.0.2.2\" port=\"6084\"/>"
        "</configuration></overlay>");
    const auto& r = b.add("config_update_req_config", h, req);
    b.add("config_update_ans", b.answer(r.message.header), pr::config_update_ans{});

    auto h2 = b.request({pr::to_destination(cast.proxy)});
    pr::config_update_req kinds;
    kinds.type = pr::config_update_type::kind;
    kinds.kinds = {pr::to_bytes("<kind-block><kind name=\"SIP-REGISTRATION\">"
                                "<data-model>DICTIONARY</data-model>"
                                "<access-control>USER-NODE-MATCH</access-control>"
                                "<max-count>10</max-count><max-size>1000</max-size>"
                                "</kind></kind-block>"),
                   pr::to_bytes("<kind-block><kind id=\"4026532097\">"
                                "<data-model>DICTIONARY</data-model>"
                                "<access-control>USER-NODE-MATCH</access-control>"
                                "<max-count>100</max-count><max-size>4096</max-size>"
                                "</kind></kind-block>")};
    b.add("config_update_req_kind", h2, kinds);
  }

  // ---- Errors ----
  {
    pr::error_response not_found;
    not_found.error_code = static_cast<std::uint16_t>(pr::reload_errc::not_found);
    not_found.error_info = pr::to_bytes("no such resource");
    b.add("error_not_found", b.answer_fresh(), not_found);

    pr::error_response unknown_kind;
    unknown_kind.error_code = static_cast<std::uint16_t>(pr::reload_errc::unknown_kind);
    unknown_kind.error_info =
        must(pr::encode_unknown_kinds({0xF0000001u, pr::kinds::p2psip_generic}), "unknown kinds");
    b.add("error_unknown_kind", b.answer_fresh(), unknown_kind);
  }

  // ---- A request on its way: via list, compressed-id destination, option, extension ----
  {
    auto h = b.request({});
    h.ttl = 97;
    h.via_list = {pr::to_destination(id.node()), pr::to_destination(cast.proxy)};
    h.destination_list = {pr::destination{pr::compressed_id{0x8123}},
                          pr::to_destination(cast.responsible)};
    h.options = {pr::forwarding_option{1 /* exp-forward */, pr::option_flags::response_copy,
                                       pr::to_bytes("p2psip-test")}};
    pr::ping_req req;
    req.padding = b.rng().fill(8);
    b.add("routed_ping_req", h, req,
          {pr::message_extension{1 /* exp-ext */, false, pr::to_bytes("p2psip-extension")}});
  }

  return b.take();
}

}  // namespace p2psip::test_support
