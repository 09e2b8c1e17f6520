#!/usr/bin/env bash
# Loopback tests of the p2psip-peer daemon with credentials made by p2psip-admin.
# usage: peer_daemon_test.sh /path/to/p2psip-peer /path/to/p2psip-admin CASE [/path/to/p2psip-client]
#   ring       three peers form the ring the sorted Node-IDs imply; SIGTERM: all exit 0
#   leave      one of three peers leaves; the other two close the ring between them
#   data_dir   a peer with --data-dir creates its SQLite store and exits cleanly
#   bad_config missing/unparsable files, wrong overlay, unreadable key, port in use, usage errors:
#              each one line on stderr and exit 6 for configuration and credentials, 1 for the
#              port, 2 for usage; unknown or malformed options named in plain ASCII
#   config_signature  a configuration changed after signing, unsigned, or signed by an enrolled
#              node instead of the CA's configuration signer: refused with one line naming the
#              signature problem, exit 6; signed again with p2psip-admin sign: the peer starts
#   store_integrity  (needs p2psip-client) values put through a --data-dir peer, the peer
#              stopped, its database truncated to 0 bytes: the next start is refused with one line
#              naming the file and the manifest, exit 1 (again on a second try); with
#              --accept-store-change it starts (a WARN line), and later starts need no flag
#   sighup_reload  three peers, each with its own copy of the configuration: garbage, a tampered
#              document and a missing file are each refused on SIGHUP with a WARN while the peer
#              runs on; a newer signed document is applied and the other two take it by
#              ConfigUpdate (their files rewritten); the older one again is refused
#   log_file   --log-file: moved away (logrotate), SIGHUP opens a new file and lines go there;
#              a new file that cannot be opened keeps the old one (WARN); bad options refused
#   journal    standard error that JOURNAL_STREAM names (as systemd's StandardError=journal)
#              gets "<N>LEVEL text" lines; another stream, or --log-target stderr, plain ones
#   sd_notify  a fake NOTIFY_SOCKET (a unix datagram socket bound here): READY=1 only once the
#              peer joined, STATUS= with the status line, WATCHDOG=1, RELOADING=1 and READY=1
#              around a SIGHUP, STOPPING=1 on SIGTERM
#   idle       with a status interval of a minute, a peer still logs a status line as soon as the
#              ring changes (a second peer joins: the runtime reports it, nothing polls), and once
#              idle it wakes rarely: at most 10 context switches in 4 s (the status line was
#              polled five times a second: 20 and more)
#   admin_module  --admin-listen opens the module p2psip-admin-http.so built beside the program:
#              /status.json answers with the peer's Node-ID, and the module and civetweb are in
#              the peer's mappings; a peer without --admin-listen maps neither the module nor
#              civetweb nor prometheus-cpp. A copy of the program with no module near it, a file
#              that is not a library where the module should be, and a library without the
#              module's entry point: exit 1, one line naming the path and dlerror's reason
#   heap_trim  a peer gives freed heap back to the system (malloc_trim) --heap-trim-delay after
#              its link count falls: a leaves the ring, b logs "heap trimmed" with its resident
#              size not grown; c, with --heap-trim-delay 0, never trims
#   systemd_unit  packaging/systemd/p2psip-peer.service passes systemd-analyze verify without a
#              word, rates at most 2.0 in systemd-analyze security, and its ExecStart line (paths
#              moved under the test directory) starts a peer
set -u

PEER=$1
ADMIN=$2
CASE=$3
CLIENT=${4:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/p2psip-peer-test.XXXXXX")
PIDS=()

source "$(dirname "$0")/../support/loopback_peers.sh"
trap kill_all_and_clean EXIT

# stop NAME...: SIGTERM, then each must exit 0 within 15 s.
stop() {
  local name pid i rc
  for name in "$@"; do
    pid=$(eval echo "\$PID_$name")
    kill -TERM "$pid" 2>/dev/null || fail "$name is not running"
  done
  for name in "$@"; do
    pid=$(eval echo "\$PID_$name")
    for i in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "$name did not exit within 15s of SIGTERM"
    wait "$pid"
    rc=$?
    [ "$rc" -eq 0 ] || fail "$name exited $rc after SIGTERM"
    grep -q 'INFO stopped' "$T/$name.log" || fail "$name did not log its clean stop"
  done
}

# setup_three [B_OPTIONS [C_OPTIONS]]: a first peer a, then b and c joining through it; each
# OPTIONS string is split into more options for that peer.
setup_three() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  enroll b@example.org "$T/b" "$T/ca"
  enroll c@example.org "$T/c" "$T/ca"
  start a --first --memory
  local port
  port=$(port_of a) || exit 1
  # shellcheck disable=SC2086 # split on purpose
  start b --bootstrap-peer "127.0.0.1:$port" --memory ${1:-}
  # shellcheck disable=SC2086
  start c --bootstrap-peer "127.0.0.1:$port" --memory ${2:-}
}

case_ring() {
  setup_three
  wait_ring 30 a b c
  # Every log line: timestamp, level, text.
  grep -Evq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (DEBUG|INFO|WARN|ERROR) ' "$T/a.log" &&
    fail "a log line without timestamp and level: $(grep -Ev '^[0-9]{4}-' "$T/a.log" | head -n 1)"
  stop a b c
}

case_leave() {
  setup_three
  wait_ring 30 a b c
  stop c
  wait_ring 30 a b
  stop a b
}

case_data_dir() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  start a --first --data-dir "$T/a-data"
  port_of a >/dev/null
  node_of a >/dev/null
  [ -f "$T/a-data/reload-store.sqlite3" ] || fail "no SQLite store in the data directory"
  stop a
}

