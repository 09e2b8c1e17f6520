#!/usr/bin/env bash
# Loopback tests of p2psip-client against real p2psip-peer processes, with credentials made by
# p2psip-admin. Peers listen on 127.0.0.1 port 0; their ports are read from their logs.
# usage: cli_test.sh /path/to/p2psip-client /path/to/p2psip-peer /path/to/p2psip-admin CASE
#                    [/path/to/p2psip-wire]
#   usage     usage errors (exit 2, one stderr line, nothing on stdout; --json error document),
#             --help
#   offline   unreadable certificate or key, another overlay (6); nothing listening, or a peer of
#             another CA (5 at once, naming the address and the reason); a peer that never
#             answers the handshake (5 at --timeout, named as still dialing)
#   putget    put through peer A, get through peer B: text, --json, --raw, stdin, --file,
#             remove, not found (3), ping
#   typed     store/fetch/stat/find/remove-item on an array kind and the generic dictionary, text
#             and --json, model checks (2), generation conflict (1)
#   refused   forbidden (4), oversize (7), unknown kind (7), not found (3), --json error documents
#   sip_direct, sip_outbound
#             sip register/resolve/unregister, sip message to a `sip listen` process, sip call
#             --hangup-after 1 against sip listen --accept and --reject (8), no binding (3), in
#             that SIP routing mode
#   tools     every tool (client, peer, admin, wire): --version, per-command --help, plain ASCII
#             option errors naming the option, a missing configuration file exits 6 everywhere
#   defaults  p2psip-client setup writes the per-user file; then commands need no options;
#             P2PSIP_* variables beat the file, options beat both; a host name as --peer; a
#             broken defaults file (6); nothing configured at all (2, naming setup)
#   values    text printed as text (escaped when it has control characters), base64 only for
#             binary; get --owner; nothing stored: the same for get, fetch and stat; kinds named
#             in messages
set -u

