#!/usr/bin/env bash
# Tests of the p2psip-admin binary, checked with openssl (certificates, and the signatures of the
# configuration documents it writes).
# usage: admin_cli_test.sh /path/to/p2psip-admin CASE
set -u

ADMIN=$1
CASE=$2
OPENSSL=${OPENSSL:-openssl}
T=$(mktemp -d "${TMPDIR:-/tmp}/p2psip-admin-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() {
  echo "FAIL [$CASE]: $*" >&2
  exit 1
}

# run EXPECTED_EXIT ARGS...: runs the tool, output in $T/out and $T/err.
run() {
  local expected=$1
  shift
  "$ADMIN" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -ne "$expected" ]; then
    echo "--- stdout" >&2; cat "$T/out" >&2
    echo "--- stderr" >&2; cat "$T/err" >&2
    fail "p2psip-admin $* exited $rc, expected $expected"
  fi
}

# An error is exactly one line on stderr.
one_line_error() {
  local lines
  lines=$(wc -l <"$T/err")
  [ "$lines" -eq 1 ] || fail "expected one line on stderr, got $lines: $(cat "$T/err")"
}

has() {  # has FILE REGEX
  grep -Eq -- "$2" "$1" || fail "$1 does not match '$2': $(cat "$1")"
}

has_text() {  # has_text FILE TEXT (no regular expression)
  grep -Fq -- "$2" "$1" || fail "$1 does not contain '$2': $(cat "$1")"
}

mode_of() {
  stat -c %a "$1"
}

# split_pem FILE PREFIX: PREFIX1.pem, PREFIX2.pem, ... one PEM block each; prints the count.
split_pem() {
  awk -v p="$2" '/-----BEGIN /{n++} n{print > (p n ".pem")} END{print n+0}' "$1"
}

init_overlay() {
  run 0 init --overlay example.org --out "$T/ca" "$@"
}

# signed_part FILE WHAT OUTPREFIX: the exact text WHAT ("configuration" or "kind", the first
# kind-block's <kind>) covers in the document, and the SecurityBlock of its signature split into
# OUTPREFIX.txt (signed bytes), .der (the signer's certificate), .sig (the signature value) and
# .alg ("hash signature" numbers). RFC 6940 11.1 and 6.3.4; python3 only reads bytes here, the
# cryptography is openssl's.
signed_part() {
  python3 - "$1" "$2" "$3" <<'EOF'
import base64, hashlib, re, sys
doc, what, out = open(sys.argv[1], 'rb').read(), sys.argv[2], sys.argv[3]
if what == 'configuration':
    start = doc.index(b'<configuration')
    end = doc.index(b'</configuration>', start) + len(b'</configuration>')
    sig = re.compile(rb'\s*<signature>([^<]*)</signature>').match(doc, end)
else:
    start = doc.index(b'<kind ')
    end = doc.index(b'</kind>', start) + len(b'</kind>')
    sig = re.compile(rb'\s*<kind-signature>([^<]*)</kind-signature>').match(doc, end)
if not sig:
    sys.exit('no signature after the ' + what)
block = base64.b64decode(sig.group(1))
def u(n, at): return int.from_bytes(block[at:at + n], 'big'), at + n
certs_len, at = u(2, 0)
certs_end = at + certs_len
kind, at = u(1, at)
cert_len, at = u(2, at)
cert = block[at:at + cert_len]
at = certs_end
hash_alg, at = u(1, at)
sig_alg, at = u(1, at)
id_type, at = u(1, at)
id_len, at = u(2, at)
identity = block[at:at + id_len]
at += id_len
value_len, at = u(2, at)
value = block[at:at + value_len]
if kind != 0 or at + value_len != len(block):
    sys.exit('malformed SecurityBlock')
# SignerIdentity cert_hash (1): HashAlgorithm sha256 (4), then the hash of the certificate.
if id_type != 1 or identity != bytes([4, 32]) + hashlib.sha256(cert).digest():
    sys.exit('SignerIdentity is not cert_hash of the certificate in the bucket')
open(out + '.txt', 'wb').write(doc[start:end])
open(out + '.der', 'wb').write(cert)
open(out + '.sig', 'wb').write(value)
open(out + '.alg', 'w').write('%d %d\n' % (hash_alg, sig_alg))
EOF
}

# verify_signed FILE WHAT: openssl verifies WHAT's signature in FILE with the signer's certificate,
# which must chain to the CA and carry the Document Signing usage.
verify_signed() {
  local p=$T/signed-$2
  signed_part "$1" "$2" "$p" || fail "$1: cannot read the $2 signature"
  # Ed25519: hash 8 (intrinsic), signature 7 (RFC 8422).
  [ "$(cat "$p.alg")" = "8 7" ] || fail "$2 signature algorithm is $(cat "$p.alg"), expected Ed25519"
  "$OPENSSL" x509 -inform DER -in "$p.der" -out "$p.pem" || fail "the signer's certificate is unreadable"
  "$OPENSSL" verify -CAfile "$T/ca/ca.crt" "$p.pem" >/dev/null || fail "the signer's certificate does not chain to ca.crt"
  "$OPENSSL" x509 -in "$p.pem" -noout -ext extendedKeyUsage | grep -q '1\.3\.6\.1\.5\.5\.7\.3\.36' ||
    fail "the signer's certificate lacks the Document Signing usage"
  "$OPENSSL" x509 -in "$p.pem" -noout -pubkey >"$p.pub"
  "$OPENSSL" pkeyutl -verify -pubin -inkey "$p.pub" -rawin -in "$p.txt" -sigfile "$p.sig" >/dev/null ||
    fail "openssl: the $2 signature of $1 does not verify"
}

