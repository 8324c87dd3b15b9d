/* keys: CURVE key pairs as files, for `syn keygen` and `syn up --curve`.
 *
 * A pair NAME is two files in czmq's certificate format (zcert): NAME.key, the
 * public certificate (mode 0644: hand it out), and NAME.key_secret, which also
 * holds the secret key (mode 0600: it never leaves its host). proto/curve.h reads
 * them. Both are written in a private directory first (mode 0700) and then linked
 * into place, so the secret file is never readable by anyone else, not even for
 * an instant, a half-written file is never seen, and an existing file is never
 * overwritten (link(2) refuses, whatever happens between the check and the
 * write). */
#ifndef SYN_CLI_KEYS_H
#define SYN_CLI_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* The Z85 text of a public key, and its NUL. */
#define KEYS_PUBLIC_TXT 41

/* A name that is a safe file name on its own: 1-64 of A-Z a-z 0-9 . _ -, not
 * starting with '.' or '-' (no hidden files, nothing read as an option, no "..").
 */
bool keys_name_is_valid(const char *name);
#define KEYS_NAME_RULE "1-64 of A-Z a-z 0-9 . _ -, not starting with . or -"

/* Makes a fresh pair as dir/name.key and dir/name.key_secret; dir must exist.
 * role (NULL for none) goes in both certificates' metadata as `role = "…"`: what
 * the broker lets the key do (proto/curve.h, syn_curve_role_t; the caller checks
 * it). Refuses when either file exists, naming it in err. public_txt (may be
 * NULL) gets the public key's text. 0, or -1 with the reason in err. */
int keys_generate(const char *dir, const char *name, const char *role, char *public_txt,
                  char *err, size_t errlen);

/* The pair dir/name.*: reused when both files exist (whatever their role), made
 * with role when neither does (*made tells which); one without the other is an
 * error a person must look at. 0, or -1 with err. */
int keys_ensure(const char *dir, const char *name, const char *role, bool *made, char *err,
                size_t errlen);

/* Makes authorized_dir/name.key a copy of dir/name.key (the public certificate
 * only), replacing a copy that differs. 0, or -1 with err. */
int keys_authorize(const char *dir, const char *name, const char *authorized_dir, char *err,
                   size_t errlen);

/* mkdir -p path, the last component with mode (existing directories are left as
 * they are). 0, or -1 with err. */
int keys_mkdir(const char *path, unsigned mode, char *err, size_t errlen);

#endif
