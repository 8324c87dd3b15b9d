/* proto/curve: certificates read strictly, and a CURVE link that works with the
 * right keys and not with the wrong ones. */
#include "proto/curve.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

typedef struct {
    char dir[256];
    char path[512];
} tmp_t;

static const char *tmp_path(tmp_t *t, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

static int setup(void **state)
{
    tmp_t *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/syn-test-curve-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    zcert_t *server = zcert_new(), *client = zcert_new(), *other = zcert_new();
    assert_int_equal(zcert_save(server, tmp_path(t, "broker.key")), 0);
    assert_int_equal(zcert_save(client, tmp_path(t, "worker.key")), 0);
    assert_int_equal(zcert_save(other, tmp_path(t, "other.key")), 0);
    zcert_destroy(&server);
    zcert_destroy(&client);
    zcert_destroy(&other);
    FILE *f = fopen(tmp_path(t, "garbage.key"), "w");
    fputs("this is not a certificate\n", f);
    fclose(f);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tmp_t *t = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

static void test_files_are_read_strictly(void **state)
{
    tmp_t *t = *state;
    char err[512], sec[512], pub[512];
    snprintf(sec, sizeof sec, "%s/worker.key_secret", t->dir);
    snprintf(pub, sizeof pub, "%s/broker.key", t->dir);
    syn_curve_t *ok = syn_curve_new_client(sec, pub, err, sizeof err);
    assert_non_null(ok);
    assert_int_equal(strlen(syn_curve_public_txt(ok)), SYN_CURVE_KEY_TXT - 1);
    syn_curve_destroy(&ok);
    syn_curve_destroy(&ok);

    /* The public file where the secret one belongs. */
    char wrong[512];
    snprintf(wrong, sizeof wrong, "%s/worker.key", t->dir);
    assert_null(syn_curve_new_server(wrong, err, sizeof err));
    assert_non_null(strstr(err, "has no secret key"));
    assert_null(syn_curve_new_server(tmp_path(t, "missing.key_secret"), err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
    assert_null(syn_curve_new_server(tmp_path(t, "garbage.key"), err, sizeof err));
    assert_non_null(strstr(err, "garbage.key: no public key"));
    assert_null(syn_curve_new_client(sec, NULL, err, sizeof err));
    assert_non_null(strstr(err, "--broker-key"));
    assert_null(syn_curve_new_client(sec, tmp_path(t, "nope.key"), err, sizeof err));
}

/* A REQ/REP pair over CURVE with ZAP allowing every key: the keys line up. */
static void test_keys_make_a_working_link(void **state)
{
    tmp_t *t = *state;
    char err[512], sec[512], pub[512], srv[512], other[512];
    snprintf(sec, sizeof sec, "%s/worker.key_secret", t->dir);
    snprintf(pub, sizeof pub, "%s/broker.key", t->dir);
    snprintf(srv, sizeof srv, "%s/broker.key_secret", t->dir);
    snprintf(other, sizeof other, "%s/other.key", t->dir);
    zactor_t *auth = zactor_new(zauth, NULL);
    zstr_sendx(auth, "CURVE", CURVE_ALLOW_ANY, NULL);
    zsock_wait(auth);

    syn_curve_t *server = syn_curve_new_server(srv, err, sizeof err);
    syn_curve_t *client = syn_curve_new_client(sec, pub, err, sizeof err);
    syn_curve_t *lost = syn_curve_new_client(sec, other, err, sizeof err); /* wrong server key */
    assert_non_null(server);
    assert_non_null(client);
    assert_non_null(lost);
    zsock_t *rep = zsock_new(ZMQ_REP);
    syn_curve_apply(server, rep);
    int port = zsock_bind(rep, "tcp://127.0.0.1:*");
    assert_true(port > 0);

    zsock_t *req = zsock_new(ZMQ_REQ);
    syn_curve_apply(client, req);
    assert_int_equal(zsock_connect(req, "tcp://127.0.0.1:%d", port), 0);
    zstr_send(req, "hello");
    char *got = zstr_recv(rep);
    assert_string_equal(got, "hello");
    zstr_free(&got);

    /* A client that expects another server key never completes the handshake:
     * its message is never delivered (the REP sees nothing within a second). */
    zsock_t *lost_req = zsock_new(ZMQ_REQ);
    syn_curve_apply(lost, lost_req);
    assert_int_equal(zsock_connect(lost_req, "tcp://127.0.0.1:%d", port), 0);
    zstr_send(lost_req, "lost");
    zsock_set_rcvtimeo(rep, 1000);
    zstr_send(rep, "reply"); /* the REP answers the first client */
    got = zstr_recv(req);
    assert_string_equal(got, "reply");
    zstr_free(&got);
    got = zstr_recv(rep);
    assert_null(got);

    zsock_destroy(&lost_req);
    zsock_destroy(&req);
    zsock_destroy(&rep);
    syn_curve_destroy(&lost);
    syn_curve_destroy(&client);
    syn_curve_destroy(&server);
    zactor_destroy(&auth);
}

int main(void)
{
    zsys_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_are_read_strictly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_make_a_working_link, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
