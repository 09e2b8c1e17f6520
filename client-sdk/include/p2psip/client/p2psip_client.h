#ifndef P2PSIP_CLIENT_H
#define P2PSIP_CLIENT_H
/* The p2psip client SDK's C API (C99): the C++ SDK of p2psip/client/client.hpp behind an opaque
 * handle and error codes, for C programs and foreign-function interfaces.
 *
 *   p2psip_client_options o;
 *   p2psip_client_options_init(&o);
 *   o.config_file = "overlay.xml";
 *   o.certificate_file = "alice.crt";
 *   o.key_file = "alice.key";
 *   p2psip_client* c = NULL;
 *   p2psip_error err;
 *   if (p2psip_client_create(&o, &c, &err) != P2PSIP_OK) { fprintf(stderr, "%s\n", err.message); }
 *   p2psip_client_put(c, "greeting", (const uint8_t*)"hello", 5, 3600, &err);
 *   p2psip_owned_value* values = NULL;
 *   size_t count = 0;
 *   p2psip_client_get(c, "greeting", &values, &count, &err);
 *   ...
 *   p2psip_values_free(values);
 *   p2psip_sip_response* answer = NULL;  (SIP: a MESSAGE; answer->status is 200, 404, ...)
 *   p2psip_client_send_message(c, "sip:bob@example.org", (const uint8_t*)"hi", 2, NULL, &answer,
 *                              &err);
 *   p2psip_sip_response_free(answer);
 *   p2psip_client_destroy(c);
 *
 * Conventions (they hold for every function below unless it says otherwise):
 *   - Errors: a function returns P2PSIP_OK (0) or a P2PSIP_ERR_... code. When `err` is not NULL
 *     it is filled in either way: its code, and on failure a one-line NUL-terminated message
 *     (truncated to fit). A p2psip_error owns nothing: it is a plain value the caller allocates
 *     (on the stack, typically); there is nothing to free.
 *   - Memory: what a function returns through an out-pointer belongs to the caller and is freed
 *     with the one function named there (p2psip_values_free, p2psip_kind_data_free,
 *     p2psip_sip_bindings_free, p2psip_sip_response_free). Each such result is one allocation:
 *     its strings and byte arrays live inside it. Pointers passed in (names, values, options) are
 *     only read during the call; the library keeps copies.
 *   - Versions: structs the caller fills in for the library (p2psip_client_options,
 *     p2psip_call_options) start with `struct_size`, set by their ..._init function to the size
 *     the caller was compiled with. Later versions of this library (same soname) only add fields
 *     at their end and read just the fields that fit in struct_size, giving the others their
 *     defaults; so a program built against an older header keeps working.
 *   - Threads: any function may be called from any thread, on the same handle concurrently.
 *     The clients of a process share one I/O thread (started with the first client, ended with
 *     the last) and one default callback thread: a slow callback delays the other clients'
 *     callbacks, and a dispatcher that runs callbacks inline on the I/O thread delays every
 *     client's I/O.
 *   - Nothing throws or aborts across this API: every C++ exception inside is caught and
 *     reported (P2PSIP_ERR_OUT_OF_MEMORY, P2PSIP_ERR_INTERNAL).
 *   - Callbacks (the ..._async functions' results, a call's progress, incoming SIP requests)
 *     run through the client's dispatcher (by default the shared callback thread; see
 *     p2psip_client_options.dispatch), never under an SDK lock. An ..._async function's callback
 *     runs exactly once if and only if the function returned P2PSIP_OK. Pointers a callback
 *     receives (the error, values, items, responses, requests) are valid only until it returns:
 *     copy what you keep.
 *     A callback may call any function of this API on the same client, including the blocking
 *     ones and p2psip_client_destroy. If the client is stopped, an operation started after that
 *     may have its callback run on the calling thread before the ..._async call returns.
 *   - Strings are NUL-terminated UTF-8; Node-IDs and Resource-IDs are lower-case hex.
 */

#include <stddef.h>
#include <stdint.h>

/* Marks what libp2psip-client exports (everything else in it is hidden). */
#ifndef P2PSIP_CLIENT_API
#if defined(__GNUC__) || defined(__clang__)
#define P2PSIP_CLIENT_API __attribute__((visibility("default")))
#else
#define P2PSIP_CLIENT_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---- */