# expect_error RC TEXT ARGS...: p2psip-peer ARGS exits RC with one stderr line containing TEXT.
expect_error() {
  local expected=$1 text=$2
  shift 2
  timeout 20 "$PEER" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ "$rc" -eq "$expected" ] || fail "p2psip-peer $* exited $rc, expected $expected: $(cat "$T/err")"
  local lines
  lines=$(wc -l <"$T/err")
  [ "$lines" -eq 1 ] || fail "p2psip-peer $*: expected one line on stderr, got $lines: $(cat "$T/err")"
  grep -Fq -- "$text" "$T/err" || fail "p2psip-peer $*: stderr lacks '$text': $(cat "$T/err")"
}

case_bad_config() {
  make_overlay example.org "$T/ca"
  make_overlay other.org "$T/other"
  enroll a@example.org "$T/a" "$T/ca"
  local cfg=$T/ca/overlay.xml crt=$T/a/node.crt key=$T/a/node.key
  local ok=(--cert "$crt" --key "$key" --listen 127.0.0.1:0 --first --memory)

  # Missing and unparsable files.
  expect_error 6 "missing.xml" --config "$T/missing.xml" "${ok[@]}"
  echo '<overlay><configuration' >"$T/broken.xml"
  expect_error 6 "broken.xml" --config "$T/broken.xml" "${ok[@]}"
  expect_error 6 "missing.crt" --config "$cfg" --cert "$T/missing.crt" --key "$key" --listen 127.0.0.1:0 --first --memory
  # Wrong overlay: the configuration of another overlay, or not the one asked for.
  expect_error 6 "" --config "$T/other/overlay.xml" "${ok[@]}"
  expect_error 6 "other.org" --config "$cfg" "${ok[@]}" --overlay other.org
  # Unreadable key: a directory, garbage, and (when not root) no read permission.
  mkdir "$T/keydir"
  expect_error 6 "keydir" --config "$cfg" --cert "$crt" --key "$T/keydir" --listen 127.0.0.1:0 --first --memory
  echo garbage >"$T/garbage.key"
  expect_error 6 "garbage.key" --config "$cfg" --cert "$crt" --key "$T/garbage.key" --listen 127.0.0.1:0 --first --memory
  if [ "$(id -u)" -ne 0 ]; then
    cp "$key" "$T/noread.key"
    chmod 000 "$T/noread.key"
    expect_error 6 "noread.key" --config "$cfg" --cert "$crt" --key "$T/noread.key" --listen 127.0.0.1:0 --first --memory
  fi
  # The key of another node.
  enroll b@example.org "$T/b" "$T/ca"
  expect_error 6 "" --config "$cfg" --cert "$crt" --key "$T/b/node.key" --listen 127.0.0.1:0 --first --memory

  # A port already taken: exit 1 naming the address.
  start a --first --memory
  local port
  port=$(port_of a) || exit 1
  expect_error 1 "127.0.0.1:$port" --config "$cfg" --cert "$crt" --key "$key" --listen "127.0.0.1:$port" --first --memory
  stop a

  # Usage errors: exit 2.
  expect_error 2 "--listen" --config "$cfg" --cert "$crt" --key "$key" --first --memory
  expect_error 2 "--listen" --config "$cfg" "${ok[@]/127.0.0.1:0/nowhere}"
  expect_error 2 "--log-level" --config "$cfg" "${ok[@]}" --log-level loud
  expect_error 2 "bootstrap" --config "$cfg" --cert "$crt" --key "$key" --listen 127.0.0.1:0 --memory
  expect_error 2 "--memory" --config "$cfg" "${ok[@]}" --data-dir "$T/d"
  expect_error 2 "--data-dir" --config "$cfg" --cert "$crt" --key "$key" --listen 127.0.0.1:0 --first
  expect_error 2 "unknown option --no-such-option" --config "$cfg" "${ok[@]}" --no-such-option
  expect_error 2 "--status-interval 'soon': not a valid number" --config "$cfg" "${ok[@]}" --status-interval soon
  expect_error 2 "--max-links needs a value" --config "$cfg" "${ok[@]}" --max-links
  LC_ALL=C grep -q "[^ -~]" "$T/err" && fail "non-ASCII in a usage error: $(cat "$T/err")"
  expect_error 2 "--partition-check-interval" --config "$cfg" "${ok[@]}" --partition-check-interval -1
  expect_error 2 "--partition-check-interval" --config "$cfg" "${ok[@]}" --partition-check-interval 86401
  expect_error 2 "--request-timeout" --config "$cfg" "${ok[@]}" --request-timeout 99
  expect_error 2 "--request-timeout" --config "$cfg" "${ok[@]}" --request-timeout 600001
  expect_error 2 "--link-linger" --config "$cfg" "${ok[@]}" --link-linger -1
  expect_error 2 "--link-linger" --config "$cfg" "${ok[@]}" --link-linger 3600001
  expect_error 2 "--heap-trim-delay" --config "$cfg" "${ok[@]}" --heap-trim-delay -1
  expect_error 2 "--heap-trim-delay" --config "$cfg" "${ok[@]}" --heap-trim-delay 3600001
  expect_error 2 "--sip-t1 9: expected milliseconds from 10 to 10000" --config "$cfg" "${ok[@]}" \
    --sip-listen udp:127.0.0.1:0 --sip-t1 9
  expect_error 2 "--sip-t1 10001" --config "$cfg" "${ok[@]}" --sip-listen udp:127.0.0.1:0 --sip-t1 10001

  # A gateway's trunk: a URI it cannot use, or TLS options that do not fit it, are usage errors;
  # TLS files it cannot use are credentials errors (the gateway role's own files are not read
  # before them).
  local gw=(--sip-listen udp:127.0.0.1:0 --sip-gateway-cert "$T/gw.crt" --sip-gateway-key "$T/gw.key")
  expect_error 2 "--sip-trunk-ca, --sip-trunk-cert and --sip-trunk-key need --sip-gateway" \
    --config "$cfg" "${ok[@]}" --sip-listen udp:127.0.0.1:0 --sip-trunk-ca "$T/ca.pem"
  expect_error 2 "need a TLS trunk" --config "$cfg" "${ok[@]}" "${gw[@]}" \
    --sip-gateway sip:127.0.0.1:5060 --sip-trunk-ca "$T/ca.pem"
  expect_error 2 "--sip-trunk-cert and --sip-trunk-key go together" --config "$cfg" "${ok[@]}" \
    "${gw[@]}" --sip-gateway sips:pbx.example.com --sip-trunk-cert "$crt"
  expect_error 2 "'pbx.example.com' is not an IP address (a host name needs TLS" --config "$cfg" \
    "${ok[@]}" "${gw[@]}" --sip-gateway sip:pbx.example.com
  expect_error 2 "sips needs TLS over TCP" --config "$cfg" "${ok[@]}" "${gw[@]}" \
    --sip-gateway "sips:pbx.example.com;transport=udp"
  expect_error 2 "--sip-gateway 'mailto:pbx@example.com': expected the trunk's SIP URI" \
    --config "$cfg" "${ok[@]}" "${gw[@]}" --sip-gateway mailto:pbx@example.com
  expect_error 6 "--sip-trunk-ca $T/missing.pem: cannot be read" --config "$cfg" "${ok[@]}" \
    "${gw[@]}" --sip-gateway sips:pbx.example.com --sip-trunk-ca "$T/missing.pem"
  expect_error 6 "--sip-trunk-ca $T/garbage.key: no PEM certificate" --config "$cfg" "${ok[@]}" \
    "${gw[@]}" --sip-gateway sips:pbx.example.com --sip-trunk-ca "$T/garbage.key"
  expect_error 6 "--sip-trunk-cert $crt / --sip-trunk-key $T/garbage.key: " --config "$cfg" \
    "${ok[@]}" "${gw[@]}" --sip-gateway sips:pbx.example.com --sip-trunk-cert "$crt" \
    --sip-trunk-key "$T/garbage.key"
  expect_error 6 "does not match the client certificate" --config "$cfg" "${ok[@]}" "${gw[@]}" \
    --sip-gateway sips:pbx.example.com --sip-trunk-cert "$crt" --sip-trunk-key "$T/b/node.key"
}