enroll() {  # enroll USER OUTDIR [more args]
  local user=$1 out=$2
  shift 2
  run 0 enroll --user "$user" --out "$out" --ca-dir "$T/ca" "$@"
}

case_init_enroll() {
  init_overlay --bootstrap 192.0.2.1:6084 --bootstrap '[2001:db8::1]:7000'
  for f in ca.key ca.crt overlay.xml; do [ -f "$T/ca/$f" ] || fail "init did not write $f"; done
  "$OPENSSL" x509 -in "$T/ca/ca.crt" -noout -text >"$T/ca.txt" || fail "ca.crt unreadable"
  has "$T/ca.txt" "CA:TRUE"
  has "$T/ca.txt" "Certificate Sign"
  "$OPENSSL" pkey -in "$T/ca/ca.key" -noout || fail "ca.key unreadable"
  # The configuration names the overlay and holds the CA as its root-cert.
  local der64
  der64=$("$OPENSSL" x509 -in "$T/ca/ca.crt" -outform DER | base64 -w0)
  has_text "$T/ca/overlay.xml" "<root-cert>$der64</root-cert>"
  has "$T/ca/overlay.xml" 'instance-name="example.org"'
  has "$T/ca/overlay.xml" '<topology-plugin>CHORD-RELOAD</topology-plugin>'
  has "$T/ca/overlay.xml" '<node-id-length>16</node-id-length>'
  has "$T/ca/overlay.xml" '<bootstrap-node address="2001:db8::1" port="7000" />'
  has "$T/ca/overlay.xml" '<access-control>P2PSIP-GENERIC</access-control>'
  # Signed (RFC 6940 11.1) by the configuration signer the CA issued, listed by its Node-ID.
  for f in config-signer.key config-signer.crt; do [ -f "$T/ca/$f" ] || fail "init did not write $f"; done
  local signer
  signer=$(grep -Eo 'node-id [0-9a-f]{32}' "$T/out" | awk '{print $2}')
  [ -n "$signer" ] || fail "init did not print the signer's Node-ID: $(cat "$T/out")"
  has "$T/ca/overlay.xml" "<configuration-signer>$signer</configuration-signer>"
  has "$T/ca/overlay.xml" "<kind-signer>$signer</kind-signer>"
  [ "$(grep -c '<kind-signature>' "$T/ca/overlay.xml")" -eq 5 ] || fail "not every kind-block is signed"
  verify_signed "$T/ca/overlay.xml" configuration
  verify_signed "$T/ca/overlay.xml" kind
  # One byte changed in the signed text: openssl refuses it too.
  sed 's|<max-message-size>32768<|<max-message-size>32769<|' "$T/ca/overlay.xml" >"$T/tampered.xml"
  signed_part "$T/tampered.xml" configuration "$T/tampered"
  "$OPENSSL" pkeyutl -verify -pubin -inkey "$T/signed-configuration.pub" -rawin -in "$T/tampered.txt" \
    -sigfile "$T/tampered.sig" >/dev/null 2>&1 && fail "openssl verified a tampered configuration"

  enroll alice@example.org "$T/alice" --nodes 2
  grep -Eo 'node-id [0-9a-f]{32}' "$T/out" | awk '{print $2}' >"$T/ids"
  grep -qxF "$signer" "$T/ids" && fail "alice got the configuration signer's Node-ID"
  [ "$(wc -l <"$T/ids")" -eq 2 ] || fail "enroll did not print two Node-IDs: $(cat "$T/out")"

  [ "$(split_pem "$T/alice/node.crt" "$T/cert")" -eq 2 ] || fail "node.crt does not hold two certificates"
  [ "$(split_pem "$T/alice/node.key" "$T/key")" -eq 2 ] || fail "node.key does not hold two keys"
  for i in 1 2; do
    "$OPENSSL" verify -CAfile "$T/ca/ca.crt" "$T/cert$i.pem" >"$T/verify" 2>&1 ||
      fail "openssl verify failed for certificate $i: $(cat "$T/verify")"
    has "$T/verify" ': OK$'
    "$OPENSSL" x509 -in "$T/cert$i.pem" -noout -text >"$T/cert$i.txt"
    has "$T/cert$i.txt" "email:alice@example.org"
    while read -r id; do
      has "$T/cert$i.txt" "URI:reload://0110$id@example.org/"
    done <"$T/ids"
    has "$T/cert$i.txt" "Subject Alternative Name: critical"
    # RFC 6940 11.3: the subject distinguished name is empty.
    [ "$("$OPENSSL" x509 -in "$T/cert$i.pem" -noout -subject | tr -d ' ')" = "subject=" ] ||
      fail "certificate $i has a subject"
    # Every key belongs to one of the certificates.
    "$OPENSSL" x509 -in "$T/cert$i.pem" -noout -pubkey >"$T/certpub$i"
    "$OPENSSL" pkey -in "$T/key$i.pem" -pubout >"$T/keypub$i" || fail "key $i unreadable"
  done
  has "$T/cert1.txt" "NIST CURVE: P-256"
  has "$T/cert1.txt" "TLS Web Server Authentication, TLS Web Client Authentication"
  has "$T/cert2.txt" "ED25519"
  for i in 1 2; do
    cmp -s "$T/keypub$i" "$T/certpub1" || cmp -s "$T/keypub$i" "$T/certpub2" ||
      fail "key $i matches no certificate"
  done
  cmp -s "$T/keypub1" "$T/keypub2" && fail "the two keys are the same"
  return 0
}

