"""The Celery app of the peer benchmark (bench/peers/driver.py): one task, a phase.

An execution is chain(phase("exec-i", label="p1"), phase(label="p2"),
phase(label="p3")); Celery hands each phase the previous one's return value as
its first argument. W2's phases sleep, standing in for an agent's wait.
Everything else is Celery's default on purpose (prefetch 4 x concurrency, early
acknowledgement, every task's result stored), so the peer runs as its users run it.
"""
import os
import time

from celery import Celery

REDIS = f"redis://127.0.0.1:{os.environ.get('PEER_REDIS_PORT', '6390')}/0"

app = Celery("synpeer", broker=REDIS, backend=REDIS)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_hijack_root_logger=False)


@app.task(name="phase")
def phase(previous, label, sleep_s=0.0):
    if sleep_s:
        time.sleep(sleep_s)
    return f"{previous}|{label}"
