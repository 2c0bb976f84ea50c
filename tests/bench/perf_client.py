#!/usr/bin/env python3
"""The gRPC side of the perf benchmark (perf_bench.sh): measures the hub
through its API and prints one JSON object of figures on stdout.

It needs the Python stubs of proto/ generated into --stubs (perf_bench.sh
does that with grpc_tools.protoc at run time) and the token in
$TESSERA_TOKEN. Every figure comes from one WatchEvents stream, opened from
now and unfiltered, read by one thread that stamps each event as it arrives
(time.perf_counter) and hands it to whoever waits for that agent.

Phases, in this order (sample sizes from the command line):
  kill      SpawnAgent(sleep), wait for agent.running on the stream, then
            KillAgent at once, or after a pause; time from the KillAgent call
            to agent.killed on the stream
  get       GetAgent of one agent, sequentially, and grpc.health.v1 Check,
            in turns of 50 calls
  spawn     SpawnAgent(true), sequentially: the call's own latency; then
            again, each call made once the last agent's end has reached
            the watch (spawn_alone); then --spaced calls, each made
            --space-ms after that (spawn_spaced), as a person or a
            scheduler spawns
  short     SpawnAgent(true) at IN_FLIGHT, each waiting for its agent's
            terminal event; rate, and CPU of the daemons and the machine
  sleep     SpawnAgent(sleep) at IN_FLIGHT, then KillAgent of them all at
            IN_FLIGHT, each waiting for agent.killed; both rates
  live      (--live N, 0 skips it) N agents of --live-type spawned at
            IN_FLIGHT, all running at once on the one spoke; then the
            memory they cost: the spoke's and the hub's VmRSS and Valkey's
            used_memory before and with all live, the mean PSS of the
            spoke's tessera-shim children (--shim) and of their agents;
            then all killed at IN_FLIGHT, each until agent.killed. A spawn
            refused RESOURCE_EXHAUSTED (the hub counts its placements
            against the spoke's last load poll) is retried after 100 ms,
            as a client would, and counted
Any call that fails ends it with exit status 1 and the error on stderr.
"""
import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TERMINAL = ("agent.completed", "agent.failed", "agent.killed")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values, p):
    s = sorted(values)
    return s[int(round(p / 100.0 * (len(s) - 1)))]


