#!/usr/bin/python3
"""bench/archive_memory.sh's queries through HTTP: the cases of archive_query.c
(same ids: the generator's permutation), plus the costs reports, which read
every execution. Prints median / p99 / max per query in µs (client time: HTTP,
gateway and broker)."""
import http.client
import random
import sys
import time
from urllib.parse import urlparse

url, count = urlparse(sys.argv[1]), int(sys.argv[2])
K = int(sys.argv[3]) if len(sys.argv) > 3 else 300
WORKFLOWS = 10
conn = http.client.HTTPConnection(url.hostname, url.port)
random.seed(1)


def id_of(i):
    x = (i * 0x9E3779B97F4B + 0x5DEECE66D) & 0xFFFFFFFFFFFF
    return f"exec-{x:012x}"


def rid():
    return id_of(random.randrange(count))


cases = [
    ("list page 1 (50, no filter)", lambda: "/executions?page=1&page_size=50"),
    ("list random page (50, no filter)", lambda: f"/executions?page={random.randint(1, count // 50)}&page_size=50"),
    ("list status=failed page 1", lambda: "/executions?status=failed&page=1&page_size=50"),
    ("list status=failed random page", lambda: f"/executions?status=failed&page={random.randint(1, max(1, count * 7 // 100 // 50))}&page_size=50"),
    ("workflow.runs random page (50)", lambda: f"/workflows/wf-7/runs?page={random.randint(1, max(1, count // WORKFLOWS // 50))}&page_size=50"),
    ("get (full id)", lambda: f"/executions/{rid()}"),
    ("get (13-char prefix)", lambda: f"/executions/{rid()[:13]}"),
    ("state (full id)", lambda: f"/executions/{rid()}/state"),
    ("output (phase1)", lambda: f"/executions/{rid()}/phases/phase1/output"),
    ("costs summary", lambda: "/costs/summary"),
    ("costs executions (50)", lambda: "/costs/executions?limit=50"),
    ("workers", lambda: "/workers"),
]
print(f"\n{'query through HTTP (client time, µs)':<40} {'median':>10} {'p99':>10} {'max':>10}  non-200")
for name, path in cases:
    times, bad = [], 0
    n = K if not name.startswith("costs") else 3  # each reads the whole archive
    for i in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path())
        r = conn.getresponse()
        r.read()
        times.append((time.perf_counter() - t0) * 1e6)
        bad += r.status != 200
    times.sort()
    print(f"{name:<40} {times[len(times) // 2]:>10.0f} {times[len(times) * 99 // 100]:>10.0f} {times[-1]:>10.0f}  {bad}")
