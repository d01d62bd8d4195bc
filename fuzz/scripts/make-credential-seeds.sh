#!/usr/bin/env bash
# Writes the credential fixtures and seeds of the jwt and x509 fuzz targets with topicguard's
# own development tooling (`topicguard dev pki|token`, real keys and signatures), for the
# identity blocks of fuzz/fixtures/identities.policy. Run from the repository root; it
# replaces fuzz/fixtures/{jwks.json,jwt-es256-key.pem,hs256.secret,devices-*.pem,x509-now}
# and fuzz/seeds/{jwt,x509}/dev-*. DEVELOPMENT MATERIAL ONLY: the keys are published here.
set -euo pipefail
cd "$(dirname "$0")/../.."
policy=fuzz/fixtures/identities.policy
fixtures=fuzz/fixtures
jwt_seeds=fuzz/seeds/jwt
x509_seeds=fuzz/seeds/x509
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo build --quiet
tg=${CARGO_TARGET_DIR:-target}/debug/topicguard
mkdir -p "$jwt_seeds" "$x509_seeds"
rm -f "$jwt_seeds"/dev-* "$x509_seeds"/dev-*

# --- JWT: the label's ES256 key (its private key signs the target's own tokens), and one
# RS256 and one EdDSA key of the same JWKS. Tokens expire in 2096. Written without a line
# break: a token with one is (rightly) refused, and the seeds must start from valid tokens.
far=4000000000
"$tg" dev token --policy "$policy" --identity mobile --out "$scratch/es" --claim exp=$far >/dev/null
tr -d '\n' < "$scratch/es/mobile.jwt" > "$jwt_seeds/dev-es256.jwt"
"$tg" dev token --policy "$policy" --identity mobile --out "$scratch/es" --claim exp=$far \
    --claim pid=P2 --claim aid=A-7 --claim jti=revoked-jti >/dev/null
tr -d '\n' < "$scratch/es/mobile.jwt" > "$jwt_seeds/dev-es256-revoked.jwt"
"$tg" dev token --policy "$policy" --identity mobile --out "$scratch/es" --claim exp=$far \
    --claim nbf=1 --claim iat=1 >/dev/null
tr -d '\n' < "$scratch/es/mobile.jwt" > "$jwt_seeds/dev-es256-nbf.jwt"
sed '/^#/d' "$scratch/es/jwt-idp-key.pem" > "$fixtures/jwt-es256-key.pem"
for alg in RS256 EdDSA; do
    kid=fuzz-$(echo "$alg" | tr '[:upper:]' '[:lower:]')
    "$tg" dev token --out "$scratch/$alg" --alg "$alg" --kid "$kid" --claim exp=$far >/dev/null
    tr -d '\n' < "$scratch/$alg/token.jwt" > "$jwt_seeds/dev-$kid.jwt"
done
python3 - "$scratch" "$fixtures/jwks.json" <<'PY'
import json, sys
scratch, out = sys.argv[1], sys.argv[2]
keys = []
for path in ("es/jwks-idp.json", "RS256/jwks.json", "EdDSA/jwks.json"):
    keys += json.load(open(f"{scratch}/{path}"))["keys"]
doc = {"comment": "DEVELOPMENT ONLY: the fuzz targets' keys (fuzz/scripts/make-credential-seeds.sh)",
       "keys": keys}
json.dump(doc, open(out, "w"), indent=2)
open(out, "a").write("\n")
PY
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$fixtures/hs256.secret"
echo >> "$fixtures/hs256.secret"

# --- X.509: a development root with the gateway and service intermediates, their leaves, the
# CRL, and the broker's own certificate and CA (which must never verify as a client).
date +%s > "$fixtures/x509-now"
"$tg" dev pki --policy "$policy" --out "$scratch/pki" >/dev/null
cp "$scratch/pki/ca-devices.pem" "$fixtures/devices-ca.pem"
cp "$scratch/pki/crl-devices.pem" "$fixtures/devices-crl.pem"
python3 - "$scratch/pki" "$fixtures" "$x509_seeds" <<'PY'
import base64, re, sys
pki, fixtures, seeds = sys.argv[1:4]
def ders(name):
    text = open(f"{pki}/{name}").read()
    return [base64.b64decode("".join(b.split()))
            for b in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)]
gateway, gateway_ca = ders("gateway.pem")
service, service_ca = ders("service.pem")
intermediates = ""
for der in (gateway_ca, service_ca):
    b64 = base64.b64encode(der).decode()
    intermediates += "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i:i+64] for i in range(0, len(b64), 64)) + "\n-----END CERTIFICATE-----\n"
open(f"{fixtures}/devices-intermediates.pem", "w").write(intermediates)
named = {"gateway": gateway, "gateway-ca": gateway_ca, "service": service, "service-ca": service_ca,
         "root-ca": ders("ca-devices.pem")[0], "server": ders("server.pem")[0],
         "server-ca": ders("server-ca.pem")[0]}
for name, der in named.items():
    open(f"{seeds}/dev-{name}.der", "wb").write(der)
PY
# Leaves with other values, from other development roots: they never verify here, but give
# the extraction other shapes (a MAC in upper case, a non-UUID installation id, a long CN).
"$tg" dev pki --policy "$policy" --out "$scratch/other" --attr mac=00AABBCCDDEEFF11 \
    --attr iid=not-a-uuid --attr sid="$(printf 'x%.0s' {1..200})" >/dev/null 2>&1 || true
for name in gateway service; do
    if [ -f "$scratch/other/$name.pem" ]; then
        sed -n '1,/END CERTIFICATE/p' "$scratch/other/$name.pem" | sed '/^#/d' \
            | openssl x509 -outform DER -out "$x509_seeds/dev-$name-other-root.der"
    fi
done
ls "$jwt_seeds" "$x509_seeds"