case_modes() {
  umask 000
  init_overlay
  enroll bob@example.org "$T/bob"
  [ "$(mode_of "$T/ca/ca.key")" = 600 ] || fail "ca.key has mode $(mode_of "$T/ca/ca.key")"
  [ "$(mode_of "$T/bob/node.key")" = 600 ] || fail "node.key has mode $(mode_of "$T/bob/node.key")"
  [ "$(mode_of "$T/ca/ca.crt")" = 644 ] || fail "ca.crt has mode $(mode_of "$T/ca/ca.crt")"
  [ "$(mode_of "$T/ca/config-signer.key")" = 600 ] || fail "config-signer.key has mode $(mode_of "$T/ca/config-signer.key")"
  [ "$(mode_of "$T/ca/config-signer.crt")" = 644 ] || fail "config-signer.crt has mode $(mode_of "$T/ca/config-signer.crt")"
  [ "$(mode_of "$T/ca/overlay.xml")" = 644 ] || fail "overlay.xml has mode $(mode_of "$T/ca/overlay.xml")"
  [ "$(mode_of "$T/bob/node.crt")" = 644 ] || fail "node.crt has mode $(mode_of "$T/bob/node.crt")"
  [ "$(mode_of "$T/ca")" = 700 ] || fail "the CA directory has mode $(mode_of "$T/ca")"
  run 0 enroll --user carol@example.org --out "$T/carol" --ca-dir "$T/ca" --name phone
  [ "$(mode_of "$T/carol/phone.key")" = 600 ] || fail "phone.key has mode $(mode_of "$T/carol/phone.key")"
  ls -A "$T/ca" "$T/bob" | grep -q '^\.' && fail "temporary files left behind: $(ls -A "$T/ca" "$T/bob")"
  return 0
}

case_overwrite() {
  init_overlay
  local before after
  before=$(sha256sum <"$T/ca/ca.crt")
  run 1 init --overlay example.org --out "$T/ca"
  one_line_error
  has "$T/err" "ca.key exists \(use --force to overwrite\)"
  [ "$(sha256sum <"$T/ca/ca.crt")" = "$before" ] || fail "init without --force changed ca.crt"
  # Refused even when only one of the files is there.
  rm "$T/ca/ca.key" "$T/ca/ca.crt"
  run 1 init --overlay example.org --out "$T/ca"
  has "$T/err" "overlay.xml exists"
  [ ! -e "$T/ca/ca.key" ] || fail "a refused init wrote ca.key"
  run 0 init --overlay example.org --out "$T/ca" --force
  after=$(sha256sum <"$T/ca/ca.crt")
  [ "$after" != "$before" ] || fail "init --force did not replace ca.crt"
  [ "$(mode_of "$T/ca/ca.key")" = 600 ] || fail "ca.key lost its mode on --force"

  enroll alice@example.org "$T/alice"
  before=$(sha256sum <"$T/alice/node.crt")
  run 1 enroll --user alice@example.org --out "$T/alice" --ca-dir "$T/ca"
  one_line_error
  has "$T/err" "node.crt exists \(use --force to overwrite\)"
  [ "$(sha256sum <"$T/alice/node.crt")" = "$before" ] || fail "enroll without --force changed node.crt"
  run 0 enroll --user alice@example.org --out "$T/alice" --ca-dir "$T/ca" --force
  [ "$(sha256sum <"$T/alice/node.crt")" != "$before" ] || fail "enroll --force did not replace node.crt"
  "$OPENSSL" verify -CAfile "$T/ca/ca.crt" "$T/alice/node.crt" >/dev/null || fail "re-issued cert does not verify"
  [ "$(mode_of "$T/alice/node.key")" = 600 ] || fail "node.key lost its mode on --force"
  return 0
}

case_reenroll() {
  init_overlay
  enroll alice@example.org "$T/a1" --nodes 2
  grep -Eo '[0-9a-f]{32}' "$T/out" >"$T/ids1"
  enroll alice@example.org "$T/a2" --nodes 3
  grep -Eo '[0-9a-f]{32}' "$T/out" >"$T/ids2"
  # RFC 6940 11.3: a returning user gets the same Node-IDs (and here one more).
  [ "$(head -2 "$T/ids2")" = "$(cat "$T/ids1")" ] || fail "re-enrollment changed the Node-IDs"
  [ "$(sort -u "$T/ids2" | wc -l)" -eq 3 ] || fail "expected three distinct Node-IDs"
  enroll bob@example.org "$T/b"
  grep -Eo '[0-9a-f]{32}' "$T/out" >"$T/idsb"
  grep -qxFf "$T/idsb" "$T/ids2" && fail "bob got one of alice's Node-IDs"
  has "$T/ca/enrollments.txt" "^alice@example.org( [0-9a-f]{32}){3}$"
  has "$T/ca/enrollments.txt" "^bob@example.org [0-9a-f]{32}$"
  [ "$(mode_of "$T/ca/enrollments.txt")" = 600 ] || fail "enrollments.txt has mode $(mode_of "$T/ca/enrollments.txt")"
  return 0
}

