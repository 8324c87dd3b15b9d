/* ids: random identifiers such as "exec-3f9a0c12b4de" (prefix + lowercase hex). */
#ifndef SYN_IDS_H
#define SYN_IDS_H

#include <stddef.h>

/* Writes prefix followed by nhex random lowercase hex digits into buf (size bufsize).
 * Returns 0, or -1 when buf is too small or the kernel gives no randomness. */
int syn_id_make(const char *prefix, size_t nhex, char *buf, size_t bufsize);

#endif
