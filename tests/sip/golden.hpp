#pragma once
// Hand-written golden messages carrying every header the codec types (RFC 3261, RFC 5626 outbound,
// RFC 3327 Path), shared by the golden, stream and fuzz-seed tests of tests/sip.

#include <string>
#include <vector>

namespace p2psip::sip::test {

inline const std::string golden_register =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK-reg-1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: \"Alice \\\"A\\\"\" <sip:alice@example.com>\r\n"
    "From: <sip:alice@example.com>;tag=a73kszlfl\r\n"
    "Call-ID: 1j9FpLxk3uxtm8tn@[2001:db8::9]\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Supported: path, outbound\r\n"
    "Require: outbound\r\n"
    "Contact: <sip:alice@[2001:db8::9]:5070;transport=tcp;ob>;reg-id=1;q=0.7;expires=3600"
    ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n"
    "Expires: 600\r\n"
    "Authorization: Digest username=\"alice\", realm=\"example.com\", "
    "nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", "
    "uri=\"sip:example.com\", response=\"dfe56131d1958046689d83306477ecc\", algorithm=MD5, "
    "qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

inline const std::string golden_invite_body =
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\nc=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

inline const std::string golden_invite =
    "INVITE sips:bob@biloxi.example.com;transport=tcp SIP/2.0\r\n"
    "v: SIP/2.0/TLS "
    "proxy.example.com:5061;branch=z9hG4bK-p1;received=192.0.2.7;ttl=16;maddr=239.0.0.1,"
    " SIP/2.0/TCP client.example.com;branch=z9hG4bK-c1;rport=5060\r\n"
    "Max-Forwards: 69\r\n"
    "Route: <sips:edge.example.com;lr>, <sip:core.example.net;lr;transport=tcp>\r\n"
    "Record-Route: <sips:proxy.example.com;lr>\r\n"
    "t: Bob <sips:bob@biloxi.example.com>\r\n"
    "f: \"Alice\" <tel:+1-201-555-0123;phone-context=example.com>;tag=9fxced76sl\r\n"
    "i: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "m: <sips:alice@client.example.com;ob>\r\n"
    "k: timer,\r\n 100rel\r\n"
    "Proxy-Require: sec-agree\r\n"
    "Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n1\", "
    "uri=\"sips:bob@biloxi.example.com\", response=\"00112233445566778899aabbccddeeff\"\r\n"
    "c: application/sdp;charset=utf-8\r\n"
    "l: " +
    std::to_string(golden_invite_body.size()) +
    "\r\n"
    "\r\n" +
    golden_invite_body;

inline const std::string golden_ok =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK-reg-1;rport=5070;received=2001:db8::9\r\n"
    "To: <sip:alice@example.com>;tag=37GkEhwl6\r\n"
    "From: <sip:alice@example.com>;tag=a73kszlfl\r\n"
    "Call-ID: 1j9FpLxk3uxtm8tn@[2001:db8::9]\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Supported: outbound\r\n"
    "Require: outbound\r\n"
    "Path: <sip:ep1.example.com;lr;ob>\r\n"
    "Contact: <sip:alice@[2001:db8::9]:5070;transport=tcp;ob>;reg-id=1;expires=600"
    ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n"
    "Flow-Timer: 120\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

inline const std::string golden_401 =
    "SIP/2.0 401 Unauthorized\r\n"
    "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds7\r\n"
    "From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    "To: Bob <sip:bob@biloxi.example.com>;tag=1410948204\r\n"
    "Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.4\r\n"
    "CSeq: 1 REGISTER\r\n"
    "WWW-Authenticate: Digest realm=\"atlanta.example.com\", qop=\"auth\",\r\n"
    "  nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", opaque=\"\", stale=FALSE, algorithm=MD5\r\n"
    "Proxy-Authenticate: Digest realm=\"proxy.example.com\", nonce=\"p1\"\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

inline std::vector<std::string> golden_messages() {
  return {golden_register, golden_invite, golden_ok, golden_401};
}

}  // namespace p2psip::sip::test
