#include "proto/curve.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

struct syn_curve_t {
    zcert_t *mine;   /* with its secret key */
    zcert_t *server; /* clients only: the server's public certificate */
};

/* A certificate is a few hundred bytes: anything much larger is not one. */
#define CERT_MAX (64 * 1024)

/* The file's text parsed as czmq's zconfig, or NULL. Not zconfig_load, which
 * leaks its file handle when the text does not parse (czmq 4.2): the authorized
 * keys directory may hold any file, and is read again on every SIGHUP. */
static zconfig_t *parse(const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return NULL;
    char *text = malloc(CERT_MAX + 1);
    size_t n = text ? fread(text, 1, CERT_MAX + 1, in) : 0;
    fclose(in);
    zconfig_t *config = NULL;
    if (text && n <= CERT_MAX) {
        text[n] = '\0';
        config = zconfig_str_load(text);
    }
    free(text);
    return config;
}

/* The file given is the file read: czmq's zcert_load would prefer a sibling
 * "<path>_secret" and read a file without a secret section as an all-zero secret
 * key, so the certificate's text (zconfig, czmq's format) is read here and both
 * keys checked, with a reason a person can act on. */
static zcert_t *load(const char *path, bool need_secret, syn_curve_role_t *role, char *err,
                     size_t errlen)
{
    if (!path || !path[0]) {
        snprintf(err, errlen, "no certificate file given");
        return NULL;
    }
    if (!zmq_has("curve")) { /* zcert_apply would then do nothing, silently */
        snprintf(err, errlen, "this libzmq has no CURVE (built without libsodium): cannot "
                              "use %s",
                 path);
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read certificate %s: %s", path, strerror(errno));
        return NULL;
    }
    zconfig_t *text = S_ISREG(st.st_mode) ? parse(path) : NULL;
    const char *public_txt = text ? zconfig_get(text, "curve/public-key", NULL) : NULL;
    const char *secret_txt = text ? zconfig_get(text, "curve/secret-key", NULL) : NULL;
    const char *role_txt = text ? zconfig_get(text, "metadata/role", NULL) : NULL;
    syn_curve_role_t parsed_role = SYN_CURVE_ROLE_ANY;
    uint8_t public_key[32], secret_key[32] = {0};
    zcert_t *cert = NULL;
    if (!public_txt || strlen(public_txt) != 40 || !zmq_z85_decode(public_key, public_txt))
        snprintf(err, errlen, "cannot read certificate %s: no public key in czmq's format",
                 path);
    else if (need_secret &&
             (!secret_txt || strlen(secret_txt) != 40 || !zmq_z85_decode(secret_key, secret_txt)))
        snprintf(err, errlen,
                 "certificate %s has no secret key (give the NAME.key_secret file, not "
                 "NAME.key)",
                 path);
    else if (role_txt && syn_curve_role_parse(role_txt, &parsed_role) != 0)
        snprintf(err, errlen, "certificate %s has an unknown role '%.32s' (gateway, worker or any)",
                 path, role_txt);
    else if (!(cert = zcert_new_from(public_key, secret_key)))
        snprintf(err, errlen, "out of memory");
    else if (role)
        *role = parsed_role;
    zconfig_destroy(&text);
    return cert;
}

syn_curve_t *syn_curve_new_server(const char *secret_file, char *err, size_t errlen)
{
    zcert_t *mine = load(secret_file, true, NULL, err, errlen);
    if (!mine)
        return NULL;
    syn_curve_t *self = calloc(1, sizeof *self);
    if (!self) {
        zcert_destroy(&mine);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->mine = mine;
    return self;
}

syn_curve_t *syn_curve_new_client(const char *secret_file, const char *server_public_file,
                                  char *err, size_t errlen)
{
    if (!server_public_file || !server_public_file[0]) {
        snprintf(err, errlen, "a CURVE secret is given but not the broker's public key "
                              "(--broker-key FILE)");
        return NULL;
    }
    syn_curve_t *self = syn_curve_new_server(secret_file, err, errlen);
    if (!self)
        return NULL;
    self->server = load(server_public_file, false, NULL, err, errlen);
    if (!self->server) {
        syn_curve_destroy(&self);
        return NULL;
    }
    return self;
}

void syn_curve_destroy(syn_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zcert_destroy(&(*self_p)->mine);
    zcert_destroy(&(*self_p)->server);
    free(*self_p);
    *self_p = NULL;
}

void syn_curve_apply(const syn_curve_t *self, void *socket)
{
    if (self->server) {
        zcert_apply(self->mine, socket);
        zmq_setsockopt(zsock_resolve(socket), ZMQ_CURVE_SERVERKEY,
                       zcert_public_key(self->server), 32);
    } else {
        (void)syn_curve_apply_server(self, socket, SYN_CURVE_ZAP_DOMAIN);
    }
}

/* libzmq's draft option (stable in later versions): without it, a CURVE server
 * whose ZAP handler is gone admits every key. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

int syn_curve_apply_server(const syn_curve_t *self, void *socket, const char *zap_domain)
{
    zcert_apply(self->mine, socket);
    void *handle = zsock_resolve(socket);
    int on = 1;
    if (zmq_setsockopt(handle, ZMQ_CURVE_SERVER, &on, sizeof on) != 0 ||
        zmq_setsockopt(handle, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) != 0 ||
        zmq_setsockopt(handle, ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on) != 0)
        return -1;
    return 0;
}

int syn_curve_read_public(const char *path, unsigned char public_key[32],
                          syn_curve_role_t *role, char *err, size_t errlen)
{
    zcert_t *cert = load(path, false, role, err, errlen);
    if (!cert)
        return -1;
    memcpy(public_key, zcert_public_key(cert), 32);
    zcert_destroy(&cert);
    return 0;
}

static const char *role_names[] = {"any", "gateway", "worker"};

int syn_curve_role_parse(const char *text, syn_curve_role_t *role)
{
    for (int r = SYN_CURVE_ROLE_ANY; r <= SYN_CURVE_ROLE_WORKER; r++)
        if (text && strcmp(text, role_names[r]) == 0) {
            *role = (syn_curve_role_t)r;
            return 0;
        }
    return -1;
}

const char *syn_curve_role_name(syn_curve_role_t role)
{
    return role >= SYN_CURVE_ROLE_ANY && role <= SYN_CURVE_ROLE_WORKER ? role_names[role] : "?";
}

bool syn_curve_role_allows(syn_curve_role_t role, const char *zap_domain)
{
    bool workers = zap_domain && strcmp(zap_domain, SYN_CURVE_DOMAIN_WORKERS) == 0;
    return role == SYN_CURVE_ROLE_ANY || (role == SYN_CURVE_ROLE_WORKER) == workers;
}

const char *syn_curve_public_txt(const syn_curve_t *self)
{
    return zcert_public_txt(self->mine);
}