case_add_bootstrap() {
  init_overlay
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^bootstrap: +0$"
  has "$T/out" "^sequence: +1$"
  run 0 add-bootstrap 198.51.100.7:6085 --config "$T/ca/overlay.xml"
  has "$T/out" "added bootstrap-node 198.51.100.7:6085, sequence 2"
  run 0 add-bootstrap '[2001:DB8::5]:7000' --config "$T/ca/overlay.xml"
  run 0 add-bootstrap 203.0.113.9 --config "$T/ca/overlay.xml"
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^sequence: +4$"
  has "$T/out" "^bootstrap: +3$"
  has "$T/out" "^  198\.51\.100\.7:6085$"
  has "$T/out" "^  \[2001:db8::5\]:7000$"
  has "$T/out" "^  203\.0\.113\.9:6084$"
  # Signed again after every edit.
  has "$T/out" "^signatures: +1, verified$"
  verify_signed "$T/ca/overlay.xml" configuration
  # Already listed: nothing changes.
  local before
  before=$(sha256sum <"$T/ca/overlay.xml")
  run 0 add-bootstrap 198.51.100.7:6085 --config "$T/ca/overlay.xml"
  has "$T/out" "already listed"
  [ "$(sha256sum <"$T/ca/overlay.xml")" = "$before" ] || fail "a duplicate changed the document"
  # The default document is ./overlay.xml; its mode is kept.
  chmod 640 "$T/ca/overlay.xml"
  (cd "$T/ca" && "$ADMIN" add-bootstrap 192.0.2.44:6084 >"$T/out" 2>"$T/err") || fail "add-bootstrap in the CA directory failed: $(cat "$T/err")"
  [ "$(mode_of "$T/ca/overlay.xml")" = 640 ] || fail "add-bootstrap changed the document's mode"
  has "$T/ca/overlay.xml" '<bootstrap-node address="192.0.2.44" port="6084" />'
  # The edited document still serves enrollment.
  enroll dave@example.org "$T/dave"
  "$OPENSSL" verify -CAfile "$T/ca/ca.crt" "$T/dave/node.crt" >/dev/null || fail "cert after edits does not verify"
  # A missing document is a configuration error (6, as in every p2psip tool), not a usage error.
  run 6 add-bootstrap 192.0.2.1:6084 --config "$T/nowhere.xml"
  one_line_error
  # A document whose signature does not verify is not signed again without --force.
  sed -i 's|<max-message-size>32768<|<max-message-size>32769<|' "$T/ca/overlay.xml"
  before=$(sha256sum <"$T/ca/overlay.xml")
  run 1 add-bootstrap 192.0.2.45:6084 --config "$T/ca/overlay.xml"
  one_line_error
  has "$T/err" "overlay.xml: overlay/signature: signature does not verify \(use --force"
  [ "$(sha256sum <"$T/ca/overlay.xml")" = "$before" ] || fail "a refused add-bootstrap changed the document"
  run 0 add-bootstrap 192.0.2.45:6084 --config "$T/ca/overlay.xml" --force
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^signatures: +1, verified$"
  # A copy elsewhere: signed with the CA directory given, refused without it.
  mkdir "$T/elsewhere"
  cp "$T/ca/overlay.xml" "$T/elsewhere/overlay.xml"
  run 6 add-bootstrap 192.0.2.46:6084 --config "$T/elsewhere/overlay.xml"
  one_line_error
  has "$T/err" "elsewhere/ca.crt"
  run 0 add-bootstrap 192.0.2.46:6084 --config "$T/elsewhere/overlay.xml" --ca-dir "$T/ca"
  verify_signed "$T/elsewhere/overlay.xml" configuration
  return 0
}

case_sign() {
  init_overlay
  local signer
  signer=$(grep -Eo 'node-id [0-9a-f]{32}' "$T/out" | awk '{print $2}')
  # A hand edit voids the signature; show says so (and still exits 0).
  sed -i 's|<max-message-size>32768<|<max-message-size>65000<|' "$T/ca/overlay.xml"
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^signatures: +1, NOT verified: overlay/signature: signature does not verify$"
  run 0 sign --config "$T/ca/overlay.xml"
  has "$T/out" "overlay.xml: signed by configuration-signer $signer, sequence 1$"
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^signatures: +1, verified$"
  has "$T/out" "max-message-size 65000"
  verify_signed "$T/ca/overlay.xml" configuration
  verify_signed "$T/ca/overlay.xml" kind
  # Kinds added by hand get their kind-signatures.
  python3 - "$T/ca/overlay.xml" <<'EOF'
import sys
p = sys.argv[1]
d = open(p).read().replace('</required-kinds>', '<kind-block><kind id="4000"><data-model>SINGLE</data-model><access-control>USER-MATCH</access-control><max-count>1</max-count><max-size>256</max-size></kind></kind-block></required-kinds>')
open(p, 'w').write(d)
EOF
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^signatures: +1, NOT verified"
  (cd "$T/ca" && "$ADMIN" sign >"$T/out" 2>"$T/err") || fail "sign in the CA directory failed: $(cat "$T/err")"
  [ "$(grep -c '<kind-signature>' "$T/ca/overlay.xml")" -eq 6 ] || fail "the added kind-block is not signed"
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^  4000: SINGLE, USER-MATCH, max-count 1, max-size 256, signed$"
  has "$T/out" "^signatures: +1, verified$"
  # A CA directory from before documents were signed: a signer is issued on first use and listed
  # beside the old one.
  rm "$T/ca/config-signer.key" "$T/ca/config-signer.crt"
  run 0 sign --config "$T/ca/overlay.xml"
  [ -f "$T/ca/config-signer.crt" ] || fail "sign did not issue a configuration signer"
  [ "$(mode_of "$T/ca/config-signer.key")" = 600 ] || fail "config-signer.key has mode $(mode_of "$T/ca/config-signer.key")"
  [ "$(grep -c '<configuration-signer>' "$T/ca/overlay.xml")" -eq 2 ] || fail "the new signer is not listed"
  verify_signed "$T/ca/overlay.xml" configuration
  # The signer's user name is not for enrolment; another CA's directory cannot sign.
  run 1 enroll --user configuration-signer@example.org --out "$T/x" --ca-dir "$T/ca"
  one_line_error
  has "$T/err" "reserved for the configuration signer"
  run 0 init --overlay example.org --out "$T/other"
  run 1 sign --config "$T/ca/overlay.xml" --ca-dir "$T/other"
  one_line_error
  has "$T/err" "other/ca.crt is not a root-cert of"
  return 0
}