# A lost database must not start as an empty store (issue 11 item 5: 2,125 values vanished
# without a log line when the file was truncated).
case_store_integrity() {
  [ -n "$CLIENT" ] || fail "the store_integrity case needs p2psip-client as its 4th argument"
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  enroll alice@example.org "$T/alice" "$T/ca"
  local data=$T/a-data
  local db=$data/reload-store.sqlite3 manifest=$data/reload-store.manifest
  local again=(--config "$T/ca/overlay.xml" --cert "$T/a/node.crt" --key "$T/a/node.key"
    --listen 127.0.0.1:0 --first --data-dir "$data")

  start a --first --data-dir "$data"
  local port i
  port=$(port_of a) || exit 1
  grep -q 'INFO new store ' "$T/a.log" || fail "no 'new store' line for a fresh data directory"
  grep -q 'INFO open files limit: ' "$T/a.log" || fail "the open files limit was not logged"
  for i in 1 2 3 4 5; do
    timeout 60 "$CLIENT" --config "$T/ca/overlay.xml" --cert "$T/alice/node.crt" \
      --key "$T/alice/node.key" --peer "127.0.0.1:$port" --timeout 10000 \
      put "name-$i" "value-$i" >"$T/out" 2>"$T/err" || fail "put name-$i: $(cat "$T/err")"
  done
  stop a
  local recorded
  recorded=$(sed -n 's/^min-values //p' "$manifest")
  [ -n "$recorded" ] && [ "$recorded" -ge 5 ] ||
    fail "the manifest records '$recorded' values after 5 puts and a clean stop"

  : >"$db"
  expect_error 1 "$db is empty (0 bytes), but $manifest records store" "${again[@]}"
  grep -Fq "with at least $recorded values" "$T/err" || fail "the count is not named: $(cat "$T/err")"
  grep -Fq -- "--accept-store-change" "$T/err" || fail "the override is not named: $(cat "$T/err")"
  [ -s "$db" ] && fail "the refused start wrote into the emptied database"
  expect_error 1 "is empty (0 bytes)" "${again[@]}"

  start a --first --data-dir "$data" --accept-store-change
  port_of a >/dev/null
  grep -q 'WARN store change accepted: .*is empty (0 bytes)' "$T/a.log" ||
    fail "the accepted change was not logged as a warning"
  stop a
  [ "$(sed -n 's/^min-values //p' "$manifest")" = 0 ] || fail "the manifest was not rewritten"
  start a --first --data-dir "$data"
  port_of a >/dev/null
  stop a
  grep -q 'WARN' "$T/a.log" && fail "a warning after the store change was accepted: $(grep WARN "$T/a.log")"
  expect_error 2 "--accept-store-change needs --data-dir" --config "$T/ca/overlay.xml" \
    --cert "$T/a/node.crt" --key "$T/a/node.key" --listen 127.0.0.1:0 --first --memory \
    --accept-store-change
}

# node_id_of NAME: the Node-ID in NAME's certificate (its reload:// URI).
node_id_of() {
  openssl x509 -in "$T/$1/node.crt" -noout -ext subjectAltName |
    grep -Eo 'reload://0110[0-9a-f]{32}' | head -n 1 | cut -c14-
}

