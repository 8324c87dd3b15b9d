/* The syn tool's security commands (issue 14), run as a person would run them:
 * `syn keygen` writes a czmq key pair with the right modes and never overwrites,
 * `syn token new` prints a token once and adds only its hash to the tokens file,
 * and `syn up --curve` runs a whole stack over CURVE with keys it makes in its
 * data directory and reuses on the next start. */
#include "auth/token.h"
#include "bench/synload/localproc.h"
#include "proto/curve.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static char scratch[64];

static int setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/syn-test-cli-XXXXXX");
    return mkdtemp(scratch) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return teststack_remove_dir(scratch);
}

/* A file in the scratch dir. */
static const char *at(const char *name)
{
    static char paths[4][512];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", scratch, name);
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = calloc(1, 65536);
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

typedef struct {
    int code;     /* exit code, -1 when it did not exit normally */
    char *out;    /* stdout (malloc'd) */
    char *err;    /* stderr (malloc'd) */
} run_t;

static void run_clear(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* Runs the built `syn` with the NULL-ended arguments, with umask 0 (so modes are
 * the tool's own choice, not the umask's) and env_name=env_value set when given. */
static run_t run_syn(const char *env_name, const char *env_value, ...)
{
    char *argv[16] = {SYN_BIN_DIR "/syn"};
    va_list ap;
    va_start(ap, env_value);
    int argc = 1;
    for (char *a = va_arg(ap, char *); a && argc < 15; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s", at("run.out"));
    snprintf(err_path, sizeof err_path, "%s", at("run.err"));
    pid_t pid = fork();
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        umask(0);
        if (env_name)
            setenv(env_name, env_value, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    run_t r = {.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
               .out = slurp(out_path),
               .err = slurp(err_path)};
    unlink(out_path);
    unlink(err_path);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* How many entries dir holds, hidden ones included (not . and ..). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- syn keygen ---- */

static void test_keygen_writes_a_matching_pair(void **state)
{
    (void)state;
    char keys[512];
    snprintf(keys, sizeof keys, "%s", at("keys"));
    assert_int_equal(mkdir(keys, 0755), 0);
    run_t r = run_syn(NULL, NULL, "keygen", "alpha", "--dir", keys, NULL);
    assert_int_equal(r.code, 0);
    char pub[600], sec[600];
    snprintf(pub, sizeof pub, "%s/alpha.key", keys);
    snprintf(sec, sizeof sec, "%s/alpha.key_secret", keys);
    /* umask 0 in the child: these modes are the tool's own */
    assert_int_equal(mode_of(sec), 0600);
    assert_int_equal(mode_of(pub), 0644);
    assert_int_equal(entries(keys), 2); /* no temporary left behind */

    /* the secret certificate holds a key pair: its public key is the one derived
     * from its secret key, and the public certificate's */
    zcert_t *pair = zcert_load(sec);
    assert_non_null(pair);
    char derived[41], secret_txt[41];
    snprintf(secret_txt, sizeof secret_txt, "%s", zcert_secret_txt(pair));
    assert_int_equal(zmq_curve_public(derived, secret_txt), 0);
    assert_string_equal(derived, zcert_public_txt(pair));
    zconfig_t *public_cert = zconfig_load(pub);
    assert_non_null(public_cert);
    assert_string_equal(zconfig_get(public_cert, "curve/public-key", ""), derived);
    assert_null(zconfig_get(public_cert, "curve/secret-key", NULL)); /* public only */
    zconfig_destroy(&public_cert);
    /* and the programs read them as they are: --curve-secret, --broker-key */
    char err[256];
    syn_curve_t *client = syn_curve_new_client(sec, pub, err, sizeof err);
    if (!client)
        fail_msg("%s", err);
    assert_string_equal(syn_curve_public_txt(client), derived);
    syn_curve_destroy(&client);

    /* what it prints: the public key and both paths, never the secret */
    assert_non_null(strstr(r.out, derived));
    assert_non_null(strstr(r.out, pub));
    assert_non_null(strstr(r.out, sec));
    assert_null(strstr(r.out, secret_txt));
    assert_null(strstr(r.err, secret_txt));
    zcert_destroy(&pair);
    run_clear(&r);

    /* without --role the key may use every socket; with one, both files say it */
    unsigned char raw[32];
    syn_curve_role_t role = SYN_CURVE_ROLE_WORKER;
    assert_int_equal(syn_curve_read_public(pub, raw, &role, err, sizeof err), 0);
    assert_int_equal(role, SYN_CURVE_ROLE_ANY);
    run_t worker = run_syn(NULL, NULL, "keygen", "beta", "--dir", keys, "--role", "worker", NULL);
    assert_int_equal(worker.code, 0);
    assert_non_null(strstr(worker.out, "role worker"));
    run_clear(&worker);
    snprintf(pub, sizeof pub, "%s/beta.key", keys);
    snprintf(sec, sizeof sec, "%s/beta.key_secret", keys);
    for (const char *path = pub; path; path = path == pub ? sec : NULL) {
        role = SYN_CURVE_ROLE_ANY;
        assert_int_equal(syn_curve_read_public(path, raw, &role, err, sizeof err), 0);
        assert_int_equal(role, SYN_CURVE_ROLE_WORKER);
    }
    run_t bad_role = run_syn(NULL, NULL, "keygen", "eps", "--dir", keys, "--role", "admin", NULL);
    assert_int_equal(bad_role.code, 2);
    assert_non_null(strstr(bad_role.err, "--role must be gateway, worker or any"));
    run_clear(&bad_role);
    assert_int_equal(entries(keys), 4);
}

static void test_keygen_never_overwrites(void **state)
{
    (void)state;
    char keys[512], pub[600], sec[600];
    snprintf(keys, sizeof keys, "%s", at("keys2"));
    assert_int_equal(mkdir(keys, 0700), 0);
    snprintf(pub, sizeof pub, "%s/gamma.key", keys);
    snprintf(sec, sizeof sec, "%s/gamma.key_secret", keys);
    run_t first = run_syn(NULL, NULL, "keygen", "gamma", "--dir", keys, NULL);
    assert_int_equal(first.code, 0);
    run_clear(&first);
    char *before_pub = slurp(pub), *before_sec = slurp(sec);

    run_t again = run_syn(NULL, NULL, "keygen", "gamma", "--dir", keys, NULL);
    assert_int_equal(again.code, 1);
    assert_non_null(strstr(again.err, "gamma.key"));
    assert_non_null(strstr(again.err, "not overwritten"));
    assert_string_equal(again.out, "");
    run_clear(&again);
    char *after_pub = slurp(pub), *after_sec = slurp(sec);
    assert_string_equal(before_pub, after_pub);
    assert_string_equal(before_sec, after_sec);
    free(before_pub);
    free(before_sec);
    free(after_pub);
    free(after_sec);

    /* either file alone is enough to refuse, and nothing of a new pair is left */
    char lone[600];
    snprintf(lone, sizeof lone, "%s/delta.key_secret", keys);
    FILE *f = fopen(lone, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    run_t partial = run_syn(NULL, NULL, "keygen", "delta", "--dir", keys, NULL);
    assert_int_equal(partial.code, 1);
    assert_non_null(strstr(partial.err, "delta.key_secret already exists"));
    run_clear(&partial);
    snprintf(lone, sizeof lone, "%s/delta.key", keys);
    assert_false(exists(lone));
    assert_int_equal(entries(keys), 3);
}

static void test_keygen_rejects_bad_names(void **state)
{
    (void)state;
    char keys[512];
    snprintf(keys, sizeof keys, "%s", at("keys3"));
    assert_int_equal(mkdir(keys, 0700), 0);
    const char *bad[] = {"../escape", "a/b", ".hidden", "-dash", "sp ace", "",
                         "x123456789x123456789x123456789x123456789x123456789x123456789xxxxx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_t r = run_syn(NULL, NULL, "keygen", bad[i], "--dir", keys, NULL);
        /* "-dash" is taken for an option it is not */
        if (r.code != 2 ||
            !strstr(r.err, bad[i][0] == '-' ? "unexpected argument" : "invalid key name"))
            fail_msg("name '%s': exit %d, stderr %s", bad[i], r.code, r.err);
        run_clear(&r);
    }
    run_t none = run_syn(NULL, NULL, "keygen", "--dir", keys, NULL);
    assert_int_equal(none.code, 2);
    run_clear(&none);
    assert_int_equal(entries(keys), 0);
    assert_false(exists(at("escape.key")));
}

/* ---- syn token new ---- */

static bool is_token_text(const char *text)
{
    return strlen(text) == 43 &&
           strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43;
}

static void test_token_new_prints_once_and_keeps_the_hash(void **state)
{
    (void)state;
    char file[512];
    snprintf(file, sizeof file, "%s", at("tokens"));
    run_t r = run_syn(NULL, NULL, "token", "new", "ci-bot", "--scope", "run", "--file", file,
                      NULL);
    assert_int_equal(r.code, 0);
    /* stdout is the token and a newline, nothing else */
    size_t len = strlen(r.out);
    assert_int_equal(len, 44);
    assert_int_equal(r.out[43], '\n');
    r.out[43] = '\0';
    assert_true(is_token_text(r.out));
    /* stderr says where it went and how a running gateway learns of it */
    assert_non_null(strstr(r.err, file));
    assert_non_null(strstr(r.err, "SIGHUP"));
    assert_null(strstr(r.err, r.out));

    char hash[SYN_TOKEN_HASH_HEX], want[256];
    syn_token_hash(r.out, 43, hash);
    snprintf(want, sizeof want, "ci-bot run sha256:%s\n", hash);
    char *text = slurp(file);
    assert_string_equal(text, want);
    assert_null(strstr(text, r.out)); /* the token itself is kept nowhere */
    free(text);
    assert_int_equal(mode_of(file), 0600);

    /* and the gateway's own check accepts it */
    char err[256];
    syn_tokens_t *tokens = syn_tokens_load(file, err, sizeof err);
    assert_non_null(tokens);
    const char *name = NULL;
    syn_scope_t scope = 0;
    assert_true(syn_tokens_check(tokens, r.out, 43, &name, &scope));
    assert_string_equal(name, "ci-bot");
    assert_int_equal(scope, SYN_SCOPE_RUN);
    syn_tokens_destroy(&tokens);
    run_clear(&r);

    /* -q: the token only; a second token is a different one, on its own line */
    run_t quiet = run_syn(NULL, NULL, "token", "new", "-q", "ops", "--scope", "admin", "--file",
                          file, NULL);
    assert_int_equal(quiet.code, 0);
    assert_string_equal(quiet.err, "");
    quiet.out[strcspn(quiet.out, "\n")] = '\0';
    assert_true(is_token_text(quiet.out));
    run_clear(&quiet);
    tokens = syn_tokens_load(file, err, sizeof err);
    assert_non_null(tokens);
    assert_int_equal(syn_tokens_count(tokens), 2);
    syn_tokens_destroy(&tokens);
}

static void test_token_new_refuses_duplicates_and_bad_scopes(void **state)
{
    (void)state;
    char file[512];
    snprintf(file, sizeof file, "%s", at("tokens2"));
    run_t first = run_syn(NULL, NULL, "token", "new", "alice", "--scope", "read", "--file", file,
                          NULL);
    assert_int_equal(first.code, 0);
    run_clear(&first);
    char *before = slurp(file);

    run_t dup = run_syn(NULL, NULL, "token", "new", "alice", "--scope", "admin", "--file", file,
                        NULL);
    assert_int_equal(dup.code, 1);
    assert_string_equal(dup.out, ""); /* no token shown that would not work */
    assert_non_null(strstr(dup.err, "alice"));
    run_clear(&dup);

    const char *scopes[] = {"root", "Admin", "", NULL};
    for (size_t i = 0; i < 4; i++) {
        run_t r = scopes[i] ? run_syn(NULL, NULL, "token", "new", "bob", "--scope", scopes[i],
                                      "--file", file, NULL)
                            : run_syn(NULL, NULL, "token", "new", "bob", "--file", file, NULL);
        if (r.code != 2 || r.out[0] || !strstr(r.err, "--scope must be read, run or admin"))
            fail_msg("scope '%s': exit %d, stdout %s, stderr %s", scopes[i] ? scopes[i] : "(none)",
                     r.code, r.out, r.err);
        run_clear(&r);
    }
    run_t bad_name = run_syn(NULL, NULL, "token", "new", "a b", "--scope", "read", "--file",
                             file, NULL);
    assert_int_equal(bad_name.code, 2);
    assert_string_equal(bad_name.out, "");
    run_clear(&bad_name);

    char *after = slurp(file);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* Without --file: the file the gateway reads, $SYN_API_TOKENS. */
static void test_token_new_default_file_is_the_gateways(void **state)
{
    (void)state;
    char file[512];
    snprintf(file, sizeof file, "%s", at("from-env"));
    run_t r = run_syn("SYN_API_TOKENS", file, "token", "new", "carol", "--scope", "read", NULL);
    assert_int_equal(r.code, 0);
    run_clear(&r);
    char *text = slurp(file);
    assert_non_null(text);
    assert_int_equal(strncmp(text, "carol read sha256:", 18), 0);
    free(text);
}

/* ---- syn up --curve ---- */

/* A base port with the two after it free too, and one more port for HTTP. */
static int free_ports(int *base, int *http)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int p = localproc_free_port();
        if (p <= 0 || p > 65000)
            continue;
        int fds[3], ok = 1;
        for (int i = 0; i < 3; i++) {
            fds[i] = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(p + i)};
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ok &= fds[i] >= 0 && bind(fds[i], (struct sockaddr *)&addr, sizeof addr) == 0;
        }
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        *http = localproc_free_port();
        if (ok && *http > 0 && (*http < p || *http > p + 2)) {
            *base = p;
            return 0;
        }
    }
    return -1;
}

typedef struct {
    pid_t pid;
    char url[64];
    char log[512];
} up_t;

/* The syn up a failed check left running, stopped by up_teardown. */
static up_t *running;

static int up_teardown(void **state)
{
    (void)state;
    if (running && running->pid > 0) {
        kill(running->pid, SIGINT);
        waitpid(running->pid, NULL, 0);
        running->pid = 0;
    }
    running = NULL;
    return 0;
}

static void up_start(up_t *up, const char *data)
{
    int base = 0, http = 0;
    assert_int_equal(free_ports(&base, &http), 0);
    char base_text[16], http_text[32];
    snprintf(base_text, sizeof base_text, "%d", base);
    snprintf(http_text, sizeof http_text, "127.0.0.1:%d", http);
    snprintf(up->url, sizeof up->url, "http://127.0.0.1:%d", http);
    snprintf(up->log, sizeof up->log, "%s", at("up.log"));
    up->pid = fork();
    if (up->pid == 0) {
        localproc_redirect_child(up->log);
        execl(SYN_BIN_DIR "/syn", "syn", "up", "--curve", "--data", data, "--http", http_text,
              "--base-port", base_text, "--workers", "2", "--slots", "2", "--workflows", "",
              (char *)NULL);
        _exit(127);
    }
    assert_true(up->pid > 0);
    running = up;
}

static void up_dump(const up_t *up)
{
    char *text = slurp(up->log);
    fprintf(stderr, "----- syn up -----\n%s", text ? text : "");
    free(text);
}

/* Waits for /health to say the broker is up with both workers. */
static void up_wait_healthy(const up_t *up)
{
    for (wait_t w = wait_begin(30000); wait_next(&w);) {
        http_response_t r;
        bool ok = http_get(&r, "%s/health", up->url) == 0 && r.status == 200 &&
                  json_integer_value(json_object_get(r.json, "workers")) >= 2;
        http_response_clear(&r);
        if (ok)
            return;
    }
    up_dump(up);
    fail_msg("syn up --curve did not become healthy");
}

static void up_stop(up_t *up)
{
    kill(up->pid, SIGINT);
    int status = 0;
    assert_int_equal(waitpid(up->pid, &status, 0), up->pid);
    up->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        up_dump(up);
        fail_msg("syn up did not stop cleanly");
    }
}

/* The pid syn up logged for a child ("started gateway pid=N"), 0 when absent. */
static pid_t child_pid(const up_t *up, const char *label)
{
    char *text = slurp(up->log), needle[64];
    snprintf(needle, sizeof needle, "started %s pid=", label);
    char *at_pid = text ? strstr(text, needle) : NULL;
    pid_t pid = at_pid ? (pid_t)atoi(at_pid + strlen(needle)) : 0;
    free(text);
    return pid;
}

static void run_one_execution(const up_t *up)
{
    http_response_t r;
    assert_int_equal(http_post(&r,
                               "{\"id\":\"over-curve\",\"name\":\"Over CURVE\",\"phases\":["
                               "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                               "\"prompt_template\":\"hello $ARGUMENTS\"}]}",
                               "%s/workflows", up->url),
                     0);
    assert_true(r.status == 201 || r.status == 409); /* 409: made on an earlier start */
    http_response_clear(&r);
    assert_int_equal(http_post(&r, "{\"task\":\"over curve\"}", "%s/workflows/over-curve/execute",
                               up->url),
                     0);
    assert_int_equal(r.status, 200);
    char *id = strdup(json_string_value(json_object_get(r.json, "execution_id")));
    http_response_clear(&r);
    const char *status = "";
    char last[32] = "";
    for (wait_t w = wait_begin(20000); wait_next(&w);) {
        assert_int_equal(http_get(&r, "%s/executions/%s", up->url, id), 0);
        status = json_string_value(json_object_get(r.json, "status"));
        snprintf(last, sizeof last, "%s", status ? status : "");
        http_response_clear(&r);
        if (!strcmp(last, "completed") || !strcmp(last, "failed") || !strcmp(last, "cancelled"))
            break;
    }
    if (strcmp(last, "completed") != 0) {
        up_dump(up);
        fail_msg("execution %s ended %s", id, last);
    }
    free(id);
}

static void test_up_curve_makes_keys_and_reuses_them(void **state)
{
    (void)state;
    char data[512], keys[600], path[900];
    snprintf(data, sizeof data, "%s", at("up-data"));
    snprintf(keys, sizeof keys, "%s/keys", data);
    up_t up = {0};
    up_start(&up, data);
    up_wait_healthy(&up);
    run_one_execution(&up);

    /* every link over CURVE: each program was given its keys */
    char secret[700], broker_key[700], authorized[700];
    snprintf(broker_key, sizeof broker_key, "%s/broker.key", keys);
    snprintf(authorized, sizeof authorized, "%s/authorized", keys);
    snprintf(secret, sizeof secret, "%s/broker.key_secret", keys);
    assert_true(teststack_cmdline_has(child_pid(&up, "broker"), "--curve-secret", secret));
    assert_true(teststack_cmdline_has(child_pid(&up, "broker"), "--authorized-keys", authorized));
    snprintf(secret, sizeof secret, "%s/gateway.key_secret", keys);
    assert_true(teststack_cmdline_has(child_pid(&up, "gateway"), "--curve-secret", secret));
    assert_true(teststack_cmdline_has(child_pid(&up, "gateway"), "--broker-key", broker_key));
    snprintf(secret, sizeof secret, "%s/local-2.key_secret", keys);
    assert_true(teststack_cmdline_has(child_pid(&up, "worker-2"), "--curve-secret", secret));
    assert_true(teststack_cmdline_has(child_pid(&up, "worker-2"), "--broker-key", broker_key));

    /* the keys in the data directory: a pair each, secrets 0600, and only the
     * gateway's and workers' public certificates authorized */
    const char *names[] = {"broker", "gateway", "local-1", "local-2"};
    char *publics[4];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s.key_secret", keys, names[i]);
        assert_int_equal(mode_of(path), 0600);
        snprintf(path, sizeof path, "%s/%s.key", keys, names[i]);
        publics[i] = slurp(path);
        assert_non_null(publics[i]);
        snprintf(path, sizeof path, "%s/%s.key", authorized, names[i]);
        assert_int_equal(exists(path), i > 0);
        /* each key kept to its sockets: the gateway's to clients and events, the
         * workers' to workers */
        unsigned char raw[32];
        char err[256];
        syn_curve_role_t role = SYN_CURVE_ROLE_ANY, want[] = {
            SYN_CURVE_ROLE_ANY, SYN_CURVE_ROLE_GATEWAY, SYN_CURVE_ROLE_WORKER,
            SYN_CURVE_ROLE_WORKER};
        snprintf(path, sizeof path, "%s/%s.key", i > 0 ? authorized : keys, names[i]);
        assert_int_equal(syn_curve_read_public(path, raw, &role, err, sizeof err), 0);
        assert_int_equal(role, want[i]);
    }
    assert_int_equal(entries(authorized), 3);
    up_stop(&up);

    /* a second start reuses every key */
    assert_int_equal(truncate(up.log, 0), 0);
    up_start(&up, data);
    up_wait_healthy(&up);
    run_one_execution(&up);
    char *log = slurp(up.log);
    assert_non_null(strstr(log, "made=0 reused=4"));
    free(log);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s.key", keys, names[i]);
        char *now = slurp(path);
        assert_string_equal(now, publics[i]);
        free(now);
        free(publics[i]);
    }
    up_stop(&up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_writes_a_matching_pair),
        cmocka_unit_test(test_keygen_never_overwrites),
        cmocka_unit_test(test_keygen_rejects_bad_names),
        cmocka_unit_test(test_token_new_prints_once_and_keeps_the_hash),
        cmocka_unit_test(test_token_new_refuses_duplicates_and_bad_scopes),
        cmocka_unit_test(test_token_new_default_file_is_the_gateways),
        cmocka_unit_test_teardown(test_up_curve_makes_keys_and_reuses_them, up_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
