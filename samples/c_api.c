/* c_api: put_get through the C API: stores a value under a name (blocking call), then reads
 * every writer's value back with the callback form and waits for the callback.
 *
 *   c_api --config overlay.xml --cert alice.crt --key alice.key [--peer IP:PORT]... NAME VALUE
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <p2psip/client/p2psip_client.h>

#define MAX_PEERS 8

/* What the get callback hands back to main. */
struct get_state {
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  int done;
  int failed;
  char my_node_id[P2PSIP_ID_HEX_SIZE];
  const char* name;
};

/* Runs on the client's callback thread; `values` is only valid until we return. */
static void on_get(void* user, const p2psip_error* err, const p2psip_owned_value* values,
                   size_t count) {
  struct get_state* state = user;
  size_t i;
  if (err->code != P2PSIP_OK) {
    fprintf(stderr, "get: %s\n", err->message);
  }
  for (i = 0; i < count; ++i) {
    printf("got %s = %.*s from %s%s\n", state->name, (int)values[i].value_size,
           (const char*)values[i].value, values[i].owner_user,
           strcmp(values[i].owner_node_id, state->my_node_id) == 0 ? " (me)" : "");
  }
  pthread_mutex_lock(&state->mutex);
  state->failed = err->code != P2PSIP_OK;
  state->done = 1;
  pthread_cond_signal(&state->cond);
  pthread_mutex_unlock(&state->mutex);
}

int main(int argc, char** argv) {
  p2psip_client_options options;
  const char* peers[MAX_PEERS];
  const char* positional[2];
  size_t npositional = 0;
  p2psip_client* client = NULL;
  p2psip_error err;
  p2psip_peer_info peer;
  struct get_state state;
  int i;
  int status = 0;

  /* init sets options.struct_size: a later library reads only the fields this program knows. */
  p2psip_client_options_init(&options);
  options.peers = peers;
  for (i = 1; i < argc; ++i) {
    const int has_value = i + 1 < argc;
    if (strcmp(argv[i], "--version") == 0) { /* the SDK's version: the one this program runs with */
      printf("c_api (p2psip) %s\n", p2psip_version());
      return 0;
    }
    if (strcmp(argv[i], "--config") == 0 && has_value) {
      options.config_file = argv[++i];
    } else if (strcmp(argv[i], "--cert") == 0 && has_value) {
      options.certificate_file = argv[++i];
    } else if (strcmp(argv[i], "--key") == 0 && has_value) {
      options.key_file = argv[++i];
    } else if (strcmp(argv[i], "--peer") == 0 && has_value && options.peer_count < MAX_PEERS) {
      peers[options.peer_count++] = argv[++i];
    } else if (npositional < 2) {
      positional[npositional++] = argv[i];
    } else {
      npositional = 3; /* too many */
    }
  }
  if (npositional != 2) {
    fprintf(stderr,
            "usage: c_api --config FILE --cert FILE --key FILE [--peer IP:PORT]... NAME "
            "VALUE\n");
    return 2;
  }

  if (p2psip_client_create(&options, &client, &err) != P2PSIP_OK) {
    fprintf(stderr, "cannot start the client: %s (%s)\n", err.message,
            p2psip_errc_message(err.code));
    return 1;
  }
  if (p2psip_client_wait_attached(client, 10000, &peer, &err) != P2PSIP_OK) {
    fprintf(stderr, "%s\n", err.message);
    p2psip_client_destroy(client);
    return 1;
  }
  printf("libp2psip-client %s attached to %s at %s\n", p2psip_version(), peer.node_id,
         peer.address);

  if (p2psip_client_put(client, positional[0], (const uint8_t*)positional[1], strlen(positional[1]),
                        3600, &err) != P2PSIP_OK) {
    fprintf(stderr, "put: %s\n", err.message);
    p2psip_client_destroy(client);
    return 1;
  }
  printf("put %s = %s\n", positional[0], positional[1]);

  /* The callback form: start the get, then wait until on_get has run. */
  memset(&state, 0, sizeof state);
  pthread_mutex_init(&state.mutex, NULL);
  pthread_cond_init(&state.cond, NULL);
  state.name = positional[0];
  p2psip_client_node_id(client, state.my_node_id);
  if (p2psip_client_get_async(client, positional[0], on_get, &state) != P2PSIP_OK) {
    fprintf(stderr, "get: could not start\n");
    status = 1;
  } else {
    pthread_mutex_lock(&state.mutex);
    while (!state.done) pthread_cond_wait(&state.cond, &state.mutex);
    pthread_mutex_unlock(&state.mutex);
    status = state.failed ? 1 : 0;
  }
  pthread_cond_destroy(&state.cond);
  pthread_mutex_destroy(&state.mutex);
  p2psip_client_destroy(client);
  return status;
}