/* The library's version, "MAJOR.MINOR.PATCH" (static, not to be freed). Any thread. */
P2PSIP_CLIENT_API const char* p2psip_version(void);
/* The same as one number, MAJOR * 10000 + MINOR * 100 + PATCH (0.1.0: 100). Any thread. */
P2PSIP_CLIENT_API uint32_t p2psip_version_number(void);

/* ---- errors ---- */

/* Error codes: P2PSIP_OK, then the values of p2psip::client::errc (same numbers), then the C
 * API's own. */
typedef enum p2psip_errc {
  P2PSIP_OK = 0,                       /* success */
  P2PSIP_ERR_INVALID_ARGUMENT = 1,     /* bad name, kind, value, selection or NULL pointer */
  P2PSIP_ERR_BAD_CONFIGURATION = 2,    /* overlay configuration unreadable, invalid, expired */
  P2PSIP_ERR_BAD_CREDENTIALS = 3,      /* certificate or key unreadable, mismatched, foreign */
  P2PSIP_ERR_NO_PEER = 4,              /* no peer could be attached to in the time allowed */
  P2PSIP_ERR_TIMEOUT = 5,              /* no answer within the operation's time */
  P2PSIP_ERR_NOT_FOUND = 6,            /* the overlay has nothing there (Error_Not_Found) */
  P2PSIP_ERR_FORBIDDEN = 7,            /* refused by the access policy (Error_Forbidden) */
  P2PSIP_ERR_UNKNOWN_KIND = 8,         /* the kind is not in the overlay configuration */
  P2PSIP_ERR_TOO_LARGE = 9,            /* value or message over the overlay's limits */
  P2PSIP_ERR_GENERATION_CONFLICT = 10, /* the stored generation moved on */
  P2PSIP_ERR_INVALID_ANSWER = 11,      /* malformed answer, or a value's signature is bad */
  P2PSIP_ERR_OVERLAY_ERROR = 12,       /* another RELOAD error; the message says which */
  P2PSIP_ERR_STOPPED = 13,             /* the client was stopped before the operation ended */
  P2PSIP_ERR_WOULD_DEADLOCK = 14,      /* a blocking call on the SDK's I/O thread */
  P2PSIP_ERR_OUT_OF_MEMORY = 100,      /* an allocation failed (nothing was started) */
  P2PSIP_ERR_INTERNAL = 101            /* an unexpected exception inside the SDK */
} p2psip_errc;

/* Room for an error message, NUL included; longer messages are truncated. */
#define P2PSIP_ERROR_MESSAGE_SIZE 512

/* What failed: filled in by every function that takes a `p2psip_error* err` (when not NULL). */
typedef struct p2psip_error {
  p2psip_errc code;                        /* P2PSIP_OK on success */
  char message[P2PSIP_ERROR_MESSAGE_SIZE]; /* "" on success; else what failed and where */
} p2psip_error;

/* A static description of a code ("no answer within the operation's time"); never NULL, not to
 * be freed. Any thread. */
P2PSIP_CLIENT_API const char* p2psip_errc_message(p2psip_errc code);

/* ---- the client and its options ---- */

/* Room for a hex Node-ID or Resource-ID, NUL included (RELOAD ids are at most 20 bytes; this
 * leaves room for longer ones). */
#define P2PSIP_ID_HEX_SIZE 65
/* Room for a peer address "IP:PORT" or "[IPv6]:PORT", NUL included. */
#define P2PSIP_ADDRESS_SIZE 64

/* A client: opaque; made by p2psip_client_create, freed by p2psip_client_destroy. */
typedef struct p2psip_client p2psip_client;

/* A callback handed to the application's dispatcher: run it once with p2psip_task_run. */
typedef struct p2psip_task p2psip_task;

/* Receives one debug line (`text`, `size` bytes, not NUL-terminated) from the I/O thread. */
typedef void (*p2psip_log_fn)(void* user, const char* text, size_t size);
/* Schedules `task` somewhere (a GUI loop, a thread pool): the application must call
 * p2psip_task_run(task) exactly once, on any thread, later or at once. */
typedef void (*p2psip_dispatch_fn)(void* user, p2psip_task* task);

/* How the client's SIP user agent reaches others and is reached (RFC 7904 3.3). */
typedef enum p2psip_sip_routing {
  /* Resolve the target AOR in the overlay, AppAttach to its node and send the request there;
   * others reach this client the same way, at p2psip_client_options.sip_listen. */
  P2PSIP_SIP_ROUTING_DIRECT = 0,
  /* One RFC 5626 flow to the attached peer, the outbound proxy of every request, which also
   * delivers every incoming one. */
  P2PSIP_SIP_ROUTING_OUTBOUND_PROXY = 1
} p2psip_sip_routing;

