#!/bin/sh
# tessera-spoke-run ARGS...: the spoke container's main process, under tini
# (PID 1, which reaps the shims a dead spoke leaves). It runs tessera-spoke
# ARGS and, when the spoke dies, starts it again (after 1 s, doubling up to
# 30 s while it keeps dying within a minute), so the agents — which outlive
# their spoke by design — are adopted by the next spoke instead of ending
# with the container. Signals (tini passes them on):
#   TERM, INT  stop the spoke, then this loop (docker stop); the container's
#              end ends the agents, which the spoke records FAILED when the
#              container starts again;
#   HUP        passed to the spoke: it reloads its trust-hub keys;
#   USR1       restarts the spoke process at once, e.g. for a changed
#              config; its agents keep running and are adopted.
# A spoke that fails at its very first start (a bad config) ends the
# container with its status, so the error is seen rather than retried
# forever.
set -u

stop=0
restart=0
child=0
delay=1
first=1
trap 'stop=1; [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null' TERM INT
trap '[ "$child" -gt 0 ] && kill -HUP "$child" 2>/dev/null' HUP
trap 'restart=1; [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null' USR1

while :; do
	started=$(date +%s)
	restart=0
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
	if [ "$restart" -eq 1 ]; then
		echo "tessera-spoke-run: restarting tessera-spoke (SIGUSR1)" >&2
		first=0
		delay=1
		continue
	fi
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
