# Sourced, not run: sets $go to a Go toolchain — the one on PATH, the one
# at /usr/local/go, else Debian's from bookworm-backports (installed; needs
# root and that suite, which install-deps.sh enables).
find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [ -x /usr/local/go/bin/go ]; then
		echo /usr/local/go/bin/go
	else
		return 1
	fi
}

go=$(find_go) || {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-t bookworm-backports golang-go
	go=$(find_go)
}