/* How to make a client. Always start from p2psip_client_options_init: it sets struct_size and
 * the defaults (fields may be added at the end in later versions; see Versions at the top).
 * Strings are copied by create. */
typedef struct p2psip_client_options {
  /* sizeof(p2psip_client_options) as the caller was compiled (set by init). create refuses
   * less than P2PSIP_CLIENT_OPTIONS_SIZE_V1 and reads only the fields that fit in it. */
  size_t struct_size;
  const char* config_file;      /* the overlay configuration document (overlay.xml); required */
  const char* certificate_file; /* NAME.crt from p2psip-admin enroll; required */
  const char* key_file;         /* NAME.key; required */
  /* Peers to attach to, "IP:PORT", "[IPv6]:PORT" or "HOST:PORT" (resolved once, by
   * p2psip_client_create), tried in order; peer_count 0: the configuration's bootstrap peers. */
  const char* const* peers;
  size_t peer_count;
  /* Refuse a configuration for another overlay; NULL or "": accept the document's own name. */
  const char* overlay;
  uint32_t operation_timeout_ms;  /* one operation in all (default 30000) */
  uint32_t request_timeout_ms;    /* one attempt before a retry (default 10000) */
  uint32_t keepalive_interval_ms; /* Ping to the attached peer this often (default 20000) */
  p2psip_log_fn log;              /* NULL: no debug lines */
  void* log_user;                 /* passed to log */
  p2psip_dispatch_fn dispatch;    /* NULL: callbacks run on the shared callback thread */
  void* dispatch_user;            /* passed to dispatch */
  /* ---- 0.1 fields above: P2PSIP_CLIENT_OPTIONS_SIZE_V1 ends here ---- */
  p2psip_sip_routing sip_routing; /* the SIP user agent's routing (default DIRECT) */
  /* Direct routing: where this client accepts SIP connections once it serves SIP, "IP:PORT"
   * (port 0: any free one). NULL or "": the local address used toward the first peer. */
  const char* sip_listen;
} p2psip_client_options;

/* The smallest struct_size create accepts: the options without the SIP fields (which then get
 * their defaults). */
#define P2PSIP_CLIENT_OPTIONS_SIZE_V1 \
  (offsetof(p2psip_client_options, dispatch_user) + sizeof(void*))

/* Fills `options` with struct_size and the defaults (NULL files, no peers, the timeouts above,
 * direct SIP routing). */
P2PSIP_CLIENT_API void p2psip_client_options_init(p2psip_client_options* options);

/* Reads the configuration and credentials, starts the SDK's threads unless another client runs
 * them, and begins attaching to the first peer; *out gets the client (NULL on failure). Errors:
 * INVALID_ARGUMENT (NULL pointer, struct_size below P2PSIP_CLIENT_OPTIONS_SIZE_V1, missing file
 * name, bad peer address, no peer at all, zero timeout, unknown sip_routing), BAD_CONFIGURATION,
 * BAD_CREDENTIALS, OUT_OF_MEMORY. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_create(const p2psip_client_options* options,
                                                   p2psip_client** out, p2psip_error* err);

/* Stops the client (as p2psip_client_stop) and frees it. NULL is ignored. Operations still in
 * flight get P2PSIP_ERR_STOPPED through their callbacks; with the shared callback thread these
 * have run when destroy returns (unless destroy is called from that thread). The process's last
 * client ends the SDK's threads. Safe from
 * inside one of the client's own callbacks; the handle is invalid afterwards. Do not call it
 * while another thread is still calling functions on the same handle. */
P2PSIP_CLIENT_API void p2psip_client_destroy(p2psip_client* client);

/* Closes the link: operations in flight and later ones fail with P2PSIP_ERR_STOPPED. Returns
 * once the link is closed (unless called on the I/O thread). Other clients are not affected.
 * Idempotent; the handle stays valid until p2psip_client_destroy. */
P2PSIP_CLIENT_API void p2psip_client_stop(p2psip_client* client);

/* The peer a client is attached to. */
typedef struct p2psip_peer_info {
  char address[P2PSIP_ADDRESS_SIZE]; /* "IP:PORT" */
  char node_id[P2PSIP_ID_HEX_SIZE];  /* hex */
} p2psip_peer_info;

