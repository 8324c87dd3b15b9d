/* pg_cluster: a private PostgreSQL cluster for one test program — made with
 * initdb in a temporary directory, listening on a Unix socket there and on no
 * TCP port, stopped and removed at exit — and a fresh database in it per test.
 * Run as root (CI), the server runs as the unprivileged user nobody: postgres
 * refuses root. When PostgreSQL's server programs are missing the test fails
 * saying which package to install; nothing is skipped. */
#ifndef SYN_TEST_PG_CLUSTER_H
#define SYN_TEST_PG_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

/* Whether this run's stores are PostgreSQL: SYN_TEST_STORE=postgresql (ctest's
 * second registration of the store tests, teststack's --store option). */
bool pg_cluster_wanted(void);
/* A URI (postgresql://...) of a new, empty database in the cluster, which
 * starts on first use; 0, or -1 with the reason in err. */
int pg_cluster_new_database(char *uri, size_t urilen, char *err, size_t errlen);
/* The cluster's server stopped as an operator would (pg_ctl stop -m fast: the
 * sessions ended at once, their transactions rolled back), and started again
 * on the same data: what a store's lost connection is tested with. 0, or -1. */
int pg_cluster_stop_server(void);
int pg_cluster_start_server(char *err, size_t errlen);
/* The server hung as a dead host or a stuck server looks to a client: the
 * sessions of uri's database ended (pg_terminate_backend), then the postmaster
 * stopped (SIGSTOP), so a new connection is taken by the kernel's backlog and
 * never answered. pg_cluster_wake_server continues it (SIGCONT; also done at
 * exit). 0, or -1. */
int pg_cluster_hang_server(const char *uri);
int pg_cluster_wake_server(void);
/* The integer sql answers (its first row's first column) in the database of
 * uri, or -1 (said on stderr) without one: what tests count rows with. */
long long pg_cluster_query_int(const char *uri, const char *sql);
/* Before the first database: the cluster keeps PostgreSQL's durable defaults
 * (fsync, full_page_writes, synchronous_commit on), as a benchmark of the
 * shipped store wants; the tests' cluster turns them off. */
void pg_cluster_durable(void);

#endif
