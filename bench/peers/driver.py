#!/usr/bin/python3
"""The peers' side of W1/W2/W3: Celery and BullMQ run the executions synload runs
against syn (docs/benchmarks.md), measured at the same clock points, and the
figures go to one JSON file that bench/report.py puts beside ours.

    /usr/bin/python3 driver.py celery|bullmq OUT.json
        REPS=3     repetitions (REPS=1 is the quick run)
        SKIP_W2=1  W1/W3 only
        W2_ONLY=1  W2 only (bench/w2_defaults.sh), with W2_SLOTS=16,64 and
                   W2_EXECUTIONS=640 to change the slot counts and batch size
        W1_ONLY=1  W1 only (no W3, no memory; bench/w1.sh alternates it with syn's)

It stands apart from synload because it drives other systems through their own
clients (celery/client.py, bullmq/client.js); what it shares with synload is the
procedure, which is written down here once for both peers:

  W1/W3, REPS times: a fresh redis-server, the W1 fleet (Celery: one prefork
      worker with 2 children; BullMQ: 2 node processes of 16 slots), 200
      unmeasured executions (they also prove the fleet is up), W1 = 2,000 no-op
      executions submitted one at a time, 2 s idle, the resident memory of the
      workers and of redis, W3 = 20,000 look-ups of random W1 executions'
      states, and for BullMQ W1 again with 16 submissions in flight.
  W2, REPS times, at 4, 8 and 16 slots: a fresh redis-server, one worker with
      that many slots (Celery: the gevent pool), 20 unmeasured executions, then
      200 executions whose phases sleep 50 ms each.

An execution is three phases in a chain, each given the previous one's output:
"exec-<i>" -> "exec-<i>|p1|p2|p3", and the clients check every final value.

redis-server runs on a free loopback port chosen here (never 6379, the system's
default), without persistence, in a temp dir; it and the workers are this
script's children in their own sessions, stopped by pid whatever happens.
"""
import contextlib
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"  # Debian's: python3-celery is installed for it, not for another python3 on PATH
REPS = int(os.environ.get("REPS", "3"))
W1_EXECUTIONS, W1_WARMUP = 2000, 200
W1_WINDOW = 16  # BullMQ's second W1: flow.add() calls in flight (Celery's submit blocks)
W2_EXECUTIONS, W2_WARMUP = int(os.environ.get("W2_EXECUTIONS", "200")), 20
W2_SLOTS = tuple(int(s) for s in os.environ.get("W2_SLOTS", "4,8,16").split(","))
W2_SLEEP_MS = 50
W3_LOOKUPS = 20000
CELERY_QUIET = ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]


def say(*words):
    print(f"[peers {datetime.now().strftime('%H:%M:%S')}]", *words, file=sys.stderr, flush=True)


def now_utc():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ the two peers
# Each peer says how to start its workers and its client; a command is
# (argv, extra environment), recorded in the JSON as one shell-like line.
def celery_worker(pool, slots, node):
    return ([PY, "-m", "celery", "-A", "phases", "worker", "-P", pool, "-c", str(slots),
             "-n", f"{node}@%h"] + CELERY_QUIET, {})


def node_worker(slots):
    return (["node", "worker.js"], {"SLOTS": str(slots)})


PEERS = {
    "celery": {
        "dir": "celery",
        "w1_fleet": lambda: [celery_worker("prefork", 2, "w1")],
        "w2_fleet": lambda slots: [celery_worker("gevent", slots, "w2")],
        "run": lambda n, sleep_ms, ids, window=1: ([PY, "client.py", "run", str(n), str(sleep_ms), ids], {}),
        "lookups": lambda ids, count: ([PY, "client.py", "lookups", ids, str(count)], {}),
        "pipelined": False,
    },
    "bullmq": {
        "dir": "bullmq",
        "w1_fleet": lambda: [node_worker(16), node_worker(16)],
        "w2_fleet": lambda slots: [node_worker(slots)],
        "run": lambda n, sleep_ms, ids, window=1: (["node", "client.js", "run", str(n), str(sleep_ms), ids],
                                                   {"SUBMIT_WINDOW": str(window)}),
        "lookups": lambda ids, count: (["node", "client.js", "lookups", ids, str(count)], {}),
        "pipelined": True,
    },
}


def as_line(command):
    argv, extra = command
    return " ".join([f"{k}={v}" for k, v in extra.items()] + argv)


# ------------------------------------------------------------------ /proc readings
def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