case_show() {
  init_overlay
  enroll alice@example.org "$T/alice" --nodes 2
  run 0 show "$T/alice/node.crt"
  has "$T/out" "^certificate 1 of 2$"
  has "$T/out" "^  subject: +\(empty\)$"
  has "$T/out" "^  issuer: +CN=\"example.org overlay CA\""
  has "$T/out" "^  user: +alice@example.org$"
  [ "$(grep -c '^  node-id: .* in overlay example.org$' "$T/out")" -eq 4 ] || fail "expected 2 Node-IDs per certificate"
  has "$T/out" "^  key: +ECDSA P-256$"
  has "$T/out" "^  key: +Ed25519$"
  has "$T/out" "^  valid: +[0-9-]+T[0-9:]+Z to [0-9-]+T[0-9:]+Z$"
  has "$T/out" "^  CA: +no$"
  run 0 show "$T/ca/ca.crt"
  has "$T/out" "^  CA: +yes$"
  "$OPENSSL" x509 -in "$T/ca/ca.crt" -outform DER -out "$T/ca.der"
  run 0 show "$T/ca.der"
  has "$T/out" "^  key: +ECDSA P-256$"
  run 0 show "$T/ca/overlay.xml"
  has "$T/out" "^overlay: +example.org$"
  has "$T/out" "^topology: +CHORD-RELOAD, node-id-length 16$"
  has "$T/out" "^root certs: +1$"
  has "$T/out" "^kinds: +5$"
  has "$T/out" "^  1 SIP-REGISTRATION: DICTIONARY, USER-NODE-MATCH"
  has "$T/out" "^  3 CERTIFICATE_BY_NODE: ARRAY, NODE-MATCH"
  has "$T/out" "^  16 CERTIFICATE_BY_USER: ARRAY, USER-MATCH"
  has "$T/out" "^  4026532097 p2psip-generic: DICTIONARY, P2PSIP-GENERIC"
  has "$T/out" "^chord: +update 600 s, ping 3600 s, reactive true$"
  has "$T/out" "^config-signer: [0-9a-f]{32}$"
  has "$T/out" "^signatures: +1, verified$"
  # Failures: one line, exit 1.
  sed 's|<node-id-length>16</node-id-length>|<node-id-length>12</node-id-length>|' "$T/ca/overlay.xml" >"$T/bad.xml"
  run 1 show "$T/bad.xml"
  one_line_error
  has "$T/err" "bad.xml: configuration/node-id-length: 12 is outside 16..20$"
  echo "hello" >"$T/garbage"
  run 1 show "$T/garbage"
  one_line_error
  run 1 show "$T/missing.crt"
  one_line_error
  return 0
}

case_bad_args() {
  run 2
  run 2 frobnicate
  one_line_error
  run 0 --help
  has "$T/out" "^usage: p2psip-admin"
  run 0 init --help
  run 2 init
  one_line_error
  run 2 init --overlay example.org
  one_line_error
  run 2 init --out "$T/x"
  run 2 init --overlay 'bad name!' --out "$T/x"
  one_line_error
  run 2 init --overlay example.org --out "$T/x" --colour red
  one_line_error
  run 2 init --overlay example.org --out "$T/x" --bootstrap boot.example.org:6084
  one_line_error
  run 2 init --overlay example.org --out "$T/x" --bootstrap 192.0.2.1:99999
  run 2 init --overlay example.org --out "$T/x" --days 0
  run 2 init --overlay example.org --out "$T/x" --days many
  has_text "$T/err" "--days 'many': not a valid number"
  run 2 init --overlay example.org --out "$T/x" --colour red
  has_text "$T/err" "unknown option --colour"
  LC_ALL=C grep -q '[^ -~]' "$T/err" && fail "non-ASCII in a usage error: $(cat "$T/err")"
  run 0 --version
  has "$T/out" "^p2psip-admin \(p2psip\) [0-9]+\.[0-9]+\.[0-9]+$"
  run 0 --help
  has "$T/out" "^  6  bad configuration"
  [ ! -e "$T/x" ] || fail "a refused init created its directory"
  run 2 enroll
  run 2 enroll --user alice --out "$T/y"
  one_line_error
  run 2 enroll --user 'al ice@example.org' --out "$T/y"
  run 2 enroll --user alice@example.org --out "$T/y" --nodes 0
  run 2 enroll --user alice@example.org --out "$T/y" --nodes 17
  run 2 enroll --user alice@example.org --out "$T/y" --nodes abc
  one_line_error
  run 2 enroll --user alice@example.org --out "$T/y" --name ../escape
  run 2 enroll --user alice@example.org --out "$T/y" extra
  run 2 add-bootstrap
  run 2 add-bootstrap host.example.org:6084
  one_line_error
  run 2 add-bootstrap 192.0.2.1:0
  run 2 show
  run 2 show a b
  run 2 sign extra
  one_line_error
  run 2 sign --colour red
  # Not usage errors: the CA directory is missing (6: its configuration cannot be loaded).
  run 6 enroll --user alice@example.org --out "$T/y" --ca-dir "$T/no-ca"
  one_line_error
  [ ! -e "$T/y" ] || fail "a failed enroll created its directory"
  return 0
}

