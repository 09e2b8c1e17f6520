/* Uses the installed C API: bad arguments and a missing configuration are reported as codes. */
#include <stdio.h>

#include <p2psip/client/p2psip_client.h>

int main(void) {
  p2psip_client_options o;
  p2psip_client* c = NULL;
  p2psip_error err;
  if (p2psip_client_create(NULL, &c, &err) != P2PSIP_ERR_INVALID_ARGUMENT || c != NULL) return 1;
  p2psip_client_options_init(&o);
  o.config_file = "/nonexistent/overlay.xml";
  o.certificate_file = "/nonexistent/node.crt";
  o.key_file = "/nonexistent/node.key";
  if (p2psip_client_create(&o, &c, &err) != P2PSIP_ERR_BAD_CONFIGURATION || c != NULL) {
    fprintf(stderr, "unexpected: %d %s\n", (int)err.code, err.message);
    return 1;
  }
  printf("c consumer: %s (%s)\n", err.message, p2psip_errc_message(err.code));
  p2psip_client_destroy(NULL);
  return 0;
}
