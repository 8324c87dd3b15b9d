#include "tests/support/testca.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                      \
    do {                                                                                 \
        int rc_ = (call);                                                                \
        if (rc_ < 0) {                                                                   \
            fprintf(stderr, "testca: %s: %s\n", #call, gnutls_strerror(rc_));            \
            goto done;                                                                   \
        }                                                                                \
    } while (0)

static int write_datum(const char *path, const gnutls_datum_t *d)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(d->data, 1, d->size, f);
    return fclose(f) == 0 && n == d->size ? 0 : -1;
}

static int new_key(gnutls_x509_privkey_t *key)
{
    int rc = gnutls_x509_privkey_init(key);
    if (rc < 0)
        return rc;
    return gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
                                        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
}

/* The fields both certificates share. */
static int common_fields(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *dn,
                         unsigned char serial)
{
    const char *bad;
    time_t now = time(NULL);
    int rc;
    if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
        (rc = gnutls_x509_crt_set_serial(crt, &serial, 1)) < 0 ||
        (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
        (rc = gnutls_x509_crt_set_expiration_time(crt, now + 86400)) < 0 ||
        (rc = gnutls_x509_crt_set_dn(crt, dn, &bad)) < 0 ||
        (rc = gnutls_x509_crt_set_key(crt, key)) < 0)
        return rc;
    unsigned char id[64];
    size_t id_len = sizeof id;
    if ((rc = gnutls_x509_crt_get_key_id(crt, 0, id, &id_len)) < 0)
        return rc;
    return gnutls_x509_crt_set_subject_key_id(crt, id, id_len);
}

int testca_make(const char *dir, const char *ip, testca_files_t *files)
{
    snprintf(files->ca, sizeof files->ca, "%s/ca.pem", dir);
    snprintf(files->cert, sizeof files->cert, "%s/server.pem", dir);
    snprintf(files->key, sizeof files->key, "%s/server.key", dir);
    int result = -1;
    gnutls_x509_privkey_t ca_key = NULL, key = NULL;
    gnutls_x509_crt_t ca = NULL, crt = NULL;
    gnutls_datum_t out = {NULL, 0};
    unsigned char addr[4];
    if (inet_pton(AF_INET, ip, addr) != 1)
        return -1;

    CHECK(new_key(&ca_key));
    CHECK(gnutls_x509_crt_init(&ca));
    CHECK(common_fields(ca, ca_key, "CN=syn test CA", 1));
    CHECK(gnutls_x509_crt_set_basic_constraints(ca, 1, -1));
    CHECK(gnutls_x509_crt_set_key_usage(ca, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN));
    CHECK(gnutls_x509_crt_sign2(ca, ca, ca_key, GNUTLS_DIG_SHA256, 0));

    CHECK(new_key(&key));
    CHECK(gnutls_x509_crt_init(&crt));
    CHECK(common_fields(crt, key, "CN=syn test server", 2));
    CHECK(gnutls_x509_crt_set_basic_constraints(crt, 0, -1));
    CHECK(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
    CHECK(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
    CHECK(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, addr, sizeof addr,
                                               GNUTLS_FSAN_SET));
    unsigned char ca_id[64];
    size_t ca_id_len = sizeof ca_id;
    CHECK(gnutls_x509_crt_get_subject_key_id(ca, ca_id, &ca_id_len, NULL));
    CHECK(gnutls_x509_crt_set_authority_key_id(crt, ca_id, ca_id_len));
    CHECK(gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0));

    CHECK(gnutls_x509_crt_export2(ca, GNUTLS_X509_FMT_PEM, &out));
    if (write_datum(files->ca, &out) != 0)
        goto done;
    gnutls_free(out.data);
    out.data = NULL;
    CHECK(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out));
    if (write_datum(files->cert, &out) != 0)
        goto done;
    gnutls_free(out.data);
    out.data = NULL;
    CHECK(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out));
    if (write_datum(files->key, &out) != 0)
        goto done;
    result = 0;
done:
    gnutls_free(out.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (ca)
        gnutls_x509_crt_deinit(ca);
    if (key)
        gnutls_x509_privkey_deinit(key);
    if (ca_key)
        gnutls_x509_privkey_deinit(ca_key);
    return result;
}