/* Blocks until the client is attached to a peer (*peer, when not NULL, says which) or
 * `timeout_ms` passes. Errors: NO_PEER (timeout; or at once when every peer address refused or
 * failed its TLS handshake: the message names each address and why), STOPPED. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_wait_attached(p2psip_client* client,
                                                          uint32_t timeout_ms,
                                                          p2psip_peer_info* peer,
                                                          p2psip_error* err);

/* 1 and *peer filled in when attached to a peer now, else 0. Does not block. */
P2PSIP_CLIENT_API int p2psip_client_attached_peer(const p2psip_client* client,
                                                  p2psip_peer_info* peer);

/* Writes this client's Node-ID (hex) into `out` (P2PSIP_ID_HEX_SIZE bytes). */
P2PSIP_CLIENT_API void p2psip_client_node_id(const p2psip_client* client,
                                             char out[P2PSIP_ID_HEX_SIZE]);

/* Runs a task the client handed to the application's dispatcher, then frees it. Exactly once
 * per task (a task never run leaks and its callback is lost). A task may still be run after
 * p2psip_client_destroy: it then only calls the application's callback. */
P2PSIP_CLIENT_API void p2psip_task_run(p2psip_task* task);

/* ---- put / get / remove: named byte values on p2psip's generic kind ----
 * Every writer owns exactly its own entry under a name; get returns every writer's value. */

/* One writer's value of a name (returned by get). */
typedef struct p2psip_owned_value {
  const char* owner_node_id; /* hex */
  const char* owner_user;    /* user name of the owner's certificate */
  const uint8_t* value;      /* value_size bytes (not NUL-terminated; NULL when empty) */
  size_t value_size;
  uint64_t storage_time; /* ms since the Unix epoch */
  uint32_t lifetime;     /* seconds from storage_time */
} p2psip_owned_value;

/* Frees what p2psip_client_get returned (one call for the whole array). NULL is ignored. */
P2PSIP_CLIENT_API void p2psip_values_free(p2psip_owned_value* values);

/* Callback of the operations without a result (put, remove): `err->code` says how it went. */
typedef void (*p2psip_done_fn)(void* user, const p2psip_error* err);
/* Callback of get: on success `values` holds `count` values (NULL and 0 when none); they are
 * valid until the callback returns. */
typedef void (*p2psip_values_fn)(void* user, const p2psip_error* err,
                                 const p2psip_owned_value* values, size_t count);

/* Stores `value` (`size` bytes; NULL allowed when size is 0) as this client's entry under
 * `name` for `lifetime_seconds`. Errors: INVALID_ARGUMENT, TOO_LARGE, FORBIDDEN, TIMEOUT,
 * NO_PEER, STOPPED, OVERLAY_ERROR, WOULD_DEADLOCK (blocking form in a dispatcher that runs on
 * the I/O thread). */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_put(p2psip_client* client, const char* name,
                                                const uint8_t* value, size_t size,
                                                uint32_t lifetime_seconds, p2psip_error* err);
/* Every writer's current value under `name`: *values gets an array of *count values to free
 * with p2psip_values_free (NULL and 0 when nothing is stored: not an error). Errors as put,
 * and INVALID_ANSWER (a value whose signature does not verify). */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_get(p2psip_client* client, const char* name,
                                                p2psip_owned_value** values, size_t* count,
                                                p2psip_error* err);
/* Deletes this client's entry under `name` (a signed tombstone). Errors as put. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_remove(p2psip_client* client, const char* name,
                                                   p2psip_error* err);

/* The callback forms: return P2PSIP_OK when `done` will run (once), else the error (then it
 * never runs). `done` may not be NULL. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_put_async(p2psip_client* client, const char* name,
                                                      const uint8_t* value, size_t size,
                                                      uint32_t lifetime_seconds,
                                                      p2psip_done_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_get_async(p2psip_client* client, const char* name,
                                                      p2psip_values_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_remove_async(p2psip_client* client, const char* name,
                                                         p2psip_done_fn done, void* user);

/* ---- typed data (RFC 6940 section 7): store / fetch / stat / find / remove_items ---- */

/* p2psip's generic put/get kind. */
#define P2PSIP_GENERIC_KIND 0xF0000101u

typedef enum p2psip_data_model {
  P2PSIP_SINGLE_VALUE = 0,
  P2PSIP_ARRAY = 1,
  P2PSIP_DICTIONARY = 2
} p2psip_data_model;

