# Sourced, not run: helpers that read the machine's own apt sources, so that
# no mirror's host name is ever written into Tessera's files. Used on the
# host (install-deps.sh, compose/base-image.sh) and inside image builds
# (Dockerfile).

# The URI serving the main bookworm suite, from deb822 or one-line sources.
debian_mirror() {
	local uri f
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ { print $2; exit }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	uri=$(grep -hE '^deb[[:space:]]+[^[:space:]]+[[:space:]]+bookworm[[:space:]]' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '{ print $2; exit }')
	[ -n "$uri" ] && { echo "$uri"; return 0; }
	return 1
}

# Adds bookworm-backports from the same mirror unless a source already has
# it; 1 if no mirror is known. The caller runs apt-get update.
enable_backports() {
	local list=/etc/apt/sources.list.d/tessera-backports.sources mirror
	if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		return 0
	fi
	mirror=$(debian_mirror) || {
		echo "cannot find the Debian mirror in this machine's apt sources" >&2
		return 1
	}
	cat >"$list" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	return 0
}
