#!/bin/sh
# tessera-spoke-run ARGS...: the spoke container's main process, under tini
# (PID 1, which reaps the shims a dead spoke leaves). It runs tessera-spoke
# ARGS and, when the spoke dies, starts it again (after 1 s, doubling up to
# 30 s while it keeps dying within a minute), so the agents — which outlive
# their spoke by design — are adopted by the next spoke instead of ending
# with the container. SIGTERM or SIGINT (docker stop) stops the spoke and
# then this loop; the container's end then ends its agents, which the
# spoke records FAILED when the container starts again. A spoke that fails
# at its very first start (a bad config) ends the container with its
# status, so the error is seen rather than retried forever.
set -u

stop=0
child=0
delay=1
first=1
trap 'stop=1; [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null' TERM INT

while :; do
	started=$(date +%s)
	tessera-spoke "$@" &
	child=$!
	status=0
	# A trapped signal interrupts wait; wait again until the spoke is gone.
	while kill -0 "$child" 2>/dev/null; do
		wait "$child"
		status=$?
	done
	child=0
	[ "$stop" -eq 1 ] && exit 0
	ran=$(($(date +%s) - started))
	if [ "$first" -eq 1 ] && [ "$ran" -lt 5 ] && [ "$status" -ne 0 ]; then
		echo "tessera-spoke-run: tessera-spoke failed at start-up ($status)" >&2
		exit "$status"
	fi
	first=0
	if [ "$ran" -ge 60 ]; then
		delay=1
	fi
	echo "tessera-spoke-run: tessera-spoke ended ($status) after ${ran}s; starting it again in ${delay}s" >&2
	sleep "$delay" &
	wait $! || true
	[ "$stop" -eq 1 ] && exit 0
	delay=$((delay * 2))
	[ "$delay" -gt 30 ] && delay=30
done