/* 1 and *model set when `kind` is in the overlay's configuration, else 0. */
P2PSIP_CLIENT_API int p2psip_client_model_of(const p2psip_client* client, uint32_t kind,
                                             p2psip_data_model* model);

/* One value of a kind at a resource. Which fields matter follows from the kind's data model:
 * `index` for arrays, `key` for dictionaries, neither for a single value.
 * As input (store, remove_items) only index, key, value and lifetime are read (zero the rest):
 * store always stores existing values, remove_items stores tombstones. */
typedef struct p2psip_item {
  uint32_t index;     /* array index (store: 0xFFFFFFFF appends) */
  const uint8_t* key; /* dictionary key, key_size bytes */
  size_t key_size;
  int exists;           /* fetch/stat: 0 for a deleted value (a tombstone) */
  const uint8_t* value; /* value_size bytes */
  size_t value_size;
  uint32_t lifetime;          /* store: seconds (0: the store's lifetime); fetch/stat: as stored */
  uint64_t storage_time;      /* fetch/stat: ms since the Unix epoch */
  const char* signer_node_id; /* fetch: hex Node-ID that signed the value ("" if unsigned) */
  const char* signer_user;    /* fetch: user name of the signer's certificate */
  uint32_t value_length;      /* stat: the value's length (the value itself is not sent) */
  const uint8_t* hash;        /* stat: SHA-256 over the value (RFC 6940 7.4.3), hash_size bytes */
  size_t hash_size;
} p2psip_item;

/* A kind's items at one resource, with the kind's generation counter (fetch, stat). */
typedef struct p2psip_kind_data {
  uint32_t kind;
  p2psip_data_model model;
  uint64_t generation;
  p2psip_item* items;
  size_t count;
} p2psip_kind_data;

/* Frees what p2psip_client_fetch or p2psip_client_stat returned (items included). NULL is
 * ignored. */
P2PSIP_CLIENT_API void p2psip_kind_data_free(p2psip_kind_data* data);

/* An inclusive range of array indices. */
typedef struct p2psip_index_range {
  uint32_t first;
  uint32_t last;
} p2psip_index_range;

/* A dictionary key (input). */
typedef struct p2psip_key {
  const uint8_t* data;
  size_t size;
} p2psip_key;

/* Which items fetch or stat asks for: array ranges, or dictionary keys; none (or a NULL
 * selection): every item. */
typedef struct p2psip_selection {
  const p2psip_index_range* ranges;
  size_t range_count;
  const p2psip_key* keys;
  size_t key_count;
} p2psip_selection;

/* How to store; a NULL p2psip_store_options* means lifetime 3600 and generation 0. */
typedef struct p2psip_store_options {
  uint32_t lifetime;   /* seconds, for items whose own lifetime is 0 */
  uint64_t generation; /* expected generation (0: store regardless; else GENERATION_CONFLICT
                          unless it matches the peer's) */
} p2psip_store_options;

/* What find found. */
typedef struct p2psip_find_result {
  int found;                            /* 0: the responsible peer holds no data of the kind */
  char resource_id[P2PSIP_ID_HEX_SIZE]; /* when found: the nearest Resource-ID with some */
} p2psip_find_result;

/* What ping measured. */
typedef struct p2psip_ping_info {
  char responder_node_id[P2PSIP_ID_HEX_SIZE]; /* hex */
  uint64_t round_trip_us;                     /* microseconds */
} p2psip_ping_info;

/* Callbacks of the typed operations; the pointers are valid until the callback returns. */
typedef void (*p2psip_generation_fn)(void* user, const p2psip_error* err, uint64_t generation);
typedef void (*p2psip_kind_data_fn)(void* user, const p2psip_error* err,
                                    const p2psip_kind_data* data);
typedef void (*p2psip_find_fn)(void* user, const p2psip_error* err,
                               const p2psip_find_result* result);
typedef void (*p2psip_ping_fn)(void* user, const p2psip_error* err, const p2psip_ping_info* info);

