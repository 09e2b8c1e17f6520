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
set -u

PEER=$1
ADMIN=$2
CASE=$3
CLIENT=${4:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/p2psip-peer-test.XXXXXX")
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL [$CASE]: $*" >&2
  print_logs 40
  exit 1
}

source "$(dirname "$0")/../support/loopback_peers.sh"

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

setup_three() {
  make_overlay example.org "$T/ca"
  enroll a@example.org "$T/a" "$T/ca"
  enroll b@example.org "$T/b" "$T/ca"
  enroll c@example.org "$T/c" "$T/ca"
  start a --first --memory
  local port
  port=$(port_of a) || exit 1
  start b --bootstrap-peer "127.0.0.1:$port" --memory
  start c --bootstrap-peer "127.0.0.1:$port" --memory
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

case "$CASE" in
  ring) case_ring ;;
  leave) case_leave ;;
  data_dir) case_data_dir ;;
  bad_config) case_bad_config ;;
  config_signature) case_config_signature ;;
  store_integrity) case_store_integrity ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$CASE]"
