#!/usr/bin/env bash
# An SDK-only build (-DP2PSIP_SDK_ONLY=ON) of the source tree in WORK_DIR, configured with doctest,
# Google Benchmark and SQLite hidden from find_package.
#   MODE configure: the configured tree must have the library, p2psip-client, p2psip-wire and the
#                   samples as targets, the three client-side packages, and no peer or test target
#                   (seconds: CI runs this one)
#   MODE build:     the same, then built (-j2), installed and packaged (minutes without ccache: a
#                   second build of the SDK; the long suite, `ctest -L long`)
# usage: sdk_only_test.sh MODE SOURCE_DIR WORK_DIR GENERATOR CC CXX LAUNCHER
set -euo pipefail
mode=$1 source=$2 work=$3 generator=$4 cc=$5 cxx=$6 launcher=${7:-}
case "$mode" in configure | build) ;; *) echo "usage: sdk_only_test.sh configure|build ..." >&2; exit 2 ;; esac

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() { echo "ok: $*"; }

rm -rf "$work"
mkdir -p "$work"
build=$work/build
launch=()
[ -n "$launcher" ] && launch=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"
  -DCMAKE_C_COMPILER_LAUNCHER="$launcher")
# No build type: no -g, no -O, the quickest compile of the same code (warnings still errors).
timeout 120 cmake -S "$source" -B "$build" -G "$generator" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_CXX_COMPILER="$cxx" "${launch[@]}" -DP2PSIP_SDK_ONLY=ON -DP2PSIP_WERROR=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; fail "configure -DP2PSIP_SDK_ONLY=ON"; }
grep -qE '^P2PSIP_(TESTS|BENCH):BOOL=ON' "$build/CMakeCache.txt" &&
  fail "tests or benchmarks still on in an SDK-only build"
[ -e "$build/peer" ] && fail "an SDK-only build configured peer/"
ok "configured without doctest, Google Benchmark or SQLite"

# What the configured tree would build and package.
targets=$(cmake --build "$build" --target help 2>/dev/null | sed -n 's/^\([A-Za-z0-9_.+-]*\): phony$/\1/p')
for want in p2psip_client p2psip-client p2psip-wire put_get c_api typed_dictionary sip_register \
  sip_chat; do
  grep -qx "$want" <<<"$targets" || fail "no target $want in the SDK-only tree"
done
unwanted=$(grep -E '^p2psip-(peer|admin|chaos|scale)$|^p2psip_peer|_tests$' <<<"$targets" || true)
[ -z "$unwanted" ] || fail "peer or test targets in the SDK-only tree: $unwanted"
components=$(sed -n 's/^set(CPACK_COMPONENTS_ALL "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
[ "$components" = "client;sdk;sdk_dev" ] || fail "SDK-only packages' components: '$components'"
ok "targets: the library, p2psip-client, p2psip-wire, the samples; components: $components"
if [ "$mode" = configure ]; then
  echo "PASS"
  exit 0
fi

start=$(date +%s)
timeout 540 cmake --build "$build" -j 2 >"$work/build.log" 2>&1 ||
  { tail -n 50 "$work/build.log" >&2; fail "build"; }
ok "built in $(($(date +%s) - start)) s"

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "cmake --install"; }
installed=$(cd "$prefix" && find . -type f -o -type l | sort)
for want in bin/p2psip-client bin/p2psip-wire include/p2psip/client/client.hpp \
  'lib/(.*/)?libp2psip-client\.so\.0' 'lib/(.*/)?pkgconfig/p2psip-client\.pc'; do
  grep -qE "^\./$want\$" <<<"$installed" || { echo "$installed" >&2; fail "not installed: $want"; }
done
grep -E 'p2psip-peer|p2psip-admin|\.a$' <<<"$installed" && fail "peer code or static libraries installed"
for sample in put_get c_api typed_dictionary sip_register sip_chat; do
  [ -x "$build/samples/$sample" ] || fail "sample $sample not built"
done
# Installed, p2psip-client runs from its prefix with its RPATH.
help=$(env -u LD_LIBRARY_PATH "$prefix/bin/p2psip-client" --help) ||
  fail "installed p2psip-client --help"
grep -q -- '--config' <<<"$help" || fail "installed p2psip-client --help: $help"
ok "installed: libp2psip-client, p2psip-client, p2psip-wire; samples built; no peer"

# Its packages: the three client-side ones.
(cd "$build" && timeout 300 cpack -G DEB -B "$work/debs" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack -G DEB"; }
packages=$(cd "$work/debs" && ls -- *.deb | sed 's/_.*//' | sort | tr '\n' ' ')
[ "$packages" = "libp2psip-client-dev libp2psip-client0 p2psip-client " ] ||
  fail "SDK-only packages: $packages"
ok "cpack: $packages"
echo "PASS"