/* Stores `count` items of `kind` at the resource named `resource`; *generation (when not NULL)
 * gets the kind's new generation. Errors: INVALID_ARGUMENT (no items, several for a single
 * value), UNKNOWN_KIND, TOO_LARGE, FORBIDDEN, GENERATION_CONFLICT, TIMEOUT, NO_PEER, STOPPED,
 * OVERLAY_ERROR, WOULD_DEADLOCK. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_store(p2psip_client* client, const char* resource,
                                                  uint32_t kind, const p2psip_item* items,
                                                  size_t count, const p2psip_store_options* options,
                                                  uint64_t* generation, p2psip_error* err);
/* Deletes items (chosen by index or key; values ignored) by storing signed tombstones. Errors
 * as store. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_remove_items(p2psip_client* client,
                                                         const char* resource, uint32_t kind,
                                                         const p2psip_item* items, size_t count,
                                                         const p2psip_store_options* options,
                                                         uint64_t* generation, p2psip_error* err);
/* Fetches items of `kind` at `resource` (`which` NULL: all); *data gets them, to free with
 * p2psip_kind_data_free. Each value's signature has been verified. Errors: UNKNOWN_KIND,
 * NOT_FOUND, INVALID_ANSWER, TIMEOUT, NO_PEER, STOPPED, OVERLAY_ERROR, WOULD_DEADLOCK. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_fetch(p2psip_client* client, const char* resource,
                                                  uint32_t kind, const p2psip_selection* which,
                                                  p2psip_kind_data** data, p2psip_error* err);
/* Like fetch, with value lengths and hashes instead of values. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_stat(p2psip_client* client, const char* resource,
                                                 uint32_t kind, const p2psip_selection* which,
                                                 p2psip_kind_data** data, p2psip_error* err);
/* The Resource-ID nearest to `resource`'s that holds data of `kind` on the responsible peer
 * (RFC 6940 7.4.4). Errors as fetch. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_find(p2psip_client* client, const char* resource,
                                                 uint32_t kind, p2psip_find_result* result,
                                                 p2psip_error* err);
/* Pings the attached peer (`resource` NULL or "") or the node responsible for `resource`.
 * Errors: TIMEOUT, NO_PEER, STOPPED, OVERLAY_ERROR, WOULD_DEADLOCK. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_ping(p2psip_client* client, const char* resource,
                                                 p2psip_ping_info* info, p2psip_error* err);

/* ---- SIP registrations (RFC 7904, the SIP-REGISTRATION kind) ---- */

/* One binding found by p2psip_client_resolve. */
typedef struct p2psip_sip_binding {
  const char* aor;           /* the AOR it was registered under (after forwards) */
  const char* owner_node_id; /* the registering node, hex */
  const char* owner_user;    /* user name of its certificate */
  const char* uri;           /* a forward not followed (a loop, or too deep); "" for a route */
  const char* const* route;  /* the destination list to the registered node: Node-IDs, hex */
  size_t route_count;
  const char* contact_prefs; /* RFC 3840 feature parameters, maybe "" */
  uint32_t lifetime;         /* seconds left */
} p2psip_sip_binding;

/* Registers this client under `aor` ("sip:alice@example.org" or "alice@example.org"): with
 * `forward_to` NULL or "", a route through the attached peer to this client; else a forward to
 * that AOR. `generation` (may be NULL) receives the kind's new generation. Errors: FORBIDDEN (not
 * the certificate's AOR), NO_PEER, TIMEOUT, STOPPED, OVERLAY_ERROR, WOULD_DEADLOCK. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_register_aor(p2psip_client* client, const char* aor,
                                                         const char* forward_to,
                                                         uint32_t lifetime_seconds,
                                                         uint64_t* generation, p2psip_error* err);
/* Removes this client's registration under `aor` (a signed tombstone). */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_unregister_aor(p2psip_client* client, const char* aor,
                                                           uint64_t* generation, p2psip_error* err);
/* Every binding of `aor`, following forwards up to 4 deep. `*bindings` receives one block
 * (free it with p2psip_sip_bindings_free; NULL when nothing is registered), `*count` their
 * number (0: nothing registered, not an error). */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_resolve(p2psip_client* client, const char* aor,
                                                    p2psip_sip_binding** bindings, size_t* count,
                                                    p2psip_error* err);
P2PSIP_CLIENT_API void p2psip_sip_bindings_free(p2psip_sip_binding* bindings);

/* ---- SIP user agent (RFC 3261 over the overlay, routed as options.sip_routing says) ----
 * Targets ("to") are AORs: "sip:bob@example.org" or "bob@example.org". */