# ---- sip-user ----

sip_user_add() {  # sip_user_add AOR PASSWORD [more args]: the password from a file
  local aor=$1 password=$2
  shift 2
  printf '%s\n' "$password" >"$T/pw"
  run 0 sip-user add "$aor" --users "$T/users.json" --ca-dir "$T/ca" --password-file "$T/pw" "$@"
}

# ha1 ALGORITHM USER REALM PASSWORD: H(user:realm:password) in hex, computed apart from the tool.
ha1() {
  python3 -c 'import hashlib, sys; print(hashlib.new(sys.argv[1], ":".join(sys.argv[2:5]).encode()).hexdigest())' "$@"
}

# json_field FILE INDEX FIELD: users[INDEX].FIELD of a users file.
json_field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["users"][int(sys.argv[2])][sys.argv[3]])' "$@"
}

user_count() {
  python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["users"]))' "$1"
}

case_sip_user_round_trip() {
  umask 000
  init_overlay
  mkdir -m 700 "$T/etc"
  cd "$T/etc" || fail "cd"
  # A relative users file and no --out: the file records absolute credential paths.
  printf 'correct horse\nsecond line ignored\n' >"$T/pw"
  run 0 sip-user add sip:alice@Example.ORG --users users.json --ca-dir "$T/ca" --password-file "$T/pw"
  has "$T/out" "^enrolled alice@example.org in overlay example.org"
  has "$T/out" "^added sip:alice@example.org in users.json \(digest user alice, realm example.org"
  [ "$(mode_of "$T/etc/users.json")" = 600 ] || fail "users.json has mode $(mode_of "$T/etc/users.json")"
  [ "$(mode_of "$T/etc/alice@example.org.key")" = 600 ] || fail "the key has mode $(mode_of "$T/etc/alice@example.org.key")"
  # The password from standard input (not a terminal, no line end), credentials elsewhere.
  printf 'hunter2' | "$ADMIN" sip-user add sip:bob@example.org --users "$T/etc/users.json" --ca-dir "$T/ca" \
    --out "$T/bob" --days 30 >"$T/out" 2>"$T/err" || fail "add from stdin failed: $(cat "$T/err")"
  cd "$T" || fail "cd"
  local u=$T/etc/users.json
  # Never a password; the HA1 values are the formulas' (RFC 7616 3.4.2, realm = overlay name).
  grep -q 'correct horse' "$u" && fail "the password is in the users file"
  grep -q 'hunter2' "$u" && fail "the password is in the users file"
  grep -q 'second line' "$u" && fail "more than the first line was read"
  [ "$(json_field "$u" 0 aor)" = "sip:alice@example.org" ] || fail "users[0].aor"
  [ "$(json_field "$u" 0 username)" = "alice" ] || fail "users[0].username"
  [ "$(json_field "$u" 0 realm)" = "example.org" ] || fail "users[0].realm"
  [ "$(json_field "$u" 0 ha1_md5)" = "$(ha1 md5 alice example.org 'correct horse')" ] || fail "alice's MD5 HA1"
  [ "$(json_field "$u" 0 ha1_sha256)" = "$(ha1 sha256 alice example.org 'correct horse')" ] || fail "alice's SHA-256 HA1"
  [ "$(json_field "$u" 1 ha1_md5)" = "$(ha1 md5 bob example.org hunter2)" ] || fail "bob's MD5 HA1"
  [ "$(json_field "$u" 1 ha1_sha256)" = "$(ha1 sha256 bob example.org hunter2)" ] || fail "bob's SHA-256 HA1"
  [ "$(json_field "$u" 0 certificate)" = "$T/etc/alice@example.org.crt" ] || fail "users[0].certificate: $(json_field "$u" 0 certificate)"
  [ "$(json_field "$u" 0 private_key)" = "$T/etc/alice@example.org.key" ] || fail "users[0].private_key"
  [ "$(json_field "$u" 1 certificate)" = "$T/bob/bob@example.org.crt" ] || fail "users[1].certificate"
  # The credentials: user certificates of the overlay CA naming the AOR's user@host.
  local who i
  for who in "etc/alice@example.org" "bob/bob@example.org"; do
    [ "$(split_pem "$T/$who.crt" "$T/sipcert")" -eq 2 ] || fail "$who.crt does not hold two certificates"
    for i in 1 2; do
      "$OPENSSL" verify -CAfile "$T/ca/ca.crt" "$T/sipcert$i.pem" >/dev/null || fail "$who.crt: certificate $i does not verify"
      "$OPENSSL" x509 -in "$T/sipcert$i.pem" -noout -text >"$T/sipcert.txt"
      has "$T/sipcert.txt" "email:${who##*/}(,|$)"
      # One Node-ID per device (--devices, default 4): the SIP-REGISTRATION dictionary keys.
      [ "$(grep -oE 'URI:reload://0110[0-9a-f]{32}@example.org/' "$T/sipcert.txt" | wc -l)" -eq 4 ] ||
        fail "$who.crt: certificate $i does not carry 4 Node-IDs"
    done
  done
  has "$T/ca/enrollments.txt" "^alice@example.org( [0-9a-f]{32}){4}$"
  # list: text and JSON, never an HA1.
  run 0 sip-user list --users "$u"
  [ "$(wc -l <"$T/out")" -eq 2 ] || fail "list printed $(wc -l <"$T/out") lines"
  has_text "$T/out" "sip:alice@example.org  user alice  realm example.org  certificate $T/etc/alice@example.org.crt"
  has "$T/out" "^sip:bob@example.org  user bob  realm example.org"
  grep -q "$(json_field "$u" 0 ha1_md5)" "$T/out" && fail "list printed an HA1"
  run 0 sip-user list --users "$u" --json
  python3 -c '
import json, sys
users = json.load(open(sys.argv[1]))
assert [u["aor"] for u in users] == ["sip:alice@example.org", "sip:bob@example.org"], users
assert all(set(u) == {"aor", "username", "realm", "certificate", "private_key"} for u in users), users
' "$T/out" || fail "list --json: $(cat "$T/out")"
  # remove: by AOR under the registrar's comparison (sips, host case); the credentials stay.
  run 0 sip-user remove sips:alice@EXAMPLE.org --users "$u"
  has_text "$T/out" "removed sip:alice@example.org from $u; its credential files are kept:"
  [ -f "$T/etc/alice@example.org.crt" ] || fail "remove deleted the certificate"
  [ "$(mode_of "$u")" = 600 ] || fail "users.json has mode $(mode_of "$u") after remove"
  run 0 sip-user list --users "$u"
  [ "$(cat "$T/out")" = "sip:bob@example.org  user bob  realm example.org  certificate $T/bob/bob@example.org.crt" ] ||
    fail "after remove: $(cat "$T/out")"
  run 1 sip-user remove sip:alice@example.org --users "$u"
  one_line_error
  has_text "$T/err" "p2psip-admin sip-user remove: sip:alice@example.org is not in $u"
  # Added again (over its old files): the same Node-ID (RFC 6940 11.3), the new password's HA1.
  printf 'new pass\n' >"$T/pw"
  run 0 sip-user add sip:alice@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/pw" \
    --out "$T/etc" --force
  [ "$(user_count "$u")" = 2 ] || fail "expected two users"
  [ "$(json_field "$u" 1 ha1_md5)" = "$(ha1 md5 alice example.org 'new pass')" ] || fail "re-added alice's HA1"
  [ "$(grep -c '^alice@example.org ' "$T/ca/enrollments.txt")" -eq 1 ] || fail "alice enrolled twice"
  ls -A "$T/etc" "$T/bob" | grep -q '^\.' && fail "temporary files left behind: $(ls -A "$T/etc" "$T/bob")"
  return 0
}

