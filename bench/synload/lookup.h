/* lookup: sequential GETs from one client, one request at a time on one
 * keep-alive connection (W3 and the HTTP floor), with our own HTTP client or
 * with libcurl, so the cost of the client itself can be seen. */
#ifndef SYNLOAD_LOOKUP_H
#define SYNLOAD_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the path of request k into buf. */
typedef void (*lookup_path_fn)(void *arg, int k, char *buf, size_t size);
/* Checks the answer of request k: 0 when right, else -1 with a reason in why. */
typedef int (*lookup_check_fn)(void *arg, int k, int status, const char *body, char *why,
                               size_t whysize);

typedef struct {
    int count;
    double secs;
    double per_s;
    double p50_us, p99_us;
    int bad;               /* wrong answers */
    char first_problem[320];
} lookup_result_t;

/* Makes `count` requests (after one unmeasured warm-up request). Returns 0 when
 * all were made (bad answers are counted, not fatal), -1 on a transport error. */
int lookup_run(const char *url, bool use_curl, int count, lookup_path_fn path,
               lookup_check_fn check, void *arg, lookup_result_t *out, char *err, size_t errlen);

#endif
