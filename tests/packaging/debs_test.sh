#!/usr/bin/env bash
# The Debian packages of this build tree, as an admin gets them: `cpack -G DEB`, each package's
# metadata and files checked, all four unpacked with `dpkg -x` into a clean root (no dpkg database
# touched), then the quick start (three peers, put and get) run on the unpacked binaries, the bash
# completions asked for commands and options, the unpacked peer's admin HTTP module (loaded from
# the package's LIBDIR/p2psip only with --admin-listen, its libraries nowhere in the peer's own
# NEEDED), and a C program built against the unpacked dev package through pkg-config.
# usage: debs_test.sh BUILD_DIR SOURCE_DIR WORK_DIR CC SANITIZE(ON|OFF) STATIC_PEER_LIBS(ON|OFF)
set -euo pipefail
build=$1 source=$2 work=$3 cc=$4 sanitize=$5 static_peer_libs=$6
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
arch=$(dpkg --print-architecture)

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() { echo "ok: $*"; }

rm -rf "$work"
mkdir -p "$work"

# 1. The packages. (cpack first brings the build up to date, as `cmake --install` would need.)
(cd "$build" && timeout 300 cpack -G DEB -B "$work/debs" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack -G DEB"; }
deb() { echo "$work/debs/$1_${version}_${arch}.deb"; }
for package in p2psip-peer p2psip-client libp2psip-client0 libp2psip-client-dev; do
  [ -f "$(deb "$package")" ] || { ls "$work/debs" >&2; fail "no package $package"; }
done
ok "cpack made p2psip-peer, p2psip-client, libp2psip-client0, libp2psip-client-dev $version"

# 2. Dependencies: our own by hand, the system libraries' from dpkg-shlibdeps.
depends() { dpkg-deb -f "$(deb "$1")" Depends; }
expect_depends() {  # expect_depends PACKAGE REGEX WHY
  local list
  list=$(depends "$1")
  grep -qE "$2" <<<"$list" || fail "$1 Depends: '$list' lacks $3"
}
expect_depends libp2psip-client-dev "libp2psip-client0 \(= $version\)" "the library, same version"
expect_depends p2psip-client "libp2psip-client0 \(= $version\)" "the library, same version"
expect_depends libp2psip-client0 'libbotan-2-[0-9]+' "Botan (shlibdeps)"
expect_depends libp2psip-client0 'libsodium[0-9]+' "libsodium (shlibdeps)"
# civetweb and prometheus-cpp through the admin HTTP module (p2psip-peer itself links neither).
expect_depends p2psip-peer 'libprometheus-cpp-core[0-9.]+' "prometheus-cpp (shlibdeps)"
expect_depends p2psip-peer 'libcivetweb[0-9]+' "civetweb (shlibdeps)"
# The peer speaks systemd's notification protocol itself: no libsystemd.
grep -q libsystemd <<<"$(depends p2psip-peer)" && fail "p2psip-peer depends on libsystemd"
if [ "$static_peer_libs" = ON ]; then
  # P2PSIP_STATIC_PEER_LIBS: p2psip-peer and p2psip-admin carry their own Botan, libsodium,
  # pugixml and SQLite, so the package depends on none of them (nor on OpenSSL through Botan).
  list=$(depends p2psip-peer)
  for library in libbotan libsodium libpugixml libsqlite3 libssl libtspi; do
    grep -q "$library" <<<"$list" && fail "p2psip-peer Depends: '$list' names $library (linked statically)"
  done
else
  expect_depends p2psip-peer 'libsqlite3-0' "SQLite (shlibdeps)"
fi
ok "dependencies"

# 3. Files: each package holds its own, nothing else.
contents() { dpkg-deb -c "$(deb "$1")" | awk '{print $6}' | sed 's|^\./|/|'; }
expect_files() {  # expect_files PACKAGE REGEX...: every REGEX matches a file of PACKAGE
  local package=$1 list
  list=$(contents "$package")
  shift
  for pattern in "$@"; do
    grep -qE "^$pattern\$" <<<"$list" || { echo "$list" >&2; fail "$package has no $pattern"; }
  done
}
completions=/usr/share/bash-completion/completions
man1=/usr/share/man/man1
expect_files p2psip-peer /usr/bin/p2psip-peer /usr/bin/p2psip-admin "$man1/p2psip-peer.1.gz" \
  "$man1/p2psip-admin.1.gz" "$completions/p2psip-peer" "$completions/p2psip-admin" \
  "/usr/lib/(.*/)?p2psip/p2psip-admin-http\.so"
if [ -f "$source/packaging/systemd/p2psip-peer.service" ] ||
  [ -f "$source/packaging/systemd/p2psip-peer.service.in" ]; then
  expect_files p2psip-peer /usr/lib/systemd/system/p2psip-peer.service
  for script in postinst postrm; do
    text=$(dpkg-deb -I "$(deb p2psip-peer)" "$script") || fail "p2psip-peer has no $script"
    grep -q 'systemctl daemon-reload' <<<"$text" || fail "p2psip-peer $script: $text"
  done
fi
expect_files p2psip-client /usr/bin/p2psip-client /usr/bin/p2psip-wire "$man1/p2psip-client.1.gz" \
  "$man1/p2psip-wire.1.gz" "$completions/p2psip-client" "$completions/p2psip-wire"
expect_files libp2psip-client0 "/usr/lib/(.*/)?libp2psip-client\.so\.0" \
  "/usr/lib/(.*/)?libp2psip-client\.so\.$version"
expect_files libp2psip-client-dev "/usr/lib/(.*/)?libp2psip-client\.so" \
  /usr/include/p2psip/client/client.hpp /usr/include/p2psip/client/p2psip_client.h \
  "/usr/lib/(.*/)?pkgconfig/p2psip-client\.pc" "/usr/lib/(.*/)?cmake/p2psip/p2psip-config\.cmake"
contents libp2psip-client0 | grep -E '^/usr/(bin|include)/' && fail "libp2psip-client0 has programs or headers"
contents p2psip-client | grep -E 'p2psip-peer|p2psip-admin|\.so' && fail "p2psip-client has another package's files"
ok "package contents"
dpkg-deb -I "$(deb libp2psip-client0)" postinst >/dev/null 2>&1 ||
  fail "libp2psip-client0 has no postinst (ldconfig)"
shlibs=$(dpkg-deb -I "$(deb libp2psip-client0)" shlibs)
grep -q "libp2psip-client 0 libp2psip-client0" <<<"$shlibs" ||
  fail "libp2psip-client0 has no shlibs entry"
ok "libp2psip-client0: shlibs and ldconfig"

# 4. Unpacked into a clean root, the programs run as installed: p2psip-client finds
# libp2psip-client.so.0 through its RPATH ($ORIGIN/../LIBDIR), with no LD_LIBRARY_PATH.
root=$work/root
for package in p2psip-peer p2psip-client libp2psip-client0 libp2psip-client-dev; do
  dpkg -x "$(deb "$package")" "$root"
done
dynamic=$(readelf -d "$root/usr/bin/p2psip-client")
# shellcheck disable=SC2016 # a literal $ORIGIN
grep -E 'R(UN)?PATH' <<<"$dynamic" | grep -qF '$ORIGIN/../' ||
  fail "p2psip-client has no \$ORIGIN RPATH: $(grep PATH <<<"$dynamic")"
resolved=$(env -u LD_LIBRARY_PATH ldd "$root/usr/bin/p2psip-client" |
  sed -n 's/^\s*libp2psip-client\.so\.0 => \(.*\) (0x[0-9a-f]*)$/\1/p')
[ -n "$resolved" ] && [[ $(realpath "$resolved") == "$root/usr/lib/"* ]] ||
  fail "p2psip-client loads libp2psip-client.so.0 from '$resolved'"
ok "p2psip-client loads $root/usr/lib/.../libp2psip-client.so.0 through its RPATH"

quickstart_out=$(env -u LD_LIBRARY_PATH P2PSIP_QUICKSTART_BIN="$root/usr/bin" \
  timeout 120 "$source/scripts/quickstart" 2>&1) || { echo "$quickstart_out" >&2; fail "quick start"; }
grep -q 'hello from bob' <<<"$quickstart_out" &&
  grep -q 'alice@quickstart.example.*hello from alice' <<<"$quickstart_out" ||
  { echo "$quickstart_out" >&2; fail "quick start output"; }
ok "quick start on the unpacked binaries: three peers joined, put and get"

# 4b. The admin HTTP module. The peer's own NEEDED names neither civetweb nor prometheus-cpp (an
# idle peer loads neither); the module does. A peer asked for --admin-listen finds the module
# under the unpacked LIBDIR/p2psip, relative to its own directory, and serves /metrics from it.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
module=$(find "$root/usr/lib" -path '*/p2psip/p2psip-admin-http.so')
[ -n "$module" ] || fail "no p2psip-admin-http.so under $root/usr/lib"
needed "$root/usr/bin/p2psip-peer" | grep -E 'civetweb|prometheus' &&
  fail "p2psip-peer itself needs civetweb or prometheus-cpp"
if [ "$static_peer_libs" = ON ]; then
  # libstdc++ is linked into the peer too; the module, which uses the shared one, meets it at a
  # C boundary.
  needed "$root/usr/bin/p2psip-peer" | grep -q 'libstdc++' &&
    fail "p2psip-peer needs the shared libstdc++ (P2PSIP_STATIC_PEER_LIBS links it statically)"
fi
needed "$module" | grep -q civetweb || fail "the module does not need civetweb"
needed "$module" | grep -q prometheus-cpp-core || fail "the module does not need prometheus-cpp"
admin_work=$work/admin
mkdir -p "$admin_work"
"$root/usr/bin/p2psip-admin" init --overlay debs.example --out "$admin_work/ca" >/dev/null ||
  fail "p2psip-admin init"
"$root/usr/bin/p2psip-admin" enroll --user p@debs.example --out "$admin_work/p" \
  --ca-dir "$admin_work/ca" >/dev/null || fail "p2psip-admin enroll"
env -u LD_LIBRARY_PATH "$root/usr/bin/p2psip-peer" --config "$admin_work/ca/overlay.xml" \
  --cert "$admin_work/p/node.crt" --key "$admin_work/p/node.key" --listen 127.0.0.1:0 --first \
  --memory --admin-listen 127.0.0.1:0 2>"$admin_work/peer.log" &
peer_pid=$!
trap 'kill -KILL $peer_pid 2>/dev/null' EXIT
admin_port=
for _ in $(seq 1 100); do
  admin_port=$(sed -n 's/.*admin HTTP server at 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$admin_work/peer.log")
  [ -n "$admin_port" ] && break
  kill -0 $peer_pid 2>/dev/null || break
  sleep 0.1
done
[ -n "$admin_port" ] || { cat "$admin_work/peer.log" >&2; fail "the unpacked peer started no admin HTTP server"; }
grep -qF "$(realpath "$module")" "/proc/$peer_pid/maps" ||
  fail "the unpacked peer did not map $module"
metrics=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
  printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
  cat <&3' "$admin_port") || fail "GET /metrics from the unpacked peer"
grep -q '^p2psip_uptime_seconds ' <<<"$metrics" || fail "/metrics of the unpacked peer: $metrics"
kill -TERM $peer_pid
for _ in $(seq 1 150); do
  kill -0 $peer_pid 2>/dev/null || break
  sleep 0.1
done
kill -0 $peer_pid 2>/dev/null && fail "the unpacked peer did not stop within 15 s of SIGTERM"
wait $peer_pid || fail "the unpacked peer did not stop cleanly: $(tail -n 5 "$admin_work/peer.log")"
trap - EXIT
ok "the admin HTTP module: only the module needs civetweb and prometheus-cpp; the unpacked peer loads it from $module"

# 5. Man pages: help2man's, from the programs' --help.
expect_page() {  # expect_page PROGRAM OPTION: a help2man page of this version naming OPTION
  local page
  page=$(gzip -dc "$root$man1/$1.1.gz")
  grep -q "^\.TH ${1^^} \"1\" .*\"$1 $version\"" <<<"$page" || fail "$1.1: no .TH line of $version"
  grep -qF -- "$2" <<<"${page//\\-/-}" || fail "$1.1 lacks $2"
}
expect_page p2psip-peer --listen
expect_page p2psip-admin enroll
expect_page p2psip-client --config
expect_page p2psip-wire --frames
ok "man pages"

# 6. Bash completion: what TAB offers after the words given.
complete_words() {  # complete_words PROGRAM WORD...: the candidates for the last WORD, sorted
  local program=$1
  shift
  PATH="$root/usr/bin:$PATH" bash -c '
    source "$0"
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _p2psip_complete
    printf "%s\n" "${COMPREPLY[@]}" | sort' "$root$completions/$program" "$program" "$@"
}
expect_completion() {  # expect_completion CANDIDATE PROGRAM WORD...
  local want=$1 got
  shift
  got=$(complete_words "$@")
  grep -qxF -- "$want" <<<"$got" || fail "completing '$*' offers '$(tr '\n' ' ' <<<"$got")', not $want"
}
expect_completion --config p2psip-client --con
expect_completion put p2psip-client --config overlay.xml --json pu
expect_completion sip p2psip-client si
expect_completion message p2psip-client --peer 127.0.0.1:1 sip me
expect_completion --dict-key p2psip-client fetch --dict
expect_completion --data-dir p2psip-peer --data
expect_completion enroll p2psip-admin en
expect_completion --user p2psip-admin enroll --us
expect_completion add p2psip-admin sip-user a
expect_completion decode p2psip-wire d
expect_completion --node-id-length p2psip-wire decode --node
[ -z "$(complete_words p2psip-peer --no-such-option-prefix)" ] || fail "completion offers unknown options"
ok "bash completions"

# 7. A C program built against the unpacked dev package with pkg-config, as a Makefile would.
pc=$(find "$root" -name p2psip-client.pc)
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=${pc%/*}
flags=$(pkg-config --cflags --libs p2psip-client)
# The .pc file names its prefix relative to itself: the unpacked root, not /usr.
includedir=$(pkg-config --variable=includedir p2psip-client)
[ "$(realpath "$includedir")" = "$root/usr/include" ] || fail "pkg-config includedir $includedir"
sanitize_flags=()
# shellcheck disable=SC2054 # one flag with a comma
[ "$sanitize" = ON ] && sanitize_flags=(-fsanitize=address,undefined)
# shellcheck disable=SC2086 # pkg-config's output is a list of flags
"$cc" -std=c99 -Wall -Wextra -Werror "${sanitize_flags[@]}" \
  "$source/tests/samples/consumer/consumer.c" $flags -pthread -o "$work/pc-consumer"
# The program links against a library outside the loader's path: LD_LIBRARY_PATH (or ldconfig,
# or -Wl,-rpath) is the documented way for a prefix like this one.
LD_LIBRARY_PATH=$libdir "$work/pc-consumer" || fail "the pkg-config consumer"
ok "a C program built with pkg-config against libp2psip-client-dev runs"
echo "PASS"
