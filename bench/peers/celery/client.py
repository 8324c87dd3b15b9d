#!/usr/bin/python3
"""Celery's client for W1/W2/W3 (bench/peers/driver.py starts it; prints one JSON line).

    client.py run N SLEEP_MS IDS_OUT    N chained executions, submitted one at a time
    client.py lookups IDS_FILE COUNT    COUNT state look-ups of random executions

Clock points, the same as synload's and BullMQ's client: the wall time runs from
the first submit to the last completion this client saw; an execution's latency
runs from its submit to its last phase's completion as the worker recorded it
(`date_done`, same host clock), and the latency as seen here is kept too.

To see completions as they happen, every final task id is chosen before the
first submit and a thread subscribes to all of them (ResultSet.iter_native: the
redis backend's pub/sub); the submits start once redis reports the last
subscription, so no completion can come before its listener.
"""
import json
import os
import random
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redis  # noqa: E402
from celery import chain  # noqa: E402
from celery.result import AsyncResult, ResultSet  # noqa: E402

from phases import REDIS, app, phase  # noqa: E402


def percentile(values, p):
    """Linear interpolation between the closest ranks, as synload and client.js do."""
    s = sorted(values)
    if not s:
        return None
    rank = (len(s) - 1) * p / 100
    lo = int(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


def ms(seconds):
    return None if seconds is None else 1000 * seconds


class Completions:
    """Listens for the final tasks in a thread of its own: the result backend is
    per thread in Celery 5, so this thread gets its own pub/sub connection."""

    def __init__(self, final_ids):
        self.final_ids = final_ids
        self.seen_at, self.meta, self.failure = {}, {}, None
        self.subscribed = threading.Event()
        self.thread = threading.Thread(target=self.listen, daemon=True)
        self.thread.start()

    def listen(self):
        try:
            # Building the set subscribes to each id's channel (AsyncResult.then).
            results = ResultSet([AsyncResult(i, app=app) for i in self.final_ids], app=app)
            self.subscribed.set()
            for task_id, meta in results.iter_native(timeout=900):
                self.seen_at[task_id] = time.time()
                self.meta[task_id] = meta
        except Exception as e:  # reported by the main thread
            self.failure = repr(e)
            self.subscribed.set()

    def wait_subscribed(self):
        """Until redis counts a subscriber on the last id's channel: one connection's
        SUBSCRIBEs are served in order, so then all of them are in place."""
        self.subscribed.wait()
        watch = redis.Redis.from_url(REDIS)
        channel = app.backend.get_key_for_task(self.final_ids[-1])
        channel = channel if isinstance(channel, str) else channel.decode()
        deadline = time.monotonic() + 30
        while not self.failure and dict(watch.pubsub_numsub(channel)).get(channel.encode(), 0) < 1:
            if time.monotonic() > deadline:
                raise SystemExit("the completion listener did not subscribe within 30 s")
            time.sleep(0.005)
        watch.close()

    def join(self):
        self.thread.join()
        if self.failure:
            raise SystemExit("completion listener failed: " + self.failure)


def finished_at(meta):
    """The worker's `date_done` as epoch seconds (Celery writes naive UTC)."""
    done = meta.get("date_done")
    if isinstance(done, str):
        done = datetime.fromisoformat(done)
    if done is None:
        return None
    if done.tzinfo is None:
        done = done.replace(tzinfo=timezone.utc)
    return done.timestamp()


def run(n, sleep_ms, ids_out):
    sleep_s = sleep_ms / 1000
    final_ids = [str(uuid.uuid4()) for _ in range(n)]
    listener = Completions(final_ids)
    listener.wait_subscribed()

    submitted_at = []
    start = time.time()
    for i, final in enumerate(final_ids):
        submitted_at.append(time.time())
        chain(phase.s(f"exec-{i}", label="p1", sleep_s=sleep_s),
              phase.s(label="p2", sleep_s=sleep_s),
              phase.s(label="p3", sleep_s=sleep_s).set(task_id=final)).apply_async()
    all_submitted = time.time()
    listener.join()

    wrong, seen, worker = 0, [], []
    for i, final in enumerate(final_ids):
        meta = listener.meta.get(final)
        if not meta or meta.get("status") != "SUCCESS" or meta.get("result") != f"exec-{i}|p1|p2|p3":
            wrong += 1
            continue
        seen.append(listener.seen_at[final] - submitted_at[i])
        done = finished_at(meta)
        if done is not None:
            worker.append(done - submitted_at[i])
    with open(ids_out, "w") as f:
        json.dump(final_ids, f)

    wall = max(listener.seen_at.values()) - start
    print(json.dumps({
        "n": n, "sleep_s": sleep_s,
        "submit_s": all_submitted - start, "wall_s": wall,
        "exec_per_s": n / wall, "phases_per_s": 3 * n / wall,
        "lat_client_p50_ms": ms(percentile(seen, 50)), "lat_client_p99_ms": ms(percentile(seen, 99)),
        "lat_worker_p50_ms": ms(percentile(worker, 50)), "lat_worker_p99_ms": ms(percentile(worker, 99)),
        "bad_results": wrong, "missing": n - len(listener.seen_at),
    }))


def lookups(ids_file, count):
    with open(ids_file) as f:
        ids = json.load(f)
    pick = random.Random(20).choice
    chosen = [pick(ids) for _ in range(count)]
    AsyncResult(chosen[0], app=app).state  # the connection is made before the clock starts
    states = {}
    start = time.perf_counter()
    for task_id in chosen:
        state = AsyncResult(task_id, app=app).state
        states[state] = states.get(state, 0) + 1
    secs = time.perf_counter() - start
    print(json.dumps({"count": count, "secs": secs, "lookups_per_s": count / secs, "states": states}))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "run":
        run(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "lookups":
        lookups(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