/* A final SIP response (send_message, call), or a provisional one (a call's progress). */
typedef struct p2psip_sip_response {
  int status;               /* 200, 404, 486, ...; 180, 183 in progress callbacks */
  const char* reason;       /* the reason phrase */
  const char* call_id;      /* of the request it answers */
  const char* content_type; /* "" without a body */
  const uint8_t* body;      /* body_size bytes (NULL when empty), an SDP answer, say */
  size_t body_size;
  /* 1 when the SDK made it up instead of a node answering: 404 (the overlay has no binding for
   * the target), 408 (no binding answered), 503 (no connection could be opened). */
  int local;
} p2psip_sip_response;

/* Frees what send_message or call returned. NULL is ignored. */
P2PSIP_CLIENT_API void p2psip_sip_response_free(p2psip_sip_response* response);

/* Makes this client reachable as `aor` (the certificate's user must be the AOR): direct routing
 * serves incoming SIP connections and registers a route through the peer to this client;
 * outbound proxy routing opens the flow to the peer and registers through it. The SDK refreshes
 * the registration (and makes it again after a failover) until sip_unregister or stop. Incoming
 * requests go to the p2psip_client_on_sip_request callback (without one: 480). Errors:
 * INVALID_ARGUMENT (also a sip_listen that cannot be used), FORBIDDEN (not the certificate's AOR),
 * NO_PEER, TIMEOUT, STOPPED, OVERLAY_ERROR, WOULD_DEADLOCK. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_sip_register(p2psip_client* client, const char* aor,
                                                         uint32_t lifetime_seconds,
                                                         p2psip_error* err);
/* Stops being reachable: removes the registration and stops refreshing it. Errors as
 * sip_register. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_sip_unregister(p2psip_client* client,
                                                           p2psip_error* err);

/* Sends a MESSAGE (RFC 3428) with `body` (`size` bytes; NULL allowed when 0) of `content_type`
 * (NULL: "text/plain") to `to`. *response gets the final response, whatever its status (free it
 * with p2psip_sip_response_free): P2PSIP_OK means an answer came, not that it was a 2xx. Errors
 * only when nothing could be tried: INVALID_ARGUMENT, NO_PEER, TIMEOUT, STOPPED,
 * WOULD_DEADLOCK. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_send_message(p2psip_client* client, const char* to,
                                                         const uint8_t* body, size_t size,
                                                         const char* content_type,
                                                         p2psip_sip_response** response,
                                                         p2psip_error* err);

/* Receives a provisional response of a call (180 Ringing, 183, ...), through the dispatcher;
 * `response` is valid until it returns. */
typedef void (*p2psip_sip_progress_fn)(void* user, const p2psip_sip_response* response);

/* What p2psip_client_call sends. Start from p2psip_call_options_init; NULL options: the
 * defaults. */
typedef struct p2psip_call_options {
  size_t struct_size;   /* sizeof as compiled (set by init); see Versions at the top */
  const uint8_t* offer; /* the INVITE's body (SDP, passed through untouched), offer_size bytes */
  size_t offer_size;    /* 0: no body */
  const char* content_type; /* of the offer; NULL: "application/sdp" */
  /* The call's Call-ID; NULL or "": a new one (progress responses carry it). Choose one to hang
   * up (cancel) the call from another thread while p2psip_client_call still waits. */
  const char* call_id;
  /* NULL: provisional responses are not reported. Progress runs through the dispatcher, so
   * with the blocking p2psip_client_call it may run after the call has returned. */
  p2psip_sip_progress_fn progress;
  void* progress_user; /* passed to progress */
} p2psip_call_options;

/* The smallest struct_size p2psip_client_call accepts (this first version's size). */
#define P2PSIP_CALL_OPTIONS_SIZE_V1 (offsetof(p2psip_call_options, progress_user) + sizeof(void*))

/* Fills `options` with struct_size and the defaults (no offer, a new Call-ID, no progress). */
P2PSIP_CLIENT_API void p2psip_call_options_init(p2psip_call_options* options);

/* Calls `to` (INVITE, signalling only) and blocks until the final response, which *response gets
 * (free it with p2psip_sip_response_free): a 2xx is an established call (ACK sent; end it with
 * p2psip_client_hang_up), anything else a failed one (487 after a hang up while it rang).
 * Errors as send_message (INVALID_ARGUMENT also for a struct_size below
 * P2PSIP_CALL_OPTIONS_SIZE_V1). */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_call(p2psip_client* client, const char* to,
                                                 const p2psip_call_options* options,
                                                 p2psip_sip_response** response, p2psip_error* err);

