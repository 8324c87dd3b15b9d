/* batch: submits N executions of one workflow through the HTTP API with a
 * window of submits in flight (one keep-alive connection each), and follows
 * them to a terminal state by status polling on one more connection (the
 * gateway has no event stream yet). Two ways to poll:
 *   each:   GET …/executions/{id} of the oldest unfinished execution, one by one
 *           (per-execution completion times; one request per execution at least);
 *   active: GET /workflows/executions/active?limit=1 until it is empty (one cheap
 *           request per poll interval, so polling does not load the broker; only
 *           right on a stack that runs nothing else). */
#ifndef SYNLOAD_BATCH_H
#define SYNLOAD_BATCH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define BATCH_ID_SIZE 48

typedef struct {
    const char *url;          /* http://HOST:PORT */
    const char *workflow_id;
    const char *task_prefix;  /* execution i gets task "<prefix>-<i>" */
    int executions;
    int inflight;             /* submits in flight at once (>= 1) */
    int poll_ms;              /* delay before polling a not-yet-finished execution again */
    bool track_active;        /* poll the active list instead of each execution */
    int timeout_s;            /* the whole batch */
    const char *label;        /* for progress lines on stderr; NULL = quiet */
    volatile sig_atomic_t *stop;
} batch_options_t;

typedef struct {
    int n;
    char (*ids)[BATCH_ID_SIZE];
    char (*tasks)[64];
    int64_t *submit_us;       /* wall clock when the POST started */
    int64_t *accepted_us;     /* when its 200 arrived */
    int64_t *seen_us;         /* when a poll first saw it terminal */
    char *final_status;       /* 'c' completed, 'f' failed, 'x' cancelled,
                                 '?' finished (active list), status not read */
    int64_t first_submit_us;
    int64_t last_accepted_us;
    int64_t last_seen_us;
    long polls;               /* status requests made */
} batch_t;

/* Runs the batch. 0 when every execution was accepted and seen terminal (its
 * terminal status may still be wrong: check final_status and the outputs);
 * -1 with the reason in err. The batch's arrays are filled in either case and
 * freed by batch_clear. */
int batch_run(const batch_options_t *opts, batch_t *out, char *err, size_t errlen);
void batch_clear(batch_t *batch);
/* The arrays of a batch of n (zeroed), for a caller that submits by itself
 * (the fleet workload); 0, or -1 when out of memory (batch_clear frees either way). */
int batch_alloc(batch_t *b, int n);

/* "completed" etc. of a status body, copied into buf; -1 when absent. */
int batch_json_string(const char *body, const char *key, char *buf, size_t bufsize);

#endif