# Runs `sip-user add` on a pseudo-terminal (no password file): it must refuse with exit 2.
add_on_terminal() {  # add_on_terminal USERS
  python3 - "$ADMIN" "$1" "$T/ca" <<'PYTHON'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], 'sip-user', 'add', 'sip:carol@example.org', '--users',
                           sys.argv[2], '--ca-dir', sys.argv[3]])
out = b''
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
print(out.decode().strip())
sys.exit(0 if os.waitstatus_to_exitcode(status) == 2 else 1)
PYTHON
}

case_sip_user_refusals() {
  init_overlay
  local u=$T/users.json before aor
  sip_user_add sip:alice@example.org 'first' --out "$T/creds"
  before=$(sha256sum <"$u")
  # A duplicate is refused without --force, whatever the AOR's spelling.
  printf 'second\n' >"$T/pw"
  for aor in sip:alice@example.org sip:alice@EXAMPLE.org; do
    run 1 sip-user add "$aor" --users "$u" --ca-dir "$T/ca" --password-file "$T/pw" --out "$T/creds2"
    one_line_error
    has_text "$T/err" "p2psip-admin sip-user add: sip:alice@example.org is already in $u (use --force to replace it)"
  done
  [ "$(sha256sum <"$u")" = "$before" ] || fail "a refused add changed the users file"
  [ ! -e "$T/creds2" ] || fail "a refused add issued credentials"
  # --force replaces the entry (and the credential files).
  sip_user_add sip:alice@example.org 'second' --out "$T/creds" --force
  has_text "$T/out" "replaced sip:alice@example.org in $u"
  [ "$(user_count "$u")" = 1 ] || fail "--force added a second entry"
  [ "$(json_field "$u" 0 ha1_md5)" = "$(ha1 md5 alice example.org second)" ] || fail "--force did not replace the HA1"
  # Without --force, existing credential files are refused too (and the file is unchanged).
  sip_user_add sip:bob@example.org 'pw' --out "$T/creds"
  run 0 sip-user remove sip:bob@example.org --users "$u"
  before=$(sha256sum <"$u")
  run 1 sip-user add sip:bob@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/pw" --out "$T/creds"
  one_line_error
  has "$T/err" "bob@example.org.crt exists \(use --force to overwrite\)"
  [ "$(sha256sum <"$u")" = "$before" ] || fail "a refused add changed the users file"
  # Two users whose credential file names meet: --force does not overwrite the other's.
  sip_user_add 'sip:d!n@example.org' 'pw' --out "$T/creds"
  [ -f "$T/creds/d_n@example.org.crt" ] || fail "no d_n@example.org.crt: $(ls "$T/creds")"
  before=$(sha256sum <"$T/creds/d_n@example.org.crt")
  run 1 sip-user add sip:d_n@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/pw" \
    --out "$T/creds" --force
  one_line_error
  has_text "$T/err" "d_n@example.org.crt holds sip:d!n@example.org's credentials; use another --out"
  [ "$(sha256sum <"$T/creds/d_n@example.org.crt")" = "$before" ] || fail "--force overwrote another user's credentials"
  run 0 sip-user remove 'sip:d!n@example.org' --users "$u"
  # The users file's directory is made (mode 0700) when missing.
  run 0 sip-user add sip:erin@example.org --users "$T/new/dir/users.json" --ca-dir "$T/ca" \
    --password-file "$T/pw" --out "$T/creds"
  [ "$(mode_of "$T/new/dir/users.json")" = 600 ] || fail "new users file has mode $(mode_of "$T/new/dir/users.json")"
  before=$(sha256sum <"$u")
  # Bad AORs are usage errors; nothing is written.
  for aor in alice@example.org sip:example.org sips:carol@example.org tel:+15551234 \
    sip:carol@example.org:5060 'sip:carol@example.org;transport=tcp' 'sip:carol:pw@example.org' \
    'sip:c%61rol@example.org' 'sip:carol@bad_host!' '' 'sip:car ol@example.org' \
    'sip:carol@example.org?subject=x' 'sip:.carol@example.org'; do
    run 2 sip-user add "$aor" --users "$u" --ca-dir "$T/ca" --password-file "$T/pw"
    one_line_error
    has_text "$T/err" "p2psip-admin sip-user add: '$aor' "
  done
  [ "$(sha256sum <"$u")" = "$before" ] || fail "a bad AOR changed the users file"
  ls "$T"/*carol* "$T/creds"/*carol* >/dev/null 2>&1 && fail "a bad AOR issued credentials"
  run 2 sip-user remove not-an-aor --users "$u"
  one_line_error
  # The password: never empty; from a terminal only through --password-file; no option for it.
  : >"$T/empty"
  run 1 sip-user add sip:carol@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/empty"
  one_line_error
  has_text "$T/err" "no password on $T/empty"
  run 1 sip-user add sip:carol@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/none"
  one_line_error
  add_on_terminal "$u" >"$T/tty" || fail "on a terminal: $(cat "$T/tty")"
  has "$T/tty" "give the password with --password-file FILE or on standard input \(not a terminal\)"
  run 2 sip-user add sip:carol@example.org --users "$u" --ca-dir "$T/ca" --password secret
  one_line_error
  [ "$(sha256sum <"$u")" = "$before" ] || fail "a refused password changed the users file"
  # A users file others can read is refused, as ssh refuses such a key.
  chmod 644 "$u"
  run 1 sip-user list --users "$u"
  one_line_error
  has_text "$T/err" "p2psip-admin sip-user list: $u: permissions 0644 are too open"
  run 1 sip-user add sip:carol@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/pw"
  has "$T/err" "permissions 0644 are too open"
  run 1 sip-user remove sip:alice@example.org --users "$u"
  has "$T/err" "permissions 0644 are too open"
  ls "$T"/*carol* >/dev/null 2>&1 && fail "add issued credentials despite a bad users file"
  chmod 600 "$u"
  # A broken users file is named with the problem.
  printf '{"version": 1, "users": [{"aor": "sip:x@example.org"}]}' >"$T/broken.json"
  chmod 600 "$T/broken.json"
  run 1 sip-user list --users "$T/broken.json"
  one_line_error
  has "$T/err" "broken.json: users\[0\]: no \"username\"$"
  run 1 sip-user list --users "$T/missing.json"
  one_line_error
  # The CA directory: missing; the configuration signer's name is not for users.
  run 6 sip-user add sip:carol@example.org --users "$u" --ca-dir "$T/no-ca" --password-file "$T/pw"
  one_line_error
  run 1 sip-user add sip:configuration-signer@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/pw"
  one_line_error
  has "$T/err" "reserved for the configuration signer"
  [ "$(sha256sum <"$u")" = "$before" ] || fail "a refused add changed the users file"
  # Usage.
  run 2 sip-user
  run 0 sip-user --help
  has "$T/out" "^usage: p2psip-admin sip-user add AOR"
  run 0 --help
  has "$T/out" "^  sip-user add AOR --users FILE --ca-dir DIR"
  run 2 sip-user frobnicate
  one_line_error
  run 2 sip-user add sip:carol@example.org --ca-dir "$T/ca"
  one_line_error
  has "$T/err" "--users is required"
  run 2 sip-user add sip:carol@example.org --users "$u"
  has "$T/err" "--ca-dir is required"
  run 2 sip-user add --users "$u" --ca-dir "$T/ca"
  has_text "$T/err" "AOR (or --batch FILE) is required"
  run 2 sip-user add sip:carol@example.org --users "$u" --ca-dir "$T/ca" --password-file "$T/pw" --days 0
  run 2 sip-user add sip:carol@example.org sip:dave@example.org --users "$u" --ca-dir "$T/ca"
  run 2 sip-user list
  run 2 sip-user list --users "$u" extra
  run 2 sip-user remove sip:alice@example.org
  run 0 sip-user add --help
  has "$T/out" "password-file"
  return 0
}

case "$CASE" in
  init_enroll | modes | overwrite | reenroll | add_bootstrap | sign | show | bad_args | \
    sip_user_round_trip | sip_user_refusals) "case_$CASE" ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$CASE]"
