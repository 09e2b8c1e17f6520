// The SDK's SIP user agent (work in progress: this commit only gives the API its symbols).
#include <string>
#include <vector>

#include "p2psip/client/client.hpp"

#include "client_impl.hpp"

namespace p2psip::client {

namespace {
error not_yet() {
  return error{make_error_code(errc::overlay_error), "the SIP user agent is not built yet"};
}
}  // namespace

result<void> client::sip_register(std::string_view, std::uint32_t) {
  return not_yet();
}
result<void> client::sip_unregister() {
  return not_yet();
}
void client::on_sip_request(sip_request_handler) {}
result<sip_response> client::send_message(std::string_view, bytes, std::string_view) {
  return not_yet();
}
result<sip_response> client::call(std::string_view, call_options) {
  return not_yet();
}
result<void> client::hang_up(std::string_view) {
  return not_yet();
}
std::vector<std::string> client::calls() const {
  return {};
}
void client::sip_register_async(std::string_view, std::uint32_t, callback<void> done) {
  done(not_yet());
}
void client::sip_unregister_async(callback<void> done) {
  done(not_yet());
}
void client::send_message_async(std::string_view, bytes, std::string_view,
                                callback<sip_response> done) {
  done(not_yet());
}
void client::call_async(std::string_view, call_options, callback<sip_response> done) {
  done(not_yet());
}
void client::hang_up_async(std::string_view, callback<void> done) {
  done(not_yet());
}

}  // namespace p2psip::client
