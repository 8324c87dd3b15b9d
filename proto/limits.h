/* limits: the limits shared by every program, part of the contract between them.
 *
 * A worker cuts an agent's output at SYN_OUTPUT_MAX bytes (on a character
 * boundary) and appends SYN_OUTPUT_MARKER; the broker streams at most
 * SYN_OUTPUT_MAX bytes of an attempt's output as events and cuts a RESULT's
 * output the same way, letting through unchanged one the worker already cut
 * (limit + marker). Both sides read them from here, so the broker recognises
 * exactly what the worker wrote. */
#ifndef SYN_PROTO_LIMITS_H
#define SYN_PROTO_LIMITS_H

#define SYN_OUTPUT_MAX (1024u * 1024u)
#define SYN_OUTPUT_MARKER "\n[output truncated: more than 1 MiB]"

#endif
