#!/bin/sh
# A stand-in for a real worker (say, a coding agent): reads its task from
# stdin, reports progress on stdout, and exits 0 when done.
task=$(cat)
echo "sample agent $TESSERA_AGENT_ID got task: $task"
for step in 1 2 3; do
	echo "working ($step/3)"
	sleep 1
done
echo "done"