/* Ends the call `call_id`: CANCEL while it has no final answer, BYE once established (either
 * side's call). Errors: INVALID_ARGUMENT, NOT_FOUND (no such call), STOPPED. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_hang_up(p2psip_client* client, const char* call_id,
                                                    p2psip_error* err);

/* Callback of the SIP operations' callback forms: on success `response` is the final response
 * (valid until the callback returns), else NULL. */
typedef void (*p2psip_sip_response_fn)(void* user, const p2psip_error* err,
                                       const p2psip_sip_response* response);

/* The callback forms of sip_register, sip_unregister, send_message and call (conventions at the
 * top: OK means `done` runs exactly once; `done` may not be NULL). The call's progress callback
 * runs before `done`. */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_sip_register_async(p2psip_client* client,
                                                               const char* aor,
                                                               uint32_t lifetime_seconds,
                                                               p2psip_done_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_sip_unregister_async(p2psip_client* client,
                                                                 p2psip_done_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_send_message_async(
    p2psip_client* client, const char* to, const uint8_t* body, size_t size,
    const char* content_type, p2psip_sip_response_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_call_async(p2psip_client* client, const char* to,
                                                       const p2psip_call_options* options,
                                                       p2psip_sip_response_fn done, void* user);

/* A SIP request that arrived for this client; valid until the callback returns. */
typedef struct p2psip_sip_request {
  const char* method;       /* "MESSAGE", "INVITE", "BYE", "CANCEL", "OPTIONS", ... */
  const char* request_uri;  /* as received */
  const char* from;         /* the From URI: who sends it */
  const char* to;           /* the To URI */
  const char* call_id;      /* the dialog's (or the request's) Call-ID */
  const char* content_type; /* "" without a body */
  const uint8_t* body;      /* body_size bytes (NULL when empty) */
  size_t body_size;
} p2psip_sip_request;

/* The final response the application gives to an incoming request. The SDK fills struct_size
 * and the defaults (status 200, everything else NULL/0) before the callback and copies the
 * strings and the body after it returns, so they only need to live until then. */
typedef struct p2psip_sip_answer {
  size_t struct_size;       /* set by the SDK: do not write fields that do not fit in it */
  int status;               /* 200..699 */
  const char* reason;       /* NULL or "": the standard phrase */
  const char* content_type; /* NULL or "" without a body */
  const uint8_t* body;      /* body_size bytes */
  size_t body_size;
} p2psip_sip_answer;

/* Answers an incoming request by filling `answer`. An INVITE has been answered 180 Ringing
 * already; a 2xx establishes a call (hang it up with p2psip_client_hang_up). BYE and CANCEL are
 * answered by the SDK (200) and only shown: the answer is ignored. A status outside 200..699 is
 * sent as 500. */
typedef void (*p2psip_sip_request_fn)(void* user, const p2psip_sip_request* request,
                                      p2psip_sip_answer* answer);

/* Sets who answers incoming requests (replacing the previous callback; `fn` NULL: 480 to all).
 * `fn` runs through the dispatcher (the default callback thread runs one at a time); it may
 * call any function of this API, blocking ones included, and p2psip_client_destroy. Errors:
 * INVALID_ARGUMENT (NULL client). */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_on_sip_request(p2psip_client* client,
                                                           p2psip_sip_request_fn fn, void* user);

/* The callback forms (conventions at the top: OK means `done` runs exactly once). */
P2PSIP_CLIENT_API p2psip_errc p2psip_client_store_async(p2psip_client* client, const char* resource,
                                                        uint32_t kind, const p2psip_item* items,
                                                        size_t count,
                                                        const p2psip_store_options* options,
                                                        p2psip_generation_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_remove_items_async(
    p2psip_client* client, const char* resource, uint32_t kind, const p2psip_item* items,
    size_t count, const p2psip_store_options* options, p2psip_generation_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_fetch_async(p2psip_client* client, const char* resource,
                                                        uint32_t kind,
                                                        const p2psip_selection* which,
                                                        p2psip_kind_data_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_stat_async(p2psip_client* client, const char* resource,
                                                       uint32_t kind, const p2psip_selection* which,
                                                       p2psip_kind_data_fn done, void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_find_async(p2psip_client* client, const char* resource,
                                                       uint32_t kind, p2psip_find_fn done,
                                                       void* user);
P2PSIP_CLIENT_API p2psip_errc p2psip_client_ping_async(p2psip_client* client, const char* resource,
                                                       p2psip_ping_fn done, void* user);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* P2PSIP_CLIENT_H */