CLIENT=$1
PEER=$2
ADMIN=$3
CASE=$4
WIRE=${5:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/p2psip-cli-test.XXXXXX")
# The per-user defaults file and variables of whoever runs the tests must not leak in.
export XDG_CONFIG_HOME=$T/xdg
unset P2PSIP_CONFIG P2PSIP_CERT P2PSIP_KEY P2PSIP_PEER P2PSIP_OVERLAY
PIDS=()
OVERLAY=example.org

# Stops every peer started (SIGTERM, then SIGKILL after 10 s) and removes the directory.
cleanup() {
  local p i
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    for i in $(seq 1 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL [$CASE]: $*" >&2
  print_logs 20
  local f
  for f in "$T/out" "$T/err"; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    head -c 2000 "$f" >&2
    echo >&2
  done
  exit 1
}

source "$(dirname "$0")/../support/loopback_peers.sh"

# setup_ring: overlay, three peers a b c (ports PA PB PC) in a consistent ring, clients alice, bob.
# The peers get PEER_ARGS too.
PEER_ARGS=()
setup_ring() {
  make_overlay "$OVERLAY" "$T/ca"
  local n
  for n in a b c; do enroll "$n@$OVERLAY" "$T/$n" "$T/ca"; done
  enroll "alice@$OVERLAY" "$T/alice" "$T/ca"
  enroll "bob@$OVERLAY" "$T/bob" "$T/ca"
  start a --first --memory "${PEER_ARGS[@]}"
  PA=$(port_of a) || exit 1
  start b --bootstrap-peer "127.0.0.1:$PA" --memory "${PEER_ARGS[@]}"
  start c --bootstrap-peer "127.0.0.1:$PA" --memory "${PEER_ARGS[@]}"
  PB=$(port_of b) || exit 1
  PC=$(port_of c) || exit 1
  local deadline=$((SECONDS + 60))
  until ring_ok a b c; do
    [ "$SECONDS" -lt "$deadline" ] || fail "no consistent ring of a b c within 60s"
    sleep 0.2
  done
}

# cli USER PORT ARGS...: runs p2psip-client as USER through the peer at PORT (stdout $T/out,
# stderr $T/err); sets RC. Bounded by timeout(1).
cli() {
  local user=$1 port=$2
  shift 2
  timeout 60 "$CLIENT" --config "$T/ca/overlay.xml" --cert "$T/$user/node.crt" \
    --key "$T/$user/node.key" --peer "127.0.0.1:$port" --timeout 10000 "$@" >"$T/out" 2>"$T/err"
  RC=$?
}

# ok USER PORT ARGS...: cli, which must succeed with nothing on stderr.
ok() {
  cli "$@"
  [ "$RC" -eq 0 ] || fail "p2psip-client ${*:3} exited $RC: $(cat "$T/err")"
  [ -s "$T/err" ] && fail "p2psip-client ${*:3}: unexpected stderr: $(cat "$T/err")"
  return 0
}

# check_error RC TEXT: the last run exited RC with exactly one stderr line
# "p2psip-client: ...TEXT..." and nothing on stdout (or, with JSON=1, one error document).
check_error() {
  local expected=$1 text=$2
  [ "$RC" -eq "$expected" ] || fail "exited $RC, expected $expected: $(cat "$T/err")"
  local lines
  lines=$(wc -l <"$T/err")
  [ "$lines" -eq 1 ] || fail "expected one line on stderr, got $lines: $(cat "$T/err")"
  grep -q '^p2psip-client: ' "$T/err" || fail "stderr line lacks the 'p2psip-client: ' prefix"
  grep -Fq -- "$text" "$T/err" || fail "stderr lacks '$text': $(cat "$T/err")"
  if [ "${JSON:-0}" = 1 ]; then
    python3 - "$T/out" "$expected" <<'EOF' || fail "bad --json error document: $(cat "$T/out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"error", "message", "exit_code"}, d
assert d["exit_code"] == int(sys.argv[2]), d
assert isinstance(d["error"], str) and d["error"], d
assert isinstance(d["message"], str) and d["message"], d
EOF
  else
    [ -s "$T/out" ] && fail "stdout not empty on error: $(cat "$T/out")"
  fi
  return 0
}

# expect_error RC TEXT USER PORT ARGS...
expect_error() {
  local expected=$1 text=$2
  shift 2
  cli "$@"
  check_error "$expected" "$text"
}

# json_check PYTHON-EXPRESSION-LINES: runs Python with `d` the JSON document in $T/out.
json_check() {
  python3 -c "import json,sys
d = json.load(open('$T/out'))
$1" || fail "JSON check failed: $1
document: $(cat "$T/out")"
}

# ---- cases ----

case_usage() {
  make_overlay "$OVERLAY" "$T/ca"
  enroll "alice@$OVERLAY" "$T/alice" "$T/ca"
  local creds=(--config "$T/ca/overlay.xml" --cert "$T/alice/node.crt" --key "$T/alice/node.key"
    --peer 127.0.0.1:9 --timeout 3000)
  run() {
    timeout 30 "$CLIENT" "$@" >"$T/out" 2>"$T/err"
    RC=$?
  }
  # --help: exit 0, lists the commands and the exit codes.
  run --help
  [ "$RC" -eq 0 ] || fail "--help exited $RC"
  for w in put get remove store fetch stat find remove-item ping "Exit status" forbidden setup \
    "sip register" "sip message" "sip call" "sip listen" "--sip-routing" "  8  "; do
    grep -q -- "$w" "$T/out" || fail "--help lacks '$w'"
  done

  run "${creds[@]}"
  check_error 2 "no command"
  run "${creds[@]}" frobnicate x
  check_error 2 "unknown command 'frobnicate'"
  run "${creds[@]}" get
  check_error 2 "missing NAME"
  run "${creds[@]}" get a b
  check_error 2 "unexpected argument 'b'"
  run "${creds[@]}" put name
  check_error 2 "VALUE or --file"
  run "${creds[@]}" put name value --file "$T/x"
  check_error 2 "exclude"
  run "${creds[@]}" fetch res
  check_error 2 "--kind is required"
  run "${creds[@]}" fetch res --kind bogus
  check_error 2 "--kind 'bogus'"
  run "${creds[@]}" fetch res --kind 0x1ffffffff
  check_error 2 "--kind"
  run "${creds[@]}" store res --kind generic
  check_error 2 "--value or --file"
  run "${creds[@]}" get name --raw --json
  JSON=1 check_error 2 "exclude"
  run "${creds[@]}" get name --kind 3
  check_error 2 "--kind does not apply to get"
  run "${creds[@]}" put name v --lifetime 0
  check_error 2 "--lifetime"
  run "${creds[@]}" fetch res --kind 3 --index 5-2
  check_error 2 "--index '5-2'"
  run "${creds[@]}" fetch res --kind generic --dict-key hex:zz
  check_error 2 "--dict-key"
  run "${creds[@]}" get name --no-such-option
  check_error 2 "no-such-option"
  run "${creds[@]}" get name --timeout 0
  check_error 2 "--timeout"
  # Missing global options.
  run --cert "$T/alice/node.crt" --key "$T/alice/node.key" get name
  check_error 2 "--config is required"
  run --config "$T/ca/overlay.xml" --key "$T/alice/node.key" get name
  check_error 2 "--cert is required"
  # A malformed --peer is a usage error too.
  run --config "$T/ca/overlay.xml" --cert "$T/alice/node.crt" --key "$T/alice/node.key" \
    --peer nowhere get name
  check_error 2 "nowhere"
  # The model of the kind decides --dict-key/--index (checked before any network use).
  run "${creds[@]}" store res --kind certificate-by-user --value v --dict-key k
  check_error 2 "takes --index, not --dict-key"
  run "${creds[@]}" store res --kind certificate-by-user --value v
  check_error 2 "needs --index"
  run "${creds[@]}" store res --kind generic --value v --index 1
  check_error 2 "takes --dict-key, not --index"
  run "${creds[@]}" remove-item res --kind generic
  check_error 2 "needs --dict-key"
  # With --json, a usage error is also one error document on stdout.
  run "${creds[@]}" --json frobnicate
  JSON=1 check_error 2 "unknown command"
  json_check "assert d['error'] == 'usage'"
  # sip: subcommands, their arguments and options.
  run "${creds[@]}" sip
  check_error 2 "sip: missing subcommand"
  run "${creds[@]}" sip frobnicate x
  check_error 2 "sip: unknown subcommand 'frobnicate'"
  run "${creds[@]}" sip message "sip:bob@$OVERLAY"
  check_error 2 "sip message: missing TEXT"
  run "${creds[@]}" sip call
  check_error 2 "sip call: missing AOR"
  run "${creds[@]}" sip listen a b
  check_error 2 "unexpected argument 'b'"
  run "${creds[@]}" sip listen "sip:alice@$OVERLAY" --accept --reject
  check_error 2 "--accept and --reject exclude each other"
  run "${creds[@]}" sip call "sip:bob@$OVERLAY" --hangup-after soon
  check_error 2 "--hangup-after 'soon'"
  run "${creds[@]}" sip call "sip:bob@$OVERLAY" --reject
  check_error 2 "--reject does not apply to sip call"
  run "${creds[@]}" sip message "sip:bob@$OVERLAY" hi --hangup-after 1
  check_error 2 "--hangup-after does not apply to sip message"
  run "${creds[@]}" get name --contact sip:x@y
  check_error 2 "--contact does not apply to get"
  run "${creds[@]}" --sip-routing carrier-pigeon sip message "sip:bob@$OVERLAY" hi
  check_error 2 "--sip-routing 'carrier-pigeon'"
  run "${creds[@]}" --json sip
  JSON=1 check_error 2 "missing subcommand"
  # Unreadable --file: exit 1.
  run "${creds[@]}" put name --file "$T/missing-file"
  check_error 1 "missing-file"
  run "${creds[@]}" put name --file "$T"
  check_error 1 "is a directory"
}

case_offline() {
  make_overlay "$OVERLAY" "$T/ca"
  make_overlay other.org "$T/other"
  enroll "alice@$OVERLAY" "$T/alice" "$T/ca"
  local cfg=$T/ca/overlay.xml crt=$T/alice/node.crt key=$T/alice/node.key
  run() {
    timeout 30 "$CLIENT" "$@" >"$T/out" 2>"$T/err"
    RC=$?
  }
  # Unreadable certificate or key: 6.
  run --config "$cfg" --cert "$T/missing.crt" --key "$key" --peer 127.0.0.1:9 get x
  check_error 6 "missing.crt"
  mkdir "$T/certdir"
  run --config "$cfg" --cert "$T/certdir" --key "$key" --peer 127.0.0.1:9 get x
  check_error 6 "certdir"
  echo garbage >"$T/garbage.key"
  run --config "$cfg" --cert "$crt" --key "$T/garbage.key" --peer 127.0.0.1:9 get x
  check_error 6 "garbage.key"
  run --config "$cfg" --cert "$crt" --key "$T/garbage.key" --peer 127.0.0.1:9 --json get x
  JSON=1 check_error 6 "garbage.key"
  json_check "assert d['error'] == 'bad_credentials', d"
  # Configuration: missing, another overlay than --overlay, or another overlay's CA.
  run --config "$T/missing.xml" --cert "$crt" --key "$key" --peer 127.0.0.1:9 get x
  check_error 6 "missing.xml"
  run --config "$cfg" --cert "$crt" --key "$key" --peer 127.0.0.1:9 --overlay other.org get x
  check_error 6 "other.org"
  run --config "$cfg" --cert "$crt" --key "$key" --peer 127.0.0.1:9 --overlay other.org --json get x
  JSON=1 check_error 6 "other.org"
  json_check "assert d['error'] == 'bad_configuration', d"
  run --config "$T/other/overlay.xml" --cert "$crt" --key "$key" --peer 127.0.0.1:9 get x
  check_error 6 ""
  # Nothing listening at the peer address: 5 at once (well under a second, not the --timeout),
  # naming the address and the system's reason.
  local port port2 ms
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ms=$(date +%s%3N)
  run --config "$cfg" --cert "$crt" --key "$key" --peer "127.0.0.1:$port" --timeout 10000 get x
  ms=$(($(date +%s%3N) - ms))
  check_error 5 "127.0.0.1:$port: TCP connect failed: Connection refused"
  echo "refused peer: exit 5 after $ms ms (--timeout 10000)"
  [ "$ms" -lt 1000 ] || fail "no_peer for a refused peer took $ms ms"
  # Every peer of the list refuses: each named with its reason, still at once.
  ms=$(date +%s%3N)
  run --config "$cfg" --cert "$crt" --key "$key" --peer "127.0.0.1:$port" \
    --peer "127.0.0.1:$port2" --timeout 10000 --json ping
  ms=$(($(date +%s%3N) - ms))
  JSON=1 check_error 5 "no peer reachable"
  json_check "assert d['error'] == 'no_peer', d
assert '127.0.0.1:$port: TCP connect failed: Connection refused' in d['message'], d
assert '127.0.0.1:$port2: TCP connect failed: Connection refused' in d['message'], d"
  echo "two refused peers: exit 5 after $ms ms"
  [ "$ms" -lt 1000 ] || fail "no_peer for two refused peers took $ms ms"
  # One peer refuses, another accepts TCP and never answers TLS: the client waits for that one
  # until --timeout and then says which was still pending.
  python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(20)' >"$T/silent.port" &
  local silent_pid=$!
  PIDS+=("$silent_pid")
  local i
  for i in $(seq 1 50); do
    [ -s "$T/silent.port" ] && break
    sleep 0.1
  done
  local silent
  silent=$(cat "$T/silent.port")
  ms=$(date +%s%3N)
  run --config "$cfg" --cert "$crt" --key "$key" --peer "127.0.0.1:$port" \
    --peer "127.0.0.1:$silent" --timeout 1500 get x
  ms=$(($(date +%s%3N) - ms))
  check_error 5 "127.0.0.1:$silent: still dialing"
  grep -Fq "127.0.0.1:$port: TCP connect failed: Connection refused" "$T/err" ||
    fail "the refused peer is not named: $(cat "$T/err")"
  echo "refused + silent peer: exit 5 after $ms ms (--timeout 1500)"
  [ "$ms" -ge 1400 ] || fail "gave up on a peer still dialing after $ms ms, before --timeout"
  kill "$silent_pid" 2>/dev/null
  # A peer of another overlay (another CA): its certificate does not verify. At once, with the
  # TLS reason.
  enroll "x@other.org" "$T/x" "$T/other"
  "$PEER" --config "$T/other/overlay.xml" --cert "$T/x/node.crt" --key "$T/x/node.key" \
    --listen 127.0.0.1:0 --first --memory 2>"$T/x.log" &
  PIDS+=("$!")
  local px
  px=$(port_of x) || exit 1
  ms=$(date +%s%3N)
  run --config "$cfg" --cert "$crt" --key "$key" --peer "127.0.0.1:$px" --timeout 10000 get x
  ms=$(($(date +%s%3N) - ms))
  check_error 5 "127.0.0.1:$px: peer certificate does not verify against the overlay root"
  echo "peer of another CA: exit 5 after $ms ms: $(cat "$T/err")"
  [ "$ms" -lt 1000 ] || fail "no_peer for a peer of another CA took $ms ms"
}

case_putget() {
  setup_ring
  # Put through a, get through b (text and JSON).
  ok alice "$PA" put greeting "hello world"
  grep -q "stored 'greeting'" "$T/out" || fail "put printed: $(cat "$T/out")"
  ok bob "$PB" get greeting
  grep -Eq "^alice@$OVERLAY \([0-9a-f]+\): hello world$" "$T/out" || fail "get printed: $(cat "$T/out")"
  [ "$(wc -l <"$T/out")" -eq 1 ] || fail "get printed more than one line: $(cat "$T/out")"
  ok bob "$PC" get greeting --raw
  [ "$(cat "$T/out")" = "hello world" ] || fail "get --raw printed: $(cat "$T/out")"
  printf 'hello world' | cmp -s - "$T/out" || fail "get --raw is not exactly the value's bytes"

  # A second writer, with the value from standard input; JSON shows both.
  ok alice "$PA" --json put greeting2 dummy
  json_check "assert d['name'] == 'greeting2' and d['bytes'] == 5 and d['lifetime'] == 3600
assert len(d['owner_node_id']) > 0"
  local alice_node
  alice_node=$(python3 -c "import json; print(json.load(open('$T/out'))['owner_node_id'])")
  printf 'from stdin\n' >"$T/stdin1"
  ok bob "$PB" put greeting - --lifetime 600 <"$T/stdin1"  # not a pipe: ok must run in this shell
  ok alice "$PC" --json get greeting
  json_check "
assert isinstance(d, list) and len(d) == 2, d
by = {v['owner_user']: v for v in d}
assert by['alice@$OVERLAY']['value'] == 'hello world'
assert by['alice@$OVERLAY']['owner_node_id'] == '$alice_node'
assert by['bob@$OVERLAY']['value'] == 'from stdin\n'
assert 590 <= by['bob@$OVERLAY']['lifetime'] <= 600  # what is left of it
for v in d:
    assert set(v) == {'owner_user', 'owner_node_id', 'value', 'storage_time', 'lifetime'}, v
    assert v['storage_time'] > 1600000000000"
  cli alice "$PA" get greeting --raw
  check_error 1 "--raw needs exactly one"

  # A binary value from --file: base64 in text and JSON; --raw gives the bytes back.
  printf '\x00\x01\xfe\xff binary' >"$T/bin"
  ok alice "$PB" put blob --file "$T/bin"
  ok bob "$PA" get blob
  grep -q ": base64:AAH+/yBiaW5hcnk=$" "$T/out" || fail "binary value printed as: $(cat "$T/out")"
  ok bob "$PA" --json get blob
  json_check "assert d[0]['value_base64'] == 'AAH+/yBiaW5hcnk=' and 'value' not in d[0]"
  ok bob "$PC" get blob --raw
  cmp -s "$T/bin" "$T/out" || fail "get --raw did not give the file's bytes back"
  # --file - reads standard input too.
  printf 'piped' >"$T/stdin2"
  ok alice "$PC" put piped --file - <"$T/stdin2"
  ok bob "$PA" get piped --raw
  [ "$(cat "$T/out")" = piped ] || fail "put --file - stored: $(cat "$T/out")"

  # remove: alice's entry goes, bob's stays; then bob's; then not found (3).
  ok alice "$PB" remove greeting
  grep -q "removed 'greeting'" "$T/out" || fail "remove printed: $(cat "$T/out")"
  ok alice "$PC" get greeting
  grep -q "^bob@$OVERLAY " "$T/out" || fail "bob's value is gone: $(cat "$T/out")"
  grep -q "^alice@" "$T/out" && fail "alice's value is still there: $(cat "$T/out")"
  ok bob "$PA" --json remove greeting
  json_check "assert d == {'name': 'greeting', 'removed': True}"
  expect_error 3 "nothing stored under 'greeting'" alice "$PB" get greeting
  cli alice "$PB" --json get greeting
  JSON=1 check_error 3 "greeting"
  json_check "assert d['error'] == 'not_found'"
  expect_error 3 "never-stored" alice "$PC" get never-stored
  # --quiet: put and remove print nothing.
  ok alice "$PA" --quiet put q v
  [ -s "$T/out" ] && fail "put --quiet printed: $(cat "$T/out")"

  # ping: the attached peer, and the one responsible for a resource.
  ok alice "$PA" ping
  grep -Eq '^pong from [0-9a-f]+ in [0-9]+\.[0-9]{3} ms$' "$T/out" || fail "ping printed: $(cat "$T/out")"
  local a_node
  a_node=$(field a node)
  grep -q "pong from $a_node " "$T/out" || fail "ping answered by another node than a ($a_node): $(cat "$T/out")"
  ok bob "$PB" --json ping some-resource
  json_check "
assert len(d['responder_node_id']) > 0 and d['round_trip_us'] >= 0
assert isinstance(d['round_trip_ms'], float) and d['resource'] == 'some-resource'
assert d['peer']['address'] == '127.0.0.1:$PB', d"
}

case_typed() {
  setup_ring
  local me=alice@$OVERLAY
  # An array kind (certificate-by-user: USER-MATCH) at the resource named after the user.
  ok alice "$PA" store "$me" --kind certificate-by-user --index 0 --value first
  grep -q "stored kind certificate-by-user at '$me' (generation [0-9]*)" "$T/out" ||
    fail "store printed: $(cat "$T/out")"
  ok alice "$PB" --json store "$me" --kind 0x10 --index append --value second --lifetime 900
  json_check "assert d['resource'] == '$me' and d['kind'] == 16 and d['generation'] > 0"
  local gen
  gen=$(python3 -c "import json; print(json.load(open('$T/out'))['generation'])")
  printf 'third' >"$T/v3"
  ok alice "$PC" store "$me" --kind 16 --index 2 --file "$T/v3"
  ok bob "$PA" fetch "$me" --kind certificate-by-user
  [ "$(wc -l <"$T/out")" -eq 3 ] || fail "fetch printed: $(cat "$T/out")"
  grep -Eq "^index=0 $me \([0-9a-f]+\): first$" "$T/out" || fail "fetch printed: $(cat "$T/out")"
  grep -Eq "^index=1 $me \([0-9a-f]+\): second$" "$T/out" || fail "fetch printed: $(cat "$T/out")"
  ok bob "$PB" --json fetch "$me" --kind certificate-by-user --index 1-2
  json_check "
assert d['resource'] == '$me' and d['kind'] == 16 and d['model'] == 'array'
assert d['generation'] > $gen
items = d['items']
assert [i['index'] for i in items] == [1, 2], items
assert [i['value'] for i in items] == ['second', 'third'], items
assert 890 <= items[0]['lifetime'] <= 900 and items[0]['exists'] is True
assert items[0]['signer_user'] == '$me' and len(items[0]['signer_node_id']) > 0"
  ok bob "$PC" --json fetch "$me" --kind certificate-by-user --index 0 --index 2
  json_check "assert [i['index'] for i in d['items'] if i['exists']] == [0, 2], d"
  ok bob "$PC" stat "$me" --kind certificate-by-user --index 0
  grep -Eq '^generation=[0-9]+$' "$T/out" || fail "stat printed: $(cat "$T/out")"
  grep -Eq "^index=0 length=5 hash=" "$T/out" || fail "stat printed: $(cat "$T/out")"
  ok bob "$PC" --json stat "$me" --kind certificate-by-user
  json_check "
items = {i['index']: i for i in d['items']}
assert items[0]['value_length'] == 5 and items[2]['value_length'] == 5
assert 'value' not in items[0]
import hashlib, struct  # RFC 6940 7.4.3.2: SHA-256 over the value with its uint32 length
assert items[0]['hash'] == hashlib.sha256(struct.pack('>I', 5) + b'first').hexdigest(), items[0]"
  ok bob "$PA" find "$me" --kind certificate-by-user
  grep -Eq '^[0-9a-f]+$' "$T/out" || fail "find printed: $(cat "$T/out")"
  ok bob "$PA" --json find "$me" --kind certificate-by-user
  json_check "assert d['kind'] == 16 and len(d['resource_id']) > 0"

  # A stale --generation is refused: exit 1, generation conflict.
  expect_error 1 "" alice "$PA" store "$me" --kind certificate-by-user --index 0 --value x --generation 1
  cli alice "$PA" --json store "$me" --kind certificate-by-user --index 0 --value x --generation 1
  JSON=1 check_error 1 ""
  json_check "assert d['error'] == 'generation_conflict', d"

  # remove-item: index 1 goes; a fetch of only index 1 then finds nothing (3).
  ok alice "$PB" remove-item "$me" --kind certificate-by-user --index 1
  grep -q "removed 1 item of kind certificate-by-user" "$T/out" || fail "remove-item printed: $(cat "$T/out")"
  ok bob "$PC" fetch "$me" --kind certificate-by-user
  grep -q "index=1 " "$T/out" && fail "index 1 is still there: $(cat "$T/out")"
  [ "$(wc -l <"$T/out")" -eq 2 ] || fail "fetch after remove-item printed: $(cat "$T/out")"
  expect_error 3 "nothing stored under '$me' (kind certificate-by-user" bob "$PA" fetch "$me" --kind certificate-by-user --index 1
  ok alice "$PA" --json remove-item "$me" --kind certificate-by-user --index 0 --index 2
  json_check "assert d['removed'] == 2 and d['kind'] == 16"
  expect_error 3 "nothing stored" bob "$PB" stat "$me" --kind certificate-by-user

  # SIP registrations (RFC 7904): register, resolve (also through a forward), unregister.
  ok alice "$PA" register "sip:$me"
  grep -q "registered 'sip:$me' for 3600 s" "$T/out" || fail "register printed: $(cat "$T/out")"
  ok bob "$PB" resolve "sip:$me"
  grep -Eq "^$me \([0-9a-f]+\): route [0-9a-f]+,[0-9a-f]+$" "$T/out" ||
    fail "resolve printed: $(cat "$T/out")"
  ok bob "$PC" register "bob@$OVERLAY" "sip:$me" --lifetime 600
  ok alice "$PA" --json resolve "bob@$OVERLAY"
  json_check "
b = d['bindings']
assert len(b) == 1 and b[0]['aor'] == '$me' and len(b[0]['route']) == 2, d
assert b[0]['owner_user'] == '$me', d"
  local alice_id
  alice_id=$(python3 -c "import json; print(json.load(open('$T/out'))['bindings'][0]['owner_node_id'])")
  # Not under another's AOR (forbidden, 4); a raw string is no SipRegistration (the peer says so).
  expect_error 4 "" alice "$PA" register "bob@$OVERLAY"
  expect_error 1 "not a SipRegistration" alice "$PA" store "$me" --kind sip-registration --dict-key "hex:$alice_id" --value sip:x
  # A key that is not the writer's Node-ID is refused before anything is sent, naming the fix.
  expect_error 2 "SIP-REGISTRATION keys are the writer's Node-ID: yours is hex:$alice_id" alice "$PA" store "$me" --kind sip-registration --dict-key alice --value sip:x
  ok alice "$PB" unregister "sip:$me"
  expect_error 3 "nothing registered" bob "$PA" resolve "sip:$me"

  # The generic kind is a dictionary keyed by the writer's Node-ID: store and fetch by key.
  ok alice "$PA" --json put mine v0
  local node
  node=$(python3 -c "import json; print(json.load(open('$T/out'))['owner_node_id'])")
  ok alice "$PB" store mine --kind generic --dict-key "hex:$node" --value typed
  ok bob "$PC" get mine --raw
  [ "$(cat "$T/out")" = typed ] || fail "typed store to the generic kind gave: $(cat "$T/out")"
  ok bob "$PA" fetch mine --kind generic --dict-key "hex:$node"
  grep -Eq "^key=hex:$node alice@$OVERLAY \($node\): typed$" "$T/out" || fail "fetch by key printed: $(cat "$T/out")"
  ok bob "$PA" --json fetch mine --kind 0xf0000101
  json_check "
assert d['model'] == 'dictionary'
assert len(d['items']) == 1 and d['items'][0]['key_hex'] == '$node', d
assert d['items'][0]['value'] == 'typed'"
  ok bob "$PB" --json stat mine --kind generic
  json_check "assert d['items'][0]['key_hex'] == '$node' and d['items'][0]['value_length'] == 5"
  ok alice "$PC" remove-item mine --kind generic --dict-key "hex:$node"
  expect_error 3 "nothing stored under 'mine'" bob "$PA" get mine
}

case_refused() {
  setup_ring
  # Forbidden: USER-MATCH kind at a resource not named after the user (4), and the generic kind
  # with a key that is not the writer's Node-ID.
  expect_error 4 "" alice "$PA" store "bob@$OVERLAY" --kind certificate-by-user --index 0 --value x
  grep -qi "forbidden" "$T/err" || fail "no 'forbidden' in: $(cat "$T/err")"
  cli alice "$PB" --json store not-alice --kind certificate-by-node --index 0 --value x
  JSON=1 check_error 4 ""
  json_check "assert d['error'] == 'forbidden', d"
  expect_error 4 "" alice "$PC" store name --kind generic --dict-key someone-else --value x

  # Too large: one byte over the generic kind's max-size from overlay.xml (7); exactly max works.
  local max
  max=$(python3 - "$T/ca/overlay.xml" <<'EOF'
import re, sys
doc = open(sys.argv[1]).read()
for m in re.finditer(r'<kind\s(.*?)</kind>', doc, re.S):
    body = m.group(0)
    if re.search(r'id="(0x)?f0000101"|id="4026532097"', body, re.I):
        print(re.search(r'<max-size>\s*(\d+)\s*</max-size>', body).group(1))
        break
EOF
  )
  [ -n "$max" ] || fail "no max-size of the generic kind in overlay.xml: $(grep -n kind "$T/ca/overlay.xml" | head)"
  head -c "$max" /dev/zero | tr '\0' 'x' >"$T/max"
  ok alice "$PA" put big --file "$T/max"
  head -c "$((max + 1))" /dev/zero | tr '\0' 'x' >"$T/over"
  expect_error 7 "$max" alice "$PA" put big --file "$T/over"
  cli alice "$PB" --json put big --file "$T/over"
  JSON=1 check_error 7 ""
  json_check "assert d['error'] == 'too_large', d"
  ok bob "$PC" get big --raw
  cmp -s "$T/max" "$T/out" || fail "the value of max-size bytes did not survive"

  # A kind the overlay does not define (7).
  expect_error 7 "not in the overlay configuration" alice "$PA" fetch r --kind 0x12345
  # Not found (3): find with nothing there, fetch of an empty resource.
  expect_error 3 "no data" alice "$PB" find empty-resource --kind certificate-by-node
  expect_error 3 "nothing stored" alice "$PB" fetch empty-resource --kind sip-registration
  cli alice "$PB" --json fetch empty-resource --kind generic
  JSON=1 check_error 3 "nothing stored"
  json_check "assert d['error'] == 'not_found', d"
}

# listen_start NAME USER PORT ARGS...: a background `p2psip-client ARGS` (a sip listen) as USER
# through the peer at PORT (stdout $T/NAME.out, stderr $T/NAME.err); waits (20 s at most) for its
# "listening" line and sets LISTEN_PID.
listen_start() {
  local name=$1 user=$2 port=$3
  shift 3
  "$CLIENT" --config "$T/ca/overlay.xml" --cert "$T/$user/node.crt" --key "$T/$user/node.key" \
    --peer "127.0.0.1:$port" --timeout 10000 --sip-routing "$ROUTING" --sip-listen 127.0.0.1:0 \
    "$@" >"$T/$name.out" 2>"$T/$name.err" &
  LISTEN_PID=$!
  PIDS+=("$LISTEN_PID")
  local deadline=$((SECONDS + 20))
  until grep -q 'listening' "$T/$name.out" 2>/dev/null; do
    kill -0 "$LISTEN_PID" 2>/dev/null || fail "sip listen exited early: $(cat "$T/$name.err")"
    [ "$SECONDS" -lt "$deadline" ] || fail "sip listen did not register within 20s: $(cat "$T/$name.err")"
    sleep 0.1
  done
}

# listen_stop NAME SIGNAL: sends SIGNAL to the listener, which must unregister and exit 0 within
# 15 s.
listen_stop() {
  local name=$1 sig=$2 i
  kill "-$sig" "$LISTEN_PID"
  for i in $(seq 1 150); do
    kill -0 "$LISTEN_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$LISTEN_PID" 2>/dev/null && fail "sip listen still running 15s after SIG$sig"
  wait "$LISTEN_PID"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "sip listen exited $rc after SIG$sig: $(cat "$T/$name.err")"
  grep -q "unregistered" "$T/$name.out" || fail "sip listen did not unregister: $(cat "$T/$name.out")"
}

# wait_line FILE PATTERN: waits (10 s at most) until FILE has a line matching PATTERN (grep -E).
wait_line() {
  local deadline=$((SECONDS + 10))
  until grep -Eq -- "$2" "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "no line matching '$2' in $1: $(cat "$1")"
    sleep 0.1
  done
}

case_sip() {
  PEER_ARGS=(--sip-listen tls:127.0.0.1:0)  # the peers serve SIP
  setup_ring
  local alice=alice@$OVERLAY bob=bob@$OVERLAY
  # register / resolve / unregister: the stored registration (the CLI exits afterwards).
  ok alice "$PA" sip register "sip:$alice" --lifetime 600
  grep -q "registered 'sip:$alice' for 600 s" "$T/out" || fail "sip register printed: $(cat "$T/out")"
  ok bob "$PB" sip resolve "sip:$alice"
  grep -Eq "^$alice \([0-9a-f]+\): route [0-9a-f]+,[0-9a-f]+$" "$T/out" ||
    fail "sip resolve printed: $(cat "$T/out")"
  ok bob "$PC" sip register "sip:$bob" --contact "sip:$alice"
  ok alice "$PA" --json sip resolve "sip:$bob"
  json_check "
b = d['bindings']
assert d['aor'] == 'sip:$bob' and len(b) == 1 and b[0]['aor'] == '$alice', d
assert len(b[0]['route']) == 2, d"
  ok bob "$PB" sip unregister "sip:$bob"
  grep -q "unregistered 'sip:$bob'" "$T/out" || fail "sip unregister printed: $(cat "$T/out")"
  ok alice "$PC" sip unregister "sip:$alice"
  expect_error 3 "nothing registered" bob "$PA" sip resolve "sip:$alice"
  # Nobody there: the SDK's 404 (3).
  expect_error 3 "404" alice "$PA" --sip-routing "$ROUTING" sip message "sip:$bob" hello

  # sip listen --accept (the default): MESSAGE and a call, as text lines.
  listen_start bob bob "$PB" sip listen "sip:$bob"
  grep -q "listening as sip:$bob ($ROUTING)" "$T/bob.out" || fail "listen printed: $(cat "$T/bob.out")"
  ok alice "$PA" --sip-routing "$ROUTING" sip message "sip:$bob" "hello bob"
  [ "$(cat "$T/out")" = "200 OK" ] || fail "sip message printed: $(cat "$T/out")"
  wait_line "$T/bob.out" "^MESSAGE from=[^ ]*$alice[^ ]* to=[^ ]*$bob[^ ]* call_id=[^ ]+ answer=200 content_type=text/plain body=hello bob$"
  printf 'from stdin' >"$T/stdin"
  ok alice "$PC" --sip-routing "$ROUTING" --json sip message "sip:$bob" - <"$T/stdin"
  json_check "assert d['status'] == 200 and d['to'] == 'sip:$bob' and d['local'] is False, d"
  wait_line "$T/bob.out" "^MESSAGE .* body=from stdin$"
  local t0=$SECONDS
  ok alice "$PA" --sip-routing "$ROUTING" sip call "sip:$bob" --hangup-after 1
  grep -q "^180 " "$T/out" || fail "sip call printed no 180: $(cat "$T/out")"
  grep -q "^200 OK$" "$T/out" || fail "sip call printed no 200: $(cat "$T/out")"
  [ "$(tail -n 1 "$T/out")" = "hung up" ] || fail "sip call did not hang up: $(cat "$T/out")"
  [ $((SECONDS - t0)) -ge 1 ] || fail "sip call --hangup-after 1 hung up at once"
  wait_line "$T/bob.out" "^INVITE from=[^ ]*$alice.* answer=200"
  wait_line "$T/bob.out" "^BYE "
  listen_stop bob TERM

  # sip listen --reject --json: the call fails with 486 (8); JSON lines.
  listen_start bobj bob "$PC" --json sip listen "sip:$bob" --reject
  # A failed call: the final status on stderr; stdout has only the progress lines.
  cli alice "$PB" --sip-routing "$ROUTING" sip call "sip:$bob" --hangup-after 1
  [ "$RC" -eq 8 ] || fail "rejected sip call exited $RC: $(cat "$T/err")"
  [ "$(cat "$T/err")" = "p2psip-client: sip call 'sip:$bob': 486 Busy Here" ] ||
    fail "rejected sip call: stderr $(cat "$T/err")"
  grep -q "^180 Ringing$" "$T/out" || fail "rejected sip call printed no 180: $(cat "$T/out")"
  grep -vq "^1[0-9][0-9] " "$T/out" && fail "rejected sip call printed more than progress: $(cat "$T/out")"
  cli alice "$PB" --sip-routing "$ROUTING" --json sip call "sip:$bob"
  JSON=1 check_error 8 "486"
  json_check "assert d['error'] == 'sip_error', d"
  ok alice "$PA" --sip-routing "$ROUTING" sip message "sip:$bob" "hi again"
  wait_line "$T/bobj.out" '"method":"MESSAGE"'
  listen_stop bobj INT
  python3 - "$T/bobj.out" "$alice" <<'EOF' || fail "sip listen --json printed: $(cat "$T/bobj.out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines[0]['routing'] in ('direct', 'outbound-proxy') and 'listening' in lines[0], lines[0]
invites = [l for l in lines if l.get('method') == 'INVITE']
assert len(invites) == 2 and all(l['answer'] == 486 for l in invites), lines
msg = [l for l in lines if l.get('method') == 'MESSAGE'][0]
assert msg['body'] == 'hi again' and msg['answer'] == 200 and sys.argv[2] in msg['from'], msg
assert set(msg) >= {'method', 'from', 'to', 'call_id', 'content_type', 'body'}, msg
assert 'unregistered' in lines[-1], lines[-1]
EOF
  # A call that rings (sip listen --answer-after) is cancelled by SIGINT: 487 on stderr, exit 8.
  listen_start bobr bob "$PA" sip listen "sip:$bob" --answer-after 4
  "$CLIENT" --config "$T/ca/overlay.xml" --cert "$T/alice/node.crt" --key "$T/alice/node.key" \
    --peer "127.0.0.1:$PB" --timeout 10000 --sip-routing "$ROUTING" sip call "sip:$bob" \
    >"$T/call.out" 2>"$T/call.err" &
  local call_pid=$!
  PIDS+=("$call_pid")
  wait_line "$T/call.out" "^180 Ringing$"
  kill -INT "$call_pid"
  local call_rc=0
  wait "$call_pid" || call_rc=$?
  [ "$call_rc" -eq 8 ] || fail "sip call cancelled by SIGINT exited $call_rc: $(cat "$T/call.err")"
  grep -q "487 Request Terminated" "$T/call.err" || fail "cancelled sip call: $(cat "$T/call.err")"
  wait_line "$T/bobr.out" "^CANCEL "
  listen_stop bobr TERM

  # Unregistered again: nobody there (3).
  expect_error 3 "404" alice "$PA" --sip-routing "$ROUTING" sip message "sip:$bob" hello
}

# ---- every tool's command line (issue 15) ----

# only_ascii: the last stderr holds printable ASCII only (no curly quote from the option parser).
only_ascii() {
  LC_ALL=C grep -q '[^ -~]' "$T/err" && fail "not plain ASCII: $(cat "$T/err")"
  return 0
}

case_tools() {
  [ -n "$WIRE" ] || fail "the tools case needs p2psip-wire as its 5th argument"
  make_overlay "$OVERLAY" "$T/ca"
  enroll "alice@$OVERLAY" "$T/alice" "$T/ca"
  run() {
    timeout 30 "$@" >"$T/out" 2>"$T/err"
    RC=$?
  }
  local tool name v version=""
  for tool in "$CLIENT" "$PEER" "$ADMIN" "$WIRE"; do
    name=$(basename "$tool")
    # --version: "NAME (p2psip) X.Y.Z" first (as help2man reads it), the same for every tool.
    run "$tool" --version
    [ "$RC" -eq 0 ] || fail "$name --version exited $RC: $(cat "$T/err")"
    [ -s "$T/err" ] && fail "$name --version wrote to stderr: $(cat "$T/err")"
    head -n 1 "$T/out" | grep -Eq "^$name \(p2psip\) [0-9]+\.[0-9]+\.[0-9]+$" ||
      fail "$name --version printed: $(cat "$T/out")"
    v=$(head -n 1 "$T/out" | cut -d' ' -f3)
    [ -z "$version" ] || [ "$v" = "$version" ] || fail "$name says $v, another tool $version"
    version=$v
    run "$tool" --help
    [ "$RC" -eq 0 ] || fail "$name --help exited $RC: $(cat "$T/err")"
    grep -q "Exit status" "$T/out" || fail "$name --help lacks the exit status table"
  done
  run "$CLIENT" --version
  grep -qx "libp2psip-client $version" "$T/out" || fail "p2psip-client --version: $(cat "$T/out")"

  # An unknown option: exit 2, one plain ASCII line naming it.
  local cfg=$T/ca/overlay.xml crt=$T/alice/node.crt key=$T/alice/node.key
  run "$CLIENT" get x --colour red
  check_error 2 "unknown option --colour"
  only_ascii
  run "$CLIENT" --json get x --colour red
  JSON=1 check_error 2 "unknown option --colour"
  LC_ALL=C grep -q '[^ -~]' "$T/out" && fail "not plain ASCII in the JSON error: $(cat "$T/out")"
  json_check "assert d['message'] == 'unknown option --colour', d"
  run "$PEER" --config "$cfg" --cert "$crt" --key "$key" --listen 127.0.0.1:0 --memory --first --colour red
  [ "$RC" -eq 2 ] && grep -q "unknown option --colour" "$T/err" || fail "p2psip-peer: $RC $(cat "$T/err")"
  only_ascii
  run "$ADMIN" enroll --user "bob@$OVERLAY" --out "$T/bob" --colour red
  [ "$RC" -eq 2 ] && grep -q "unknown option --colour" "$T/err" || fail "p2psip-admin: $RC $(cat "$T/err")"
  only_ascii
  run "$WIRE" decode --colour red -
  [ "$RC" -eq 2 ] && grep -q "unknown option --colour" "$T/err" || fail "p2psip-wire: $RC $(cat "$T/err")"
  only_ascii
  # A value that does not parse names its option (cxxopts named only the value).
  run "$PEER" --config "$cfg" --cert "$crt" --key "$key" --listen 127.0.0.1:0 --memory --first \
    --status-interval soon
  [ "$RC" -eq 2 ] && grep -Fq -- "--status-interval 'soon': not a valid number" "$T/err" ||
    fail "p2psip-peer: $RC $(cat "$T/err")"
  run "$ADMIN" enroll --user "bob@$OVERLAY" --out "$T/bob" --nodes many
  [ "$RC" -eq 2 ] && grep -Fq -- "--nodes 'many'" "$T/err" || fail "p2psip-admin: $RC $(cat "$T/err")"
  run "$CLIENT" get x --timeout
  check_error 2 "--timeout needs a value"
  only_ascii

  # Per-command help: the command's synopsis and options, not the global help.
  run "$CLIENT" put --help
  [ "$RC" -eq 0 ] || fail "put --help exited $RC"
  head -n 1 "$T/out" | grep -q "^Usage: p2psip-client \[OPTIONS\] put NAME" || fail "put --help: $(cat "$T/out")"
  grep -q -- "--lifetime S" "$T/out" || fail "put --help lacks --lifetime: $(cat "$T/out")"
  grep -q -- "--kind\|^Commands:" "$T/out" && fail "put --help shows more than put: $(cat "$T/out")"
  run "$CLIENT" get --help
  grep -q -- "--owner USER|NODE" "$T/out" || fail "get --help: $(cat "$T/out")"
  run "$CLIENT" sip message --help
  head -n 1 "$T/out" | grep -q "sip message AOR TEXT" || fail "sip message --help: $(cat "$T/out")"
  grep -q -- "--content-type T" "$T/out" || fail "sip message --help: $(cat "$T/out")"
  run "$ADMIN" enroll --help
  [ "$RC" -eq 0 ] && grep -q -- "--user" "$T/out" || fail "p2psip-admin enroll --help: $(cat "$T/out")"
  run "$WIRE" decode --help
  [ "$RC" -eq 0 ] && grep -q -- "--frames" "$T/out" || fail "p2psip-wire decode --help: $(cat "$T/out")"

  # A missing configuration file: 6 in every tool that reads one.
  run "$CLIENT" --config "$T/missing.xml" --cert "$crt" --key "$key" --peer 127.0.0.1:9 get x
  check_error 6 "missing.xml"
  run "$PEER" --config "$T/missing.xml" --cert "$crt" --key "$key" --listen 127.0.0.1:0 --memory --first
  [ "$RC" -eq 6 ] && grep -q "missing.xml" "$T/err" || fail "p2psip-peer: $RC $(cat "$T/err")"
  run "$ADMIN" add-bootstrap 192.0.2.1:6084 --config "$T/missing.xml"
  [ "$RC" -eq 6 ] && grep -q "missing.xml" "$T/err" || fail "p2psip-admin: $RC $(cat "$T/err")"
  run "$ADMIN" enroll --user "bob@$OVERLAY" --out "$T/bob" --ca-dir "$T/no-ca"
  [ "$RC" -eq 6 ] || fail "p2psip-admin enroll without a CA directory: $RC $(cat "$T/err")"
}

# one_peer: overlay, one peer a (port PA), clients alice and bob.
one_peer() {
  make_overlay "$OVERLAY" "$T/ca"
  enroll "a@$OVERLAY" "$T/a" "$T/ca"
  enroll "alice@$OVERLAY" "$T/alice" "$T/ca"
  enroll "bob@$OVERLAY" "$T/bob" "$T/ca"
  start a --first --memory
  PA=$(port_of a) || exit 1
}

# bare VAR=VALUE... -- ARGS...: p2psip-client ARGS with only these variables set (no options
# added); stdout $T/out, stderr $T/err, sets RC.
bare() {
  local vars=()
  while [ "$1" != -- ]; do
    vars+=("$1")
    shift
  done
  shift
  timeout 60 env "${vars[@]}" "$CLIENT" "$@" >"$T/out" 2>"$T/err"
  RC=$?
}

case_defaults() {
  one_peer
  local conf=$T/xdg/p2psip/client.conf
  # Nothing configured: a usage error that says how to configure.
  bare -- get greeting
  check_error 2 "--config is required: give it, set P2PSIP_CONFIG, or run 'p2psip-client setup'"
  # setup checks and writes the defaults (absolute paths), with a host name as the peer.
  (cd "$T" && timeout 60 "$CLIENT" setup --config ca/overlay.xml --cert alice/node.crt \
    --key alice/node.key --peer "localhost:$PA" >"$T/out" 2>"$T/err")
  RC=$?
  [ "$RC" -eq 0 ] || fail "setup exited $RC: $(cat "$T/err")"
  grep -q "^wrote $conf:" "$T/out" || fail "setup printed: $(cat "$T/out")"
  grep -qx "config = $T/ca/overlay.xml" "$conf" || fail "client.conf: $(cat "$conf")"
  grep -qx "cert = $T/alice/node.crt" "$conf" || fail "client.conf: $(cat "$conf")"
  grep -qx "key = $T/alice/node.key" "$conf" || fail "client.conf: $(cat "$conf")"
  grep -qx "peer = localhost:$PA" "$conf" || fail "client.conf: $(cat "$conf")"
  # Then no option at all.
  bare -- put greeting hello
  [ "$RC" -eq 0 ] || fail "put from the defaults exited $RC: $(cat "$T/err")"
  bare -- --json get greeting
  [ "$RC" -eq 0 ] || fail "get from the defaults exited $RC: $(cat "$T/err")"
  json_check "assert len(d) == 1 and d[0]['owner_user'] == 'alice@$OVERLAY' and d[0]['value'] == 'hello', d"
  local alice_node
  alice_node=$(python3 -c "import json; print(json.load(open('$T/out'))[0]['owner_node_id'])")
  # The environment beats the file: bob's credentials.
  bare P2PSIP_CERT="$T/bob/node.crt" P2PSIP_KEY="$T/bob/node.key" -- put greeting "from bob"
  [ "$RC" -eq 0 ] || fail "put as bob from the environment exited $RC: $(cat "$T/err")"
  bare -- get greeting --owner "bob@$OVERLAY" --raw
  [ "$(cat "$T/out")" = "from bob" ] || fail "bob's value: $(cat "$T/out") $(cat "$T/err")"
  # Options beat the environment.
  bare P2PSIP_CERT="$T/bob/node.crt" P2PSIP_KEY="$T/bob/node.key" -- --cert "$T/alice/node.crt" \
    --key "$T/alice/node.key" --json put mine x
  json_check "assert d['owner_node_id'] == '$alice_node', d"
  # P2PSIP_PEER beats the file's peer: nothing listens there (5, naming it).
  local dead
  dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  bare P2PSIP_PEER="127.0.0.1:$dead" -- --timeout 2000 get greeting
  check_error 5 "127.0.0.1:$dead"
  # A peer name that does not resolve (.invalid never does, RFC 6761): 5, naming it.
  bare -- --peer no-such-host.invalid:6084 --timeout 2000 get greeting
  check_error 5 "no-such-host.invalid"
  # setup refuses what does not load (6), and leaves the file as it was.
  cp "$conf" "$T/conf.before"
  bare -- setup --config "$T/missing.xml"
  check_error 6 "missing.xml"
  cmp -s "$conf" "$T/conf.before" || fail "a refused setup changed client.conf"
  # A broken defaults file: 6, naming the file and line.
  echo "colour = blue" >>"$conf"
  bare -- get greeting
  check_error 6 "client.conf:7: unknown key 'colour'"
  # p2psip-admin enroll prints the setup line for a client's credentials; it works as printed
  # (and replaces the broken file: every default comes from its options).
  "$ADMIN" enroll --user "carol@$OVERLAY" --out "$T/carol" --ca-dir "$T/ca" >"$T/out" 2>"$T/err" ||
    fail "enroll carol: $(cat "$T/err")"
  local line
  line=$(sed -n 's/^  as p2psip-client.s defaults: p2psip-client setup //p' "$T/out")
  [ -n "$line" ] || fail "enroll printed no setup line: $(cat "$T/out")"
  # shellcheck disable=SC2086
  bare -- setup $line --peer "127.0.0.1:$PA"
  [ "$RC" -eq 0 ] || fail "setup as enroll printed it exited $RC: $(cat "$T/err")"
  bare -- --json put carols v
  json_check "assert len(d['owner_node_id']) > 0, d"
  bare -- get carols
  grep -q "^carol@$OVERLAY " "$T/out" || fail "not carol's defaults: $(cat "$T/out") $(cat "$T/err")"
}

case_values() {
  one_peer
  # Text with control characters: in double quotes with C escapes; --raw and --json as stored.
  printf 'two\nlines\t"q" \\ end\n' >"$T/text"
  ok alice "$PA" --json put note --file "$T/text"
  local alice_node
  alice_node=$(python3 -c "import json; print(json.load(open('$T/out'))['owner_node_id'])")
  ok bob "$PA" get note
  grep -Fqx "alice@$OVERLAY ($alice_node): \"two\\nlines\\t\\\"q\\\" \\\\ end\\n\"" "$T/out" ||
    fail "text with a newline printed as: $(cat "$T/out")"
  ok bob "$PA" get note --raw
  cmp -s "$T/text" "$T/out" || fail "get --raw changed the text"
  ok bob "$PA" --json get note
  json_check "assert d[0]['value'] == open('$T/text').read(), d"
  # Printable text (any script) as it is; a text that looks quoted or like base64 is quoted.
  ok alice "$PA" put word "grüße, 你好"
  ok bob "$PA" get word
  grep -Fqx "alice@$OVERLAY ($alice_node): grüße, 你好" "$T/out" || fail "unicode text printed as: $(cat "$T/out")"
  ok alice "$PA" put tricky "base64:AAAA"
  ok bob "$PA" get tricky
  grep -Fqx "alice@$OVERLAY ($alice_node): \"base64:AAAA\"" "$T/out" || fail "printed as: $(cat "$T/out")"
  # Binary (not UTF-8, or with NUL): base64.
  printf 'a\000b' >"$T/nul"
  ok alice "$PA" put nul --file "$T/nul"
  ok bob "$PA" get nul
  grep -Fqx "alice@$OVERLAY ($alice_node): base64:YQBi" "$T/out" || fail "binary printed as: $(cat "$T/out")"

  # get --owner: by user (any case) or Node-ID.
  ok bob "$PA" put note "bob's note"
  cli alice "$PA" get note --raw
  check_error 1 "--raw needs exactly one (choose with --owner)"
  ok alice "$PA" get note --owner "bob@$OVERLAY"
  [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q "^bob@$OVERLAY " "$T/out" || fail "--owner bob: $(cat "$T/out")"
  ok alice "$PA" get note --owner "BOB@EXAMPLE.ORG" --raw
  [ "$(cat "$T/out")" = "bob's note" ] || fail "--owner in capitals: $(cat "$T/out")"
  ok bob "$PA" get note --owner "$alice_node" --raw
  cmp -s "$T/text" "$T/out" || fail "--owner NODE-ID gave: $(cat "$T/out")"
  expect_error 3 "nothing stored under 'note' (kind generic, by carol@$OVERLAY)" alice "$PA" get note --owner "carol@$OVERLAY"

  # Nothing stored: get, fetch and stat say the same, in text and JSON.
  local cmd
  for cmd in "get never" "fetch never --kind generic" "stat never --kind generic"; do
    # shellcheck disable=SC2086
    expect_error 3 "nothing stored under 'never' (kind generic)" alice "$PA" $cmd
    # shellcheck disable=SC2086
    cli alice "$PA" --json $cmd
    JSON=1 check_error 3 "nothing stored under 'never' (kind generic)"
    json_check "assert d['error'] == 'not_found', d"
  done

  # Kinds by name in messages and JSON, never as 4026532097.
  head -c 70000 /dev/zero | tr '\0' x >"$T/big"
  expect_error 7 "kind generic allows" alice "$PA" put big --file "$T/big"
  grep -q 4026532097 "$T/err" && fail "kind by number: $(cat "$T/err")"
  expect_error 7 "kind 74565 is not in the overlay configuration" alice "$PA" fetch r --kind 0x12345
  ok alice "$PA" --json fetch note --kind generic
  json_check "assert d['kind'] == 4026532097 and d['kind_name'] == 'generic', d"
}

case "$CASE" in
  usage) case_usage ;;
  offline) case_offline ;;
  putget) case_putget ;;
  typed) case_typed ;;
  refused) case_refused ;;
  sip_direct) ROUTING=direct case_sip ;;
  sip_outbound) ROUTING=outbound-proxy case_sip ;;
  tools) case_tools ;;
  defaults) case_defaults ;;
  values) case_values ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$CASE]"
