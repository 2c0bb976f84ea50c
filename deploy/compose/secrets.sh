#!/bin/sh
# compose-secrets: makes what a compose deployment's daemons need to prove
# who they are, in /secrets (the deployment's secrets folder, mounted), and
# completes a folder that lacks some of it. Runs as root inside the tessera
# image (gen.sh starts it), so that every file can belong to the user that
# reads it in its container — tessera (10001) for hubs and spokes, valkey
# (10002) for Valkey — and the host's user (HOST_UID:HOST_GID) for the CA
# and client files, whatever that user is.
#
# Environment: HUBS and SPOKES (service names, blank-separated), HOST_UID,
# HOST_GID. Layout, per service S:
#   ca/ca.pem ca/ca.key         the private CA (ca.key: host user, 0600)
#   S/tessera.key[.pub]         S's Ed25519 key (keygen)
#   S/tls.pem S/tls.key.pem     S's certificate: DNS:S, DNS:localhost, IP:127.0.0.1
#   S/ca.pem                    the CA, to verify the others
#   spoke-N/valkey.password     what spoke-N tells valkey-N (user spoke)
#   valkey-N/users.acl          valkey-N's users: spoke (that password, hashed),
#                               health (PING only, for its health check)
#   client/token client/ca.pem  for the host's tessera CLI and grpcurl
#   hubs.tokens                 the hubs' `token` lines (hashes only)
# Something missing is made; something that cannot be made again without
# invalidating the rest (the CA's key while certificates exist) is refused
# with the name of what is missing.
set -eu

S=/secrets
TESSERA_UID=10001
VALKEY_UID=10002
: "${HUBS:?}" "${SPOKES:?}" "${HOST_UID:?}" "${HOST_GID:?}"

say() { echo "secrets: $*"; }
die() { echo "secrets: $*" >&2; exit 1; }

# own FILE UID MODE
own() { chown "$2:$2" "$1" && chmod "$3" "$1"; }

