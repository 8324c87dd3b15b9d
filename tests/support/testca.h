/* testca: a certificate authority made by a test, and a server certificate it signs,
 * for HTTPS tests (GnuTLS's x509 API; no tool to install). */
#ifndef SYN_TEST_TESTCA_H
#define SYN_TEST_TESTCA_H

#include <stddef.h>

typedef struct {
    char ca[512];   /* the CA's certificate (PEM): what a client trusts */
    char cert[512]; /* the server's certificate (PEM), signed by the CA */
    char key[512];  /* the server's private key (PEM) */
} testca_files_t;

/* Writes ca.pem, server.pem and server.key into dir: a fresh CA, and a server
 * certificate for the IP address ip (a subjectAltName, as clients check) valid from
 * an hour ago for a day. 0, or -1 with the GnuTLS reason on stderr. */
int testca_make(const char *dir, const char *ip, testca_files_t *files);

#endif