# forge_as_node NAME IN OUT: IN with NAME's Node-ID as configuration-signer, signed as RFC 6940
# 11.1 says (a SecurityBlock over the <configuration> text) with NAME's Ed25519 signing key.
forge_as_node() {
  local name=$1 in=$2 out=$3 id
  id=$(node_id_of "$name")
  [ -n "$id" ] || fail "no Node-ID in $name's certificate"
  # node.crt: the link certificate, then the signing one; node.key: their keys.
  awk -v p="$T/forge-cert" '/-----BEGIN /{n++} n{print > (p n ".pem")}' "$T/$name/node.crt"
  awk -v p="$T/forge-key" '/-----BEGIN /{n++} n{print > (p n ".pem")}' "$T/$name/node.key"
  local key
  for key in "$T"/forge-key*.pem; do
    openssl pkey -in "$key" -pubout 2>/dev/null | cmp -s - <(openssl x509 -in "$T/forge-cert2.pem" -noout -pubkey) && break
  done
  openssl x509 -in "$T/forge-cert2.pem" -outform DER -out "$T/forge-cert.der"
  sed -E "s|<configuration-signer>[0-9a-f]+</configuration-signer>|<configuration-signer>$id</configuration-signer>|" \
    "$in" >"$T/forge-unsigned.xml"
  python3 - "$T/forge-unsigned.xml" "$T/forge-text" <<'EOF' || fail "forge: cannot extract the configuration"
import sys
d = open(sys.argv[1], 'rb').read()
s = d.index(b'<configuration')
e = d.index(b'</configuration>') + len(b'</configuration>')
open(sys.argv[2], 'wb').write(d[s:e])
EOF
  openssl pkeyutl -sign -rawin -inkey "$key" -in "$T/forge-text" -out "$T/forge-sig" ||
    fail "forge: openssl cannot sign with $name's signing key"
  python3 - "$T/forge-unsigned.xml" "$T/forge-cert.der" "$T/forge-sig" "$out" <<'EOF' || fail "forge: cannot write the document"
import base64, hashlib, re, sys
doc = open(sys.argv[1]).read()
cert = open(sys.argv[2], 'rb').read()
sig = open(sys.argv[3], 'rb').read()
def u16(n): return n.to_bytes(2, 'big')
generic = bytes([0]) + u16(len(cert)) + cert                  # GenericCertificate, X.509
identity = bytes([4, 32]) + hashlib.sha256(cert).digest()     # cert_hash: sha256, hash<1>
block = (u16(len(generic)) + generic + bytes([8, 7])          # Ed25519 (RFC 8422)
         + bytes([1]) + u16(len(identity)) + identity + u16(len(sig)) + sig)
doc = re.sub(r'<signature>[^<]*</signature>',
             '<signature>' + base64.b64encode(block).decode() + '</signature>', doc, count=1)
open(sys.argv[4], 'w').write(doc)
EOF
}

# RFC 6940 11.1: a node verifies the document's signature before it uses it.
case_config_signature() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  local cfg=$T/ca/overlay.xml
  local ok=(--cert "$T/a/node.crt" --key "$T/a/node.key" --listen 127.0.0.1:0 --first --memory)

  # One value changed after signing (a larger message limit).
  sed 's|<max-message-size>32768<|<max-message-size>65000<|' "$cfg" >"$T/tampered.xml"
  cmp -s "$cfg" "$T/tampered.xml" && fail "the edit did not change the document"
  expect_error 6 "tampered.xml: overlay/signature: signature does not verify" --config "$T/tampered.xml" "${ok[@]}"
  # A bootstrap-node slipped in, with the sequence raised as a real update would.
  sed -e 's|sequence="1"|sequence="2"|' \
    -e 's|<turn-density>|<bootstrap-node address="203.0.113.66" port="6084" /><turn-density>|' \
    "$cfg" >"$T/injected.xml"
  expect_error 6 "injected.xml: overlay/signature: signature does not verify" --config "$T/injected.xml" "${ok[@]}"
  # No <signature> at all.
  grep -v '<signature>' "$cfg" >"$T/unsigned.xml"
  expect_error 6 "unsigned.xml: overlay/signature: none (the configuration is unsigned)" --config "$T/unsigned.xml" "${ok[@]}"

  # An enrolled node (a certificate from the same CA) lists itself as configuration-signer and
  # signs with its own signing key: the certificate lacks the CA's Document Signing mark.
  forge_as_node a "$cfg" "$T/forged.xml"
  expect_error 6 "forged.xml: overlay/signature: signer $(node_id_of a)'s certificate lacks the Document Signing" \
    --config "$T/forged.xml" "${ok[@]}"

  # Signed again by the CA directory's configuration signer after a hand edit: accepted.
  cp "$T/tampered.xml" "$cfg"
  "$ADMIN" sign --config "$cfg" >/dev/null 2>"$T/admin.err" || fail "admin sign: $(cat "$T/admin.err")"
  start a --first --memory
  port_of a >/dev/null
  stop a
}

# start_own NAME CONFIG ARGS...: like start, with the peer's own configuration file.
start_own() {
  local name=$1 config=$2
  shift 2
  # Emptied here, not only by the redirection below, which the background job makes later: a
  # restarted peer's port_of must not find the previous run's "listening on" line.
  : >"$T/$name.log"
  "$PEER" --config "$config" --cert "$T/$name/node.crt" --key "$T/$name/node.key" \
    --listen 127.0.0.1:0 --status-interval 1000 --log-level debug "$@" 2>"$T/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
}

# wait_log SECONDS FILE TEXT: waits until FILE has a line containing TEXT.
wait_log() {
  local deadline=$((SECONDS + $1))
  while [ "$SECONDS" -lt "$deadline" ]; do
    grep -Fq -- "$3" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$2 has no line with '$3' within $1 s"
}

# count_lines FILE TEXT: lines of FILE containing TEXT.
count_lines() { grep -Fc -- "$2" "$1" 2>/dev/null || true; }

# hup NAME TEXT: SIGHUP to NAME, then waits for a new line with TEXT in its log (5 s).
hup() {
  local before i
  before=$(count_lines "$T/$1.log" "$2")
  kill -HUP "$(eval echo "\$PID_$1")" || fail "$1 is not running"
  for i in $(seq 1 50); do
    [ "$(count_lines "$T/$1.log" "$2")" -gt "$before" ] && return 0
    sleep 0.1
  done
  fail "$1 logged no new '$2' within 5 s of SIGHUP"
}

