/* ids: random identifiers such as "exec-3f9a0c12b4de" (prefix + lowercase hex), and
 * the one rule for the ids people choose (workflows, phases), which the HTTP API and
 * the template files both enforce. */
#ifndef SYN_IDS_H
#define SYN_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define SYN_ID_PATTERN "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"

/* Writes prefix followed by nhex random lowercase hex digits into buf (size bufsize).
 * Returns 0, or -1 when buf is too small or the kernel gives no randomness. */
int syn_id_make(const char *prefix, size_t nhex, char *buf, size_t bufsize);

/* True when text matches SYN_ID_PATTERN. */
bool syn_id_is_valid(const char *text);

#endif
