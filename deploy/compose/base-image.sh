#!/usr/bin/env bash
# Makes sure the Dockerfile's base image exists: usage base-image.sh [TAG]
# (default debian:bookworm-slim). If the engine has it, nothing happens; if
# it can pull it, it does; otherwise (an engine that reaches no registry)
# it builds an equivalent from Debian's packages — debootstrap's minbase
# bookworm, from the mirror of this machine's own apt sources, imported
# with `docker import` under the same tag — so the Dockerfile builds
# unchanged. Needs root for debootstrap; about two minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tag=${1:-debian:bookworm-slim}

if docker image inspect "$tag" >/dev/null 2>&1; then
	exit 0
fi
if timeout 300 docker pull -q "$tag" >/dev/null 2>&1; then
	echo "base-image: pulled $tag"
	exit 0
fi
case $tag in
debian:bookworm*) ;;
*)
	echo "base-image: cannot pull $tag and can only build debian:bookworm images" >&2
	exit 1
	;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "base-image: $tag cannot be pulled; building it with debootstrap needs root" >&2
	exit 1
fi

. "$here/../apt-sources.sh"
mirror=$(debian_mirror) || {
	echo "base-image: cannot pull $tag, and no Debian mirror in this machine's apt sources" >&2
	exit 1
}
if ! command -v debootstrap >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi

echo "base-image: $tag cannot be pulled; building it with debootstrap (about 2 minutes)"
root=$(mktemp -d /var/tmp/tessera-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
	echo "base-image: debootstrap failed; its log: $root.log" >&2
	exit 1
}
rm -f "$root.log"
# The image's apt sources are this machine's, as docker's own images name theirs.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
# What the official slim image drops: package lists and caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import \
	--change 'CMD ["bash"]' \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--message "tessera: debootstrap minbase bookworm" - "$tag" >/dev/null
echo "base-image: built $tag"