case_sighup_reload() {
  make_overlay example.org "$T/ca"
  local n
  for n in a b c; do
    enroll "$n@example.org" "$T/$n" "$T/ca"
    cp "$T/ca/overlay.xml" "$T/$n.xml"
  done
  enroll "d@example.org" "$T/d" "$T/ca"
  start_own a "$T/a.xml" --first --memory
  local port
  port=$(port_of a) || exit 1
  start_own b "$T/b.xml" --bootstrap-peer "127.0.0.1:$port" --memory
  start_own c "$T/c.xml" --bootstrap-peer "127.0.0.1:$port" --memory
  wait_ring 30 a b c
  cp "$T/ca/overlay.xml" "$T/old.xml"
  # The operator's newer document: add-bootstrap signs it again with sequence 2.
  cp "$T/ca/overlay.xml" "$T/new.xml"
  "$ADMIN" add-bootstrap 127.0.0.1:1 --config "$T/new.xml" --ca-dir "$T/ca" >/dev/null 2>"$T/admin.err" ||
    fail "admin add-bootstrap: $(cat "$T/admin.err")"
  grep -q 'sequence="2"' "$T/new.xml" || fail "the newer document is not sequence 2"

  # Refused, each with a WARN, the peer running on with sequence 1: not XML ...
  echo '<overlay><configuration' >"$T/a.xml"
  hup a "WARN configuration $T/a.xml refused"
  grep -F "WARN configuration $T/a.xml refused" "$T/a.log" | tail -n 1 | grep -q 'keeping sequence 1' ||
    fail "the refusal does not say the sequence kept"
  # ... the newer document changed after signing ...
  sed -e 's|<max-message-size>32768<|<max-message-size>99999<|' "$T/new.xml" >"$T/a.xml"
  cmp -s "$T/a.xml" "$T/new.xml" && fail "the tampering changed nothing"
  hup a "signature does not verify; keeping sequence 1"
  # ... and a file that is not there.
  rm "$T/a.xml"
  hup a "WARN configuration not re-read: $T/a.xml"
  kill -0 "$PID_a" 2>/dev/null || fail "a died of a refused configuration"
  [ "$(count_lines "$T/b.log" "taken from a ConfigUpdate")" -eq 0 ] || fail "b took a refused document"

  # The newer document: applied, and sent to b and c, who take it and write it to their files.
  cp "$T/new.xml" "$T/a.xml"
  hup a "INFO configuration sequence 2 applied from $T/a.xml; sent to 2 linked node(s) in ConfigUpdates"
  wait_log 10 "$T/b.log" "INFO configuration sequence 2 taken from a ConfigUpdate"
  wait_log 10 "$T/c.log" "INFO configuration sequence 2 taken from a ConfigUpdate"
  cmp -s "$T/b.xml" "$T/new.xml" || fail "b's configuration file is not the new document"
  cmp -s "$T/c.xml" "$T/new.xml" || fail "c's configuration file is not the new document"
  # A client still on the older document: its request is refused (Error_Config_Too_Old), the
  # peer sends it the new document by ConfigUpdate, and the SDK sends the request again with it.
  if [ -n "$CLIENT" ]; then
    timeout 30 "$CLIENT" --config "$T/old.xml" --cert "$T/d/node.crt" --key "$T/d/node.key" \
      --peer "127.0.0.1:$port" --timeout 10000 put after-reload yes >"$T/out" 2>"$T/err" ||
      fail "a client on the older document: $(cat "$T/err")"
    timeout 30 "$CLIENT" --config "$T/old.xml" --cert "$T/d/node.crt" --key "$T/d/node.key" \
      --peer "127.0.0.1:$port" --timeout 10000 get after-reload >"$T/out" 2>"$T/err" ||
      fail "a client on the older document, get: $(cat "$T/err")"
    grep -q yes "$T/out" || fail "get after-reload printed: $(cat "$T/out")"
  fi
  # From now on no peer finds another's sequence too old or too new (a request crossing the
  # update in the few milliseconds before might have).
  local mismatches
  mismatches=$(cat "$T/a.log" "$T/b.log" "$T/c.log" | grep -ci 'config_too')

  # The older document again: refused, not newer.
  cp "$T/old.xml" "$T/a.xml"
  hup a "refused: configuration: sequence 1 is not newer than the current 2; keeping sequence 2"
  # The same document it has: nothing to do (a reload for the log file alone).
  cp "$T/new.xml" "$T/a.xml"
  hup a "INFO configuration $T/a.xml unchanged (sequence 2)"

  # The ring goes on with the new sequence everywhere: status lines, no sequence mismatch, and
  # every peer leaves cleanly.
  local lines
  lines=$(count_lines "$T/a.log" ' status ')
  sleep 1.5
  [ "$(count_lines "$T/a.log" ' status ')" -gt "$lines" ] || fail "a logs no more status lines"
  wait_ring 10 a b c
  [ "$(cat "$T/a.log" "$T/b.log" "$T/c.log" | grep -ci 'config_too')" -eq "$mismatches" ] ||
    fail "a sequence mismatch after the update: $(grep -hi 'config_too' "$T"/[abc].log | tail -n 1)"
  stop a b c
}

case_log_file() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  local ok=(--config "$T/ca/overlay.xml" --cert "$T/a/node.crt" --key "$T/a/node.key"
    --listen 127.0.0.1:0 --first --memory)
  "$PEER" "${ok[@]}" --status-interval 200 --log-file "$T/a.log" 2>"$T/a.stderr" &
  PID_a=$!
  PIDS+=("$PID_a")
  port_of a >/dev/null
  # logrotate: the file is moved away, then the peer is told to open a new one.
  mv "$T/a.log" "$T/a.log.1"
  wait_log 5 "$T/a.log.1" " status "
  kill -HUP "$PID_a"
  wait_log 5 "$T/a.log" "INFO configuration $T/ca/overlay.xml unchanged (sequence 1)"
  wait_log 5 "$T/a.log.1" "INFO signal SIGHUP: reopening the log file"
  # Status lines now go to the new file only.
  local old_count
  old_count=$(count_lines "$T/a.log.1" " status ")
  wait_log 5 "$T/a.log" " status "
  sleep 0.5
  [ "$(count_lines "$T/a.log.1" " status ")" -eq "$old_count" ] || fail "lines still go to the moved file"
  [ -s "$T/a.stderr" ] && fail "log lines went to stderr: $(head -n 3 "$T/a.stderr")"
  # No new file can be opened: the old one is kept, with a WARN, and the peer runs on.
  mv "$T/a.log" "$T/a.log.2"
  mkdir "$T/a.log"
  kill -HUP "$PID_a"
  wait_log 5 "$T/a.log.2" "WARN log file not reopened, still writing the old one: $T/a.log:"
  rmdir "$T/a.log"
  mv "$T/a.log.2" "$T/a.log"
  stop a
  expect_error 1 "--log-file $T/nodir/x.log: No such file or directory" "${ok[@]}" \
    --log-file "$T/nodir/x.log"
  expect_error 2 "--log-file and --log-target journal exclude each other" "${ok[@]}" \
    --log-file "$T/x.log" --log-target journal
  expect_error 2 "--log-target 'syslog'" "${ok[@]}" --log-target syslog
}