class Watch:
    """One WatchEvents stream; events are kept per agent until asked for."""

    def __init__(self, hub_pb2, stub, md):
        self.cond = threading.Condition()
        self.events = {}        # agent id -> [(type, arrival time, Event.time_ms)]
        self.error = None
        self.ready = threading.Event()
        self.call = stub.WatchEvents(hub_pb2.WatchEventsRequest(), metadata=md)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for resp in self.call:
                t = time.perf_counter()
                ev = resp.event
                with self.cond:
                    self.events.setdefault(ev.agent_id, []).append((ev.type, t, ev.time_ms))
                    self.cond.notify_all()
        except Exception as e:  # cancelled at the end, or a real failure
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def wait(self, agent_id, types, timeout=60.0):
        """Type, arrival time and time_ms (the spoke's record of it) of the
        first event of agent_id with a type in types."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for typ, t, ms in self.events.get(agent_id, ()):
                    if typ in types:
                        return typ, t, ms
                if self.error is not None:
                    raise RuntimeError("WatchEvents ended: %s" % self.error)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("no %s for %s within %.0f s" % ("/".join(types), agent_id, timeout))
                self.cond.wait(left)

    def forget(self, agent_id):
        with self.cond:
            self.events.pop(agent_id, None)

    def close(self):
        self.call.cancel()
        self.thread.join(5)


def proc_cpu(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu():
    """Busy CPU time of the whole machine (all but idle and iowait), s."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is in user)
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def vm_rss_kib(pid):
    """VmRSS of a process, KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for PID %d" % pid)


def rollup_kib(pid):
    """Pss and Rss of a process from smaps_rollup, KiB; None once it is gone."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss", "Rss"):
                    out[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def children_by_parent():
    """Parent PID -> its child processes, from every /proc/PID/stat."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def shims_and_agents(spoke_pid, shim_exe):
    """The spoke's tessera-shim children, and their children that have
    exec'd their own program (the agents)."""
    kids = children_by_parent()
    shims = [p for p in kids.get(spoke_pid, ()) if exe_of(p) == shim_exe]
    agents = [c for s in shims for c in kids.get(s, ()) if exe_of(c) not in (None, shim_exe)]
    return shims, agents


def mean_rollup(pids):
    """Mean Pss and Rss (KiB) of those processes still there, and how many."""
    got = [r for r in map(rollup_kib, pids) if r is not None]
    if not got:
        return {"n": 0, "pss_kib": 0.0, "rss_kib": 0.0}
    return {"n": len(got), "pss_kib": sum(r["Pss"] for r in got) / len(got),
            "rss_kib": sum(r["Rss"] for r in got) / len(got)}


def valkey_used_memory(sock):
    """used_memory of INFO memory, bytes, through valkey-cli -s SOCK."""
    out = subprocess.run(["valkey-cli", "-s", sock, "info", "memory"], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError("valkey-cli: no used_memory in INFO memory")


def tenths(start, stamps):
    """Rates (/s) over the first and the last tenth of completions."""
    s = sorted(stamps)
    k = max(1, len(s) // 10)
    first = k / (s[k - 1] - start)
    last = k / (s[-1] - s[-k - 1]) if len(s) > k else first
    return first, last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--stubs", required=True)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--kill-pause-ms", type=int, default=200)
    ap.add_argument("--gets", type=int, default=500)
    ap.add_argument("--spawns", type=int, default=200)
    ap.add_argument("--spaced", type=int, default=50)
    ap.add_argument("--space-ms", type=int, default=100)
    ap.add_argument("--short", type=int, default=1000)
    ap.add_argument("--sleeps", type=int, default=1000)
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--pids", default="", help="name=PID,... whose CPU phase short reports")
    ap.add_argument("--live", type=int, default=0, help="agents at once in phase live; 0 skips it")
    ap.add_argument("--live-type", default="idle")
    ap.add_argument("--shim", default="", help="the spoke's tessera-shim (phase live)")
    ap.add_argument("--valkey-sock", default="", help="the spoke's Valkey socket (phase live)")
    a = ap.parse_args()

    sys.path.insert(0, a.stubs)
    import grpc
    from tessera.v1 import hub_pb2, hub_pb2_grpc
    from tsr_health.v1 import health_pb2

    token = os.environ.get("TESSERA_TOKEN", "")
    md = (("authorization", "Bearer " + token),) if token else ()
    chan = grpc.insecure_channel(a.addr)
    grpc.channel_ready_future(chan).result(timeout=10)
    hub = hub_pb2_grpc.HubStub(chan)
    health = chan.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString)
    pids = {}
    for item in filter(None, a.pids.split(",")):
        name, pid = item.split("=")
        pids[name] = int(pid)

    out = {}
    watch = Watch(hub_pb2, hub, md)
    # The watch is subscribed once a marker agent's events reach it.
    probe = hub.SpawnAgent(hub_pb2.SpawnAgentRequest(type="true", task="perf probe"), metadata=md)
    watch.wait(probe.id, TERMINAL, timeout=30)

    def spawn(typ, task):
        return hub.SpawnAgent(hub_pb2.SpawnAgentRequest(type=typ, task=task), metadata=md)

    # 1. Kill latency as the watcher sees it.
    for label, pause in (("kill_now", 0), ("kill_pause", a.kill_pause_ms)):
        lat, call, rec = [], [], []
        for i in range(a.kills):
            ag = spawn("sleep", "perf kill %d" % i)
            watch.wait(ag.id, ("agent.running",))
            if pause:
                time.sleep(pause / 1000.0)
            w0 = time.time()
            t0 = time.perf_counter()
            hub.KillAgent(hub_pb2.KillAgentRequest(agent_id=ag.id), metadata=md)
            t1 = time.perf_counter()
            typ, t2, ms = watch.wait(ag.id, TERMINAL)
            if typ != "agent.killed":
                raise RuntimeError("%s ended %s, not killed" % (ag.id, typ))
            lat.append((t2 - t0) * 1e3)
            call.append((t1 - t0) * 1e3)
            rec.append(ms - w0 * 1e3)
            watch.forget(ag.id)
        out[label] = {"n": a.kills, "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90),
                      "call_p50_ms": pct(call, 50), "recorded_p50_ms": pct(rec, 50)}

    # 2. GetAgent vs the health check, sequential, after a short warm-up;
    # in turns of up to 50 calls each, so that a slow moment of the VM
    # does not fall on one of them alone.
    req = hub_pb2.GetAgentRequest(agent_id=probe.id)
    hreq = health_pb2.HealthCheckRequest()
    for _ in range(20):
        hub.GetAgent(req, metadata=md)
        health(hreq)
    calls = (("get", lambda: hub.GetAgent(req, metadata=md)), ("health", lambda: health(hreq)))
    lats = {label: [] for label, _ in calls}
    while len(lats["health"]) < a.gets:
        turn = min(50, a.gets - len(lats["health"]))
        for label, fn in calls:
            for _ in range(turn):
                t0 = time.perf_counter()
                fn()
                lats[label].append((time.perf_counter() - t0) * 1e3)
    for label, lat in lats.items():
        out[label] = {"n": a.gets, "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90)}

    # 3. SpawnAgent(true) sequentially: it returns once the agent is RUNNING.
    lat, ids = [], []
    for i in range(a.spawns):
        t0 = time.perf_counter()
        ag = spawn("true", "perf spawn %d" % i)
        lat.append((time.perf_counter() - t0) * 1e3)
        ids.append(ag.id)
    for i in ids:
        watch.wait(i, TERMINAL)
        watch.forget(i)
    out["spawn"] = {"n": a.spawns, "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90)}

    # spawns_alone(N, NAME, PAUSE_S): N calls, each made PAUSE_S after the
    # last agent's end has reached the watch.
    def spawns_alone(n, name, pause_s):
        lat = []
        for i in range(n):
            time.sleep(pause_s)
            t0 = time.perf_counter()
            ag = spawn("true", "perf %s %d" % (name, i))
            lat.append((time.perf_counter() - t0) * 1e3)
            watch.wait(ag.id, TERMINAL)
            watch.forget(ag.id)
        out[name] = {"n": n, "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90)}

    # 3b. The same, each after the last agent's end has reached the watch:
    # no agent of an earlier call still starts, ends or reports meanwhile.
    spawns_alone(a.spawns, "spawn_alone", 0)
    # 3c. Spaced out: the daemons and the kernel idle between calls.
    spawns_alone(a.spaced, "spawn_spaced", a.space_ms / 1000.0)

    pool = ThreadPoolExecutor(max_workers=a.in_flight)

    # 4. Short agents end to end at IN_FLIGHT, with the CPU they cost.
    def short_one(i):
        ag = spawn("true", "perf short %d" % i)
        typ = watch.wait(ag.id, TERMINAL)[0]
        watch.forget(ag.id)
        return typ

    cpu0 = {name: proc_cpu(pid) for name, pid in pids.items()}
    m0 = machine_cpu()
    self0 = time.process_time()
    t0 = time.perf_counter()
    ends = list(pool.map(short_one, range(a.short)))
    el = time.perf_counter() - t0
    self1 = time.process_time()
    m1 = machine_cpu()
    cpu1 = {name: proc_cpu(pid) for name, pid in pids.items()}
    out["short"] = {
        "n": a.short, "in_flight": a.in_flight, "seconds": el, "rate_per_s": a.short / el,
        "completed": ends.count("agent.completed"),
        "cpu_ms_per": {name: (cpu1[name] - cpu0[name]) * 1e3 / a.short for name in pids},
        "machine_cpu_ms_per": (m1 - m0) * 1e3 / a.short,
        "client_cpu_ms_per": (self1 - self0) * 1e3 / a.short,
    }
    if out["short"]["completed"] != a.short:
        raise RuntimeError("short agents: %d of %d completed" % (out["short"]["completed"], a.short))

    # 5. Sleep agents at IN_FLIGHT (the call returns at RUNNING), then kill
    # them all at IN_FLIGHT, each until agent.killed reaches the watcher.
    def sleep_one(i):
        return spawn("sleep", "perf sleeper %d" % i).id

    def kill_one(agent_id):
        hub.KillAgent(hub_pb2.KillAgentRequest(agent_id=agent_id), metadata=md)
        typ = watch.wait(agent_id, TERMINAL)[0]
        watch.forget(agent_id)
        return typ

    t0 = time.perf_counter()
    sleepers = list(pool.map(sleep_one, range(a.sleeps)))
    el_spawn = time.perf_counter() - t0
    t0 = time.perf_counter()
    ends = list(pool.map(kill_one, sleepers))
    el_kill = time.perf_counter() - t0
    out["sleep"] = {"n": a.sleeps, "in_flight": a.in_flight,
                    "spawn_rate_per_s": a.sleeps / el_spawn, "kill_rate_per_s": a.sleeps / el_kill,
                    "killed": ends.count("agent.killed")}
    if out["sleep"]["killed"] != a.sleeps:
        raise RuntimeError("sleep agents: %d of %d killed" % (out["sleep"]["killed"], a.sleeps))

    # 6. Live agents: a.live at once on the spoke, what they cost, then all killed.
    if a.live > 0:
        out["live"] = live_phase(a, hub, hub_pb2, md, watch, pool, pids, spawn, kill_one, grpc)

    pool.shutdown()
    watch.close()
    chan.close()
    json.dump(out, sys.stdout)
    print()


def live_phase(a, hub, hub_pb2, md, watch, pool, pids, spawn, kill_one, grpc):
    spoke, hubpid = pids["spoke"], pids["hub"]
    shim_exe = os.path.realpath(a.shim)
    lock = threading.Lock()
    retries = [0]
    stamps = []
    k = max(1, a.live // 10)
    marks = {}  # completions -> the daemons' CPU then: the first and last tenth's cost

    def stamp():
        t = time.perf_counter()
        with lock:
            stamps.append(t)
            if len(stamps) in (k, a.live - k):
                marks[len(stamps)] = {name: proc_cpu(pid) for name, pid in pids.items()}

    def tenth_cpu(c0, c1):
        """The daemons' CPU per agent, ms, over the first and the last tenth."""
        if k not in marks or a.live - k not in marks:
            return None
        return {"first": {n: (marks[k][n] - c0[n]) * 1e3 / k for n in pids},
                "last": {n: (c1[n] - marks[a.live - k][n]) * 1e3 / k for n in pids}}

    def live_one(i):
        deadline = time.monotonic() + 60
        while True:
            try:
                ag = spawn(a.live_type, "perf live %d" % i)
                break
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                    raise
            with lock:
                retries[0] += 1
            time.sleep(0.1)
        stamp()
        return ag.id

    def kill_stamped(agent_id):
        typ = kill_one(agent_id)
        stamp()
        return typ

    r = {"n": a.live, "in_flight": a.in_flight, "type": a.live_type}
    t_stage = time.perf_counter()
    r["before"] = {"spoke_rss_kib": vm_rss_kib(spoke), "hub_rss_kib": vm_rss_kib(hubpid),
                   "valkey_used_memory": valkey_used_memory(a.valkey_sock)}
    shims, _ = shims_and_agents(spoke, shim_exe)
    r["before"]["shims"] = len(shims)

    c0 = {name: proc_cpu(pid) for name, pid in pids.items()}
    t0 = time.perf_counter()
    live = list(pool.map(live_one, range(a.live)))
    el = time.perf_counter() - t0
    c1 = {name: proc_cpu(pid) for name, pid in pids.items()}
    r["spawn_cpu_ms_per"] = {n: (c1[n] - c0[n]) * 1e3 / a.live for n in pids}
    r["spawn_cpu_ms_per_tenth"] = tenth_cpu(c0, c1)
    r["spawn_seconds"] = el
    r["spawn_rate_per_s"] = a.live / el
    r["spawn_rate_first_tenth"], r["spawn_rate_last_tenth"] = tenths(t0, stamps)
    r["spawn_retries"] = retries[0]

    # SpawnAgent returns at RUNNING; an agent may still be a forked shim
    # short of its exec for a moment.
    t0 = time.perf_counter()
    deadline = time.monotonic() + 30
    while True:
        shims, agents = shims_and_agents(spoke, shim_exe)
        if len(agents) >= a.live or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if len(shims) < a.live or len(agents) < a.live:
        raise RuntimeError("live agents: %d shims and %d agents running for %d spawned"
                           % (len(shims), len(agents), a.live))
    r["with_live"] = {"spoke_rss_kib": vm_rss_kib(spoke), "hub_rss_kib": vm_rss_kib(hubpid),
                      "valkey_used_memory": valkey_used_memory(a.valkey_sock)}
    r["shim"] = mean_rollup(shims)
    r["agent"] = mean_rollup(agents)
    r["agent_exe"] = exe_of(agents[0]) or "?"
    r["measure_seconds"] = time.perf_counter() - t0

    stamps.clear()
    marks.clear()
    c0 = {name: proc_cpu(pid) for name, pid in pids.items()}
    t0 = time.perf_counter()
    ends = list(pool.map(kill_stamped, live))
    el = time.perf_counter() - t0
    c1 = {name: proc_cpu(pid) for name, pid in pids.items()}
    r["kill_cpu_ms_per"] = {n: (c1[n] - c0[n]) * 1e3 / a.live for n in pids}
    r["kill_cpu_ms_per_tenth"] = tenth_cpu(c0, c1)
    r["kill_seconds"] = el
    r["kill_rate_per_s"] = a.live / el
    r["kill_rate_first_tenth"], r["kill_rate_last_tenth"] = tenths(t0, stamps)
    r["killed"] = ends.count("agent.killed")
    if r["killed"] != a.live:
        raise RuntimeError("live agents: %d of %d killed" % (r["killed"], a.live))
    # agent.killed is recorded once the exit is queued; the shims are reaped
    # by then or just after.
    deadline = time.monotonic() + 10
    while True:
        shims, _ = shims_and_agents(spoke, shim_exe)
        if not shims or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    r["after"] = {"spoke_rss_kib": vm_rss_kib(spoke), "hub_rss_kib": vm_rss_kib(hubpid),
                  "valkey_used_memory": valkey_used_memory(a.valkey_sock), "shims": len(shims)}
    r["stage_seconds"] = time.perf_counter() - t_stage
    return r


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a set-up failure: say what, exit 1
        print("perf_client: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)  # not sys.exit: pool threads may still be waiting
