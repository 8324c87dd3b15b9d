/* certs: CURVE certificates for tests, made with czmq as `syn keygen` makes them. */
#ifndef SYN_TEST_CERTS_H
#define SYN_TEST_CERTS_H

#include <czmq.h>
#include <stdbool.h>

/* A fresh key pair in memory; when authorize is set its public certificate is also
 * saved as dir/name.key (a broker's authorized directory). Fails the test on error. */
zcert_t *testcerts_make(const char *dir, const char *name, bool authorize);

#endif