ca() {
	mkdir -p "$S/ca"
	chown "$HOST_UID:$HOST_GID" "$S" "$S/ca"
	if [ -f "$S/ca/ca.pem" ] && [ -f "$S/ca/ca.key" ]; then
		return 0
	fi
	[ -f "$S/ca/ca.pem" ] && die "ca/ca.key is missing but ca/ca.pem exists: no certificate can be issued; remove the secrets folder to start over"
	[ -f "$S/ca/ca.key" ] && die "ca/ca.pem is missing but ca/ca.key exists: remove the secrets folder to start over"
	for f in "$S"/*/tls.pem; do
		[ -f "$f" ] && die "ca/ is missing but ${f#"$S"/} exists: certificates of a CA that is gone; remove the secrets folder to start over"
	done
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-days 825 -subj "/CN=tessera compose CA" -keyout "$S/ca/ca.key" -out "$S/ca/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
	chown "$HOST_UID:$HOST_GID" "$S/ca/ca.key" "$S/ca/ca.pem"
	chmod 0600 "$S/ca/ca.key"
	chmod 0644 "$S/ca/ca.pem"
	say "made the CA (ca/ca.pem)"
}

# cert SERVICE: a server and client certificate naming SERVICE.
cert() {
	d=$S/$1
	if [ -f "$d/tls.pem" ] && [ -f "$d/tls.key.pem" ] &&
		openssl verify -CAfile "$S/ca/ca.pem" "$d/tls.pem" >/dev/null 2>&1; then
		return 0
	fi
	[ -f "$d/tls.pem" ] || [ -f "$d/tls.key.pem" ] &&
		say "$1/tls.pem or tls.key.pem is missing or not from ca/ca.pem: issuing a new pair"
	ext=$(mktemp)
	printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' "$1" >"$ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=$1" -keyout "$d/tls.key.pem" -out "$d/tls.csr" 2>/dev/null
	openssl x509 -req -in "$d/tls.csr" -CA "$S/ca/ca.pem" -CAkey "$S/ca/ca.key" \
		-CAcreateserial -CAserial "$S/ca/ca.srl" -days 825 -extfile "$ext" \
		-out "$d/tls.pem" 2>/dev/null
	rm -f "$ext" "$d/tls.csr"
	own "$d/tls.key.pem" "$TESSERA_UID" 0600
	own "$d/tls.pem" "$TESSERA_UID" 0644
	say "issued $1/tls.pem"
}

# key SERVICE: its Ed25519 identity; a half pair is made again whole.
key() {
	d=$S/$1
	if [ -f "$d/tessera.key" ] && [ -f "$d/tessera.key.pub" ]; then
		return 0
	fi
	if [ -f "$d/tessera.key" ] || [ -f "$d/tessera.key.pub" ]; then
		say "$1/tessera.key or tessera.key.pub is missing: making a new key pair for $1"
		rm -f "$d/tessera.key" "$d/tessera.key.pub"
	fi
	tessera keygen "$d/tessera.key" >/dev/null
	own "$d/tessera.key" "$TESSERA_UID" 0600
	own "$d/tessera.key.pub" "$TESSERA_UID" 0644
	say "made $1/tessera.key"
}

# valkey SPOKE N: the password spoke-N and valkey-N share, as a pair.
valkey() {
	d=$S/$1
	v=$S/valkey-$2
	mkdir -p "$v"
	own "$v" "$VALKEY_UID" 0755
	if [ -f "$d/valkey.password" ] && [ -f "$v/users.acl" ]; then
		return 0
	fi
	if [ -f "$d/valkey.password" ] || [ -f "$v/users.acl" ]; then
		say "$1/valkey.password or valkey-$2/users.acl is missing: making a new password for both"
	fi
	pw=$(openssl rand -hex 32)
	printf '%s\n' "$pw" >"$d/valkey.password"
	own "$d/valkey.password" "$TESSERA_UID" 0600
	hash=$(printf '%s' "$pw" | openssl dgst -sha256 -r | cut -d' ' -f1)
	{
		# Off: nobody logs in as default. Its rights stay: Valkey 8.0
		# replays the append-only file's MULTI/EXEC (the effects of the
		# spoke's scripts) under the default user, and drops what that
		# user may not run, i.e. everything acknowledged, on a restart.
		echo "user default off ~* &* +@all"
		echo "user spoke on #$hash ~tessera:{$1}:* &tessera:{$1}:* +@all -@dangerous"
		echo "user health on nopass -@all +ping"
	} >"$v/users.acl"
	own "$v/users.acl" "$VALKEY_UID" 0600
	say "made the Valkey password of $1 (valkey-$2/users.acl)"
}

service() {
	mkdir -p "$S/$1"
	own "$S/$1" "$TESSERA_UID" 0755
	cp "$S/ca/ca.pem" "$S/$1/ca.pem"
	own "$S/$1/ca.pem" "$TESSERA_UID" 0644
	key "$1"
	cert "$1"
}

client() {
	d=$S/client
	mkdir -p "$d"
	chown "$HOST_UID:$HOST_GID" "$d"
	cp "$S/ca/ca.pem" "$d/ca.pem"
	chown "$HOST_UID:$HOST_GID" "$d/ca.pem"
	if [ ! -s "$d/token" ]; then
		umask 077
		tessera token-new admin | head -n 1 >"$d/token"
		umask 022
		chown "$HOST_UID:$HOST_GID" "$d/token"
		chmod 0600 "$d/token"
		say "made the user token client/token (user admin)"
	fi
	# The hubs' token lines follow the token, whatever made it.
	printf 'token admin %s\n' "$(tessera token-hash <"$d/token")" >"$S/hubs.tokens"
	chown "$HOST_UID:$HOST_GID" "$S/hubs.tokens"
	chmod 0644 "$S/hubs.tokens"
}

ca
for h in $HUBS; do
	service "$h"
done
for s in $SPOKES; do
	service "$s"
	valkey "$s" "${s#spoke-}"
done
client
