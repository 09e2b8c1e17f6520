# Shell helpers for tests that run p2psip-peer processes on loopback. Source it after setting
#   PEER, ADMIN  the p2psip-peer and p2psip-admin binaries
#   T            a scratch directory (credentials NAME/, logs NAME.log)
#   PIDS=()      every started process is appended (the caller's EXIT trap kills them)
# A caller may define fail MESSAGE (prints and exits) first; otherwise the one below is used. An
# EXIT trap on kill_all_and_clean stops every process in PIDS and removes $T.

# print_logs LINES: the last LINES lines of every log under $T, on stderr (for fail messages).
print_logs() {
  local f
  for f in "$T"/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f (last $1 lines)" >&2
    tail -n "$1" "$f" >&2
  done
}

kill_all_and_clean() {
  local p
  for p in "${PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$T"
}

if ! declare -F fail >/dev/null; then
  fail() {
    echo "FAIL [$CASE]: $*" >&2
    print_logs 40
    exit 1
  }
fi

make_overlay() {  # make_overlay NAME DIR
  "$ADMIN" init --overlay "$1" --out "$2" >/dev/null 2>"$T/admin.err" || fail "admin init: $(cat "$T/admin.err")"
}

enroll() {  # enroll USER OUTDIR CADIR
  "$ADMIN" enroll --user "$1" --out "$2" --ca-dir "$3" >/dev/null 2>"$T/admin.err" ||
    fail "admin enroll: $(cat "$T/admin.err")"
}

# start NAME ARGS...: starts a peer with credentials $T/NAME, log in $T/NAME.log; sets PID_NAME.
start() {
  local name=$1
  shift
  # Emptied here, not only by the redirection below, which the background job makes later: a
  # restarted peer's port_of must not find the previous run's "listening on" line.
  : >"$T/$name.log"
  "$PEER" --config "$T/ca/overlay.xml" --cert "$T/$name/node.crt" --key "$T/$name/node.key" \
    --listen 127.0.0.1:0 --status-interval 1000 --log-level debug "$@" 2>"$T/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
}

# port_of NAME: waits (10 s at most) for the "listening on 127.0.0.1:PORT" line; prints PORT.
port_of() {
  local i line
  for i in $(seq 1 100); do
    line=$(grep -m1 -o 'listening on 127\.0\.0\.1:[0-9]*' "$T/$1.log" 2>/dev/null)
    if [ -n "$line" ]; then
      echo "${line##*:}"
      return 0
    fi
    sleep 0.1
  done
  fail "$1 did not log its listening address"
}

# field NAME KEY: KEY= of the last status line of NAME's log (first entry of a list).
field() {
  grep ' status ' "$T/$1.log" 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p" | cut -d, -f1
}

node_of() {  # node_of NAME: the Node-ID enroll gave NAME (from its status lines)
  local i id
  for i in $(seq 1 100); do
    id=$(field "$1" node)
    if [ -n "$id" ]; then
      echo "$id"
      return 0
    fi
    sleep 0.1
  done
  fail "$1 logged no status line"
}

# ring_ok NAME...: every peer joined, and each one's first successor and predecessor are its ring
# neighbors among the named peers (Node-IDs of equal length sort as numbers).
ring_ok() {
  local names=("$@") n=$# i
  local sorted=()
  local -A id_of name_of
  for i in "${names[@]}"; do
    id_of[$i]=$(field "$i" node)
    [ -n "${id_of[$i]}" ] || return 1
    name_of[${id_of[$i]}]=$i
  done
  mapfile -t sorted < <(for i in "${names[@]}"; do echo "${id_of[$i]}"; done | sort)
  for i in $(seq 0 $((n - 1))); do
    local me=${sorted[$i]}
    local who=${name_of[$me]}
    [ "$(field "$who" joined)" = yes ] || return 1
    [ "$(field "$who" succ)" = "${sorted[$(((i + 1) % n))]}" ] || return 1
    [ "$(field "$who" pred)" = "${sorted[$(((i + n - 1) % n))]}" ] || return 1
  done
  return 0
}

wait_ring() {  # wait_ring SECONDS NAME...
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  while [ "$SECONDS" -lt "$deadline" ]; do
    ring_ok "$@" && return 0
    sleep 0.2
  done
  fail "no correct ring of $* within ${limit}s"
}

