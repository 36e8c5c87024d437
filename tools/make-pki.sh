#!/usr/bin/env bash
#
# A private PKI for a local gateway, with the openssl command line:
#
#   tools/make-pki.sh DIR [PROFILE ...]
#
# DIR/ca.crt, ca.key           the private CA (EC P-256, 10 years)
# DIR/gateway.crt, .key        the gateway's server certificate (127.0.0.1)
# DIR/gateway-sm2.key, .pub    the gateway's SM2 signing key (answers,
#                              audit checkpoints) and its public half
# DIR/<name>.crt, .key         one client certificate per provincial
#                              platform (its caller profile, as CN) and per
#                              regulator (regulator-*), valid one year
# DIR/crl.pem                  the CA's revocation list (revoked.crt in it)
# DIR/expired.crt, .key        a client certificate whose validity ended
# DIR/revoked.crt, .key        a client certificate on the CRL
# DIR/rogue-ca.crt, rogue.crt  a certificate of another CA
#
# Without PROFILEs: every profile of config/profiles/ and two regulators.
# Test material for a local run: never for production (keys are not
# protected).  Existing files are kept: run it again to add names.
#
set -euo pipefail

dir=${1:?usage: make-pki.sh DIR [PROFILE ...]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -eq 0 ]; then
    set -- $(cd "$repo/config/profiles" && ls *.conf | sed 's/\.conf$//') \
        regulator-nhsa regulator-yrd
fi

mkdir -p "$dir"
cd "$dir"

ossl() {
    if ! out=$(openssl "$@" 2>&1); then
        echo "make-pki: openssl $1 failed: $out" >&2
        exit 1
    fi
}

if [ ! -f ca.crt ]; then
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
    ossl req -x509 -new -key ca.key -sha256 -days 3650 -out ca.crt \
        -subj "/O=xregion local/CN=xregion local CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    : >index.txt
    echo 1000 >serial
    echo 1000 >crlnumber
    cat >ca.cnf <<EOF
[ ca ]
default_ca = local
[ local ]
dir = .
database = index.txt
serial = serial
crlnumber = crlnumber
certificate = ca.crt
private_key = ca.key
new_certs_dir = .
default_md = sha256
default_crl_days = 3650
policy = any
unique_subject = no
[ any ]
commonName = supplied
organizationName = optional
[ client ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[ server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
EOF
fi

# issue NAME EXT [STARTDATE ENDDATE]
issue() {
    local name=$1 ext=$2
    [ -f "$name.crt" ] && return 0
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$name.key"
    ossl req -new -key "$name.key" -out "$name.csr" \
        -subj "/O=xregion local/CN=$name"
    if [ $# -gt 2 ]; then
        ossl ca -batch -config ca.cnf -extensions "$ext" -notext \
            -startdate "$3" -enddate "$4" -in "$name.csr" -out "$name.crt"
    else
        ossl ca -batch -config ca.cnf -extensions "$ext" -notext \
            -days 365 -in "$name.csr" -out "$name.crt"
    fi
    rm -f "$name.csr"
}

issue gateway server

if [ ! -f gateway-sm2.key ]; then
    ossl genpkey -algorithm SM2 -out gateway-sm2.key
    ossl pkey -in gateway-sm2.key -pubout -out gateway-sm2.pub
fi

for name in "$@"; do
    issue "$name" client
done

# what the gateway must refuse
issue expired client 20200101000000Z 20210101000000Z
if [ ! -f revoked.crt ]; then
    issue revoked client
    ossl ca -batch -config ca.cnf -revoke revoked.crt
fi
ossl ca -batch -config ca.cnf -gencrl -out crl.pem

if [ ! -f rogue.crt ]; then
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out rogue-ca.key
    ossl req -x509 -new -key rogue-ca.key -sha256 -days 3650 \
        -out rogue-ca.crt -subj "/O=elsewhere/CN=another CA"
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out rogue.key
    ossl req -new -key rogue.key -out rogue.csr \
        -subj "/O=xregion local/CN=shanghai.medical"
    ossl x509 -req -in rogue.csr -CA rogue-ca.crt -CAkey rogue-ca.key \
        -CAcreateserial -days 365 -out rogue.crt
    rm -f rogue.csr
fi

chmod 600 ./*.key