case_journal() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  local ok=(--config "$T/ca/overlay.xml" --cert "$T/a/node.crt" --key "$T/a/node.key"
    --listen 127.0.0.1:0 --first --memory)
  local variant stream
  for variant in journal other forced plain; do
    : >"$T/a.log"
    stream=$(stat -c '%d:%i' "$T/a.log")
    case $variant in
      journal) JOURNAL_STREAM=$stream "$PEER" "${ok[@]}" 2>>"$T/a.log" & ;;
      other) JOURNAL_STREAM=$(stat -c '%d:%i' "$T/ca/overlay.xml") "$PEER" "${ok[@]}" 2>>"$T/a.log" & ;;
      forced) "$PEER" "${ok[@]}" --log-target journal 2>>"$T/a.log" & ;;
      plain) JOURNAL_STREAM=$stream "$PEER" "${ok[@]}" --log-target stderr 2>>"$T/a.log" & ;;
    esac
    PID_a=$!
    PIDS+=("$PID_a")
    port_of a >/dev/null
    wait_log 10 "$T/a.log" " status "
    stop a
    if [ "$variant" = journal ] || [ "$variant" = forced ]; then
      grep -q '^<6>INFO listening on 127\.0\.0\.1:' "$T/a.log" || fail "$variant: no '<6>INFO listening' line"
      grep -Evq '^<[3467]>(DEBUG|INFO|WARN|ERROR) ' "$T/a.log" &&
        fail "$variant: a line without its priority: $(grep -Ev '^<[3467]>' "$T/a.log" | head -n 1)"
      # A failed start, too: its one line at error priority.
      if [ "$variant" = journal ]; then
        : >"$T/err.log"
        JOURNAL_STREAM=$(stat -c '%d:%i' "$T/err.log") "$PEER" "${ok[@]}" --log-level loud 2>>"$T/err.log"
        grep -q "^<3>p2psip-peer: --log-level 'loud'" "$T/err.log" ||
          fail "a failed start's line is not at error priority: $(cat "$T/err.log")"
      fi
    else
      grep -Evq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (DEBUG|INFO|WARN|ERROR) ' "$T/a.log" &&
        fail "$variant: a line without timestamp and level: $(grep -Ev '^[0-9]{4}-' "$T/a.log" | head -n 1)"
    fi
  done
}

# notify_listen SOCKET OUT: a unix datagram socket at SOCKET (a path, or "@name" in the abstract
# namespace, as NOTIFY_SOCKET names them), each datagram one line of OUT (newlines as '|'); gone
# after 60 s at most. Waits until the socket is bound (OUT is made after the bind).
notify_listen() {
  rm -f "$2"
  python3 -c '
import socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
s.settimeout(0.2)
deadline = time.time() + 60
with open(out, "a", buffering=1) as f:
    while time.time() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        f.write(d.decode("utf-8", "replace").replace("\n", "|") + "\n")
' "$1" "$2" &
  PIDS+=("$!")
  local i
  for i in $(seq 1 50); do
    [ -f "$2" ] && return 0
    sleep 0.1
  done
  fail "the notify socket $1 was not bound"
}

case_sd_notify() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  enroll b@example.org "$T/b" "$T/ca"
  enroll c@example.org "$T/c" "$T/ca"
  notify_listen "$T/a.sock" "$T/a.notify"
  # b's socket in the abstract namespace (NOTIFY_SOCKET=@name, as systemd may pass it).
  local b_socket
  b_socket="@p2psip-notify-$$-$RANDOM"
  notify_listen "$b_socket" "$T/b.notify"
  # WatchdogSec=0.4 s: a keep-alive every 0.2 s.
  NOTIFY_SOCKET=$T/a.sock WATCHDOG_USEC=400000 start a --first --memory
  wait_log 10 "$T/a.notify" "READY=1|STATUS=status node="
  grep -m1 'READY=1' "$T/a.notify" | grep -q ' joined=yes ' || fail "a first peer ready before it serves"
  local port
  port=$(port_of a) || exit 1
  # The second peer: READY=1 once, and only once it joined.
  # WATCHDOG_PID another process's: the watchdog is not b's (a child that inherited it).
  NOTIFY_SOCKET=$b_socket WATCHDOG_USEC=400000 WATCHDOG_PID=1 \
    start b --bootstrap-peer "127.0.0.1:$port" --memory
  wait_log 15 "$T/b.notify" "READY=1|"
  grep -m1 'READY=1' "$T/b.notify" | grep -q ' joined=yes ' || fail "b ready before it joined"
  sed -n '1,/READY=1/p' "$T/b.notify" | grep -v READY=1 | grep -q ' joined=yes ' &&
    fail "b joined before READY=1 and did not say so"
  grep -q '^STATUS=status node=' "$T/b.notify" || sleep 1.5
  grep -q '^STATUS=status node=' "$T/b.notify" || fail "b's status lines are not sent as STATUS="
  [ "$(grep -c 'READY=1' "$T/b.notify")" -eq 1 ] || fail "b sent READY=1 more than once"
  sleep 1
  [ "$(grep -c '^WATCHDOG=1$' "$T/a.notify")" -ge 3 ] || fail "too few WATCHDOG=1 from a"
  # b, whose WATCHDOG_USEC is for another pid: no keep-alives.
  grep -q 'WATCHDOG=1' "$T/b.notify" && fail "b sent WATCHDOG=1 unasked"
  # c's NOTIFY_SOCKET names no socket: one warning, however many notifications fail; c serves.
  NOTIFY_SOCKET=$T/nobody.sock start c --first --memory
  port_of c >/dev/null || exit 1
  wait_log 5 "$T/c.log" "cannot notify the service manager (NOTIFY_SOCKET): "
  sleep 1.2
  [ "$(count_lines "$T/c.log" "cannot notify the service manager")" -eq 1 ] ||
    fail "c warned more than once about its notify socket"
  stop c
  # SIGHUP: RELOADING=1, then READY=1 again.
  kill -HUP "$PID_a"
  wait_log 5 "$T/a.notify" "RELOADING=1|STATUS=status node="
  local after i
  after=$(grep -n 'RELOADING=1' "$T/a.notify" | tail -n 1 | cut -d: -f1)
  for i in $(seq 1 50); do
    tail -n +"$after" "$T/a.notify" | grep -q '^READY=1|' && break
    sleep 0.1
  done
  tail -n +"$after" "$T/a.notify" | grep -q '^READY=1|' || fail "no READY=1 after RELOADING=1"
  # SIGTERM: STOPPING=1, then the clean stop.
  stop b a
  grep -q '^STOPPING=1|STATUS=status node=' "$T/a.notify" || fail "a sent no STOPPING=1"
  grep -q '^STOPPING=1|' "$T/b.notify" || fail "b sent no STOPPING=1"
}

