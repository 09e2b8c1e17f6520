#!/bin/bash
# Server CPU time per REGISTER during one p2psip-sip-bench trial: a figure that holds when the
# machine is loaded (the RFC 7502 search then measures the machine). Sums user+system time of the
# servers (every p2psip-peer the bench started, or Kamailio's process group) while the trial's
# sipp runs.
#   scripts/sip-bench-cpu.sh BENCH RATE BENCH-ARGS...
#   scripts/sip-bench-cpu.sh build/release/tests/bench/p2psip-sip-bench 400 \
#       --targets p2psip --peers 1 --scenarios register
set -eu
BIN=$1
RATE=$2
shift 2
OUT=$(mktemp)
"$BIN" "$@" --run-seconds 8 --steps 1 --max-rate "$RATE" >"$OUT" 2>&1 &
B=$!
S=
for _ in $(seq 1 600); do
  S=$(pgrep -P "$B" -x sipp | head -1 || true)
  [ -n "$S" ] && break
  sleep 0.1
done
[ -n "$S" ] || { echo "no sipp started"; cat "$OUT"; exit 1; }
PIDS=$(pgrep -P "$B" -x p2psip-peer || true)
K=$(pgrep -P "$B" -x kamailio | head -1 || true)
[ -n "$K" ] && PIDS=$(pgrep -g "$K")
ticks() {
  local t=0 v
  for p in $PIDS; do
    v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + v))
  done
  echo "$t"
}
T0=$(ticks)
while kill -0 "$S" 2>/dev/null; do sleep 0.2; done
T1=$(ticks)
wait "$B" || true
HZ=$(getconf CLK_TCK)
N=$((RATE * 8))
echo "$(grep -m1 'REGISTER:' "$OUT" | sed 's/^ *//')"
echo "server CPU $(((T1 - T0) * 1000 / HZ)) ms for $N REGISTERs = $(((T1 - T0) * 1000000 / HZ / N)) us each"
rm -f "$OUT"
