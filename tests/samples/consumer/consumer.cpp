// Uses the installed C++ SDK: a client over a missing configuration fails with
// errc::bad_configuration (so the library links, loads and reports errors).
#include <iostream>

#include <p2psip/client/client.hpp>

int main() {
  p2psip::client::client_options o;
  o.config_file = "/nonexistent/overlay.xml";
  o.certificate_file = "/nonexistent/node.crt";
  o.key_file = "/nonexistent/node.key";
  auto c = p2psip::client::client::create(o);
  if (c || c.code() != p2psip::client::errc::bad_configuration) {
    std::cerr << "unexpected: " << (c ? "created" : c.error().message) << "\n";
    return 1;
  }
  std::cout << "consumer: " << c.error().message << "\n";
  return 0;
}
