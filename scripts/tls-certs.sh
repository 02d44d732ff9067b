#!/bin/sh
# Makes the certificates a TLS setup of bfill needs, with openssl
# (docs/security.md), in DIR:
#   ca.pem ca.key             a CA
#   server.pem server.key     signed by it: etcd's and the store nodes'
#   client.pem client.key     signed by it: bfill's, the store nodes' etcd client
#   ca2.pem, other.pem other.key   a second CA and a pair it signed (tests:
#                             a certificate the first CA did not sign)
#   expired.pem expired.key   signed by the first CA, valid only in 2020 (tests)
# Every certificate names IP 127.0.0.1 and DNS localhost, plus each HOST
# given (an address or a name), and may serve as server and as client.
# Keys are EC P-256, unencrypted, readable by their owner only.
#
#   scripts/tls-certs.sh DIR [HOST...]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [HOST...]" >&2; exit 2; }
command -v openssl >/dev/null || { echo "$0: openssl is not installed" >&2; exit 1; }
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
umask 077

san="IP:127.0.0.1,DNS:localhost"
for h in "$@"; do
	case $h in
	*[!0-9.]*) san="$san,DNS:$h" ;;
	*) san="$san,IP:$h" ;;
	esac
done
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >leaf.ext

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

# ca NAME: a self-signed CA for 30 days.
ca() {
	key "$1"
	openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=bfill $1" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# leaf NAME CA: a key and a certificate CA signs, for 30 days.
leaf() {
	key "$1"
	openssl req -new -key "$1.key" -subj "/CN=bfill $1" -out "$1.csr" 2>/dev/null
	openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 30 \
		-extfile leaf.ext -out "$1.pem" 2>/dev/null
	rm -f "$1.csr"
}

ca ca
leaf server ca
leaf client ca
ca ca2
leaf other ca2

# An expired certificate: `openssl x509` (3.0) takes no start date, but
# `openssl ca` does.
key expired
openssl req -new -key expired.key -subj "/CN=bfill expired" -out expired.csr 2>/dev/null
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n' >ca.cnf
printf 'default_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' >>ca.cnf
: >index.txt
echo 1000 >serial
openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
	-out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z \
	-extfile leaf.ext >/dev/null 2>&1
rm -f expired.csr ca.cnf index.txt* serial* 1000.pem ca.srl ca2.srl leaf.ext
chmod 644 ./*.pem