case_systemd_unit() {
  local unit analyze
  unit="$(cd "$(dirname "$0")/../.." && pwd)/packaging/systemd/p2psip-peer.service"
  [ -f "$unit" ] || fail "no unit at $unit"
  analyze=$(command -v systemd-analyze) || fail "systemd-analyze not found: apt-get install systemd"
  grep -q '^Type=notify$' "$unit" || fail "the unit is not Type=notify"
  grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "the unit's reload is not SIGHUP"
  grep -q '^StateDirectory=p2psip$' "$unit" || fail "the unit has no StateDirectory"
  grep -q '^ProtectSystem=strict$' "$unit" || fail "the unit is not sandboxed"
  # verify checks that ExecStart's program exists: the one built here stands in for /usr/bin's.
  mkdir -p "$T/unit"
  sed "s|/usr/bin/p2psip-peer|$PEER|" "$unit" >"$T/unit/p2psip-peer.service"
  "$analyze" verify "$T/unit/p2psip-peer.service" >"$T/verify.out" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$T/verify.out")"
  [ -s "$T/verify.out" ] && fail "systemd-analyze verify warns: $(cat "$T/verify.out")"
  # The sandbox stays tight: systemd's exposure rating (0 best, 10 worst) at most 2.0; it is 1.2,
  # what remains being the network access a peer needs.
  "$analyze" security --offline=yes --threshold=20 "$T/unit/p2psip-peer.service" >"$T/security.out" 2>&1 ||
    fail "the unit's exposure is above 2.0: $(grep -E 'Overall|✗' "$T/security.out")"
  # ExecStart as systemd would run it: %d (credentials), %S (/var/lib) and /etc/p2psip moved
  # under $T, the listen address and options as /etc/default/p2psip-peer would give them.
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  mkdir -p "$T/etc/p2psip" "$T/state/p2psip"
  cp "$T/ca/overlay.xml" "$T/etc/p2psip/overlay.xml"
  local line
  line=$(sed -n 's/^ExecStart=//p' "$unit")
  line=${line//%d/$T/a}
  line=${line//%S/$T/state}
  line=${line//\/etc\/p2psip/$T/etc/p2psip}
  line=${line//\$\{P2PSIP_LISTEN\}/127.0.0.1:0}
  line=${line//\$P2PSIP_PEER_OPTS/--first}
  local -a argv
  read -r -a argv <<<"$line"
  argv[0]=$PEER
  notify_listen "$T/a.sock" "$T/a.notify"
  NOTIFY_SOCKET=$T/a.sock "${argv[@]}" 2>"$T/a.log" &
  PID_a=$!
  PIDS+=("$PID_a")
  port_of a >/dev/null
  wait_log 10 "$T/a.notify" "READY=1|"
  [ -f "$T/state/p2psip/reload-store.sqlite3" ] || fail "no store in the unit's state directory"
  stop a
}

# switches NAME: voluntary context switches of every thread of NAME so far (each is a wakeup).
switches() {
  local pid total=0 n f
  pid=$(eval echo "\$PID_$1")
  for f in /proc/"$pid"/task/*/status; do
    n=$(sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "$f" 2>/dev/null)
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

case_idle() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  enroll b@example.org "$T/b" "$T/ca"
  start a --first --memory --status-interval 60000 --log-level info
  local port
  port=$(port_of a) || exit 1
  node_of a >/dev/null
  start b --bootstrap-peer "127.0.0.1:$port" --memory --status-interval 60000 --log-level info
  # Only a line logged on the change can show b: the next interval line is a minute away.
  wait_ring 10 a b
  sleep 1
  local before after
  before=$(switches a)
  sleep 4
  after=$(switches a)
  echo "idle a: $((after - before)) wakeups in 4 s" >&2
  [ $((after - before)) -le 10 ] ||
    fail "idle a woke $((after - before)) times in 4 s (at most 10 expected)"
  # SIGUSR1: a status line now, a minute before the interval's next one.
  local lines
  lines=$(grep -c ' status node=' "$T/a.log")
  kill -USR1 "$PID_a"
  local waited=0
  until [ "$(grep -c ' status node=' "$T/a.log")" -gt "$lines" ]; do
    [ $waited -lt 50 ] || fail "no status line within 5 s of SIGUSR1"
    sleep 0.1
    waited=$((waited + 1))
  done
  tail -n 1 "$T/a.log" | grep -q ' status node=.* joined=yes .*links=[1-9]' ||
    fail "SIGUSR1's status line: $(tail -n 1 "$T/a.log")"
  kill -0 "$PID_a" || fail "a died of SIGUSR1"
  stop a b
}

case_heap_trim() {
  setup_three "--heap-trim-delay 300" "--heap-trim-delay 0"
  wait_ring 30 a b c
  # Links may already have closed while the ring formed (a bootstrap link, a surplus one): only
  # lines after a leaves count.
  local before_b before_c
  before_b=$(count_lines "$T/b.log" "heap trimmed")
  before_c=$(count_lines "$T/c.log" "heap trimmed")
  stop a
  local waited=0
  until [ "$(count_lines "$T/b.log" "heap trimmed")" -gt "$before_b" ]; do
    [ $waited -lt 100 ] || fail "b did not trim its heap within 10 s of a leaving"
    sleep 0.1
    waited=$((waited + 1))
  done
  local line kib_before kib_after
  line=$(grep -F "heap trimmed" "$T/b.log" | tail -n 1)
  [[ $line =~ resident\ ([0-9]+)\ -\>\ ([0-9]+)\ KiB ]] || fail "trim line: $line"
  kib_before=${BASH_REMATCH[1]}
  kib_after=${BASH_REMATCH[2]}
  # Not grown (glibc gives pages back or not); under ASan, whose allocator malloc_trim does not
  # reach, a page touched between the two reads may add 4 KiB.
  [ "$kib_before" -gt 0 ] && [ "$kib_after" -le $((kib_before + 16)) ] ||
    fail "b's resident size after the trim: $line"
  echo "b: $line" >&2
  wait_ring 30 b c
  sleep 1
  [ "$(count_lines "$T/c.log" "heap trimmed")" -eq "$before_c" ] && [ "$before_c" -eq 0 ] ||
    fail "c trimmed with --heap-trim-delay 0"
  stop b c
}

# http_get PORT PATH: the whole HTTP/1.0 answer of 127.0.0.1:PORT (bash's /dev/tcp, 5 s bound).
http_get() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$1" >&3
    cat <&3' "$1" "$2"
}

case_admin_module() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  enroll b@example.org "$T/b" "$T/ca"
  start a --first --memory --admin-listen 127.0.0.1:0
  local port admin_port line reply id
  port=$(port_of a) || exit 1
  id=$(node_of a) || exit 1
  wait_log 10 "$T/a.log" "admin HTTP server at 127.0.0.1:"
  line=$(grep -m1 -o 'admin HTTP server at 127\.0\.0\.1:[0-9]*' "$T/a.log")
  admin_port=${line##*:}
  reply=$(http_get "$admin_port" /status.json) || fail "GET /status.json from a failed"
  grep -q '^HTTP/1\.[01] 200' <<<"$reply" || fail "GET /status.json: $(head -n 1 <<<"$reply")"
  grep -q "\"node_id\": \"$id" <<<"$reply" || fail "/status.json lacks a's Node-ID $id: $reply"
  local module
  module=$(cd "$(dirname "$PEER")" && pwd)/p2psip-admin-http.so
  grep -qF "$module" "/proc/$PID_a/maps" || fail "a has not mapped $module"
  grep -q 'libcivetweb' "/proc/$PID_a/maps" || fail "a has not mapped civetweb"
  start b --bootstrap-peer "127.0.0.1:$port" --memory
  wait_ring 30 a b
  grep -E 'p2psip-admin-http|civetweb|prometheus' "/proc/$PID_b/maps" &&
    fail "b, without --admin-listen, mapped the admin HTTP module or its libraries"
  stop a b

  # The program alone, somewhere else: no module beside it, none at the installed place.
  mkdir -p "$T/bin"
  cp "$PEER" "$T/bin/p2psip-peer"
  local PEER=$T/bin/p2psip-peer
  local args=(--config "$T/ca/overlay.xml" --cert "$T/a/node.crt" --key "$T/a/node.key"
    --listen 127.0.0.1:0 --first --memory --admin-listen 127.0.0.1:0)
  expect_error 1 "cannot load the admin HTTP module $T/" "${args[@]}"
  grep -Fq "p2psip/p2psip-admin-http.so: cannot open shared object file: No such file or directory" \
    "$T/err" || fail "no installed path and dlerror's reason: $(cat "$T/err")"
  # Not a library where the module should be.
  echo 'not a library' >"$T/bin/p2psip-admin-http.so"
  expect_error 1 "cannot load the admin HTTP module $T/bin/p2psip-admin-http.so: $T/bin/p2psip-admin-http.so: " "${args[@]}"
  # A library, but not the module: the C math library under the module's name.
  local libm
  libm=$(ldd "$PEER" | awk '$1 ~ /^libm\.so/ {print $3}')
  [ -f "$libm" ] || fail "no libm in ldd $PEER"
  ln -sf "$libm" "$T/bin/p2psip-admin-http.so"
  expect_error 1 "$T/bin/p2psip-admin-http.so is not the admin HTTP module: " "${args[@]}"
  grep -Fq "undefined symbol: p2psip_admin_http_module_start" "$T/err" ||
    fail "no dlerror reason for the missing entry point: $(cat "$T/err")"
}

case "$CASE" in
  ring) case_ring ;;
  leave) case_leave ;;
  data_dir) case_data_dir ;;
  bad_config) case_bad_config ;;
  config_signature) case_config_signature ;;
  store_integrity) case_store_integrity ;;
  sighup_reload) case_sighup_reload ;;
  log_file) case_log_file ;;
  journal) case_journal ;;
  sd_notify) case_sd_notify ;;
  systemd_unit) case_systemd_unit ;;
  idle) case_idle ;;
  admin_module) case_admin_module ;;
  heap_trim) case_heap_trim ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$CASE]"
