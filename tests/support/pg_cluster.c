/* pg_cluster: the private PostgreSQL cluster of a test program (pg_cluster.h).
 * Apart because both the store's unit tests and whole stacks use it, and the
 * rules of where it runs (no TCP, not as root) belong in one place. */
#include "tests/support/pg_cluster.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char bin_dir[256];
static char top[64]; /* the temporary directory: data/, the socket, the log */
static char as_user[64]; /* "runuser -u nobody -- " when root, else "" */
static int databases;
static bool durable;
static pid_t hung; /* the postmaster pg_cluster_hang_server stopped */

void pg_cluster_durable(void)
{
    durable = true;
}

bool pg_cluster_wanted(void)
{
    const char *store = getenv("SYN_TEST_STORE");
    return store && strcmp(store, "postgresql") == 0;
}

/* The directory of initdb and pg_ctl: SYN_PG_BIN, else the newest
 * /usr/lib/postgresql/N/bin of Debian's postgresql package. */
static int find_bin(char *err, size_t errlen)
{
    const char *env = getenv("SYN_PG_BIN");
    if (env && *env) {
        snprintf(bin_dir, sizeof bin_dir, "%s", env);
    } else {
        glob_t g;
        if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            snprintf(bin_dir, sizeof bin_dir, "%s", g.gl_pathv[g.gl_pathc - 1]);
            *strrchr(bin_dir, '/') = '\0';
        }
        globfree(&g);
    }
    char initdb[300];
    snprintf(initdb, sizeof initdb, "%s/initdb", bin_dir);
    if (!*bin_dir || access(initdb, X_OK) != 0) {
        snprintf(err, errlen,
                 "PostgreSQL's server programs (initdb, pg_ctl) are missing: install Debian's "
                 "postgresql package (scripts/deps.sh does), or set SYN_PG_BIN");
        return -1;
    }
    return 0;
}

static void stop(void)
{
    if (!*top)
        return;
    pg_cluster_wake_server(); /* a stopped postmaster would not stop */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s%s/pg_ctl -D %s/data -m immediate -s stop >/dev/null 2>&1",
             as_user, bin_dir, top);
    if (system(cmd) != 0)
        fprintf(stderr, "pg_cluster: pg_ctl stop failed\n");
    snprintf(cmd, sizeof cmd, "rm -rf %s", top);
    if (system(cmd) != 0)
        fprintf(stderr, "pg_cluster: cannot remove %s\n", top);
    *top = '\0';
}

/* Runs cmd; on failure the tail of log goes to stderr (the directory is gone
 * at exit). */
static int run(const char *cmd, const char *what, const char *log, char *err, size_t errlen)
{
    if (system(cmd) == 0)
        return 0;
    char tail[256];
    snprintf(tail, sizeof tail, "tail -n 20 %s/%s >&2", top, log);
    if (system(tail) != 0)
        fprintf(stderr, "pg_cluster: no %s\n", log);
    snprintf(err, errlen, "%s failed (its output above)", what);
    return -1;
}

static int server_start(char *err, size_t errlen);

/* How every cluster is made. The template's name below carries a version:
 * change both together, or copies of the old template go on being used. */
#define INITDB_ARGS "-A trust -U syn -E UTF8 --locale=C -N"
#define TEMPLATE_VERSION "1"

/* initdb costs a test program 1.5-2 s of CPU, a copy of its result 0.1-0.3 s
 * (measured on this machine; more than twenty programs make a cluster in a
 * run): the first program of a build makes one cluster beside its executable
 * (build/tests/pg-template-...), under a lock for programs that start together,
 * and each program copies it to its own directory. The name holds the server's
 * directory, so an upgraded PostgreSQL makes a template of its own. 0 when
 * top/data is a copy; -1 (nothing said) when there is no template to copy,
 * and the caller runs initdb itself. */
static int copy_template(char *cmd, size_t cmdlen)
{
    char dir[256], exe[160];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    int len = snprintf(dir, sizeof dir, "%s/pg-template-" TEMPLATE_VERSION, exe);
    for (const char *b = bin_dir; *b && len < (int)sizeof dir - 1; b++)
        dir[len++] = isalnum((unsigned char)*b) ? *b : '_';
    dir[len] = '\0';
    char lock_path[300];
    snprintf(lock_path, sizeof lock_path, "%s.lock", dir);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) {
        if (lock >= 0)
            close(lock);
        return -1;
    }
    int rc = 0;
    if (access(dir, F_OK) != 0) {
        /* made in a directory of its own (the server's user's), renamed when
         * complete */
        snprintf(cmd, cmdlen,
                 "rm -rf %s.new && mkdir %s.new && %s %s.new && cd %s.new && %s%s/initdb -D "
                 "%s.new/data " INITDB_ARGS " >%s.new/initdb.log 2>&1 && mv %s.new %s",
                 dir, dir, *as_user ? "chown nobody:" : "test -d", dir, dir, as_user, bin_dir,
                 dir, dir, dir, dir);
        rc = system(cmd) == 0 ? 0 : -1;
    }
    if (rc == 0) {
        snprintf(cmd, cmdlen, "cp -a %s/data %s/data || { rm -rf %s/data; false; }", dir, top,
                 top);
        rc = system(cmd) == 0 ? 0 : -1;
    }
    flock(lock, LOCK_UN);
    close(lock);
    return rc;
}

