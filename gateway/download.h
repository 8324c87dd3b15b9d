/* download: an artifact answer streamed to its HTTP client — one file
 * (GET /executions/{id}/artifacts/{phase_id}/{path}) or every file of an execution
 * as a tar (GET /executions/{id}/artifacts.tar) or a ZIP (….zip, its records
 * written by gateway/zip.c).
 *
 * The broker gives a file a range at a time (op execution.artifact, at most 1 MiB,
 * base64); the gateway asks for the next range only when its client has read the
 * last one (MHD's content reader finds nothing left, suspends the connection, the
 * reply resumes it). So a download costs one range of memory in the gateway and
 * one in the broker, whatever the files' sizes or the client's speed, and a slow
 * client holds nothing but its connection. The tar is POSIX ustar (pax headers for
 * paths over ustar's limits), the ZIP stored entries with data descriptors (ZIP64
 * where needed); entries "<phase_id>/<path>", the length known before the first
 * byte. It stands alone because it is the gateway's one answer that is
 * neither a single reply nor an event stream. */
#ifndef SYN_GATEWAY_DOWNLOAD_H
#define SYN_GATEWAY_DOWNLOAD_H

#include "gateway/broker_link.h"
#include "gateway/request.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

typedef struct gateway_download_t gateway_download_t;

/* The first reply of an artifact route (status 200): the file's first range
 * (ARTIFACT_GET) or the execution's list (ARTIFACT_TAR, ARTIFACT_ZIP). Sets req->download and
 * req->state = REQUEST_DOWNLOAD, or an error answer. */
void gateway_download_begin(gateway_request_t *req, const json_t *body,
                            gateway_broker_link_t *link, long timeout_ms, gateway_turn_t *turn);
/* Queues the streamed response (inside MHD's access handler). */
enum MHD_Result gateway_download_respond(gateway_request_t *req);
/* The reply to the range in flight, or none (status 0: timeout, shutdown). */
void gateway_download_range(gateway_request_t *req, json_int_t status, const json_t *body);
/* Whether a range request is in flight (its corr in req->corr). */
bool gateway_download_pending(const gateway_request_t *req);
void gateway_download_destroy(gateway_download_t **self_p);

#endif