def cpu_seconds(pid):
    """User + system time of one live process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            after_name = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except FileNotFoundError:
        pass
    return kids


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def busiest_processes():
    ps = subprocess.run(["ps", "-eo", "pid,pcpu,rss,comm", "--sort=-pcpu"], capture_output=True, text=True)
    return ps.stdout.splitlines()[:6]


# ------------------------------------------------------------------ redis-server
def free_loopback_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


class Redis:
    """One redis-server of our own: loopback only, no RDB, no AOF."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="syn-peer-redis-")
        for _ in range(5):  # the port can be taken between our probe and redis' bind
            self.port = free_loopback_port()
            self.argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"]
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
            if self.wait_for_pong():
                return
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        raise RuntimeError("redis-server did not start on a free loopback port")

    def wait_for_pong(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.command("PING") == "PONG":
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def command(self, *args):
        """One RESP request with a simple or bulk string answer (PING, INFO): enough
        to watch redis without a client library."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(request.encode())
            answer = s.makefile("rb")
            head = answer.readline()
            if head.startswith(b"+"):
                return head[1:].strip().decode()
            if head.startswith(b"$"):
                return answer.read(int(head[1:]) + 2)[:-2].decode()
            raise RuntimeError(f"redis answered {head!r}")

    def env(self):
        return {"PEER_REDIS_PORT": str(self.port)}

    def memory(self):
        info = dict(line.split(":", 1) for line in self.command("INFO", "memory").splitlines() if ":" in line)
        return {"rss_kb": rss_kb(self.proc.pid), "used_memory_kb": int(info["used_memory"]) // 1024}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------ workers and clients
class Fleet:
    """The peer's worker processes for one stage, each in its own session."""

    def __init__(self, cwd, commands, redis):
        self.commands = [as_line(c) for c in commands]
        self.procs = [subprocess.Popen(argv, cwd=cwd, env=dict(os.environ, **redis.env(), **extra),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
                      for argv, extra in commands]

    def memory(self):
        out = []
        for p in self.procs:
            out.append({"pid": p.pid, "role": "main", "rss_kb": rss_kb(p.pid)})
            out += [{"pid": k, "role": "child", "rss_kb": rss_kb(k)} for k in child_pids(p.pid)]
        return out

    def cpu(self):
        return sum(cpu_seconds(p.pid) + sum(cpu_seconds(k) for k in child_pids(p.pid)) for p in self.procs)

    def stop(self):
        for p in self.procs:
            kids = child_pids(p.pid)
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in kids + [p.pid]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                p.wait()


def run_client(cwd, command, redis, fleet=None):
    """One client process to its end; its last stdout line is its JSON. With a
    fleet, the CPU seconds of the client, the workers and redis over the run are
    added (the client's from getrusage of waited-for children: only this one)."""
    argv, extra = command
    before = (resource.getrusage(resource.RUSAGE_CHILDREN), fleet.cpu() if fleet else 0.0,
              cpu_seconds(redis.proc.pid))
    done = subprocess.run(argv, cwd=cwd, env=dict(os.environ, **redis.env(), **extra),
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"client failed: {as_line(command)}\n{done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if fleet:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["cpu_s"] = {
            "client": usage.ru_utime + usage.ru_stime - before[0].ru_utime - before[0].ru_stime,
            "workers": fleet.cpu() - before[1],
            "redis": cpu_seconds(redis.proc.pid) - before[2],
        }
    result["cmd"] = as_line(command)
    return result


def measured(cwd, command, redis, fleet):
    """A measured run after a 1 s pause, with the load average it started under."""
    time.sleep(1)
    load = loadavg()
    result = run_client(cwd, command, redis, fleet)
    result["loadavg_before"] = load
    return result


# ------------------------------------------------------------------ versions
def versions(name, cwd):
    said = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    redis = said.split("v=", 1)[1].split()[0] if "v=" in said else said.strip()  # "Redis server v=7.0.15 sha=…"
    if name == "celery":
        probe = ("import json, sys, celery, kombu, redis, billiard, gevent; print(json.dumps({'celery': "
                 "celery.__version__, 'kombu': kombu.__version__, 'redis-py': redis.__version__, 'billiard': "
                 "billiard.__version__, 'gevent': gevent.__version__, 'python': sys.version.split()[0]}))")
        argv = [PY, "-c", probe]
    else:
        probe = ("const v = (m) => require(m + '/package.json').version; console.log(JSON.stringify("
                 "{ bullmq: v('bullmq'), ioredis: v('ioredis'), node: process.version }))")
        argv = ["node", "-e", probe]
    found = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    out = json.loads(found.stdout) if found.returncode == 0 else {"error": found.stderr.strip()}
    out["redis-server"] = redis
    return out


# ------------------------------------------------------------------ the procedure
@contextlib.contextmanager
def fresh_stack(cwd, commands):
    """A redis-server of its own and the workers for one stage, stopped however the stage ends."""
    redis = Redis()
    fleet = None
    try:
        fleet = Fleet(cwd, commands, redis)
        yield redis, fleet
    finally:
        if fleet:
            fleet.stop()
        redis.remove()


def w1_w3(peer, cwd, ids, out, rep):
    with fresh_stack(cwd, peer["w1_fleet"]()) as (redis, fleet):
        out["redis_cmd"] = shlex.join(redis.argv[:redis.argv.index("--dir")] + ["--dir", "<tmp>", "--loglevel", "warning"])
        out["w1_worker_cmds"] = fleet.commands
        run_client(cwd, peer["run"](W1_WARMUP, 0, ids), redis)
        r = measured(cwd, peer["run"](W1_EXECUTIONS, 0, ids), redis, fleet)
        out["w1"].append(r)
        say(f"W1 rep {rep}: {r['exec_per_s']:.0f} executions/s, p50 {r['lat_worker_p50_ms']:.1f} ms, "
            f"wrong {r['bad_results']}, completions not seen as they came {r.get('missed_by_events', 0)}")
        if not os.environ.get("W1_ONLY"):
            time.sleep(2)  # idle, then memory
            out["mem"].append({"workers": fleet.memory(), "redis": redis.memory()})
            r = run_client(cwd, peer["lookups"](ids, W3_LOOKUPS), redis, fleet)
            out["w3"].append(r)
            say(f"W3 rep {rep}: {r['lookups_per_s']:.0f} look-ups/s {r['states']}")
        if peer["pipelined"]:
            r = measured(cwd, peer["run"](W1_EXECUTIONS, 0, ids, W1_WINDOW), redis, fleet)
            out["w1_pipelined"].append(r)
            say(f"W1 {W1_WINDOW} in flight rep {rep}: {r['exec_per_s']:.0f} executions/s")


def w2(peer, cwd, ids, out, rep, slots):
    with fresh_stack(cwd, peer["w2_fleet"](slots)) as (redis, fleet):
        out["w2_worker_cmds"][str(slots)] = fleet.commands
        run_client(cwd, peer["run"](W2_WARMUP, W2_SLEEP_MS, ids), redis)
        r = measured(cwd, peer["run"](W2_EXECUTIONS, W2_SLEEP_MS, ids), redis, fleet)
        r["slots"] = slots
        r["ideal_exec_per_s"] = slots / (3 * W2_SLEEP_MS / 1000)
        out["w2"].append(r)
        say(f"W2 rep {rep} {slots} slots: {r['exec_per_s']:.1f} executions/s of {r['ideal_exec_per_s']:.1f}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in PEERS:
        raise SystemExit(__doc__)
    name, out_path = sys.argv[1], sys.argv[2]
    peer = PEERS[name]
    cwd = os.path.join(HERE, peer["dir"])
    # SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so the
    # finally blocks stop redis and the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = tempfile.mkdtemp(prefix=f"syn-peer-{name}-")
    ids = os.path.join(scratch, "ids.json")  # W1's execution ids, for W3
    out = {"peer": name, "started": now_utc(),
           "host": {"nproc": os.cpu_count(), "loadavg_start": loadavg(), "top_cpu_start": busiest_processes()},
           "versions": versions(name, cwd),
           "w1": [], "w1_pipelined": [], "w3": [], "mem": [], "w2": [], "w2_worker_cmds": {}}
    say(name, "starts; load average", " ".join(out["host"]["loadavg_start"]))
    try:
        for rep in range(0 if os.environ.get("W2_ONLY") else REPS):
            w1_w3(peer, cwd, ids, out, rep)
        for rep in range(0 if os.environ.get("SKIP_W2") or os.environ.get("W1_ONLY") else REPS):
            for slots in W2_SLOTS:
                w2(peer, cwd, ids, out, rep, slots)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out["finished"] = now_utc()
    out["host"]["loadavg_end"] = loadavg()
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)
    say("wrote", out_path)


if __name__ == "__main__":
    main()