static int start(char *err, size_t errlen)
{
    if (find_bin(err, errlen) < 0)
        return -1;
    snprintf(top, sizeof top, "/tmp/syn-pg-XXXXXX");
    if (!mkdtemp(top)) {
        snprintf(err, errlen, "mkdtemp failed");
        *top = '\0';
        return -1;
    }
    if (geteuid() == 0) {
        /* postgres will not run as root: the cluster belongs to nobody */
        struct passwd *pw = getpwnam("nobody");
        if (!pw || chown(top, pw->pw_uid, pw->pw_gid) != 0) {
            snprintf(err, errlen, "running as root, and cannot give %s to user nobody", top);
            return -1;
        }
        snprintf(as_user, sizeof as_user, "runuser -u nobody -- ");
    }
    atexit(stop);
    char cmd[3072];
    if (copy_template(cmd, sizeof cmd) < 0) {
        snprintf(cmd, sizeof cmd, "cd %s && %s%s/initdb -D %s/data " INITDB_ARGS
                 " >%s/initdb.log 2>&1", top, as_user, bin_dir, top, top);
        if (run(cmd, "initdb", "initdb.log", err, errlen) < 0)
            return -1;
    }
    return server_start(err, errlen);
}

/* pg_ctl start of the cluster made: also after pg_cluster_stop_server. */
static int server_start(char *err, size_t errlen)
{
    char cmd[1024];
    /* No TCP (listen_addresses empty), the socket in our directory. fsync,
     * full_page_writes and synchronous_commit off: a test's cluster is thrown
     * away with its directory and never outlives a crash, so durability on disk
     * buys it nothing, and a commit that waits for no disk keeps the tests fast
     * on a loaded machine. (What the store's tests prove of commits, nothing
     * acknowledged before it, is the store's order of calls, not the disk's.) */
    snprintf(cmd, sizeof cmd,
             "cd %s && %s%s/pg_ctl -D %s/data -l %s/data/server.log -w -s -o \"-c listen_addresses='' -k %s"
             "%s -c max_connections=40\" start >/dev/null 2>&1",
             top, as_user, bin_dir, top, top, top,
             durable ? "" : " -c fsync=off -c full_page_writes=off -c synchronous_commit=off");
    return run(cmd, "pg_ctl start", "data/server.log", err, errlen);
}

int pg_cluster_new_database(char *uri, size_t urilen, char *err, size_t errlen)
{
    if (!*top && start(err, errlen) < 0)
        return -1;
    char admin[160], name[32];
    snprintf(admin, sizeof admin, "postgresql:///postgres?host=%s&user=syn", top);
    snprintf(name, sizeof name, "t%d_%d", (int)getpid(), ++databases);
    PGconn *conn = PQconnectdb(admin);
    char sql[64];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *r = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, sql) : NULL;
    int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc < 0)
        snprintf(err, errlen, "cannot create database %s: %s", name, PQerrorMessage(conn));
    PQclear(r);
    PQfinish(conn);
    snprintf(uri, urilen, "postgresql:///%s?host=%s&user=syn", name, top);
    return rc;
}

int pg_cluster_stop_server(void)
{
    if (!*top)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s%s/pg_ctl -D %s/data -m fast -w -s stop >/dev/null 2>&1",
             as_user, bin_dir, top);
    return system(cmd) == 0 ? 0 : -1;
}

int pg_cluster_start_server(char *err, size_t errlen)
{
    if (!*top) {
        snprintf(err, errlen, "no cluster yet");
        return -1;
    }
    return server_start(err, errlen);
}

int pg_cluster_hang_server(const char *uri)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data/postmaster.pid", top);
    FILE *f = *top ? fopen(path, "r") : NULL;
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "pg_cluster: no postmaster pid in %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    /* The session that ends the others is made first: the stopped postmaster
     * would not answer it. A backend ends without the postmaster's help. */
    PGconn *conn = PQconnectdb(uri);
    if (PQstatus(conn) != CONNECTION_OK || kill((pid_t)pid, SIGSTOP) != 0) {
        fprintf(stderr, "pg_cluster: cannot hang the server: %s\n", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    hung = (pid_t)pid;
    PGresult *r = PQexec(conn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                               " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc < 0)
        fprintf(stderr, "pg_cluster: cannot end the sessions: %s\n", PQerrorMessage(conn));
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int pg_cluster_wake_server(void)
{
    if (hung <= 0)
        return 0;
    int rc = kill(hung, SIGCONT);
    hung = 0;
    return rc;
}

long long pg_cluster_query_int(const char *uri, const char *sql)
{
    PGconn *conn = PQconnectdb(uri);
    PGresult *r = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, sql) : NULL;
    long long n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        fprintf(stderr, "pg_cluster: %s: %s\n", sql, PQerrorMessage(conn));
    PQclear(r);
    PQfinish(conn);
    return n;
}
