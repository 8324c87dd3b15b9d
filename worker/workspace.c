/* workspace: see workspace.h. */
#include "worker/workspace.h"
#include "worker/artifact_pull.h"
#include "common/base64.h"
#include "worker/env.h"
#include "worker/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/repo_spec.h"

/* Longest piece of a workspace or file name taken from an id. */
#define NAME_PART_MAX 48
/* Deepest directory nesting the removal follows (each level holds a descriptor). */
#define REMOVE_DEPTH_MAX 128

typedef struct {
    char *spec;   /* as the execution gave it */
    char *url;    /* what git clones */
    char *ref;    /* the branch or tag to clone ("#ref"), or NULL: the default one */
    char *name;   /* directory under repos/ */
} repo_t;

struct worker_workspace_t {
    char *path;
    char **inputs;
    size_t input_count;
    repo_t *repos;
    size_t repo_count;
    size_t next_repo;         /* the one cloning or to clone next */
    worker_proc_t *clone;
    worker_pull_t *pull;      /* earlier phases' files still to fetch, or NULL */
    char *error;
    bool stopped;
    int64_t kill_grace_ms;
};

/* Copies the characters of text that are safe in a file name, others as '_',
 * at most max of them; never "", "." or ".." (a leading '.' becomes '_'). */
void worker_workspace_safe_name(const char *text, size_t max, char *out)
{
    size_t n = 0;
    for (; text[n] && n < max; n++) {
        char c = text[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        out[n] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0)
        strcpy(out, "_");
    else if (out[0] == '.')
        out[0] = '_';
}

/* The URL git clones, the ref (after '#') and the directory name for a
 * repository string (common/repo_spec.h); -1 when it is none of the accepted forms. */
static int plan_repo(const char *spec, repo_t *repo, char *err, size_t errlen)
{
    syn_repo_spec_t parsed;
    if (syn_repo_spec_parse(spec, &parsed, err, errlen) != 0)
        return -1;
    /* The name: the last path segment without ".git". */
    const char *base = parsed.base;
    size_t len = strlen(base);
    while (len > 1 && base[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && base[start - 1] != '/' && base[start - 1] != ':')
        start--;
    size_t end = len;
    if (end - start > 4 && strncmp(base + end - 4, ".git", 4) == 0)
        end -= 4;
    char segment[NAME_PART_MAX * 2 + 1];
    size_t seg_len = end - start < sizeof segment - 1 ? end - start : sizeof segment - 1;
    memcpy(segment, base + start, seg_len);
    segment[seg_len] = '\0';
    char name[NAME_PART_MAX * 2 + 1];
    worker_workspace_safe_name(segment, NAME_PART_MAX * 2, name);
    repo->spec = strdup(spec);
    repo->url = parsed.url;
    repo->ref = parsed.ref;
    parsed.url = parsed.ref = NULL;
    syn_repo_spec_clear(&parsed);
    repo->name = strdup(name);
    if (!repo->spec || !repo->name) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int write_file_at(int dirfd, const char *name, const char *data, size_t len)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = errno;
            close(fd);
            errno = saved ? saved : EIO;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return close(fd);
}

/* Writes each earlier phase's output to artifacts/input/<phase_id>.md (a
 * non-string value as its JSON text); two ids that make the same file name
 * get "-2", "-3"... */
static int write_inputs(worker_workspace_t *self, const json_t *inputs, char *err, size_t errlen)
{
    if (!json_is_object(inputs) || json_object_size(inputs) == 0)
        return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/artifacts/input", self->path);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    self->inputs = calloc(json_object_size(inputs), sizeof(char *));
    if (!self->inputs) {
        close(dirfd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *phase_id;
    json_t *value;
    int rc = 0;
    json_object_foreach((json_t *)inputs, phase_id, value) {
        char base[NAME_PART_MAX * 2 + 1], name[NAME_PART_MAX * 2 + 16];
        worker_workspace_safe_name(phase_id, NAME_PART_MAX * 2, base);
        char *dumped = json_is_string(value) ? NULL : json_dumps(value, JSON_ENCODE_ANY);
        const char *text = json_is_string(value) ? json_string_value(value) : dumped;
        size_t len = json_is_string(value) ? json_string_length(value) : dumped ? strlen(dumped)
                                                                                  : 0;
        int written = -1;
        for (int n = 1; n < 100 && written != 0; n++) {
            if (n == 1)
                snprintf(name, sizeof name, "%s.md", base);
            else
                snprintf(name, sizeof name, "%s-%d.md", base, n);
            written = write_file_at(dirfd, name, text ? text : "", len);
            if (written != 0 && errno != EEXIST)
                break;
        }
        free(dumped);
        if (written != 0) {
            snprintf(err, errlen, "cannot write artifacts/input/%s: %s", name, strerror(errno));
            rc = -1;
            break;
        }
        self->inputs[self->input_count] = strdup(name);
        if (!self->inputs[self->input_count]) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        self->input_count++;
    }
    close(dirfd);
    return rc;
}

static int plan_repos(worker_workspace_t *self, const json_t *repos, char *err, size_t errlen)
{
    if (!json_is_array(repos) || json_array_size(repos) == 0)
        return 0;
    self->repos = calloc(json_array_size(repos), sizeof(repo_t));
    if (!self->repos) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i;
    json_t *value;
    json_array_foreach(repos, i, value) {
        const char *spec = json_string_value(value);
        repo_t *repo = &self->repos[self->repo_count];
        if (!spec) {
            snprintf(err, errlen, "repos[%zu] is not a string", i);
            return -1;
        }
        self->repo_count++;
        if (plan_repo(spec, repo, err, errlen) != 0)
            return -1;
        /* Two repositories with the same name: the later ones get "-2", "-3"... */
        for (int n = 2;; n++) {
            bool taken = false;
            for (size_t j = 0; j + 1 < self->repo_count; j++)
                taken = taken || strcmp(self->repos[j].name, repo->name) == 0;
            if (!taken)
                break;
            char *renamed = NULL;
            size_t cut = strlen(repo->name);
            if (n > 2)
                cut = strrchr(repo->name, '-') - repo->name;
            if (asprintf(&renamed, "%.*s-%d", (int)cut, repo->name, n) < 0) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            free(repo->name);
            repo->name = renamed;
        }
    }
    return 0;
}

worker_workspace_t *worker_workspace_new(const char *base, const worker_job_t *job,
                                         const worker_options_t *options, char *err,
                                         size_t errlen)
{
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make the workspace directory %s: %s", base,
                 strerror(errno));
        return NULL;
    }
    worker_workspace_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->kill_grace_ms = options ? options->kill_grace_ms : 0;
    char execution[NAME_PART_MAX + 1], phase[NAME_PART_MAX + 1];
    worker_workspace_safe_name(job->execution_id, NAME_PART_MAX, execution);
    worker_workspace_safe_name(job->phase_id, NAME_PART_MAX, phase);
    if (asprintf(&self->path, "%s/syn-%s-%s-%llu-XXXXXX", base, execution, phase,
                 (unsigned long long)job->attempt) < 0) {
        self->path = NULL;
        snprintf(err, errlen, "out of memory");
        free(self);
        return NULL;
    }
    if (!mkdtemp(self->path)) {
        snprintf(err, errlen, "cannot make a workspace in %s: %s", base, strerror(errno));
        free(self->path);
        free(self);
        return NULL;
    }
    static const char *const dirs[] = {"artifacts", "artifacts/input", "artifacts/output",
                                       "repos"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", self->path, dirs[i]);
        if (mkdir(dir, 0755) != 0) {
            snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
            worker_workspace_destroy(&self, false);
            return NULL;
        }
    }
    if (write_inputs(self, job->inputs, err, errlen) != 0 ||
        plan_repos(self, job->repos, err, errlen) != 0) {
        worker_workspace_destroy(&self, false);
        return NULL;
    }
    if (json_array_size(job->artifacts) > 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/artifacts/input", self->path);
        self->pull = worker_pull_new(job->artifacts, dir, err, errlen);
        if (!self->pull) {
            worker_workspace_destroy(&self, false);
            return NULL;
        }
    }
    return self;
}

void worker_workspace_destroy(worker_workspace_t **self_p, bool keep)
{
    if (!self_p || !*self_p)
        return;
    worker_workspace_t *self = *self_p;
    worker_proc_destroy(&self->clone);
    worker_pull_destroy(&self->pull);
    if (self->path) {
        if (keep)
            syn_info("worker", "kept workspace %s", self->path);
        else if (worker_workspace_remove_tree(self->path) != 0)
            syn_warn("worker", "cannot remove workspace %s: %s", self->path, strerror(errno));
    }
    for (size_t i = 0; i < self->input_count; i++)
        free(self->inputs[i]);
    free(self->inputs);
    for (size_t i = 0; i < self->repo_count; i++) {
        free(self->repos[i].spec);
        free(self->repos[i].url);
        free(self->repos[i].ref);
        free(self->repos[i].name);
    }
    free(self->repos);
    free(self->error);
    free(self->path);
    free(self);
    *self_p = NULL;
}

const char *worker_workspace_path(const worker_workspace_t *self) { return self->path; }

/* Copies text with the user information of any URL in it ("https://user:token@")
 * replaced by "***@", so a credential given in a repository URL is never
 * logged or sent to the broker. */
static void redact(const char *text, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 1 < outlen;) {
        const char *scheme = strstr(p, "://");
        if (!scheme) {
            o += (size_t)snprintf(out + o, outlen - o, "%s", p);
            break;
        }
        const char *host = scheme + 3;
        size_t span = strcspn(host, "/@ \t\n'\"");
        o += (size_t)snprintf(out + o, outlen - o, "%.*s", (int)(host - p), p);
        if (o + 1 >= outlen)
            break;
        if (host[span] == '@') {
            o += (size_t)snprintf(out + o, outlen - o, "***@");
            p = host + span + 1;
        } else {
            p = host;
        }
    }
    if (o >= outlen)
        o = outlen - 1;
    out[o] = '\0';
}

static void fail_clone(worker_workspace_t *self, const char *why)
{
    if (self->error)
        return;
    const repo_t *repo = &self->repos[self->next_repo];
    char spec[512], reason[WORKER_STDERR_TAIL + 256];
    redact(repo->spec, spec, sizeof spec);
    redact(why, reason, sizeof reason);
    if (asprintf(&self->error, "cannot clone %s: %s", spec, reason) < 0)
        self->error = NULL;
    if (!self->error)
        self->error = strdup("cannot clone a repository");
}

/* Starts git for the next repository. git gets the workspace as HOME, no
 * terminal prompts, only real transports (never ext::), and a GitHub token,
 * when there is one, as an HTTP header in its environment configuration. */
static void start_clone(worker_workspace_t *self)
{
    const repo_t *repo = &self->repos[self->next_repo];
    char target[NAME_PART_MAX * 2 + 32];
    snprintf(target, sizeof target, "repos/%s", repo->name);
    char *argv[] = {"git", "clone", "--depth", "1", "--quiet", "--", repo->url, target, NULL,
                    NULL, NULL};
    if (repo->ref) { /* git clone --branch takes a branch or a tag */
        char *tail[] = {"--branch", repo->ref, "--", repo->url, target, NULL};
        memcpy(argv + 5, tail, sizeof tail);
    }
    const char *token = getenv("GITHUB_TOKEN");
    char *header = NULL;
    if (token && *token && strncmp(repo->url, "https://github.com/", strlen("https://github.com/")) == 0) {
        size_t cred_len = strlen("x-access-token:") + strlen(token);
        char *cred = malloc(cred_len + 1);
        char *encoded = malloc(4 * (cred_len / 3 + 1) + 1);
        if (cred && encoded) {
            snprintf(cred, cred_len + 1, "x-access-token:%s", token);
            syn_base64_encode((const unsigned char *)cred, cred_len, encoded);
            if (asprintf(&header, "GIT_CONFIG_VALUE_0=AUTHORIZATION: basic %s", encoded) < 0)
                header = NULL;
            memset(cred, 0, cred_len);
        }
        free(cred);
        free(encoded);
    }
    const char *extra[6] = {"GIT_TERMINAL_PROMPT=0", "GIT_ALLOW_PROTOCOL=file:git:http:https:ssh"};
    if (header) {
        extra[2] = "GIT_CONFIG_COUNT=1";
        extra[3] = "GIT_CONFIG_KEY_0=http.https://github.com/.extraheader";
        extra[4] = header;
    }
    char **env = worker_env_build(NULL, self->path, NULL, NULL, extra);
    if (header) {
        memset(header, 0, strlen(header));
        free(header);
    }
    if (!env) {
        fail_clone(self, "out of memory");
        return;
    }
    worker_proc_spec_t spec = {
        .argv = argv,
        .env = env,
        .cwd = self->path,
        .kill_grace_ms = self->kill_grace_ms,
    };
    char err[512];
    self->clone = worker_proc_start(&spec, NULL, NULL, err, sizeof err);
    worker_env_free(env);
    if (!self->clone)
        fail_clone(self, err);
    else {
        char spec[512];
        redact(repo->spec, spec, sizeof spec);
        syn_info("worker", "cloning %s into %s/%s", spec, self->path, target);
    }
}

int worker_workspace_pollfds(worker_workspace_t *self, struct pollfd *fds, int max)
{
    return self->clone ? worker_proc_pollfds(self->clone, fds, max) : 0;
}

int64_t worker_workspace_deadline(const worker_workspace_t *self)
{
    if (self->clone)
        return worker_proc_deadline(self->clone);
    if (!self->error && !self->stopped && self->next_repo < self->repo_count)
        return 0; /* the next clone is due at once */
    return -1;
}

void worker_workspace_step(worker_workspace_t *self, const struct pollfd *fds, int nfds,
                           int64_t now)
{
    if (self->error || self->stopped)
        return;
    if (self->clone) {
        worker_proc_step(self->clone, fds, nfds, now);
        if (!worker_proc_done(self->clone))
            return;
        char why[WORKER_STDERR_TAIL + 64];
        bool ok = worker_proc_succeeded(self->clone, why, sizeof why);
        worker_proc_destroy(&self->clone);
        if (!ok) {
            fail_clone(self, why);
            return;
        }
        self->next_repo++;
    }
    if (self->next_repo < self->repo_count)
        start_clone(self);
}

bool worker_workspace_ready(const worker_workspace_t *self)
{
    return !self->error && !self->stopped && !self->clone && self->next_repo >= self->repo_count &&
           (!self->pull || worker_pull_done(self->pull));
}

const char *worker_workspace_error(const worker_workspace_t *self)
{
    return self->error ? self->error : self->pull ? worker_pull_error(self->pull) : NULL;
}

struct worker_pull_t *worker_workspace_pull(worker_workspace_t *self) { return self->pull; }

void worker_workspace_stop(worker_workspace_t *self)
{
    worker_proc_destroy(&self->clone);
    self->stopped = true;
}

size_t worker_workspace_input_count(const worker_workspace_t *self) { return self->input_count; }

const char *worker_workspace_input_name(const worker_workspace_t *self, size_t i)
{
    return i < self->input_count ? self->inputs[i] : NULL;
}

size_t worker_workspace_repo_count(const worker_workspace_t *self) { return self->repo_count; }

const char *worker_workspace_repo_name(const worker_workspace_t *self, size_t i)
{
    return i < self->repo_count ? self->repos[i].name : NULL;
}

int worker_workspace_first_output(const char *dir, size_t max, char **data, size_t *len,
                                  char *name, size_t namelen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/artifacts/output", dir);
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0)
        return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return -1;
    }
    char best[256] = "";
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!*best || strcmp(entry->d_name, best) < 0)
            snprintf(best, sizeof best, "%s", entry->d_name);
    }
    int rc = 0;
    if (*best) {
        rc = -1;
        int fd = openat(dirfd, best, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        char *buf = fd >= 0 ? malloc(max + 1) : NULL;
        size_t got = 0;
        while (buf && got < max) {
            ssize_t n = read(fd, buf + got, max - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (buf) {
            buf[got] = '\0';
            *data = buf;
            *len = got;
            if (name)
                snprintf(name, namelen, "%s", best);
            rc = 1;
        }
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    return rc;
}

/* Removes name (in dirfd) and, for a directory, everything in it. Directories
 * are made writable first: an agent may have taken the permission away. A
 * second pass catches entries a directory listing may miss while it shrinks. */
static int remove_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if ((errno != EISDIR && errno != EPERM) || depth > REMOVE_DEPTH_MAX)
        return -1;
    for (int pass = 0; pass < 2; pass++) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == EACCES && fchmodat(dirfd, name, 0700, 0) == 0)
            fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        fchmod(fd, 0700);
        DIR *d = fdopendir(fd);
        if (!d) {
            close(fd);
            return -1;
        }
        struct dirent *entry;
        while ((entry = readdir(d)) != NULL)
            if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
                remove_at(fd, entry->d_name, depth + 1);
        closedir(d);
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            return 0;
        if (errno != ENOTEMPTY && errno != EEXIST)
            return -1;
    }
    return -1;
}

int worker_workspace_remove_tree(const char *path)
{
    return remove_at(AT_FDCWD, path, 0);
}
