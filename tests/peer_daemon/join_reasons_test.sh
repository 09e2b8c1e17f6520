#!/usr/bin/env bash
# Why a p2psip-peer is not joined, and who sent what it refused (issue 15: fail fast, with the
# reason). Loopback, real processes, credentials made by p2psip-admin.
# usage: join_reasons_test.sh /path/to/p2psip-peer /path/to/p2psip-admin
#   1. a peer whose bootstrap peer refuses logs a WARN with the reason on each try, the pause
#      doubling (200, 400, 800 ms);
#   2. one whose bootstrap peer is of another overlay (another CA) names the TLS failure, and
#      that peer logs the refused handshake at INFO with the address;
#   3. one with a newer configuration names the refusal and both sequences;
#   4. a flood of connections that are not TLS costs a bounded number of INFO lines.
set -u

PEER=$1
ADMIN=$2
CASE=join_reasons
T=$(mktemp -d "${TMPDIR:-/tmp}/p2psip-join-test.XXXXXX")
PIDS=()

source "$(dirname "$0")/../support/loopback_peers.sh"
trap kill_all_and_clean EXIT

case_join_reasons() {
  make_overlay example.org "$T/ca"
  enroll "a@example.org" "$T/a" "$T/ca"
  enroll "b@example.org" "$T/b" "$T/ca"
  local closed
  closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # 1. The bootstrap peer refuses: a WARN per try naming it and the system's reason, the pause
  #    doubling (200, 400, 800 ms ...).
  start b --bootstrap-peer "127.0.0.1:$closed" --memory
  sleep 1.8
  local warns
  warns=$(grep -c "WARN not joined: bootstrap peer 127.0.0.1:$closed failed: TCP connect failed: Connection refused; next attempt in" "$T/b.log")
  echo "refused bootstrap peer: $warns WARN lines in 1.8 s"
  [ "$warns" -ge 3 ] || fail "expected a WARN with the reason on each try, got $warns"
  [ "$warns" -le 6 ] || fail "expected the tries to back off, got $warns WARN lines in 1.8 s"
  local pauses
  pauses=$(grep -o 'next attempt in [0-9]* ms' "$T/b.log" | head -n 3 | awk '{print $4}' | tr '\n' ' ')
  [ "$pauses" = "200 400 800 " ] || fail "expected pauses 200 400 800 ms, got '$pauses'"
  kill -TERM "$PID_b"
  wait "$PID_b"

  # 2. A bootstrap peer of another overlay (its own CA): the joining peer names the TLS failure;
  #    the other one logs the refused handshake at INFO with the joining peer's address.
  make_overlay other.org "$T/other"
  enroll "x@other.org" "$T/x" "$T/other"
  "$PEER" --config "$T/other/overlay.xml" --cert "$T/x/node.crt" --key "$T/x/node.key" \
    --listen 127.0.0.1:0 --first --memory 2>"$T/x.log" &
  PID_x=$!
  PIDS+=("$PID_x")
  local px
  px=$(port_of x) || exit 1
  start b --bootstrap-peer "127.0.0.1:$px" --memory
  local i
  for i in $(seq 1 50); do
    grep -q "WARN not joined: bootstrap peer 127.0.0.1:$px failed: " "$T/b.log" && break
    sleep 0.1
  done
  grep "WARN not joined: bootstrap peer 127.0.0.1:$px failed: " "$T/b.log" | head -n 1 |
    grep -Eq "peer certificate does not verify|rejected our certificate" ||
    fail "the WARN does not name the TLS failure: $(grep 'not joined' "$T/b.log" | head -n 1)"
  grep -q "INFO refused TLS handshake from 127.0.0.1:" "$T/x.log" ||
    fail "the other overlay's peer did not log the refused handshake"
  kill -TERM "$PID_b"
  wait "$PID_b"

  # 3. A joining peer whose configuration is newer than its bootstrap peer's: the join's Attach
  #    is refused, and the WARN names the RELOAD error and the two sequences.
  start a --first --memory
  local pa
  pa=$(port_of a) || exit 1
  cp -r "$T/ca" "$T/ca2"
  sed -i 's|sequence="1"|sequence="2"|' "$T/ca2/overlay.xml"
  "$ADMIN" sign --config "$T/ca2/overlay.xml" >/dev/null 2>"$T/admin.err" ||
    fail "admin sign: $(cat "$T/admin.err")"
  "$PEER" --config "$T/ca2/overlay.xml" --cert "$T/b/node.crt" --key "$T/b/node.key" \
    --listen 127.0.0.1:0 --bootstrap-peer "127.0.0.1:$pa" --memory 2>"$T/newer.log" &
  local pid_newer=$!
  PIDS+=("$pid_newer")
  for i in $(seq 1 50); do
    grep -q "WARN not joined: Attach for our place refused by " "$T/newer.log" && break
    sleep 0.1
  done
  grep -q "WARN not joined: Attach for our place refused by .*: Error_Config_Too_New (configuration sequence 2, ours is 1)" "$T/newer.log" ||
    fail "no WARN naming the configuration sequences: $(grep 'not joined' "$T/newer.log" | head -n 1)"
  kill -TERM "$pid_newer"
  wait "$pid_newer"

  # 4. A flood of connections that are not TLS: a burst of INFO lines, then one a second.
  local t0=$SECONDS
  python3 - "$pa" <<'PY'
import socket, sys
for _ in range(200):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
PY
  sleep 0.5
  local elapsed=$((SECONDS - t0)) lines
  lines=$(grep -c "INFO refused TLS handshake from 127.0.0.1:" "$T/a.log")
  echo "200 bad handshakes in ${elapsed} s: $lines INFO lines"
  [ "$lines" -ge 1 ] || fail "no INFO line for the refused handshakes"
  [ "$lines" -le $((5 + elapsed + 1)) ] || fail "$lines lines for 200 bad handshakes in ${elapsed} s"
  kill -TERM "$PID_a"
  wait "$PID_a"
}

case_join_reasons
echo "PASS [$CASE]"
