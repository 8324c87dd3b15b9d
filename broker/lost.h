/* lost: a worker the broker will not hear from again, and the attempts it held.
 *
 * A worker is lost when it says DISCONNECT, when its connection is gone (a send
 * to it fails with EHOSTUNREACH) or when it stays silent for a liveness window
 * (heartbeat_ms × liveness). Each current attempt bound to it is lost (retry.h
 * decides whether the phase runs again) — except, for a connection gone or a
 * silence, while a restart's adoption window is open: then it waits for its
 * worker's READY until the window closes (deadlines.h) — and the worker is
 * forgotten, its name free for another key. A draining worker that says
 * DISCONNECT ran only what its draining READY listed: an attempt assigned to it
 * that had not arrived by then goes back to the queue uncounted, as refused. */
#ifndef SYN_BROKER_LOST_H
#define SYN_BROKER_LOST_H

#include "broker/engine.h"

#include <stdint.h>

/* The worker said DISCONNECT. */
void broker_lost_disconnected(broker_engine_t *engine, broker_worker_t *worker, int64_t now_ms);
/* A send to the worker found its connection gone. It gets nothing new, but is
 * not lost yet: ZeroMQ refuses sends on a connection as soon as it closes,
 * while the messages that came before the close can still be read — a worker
 * leaving says DISCONNECT and closes, and the broker may send it a heartbeat in
 * between. broker_lost_unreachable_now loses it once those have been read. */
void broker_lost_unreachable(broker_engine_t *engine, broker_worker_t *worker);
/* Every worker found unreachable that has not said goodbye since: to be called
 * once every message from workers received so far has been read. */
void broker_lost_unreachable_now(broker_engine_t *engine, int64_t now_ms);
/* Every worker silent for longer than the liveness window. */
void broker_lost_silent(broker_engine_t *engine, int64_t now_ms);

#endif
