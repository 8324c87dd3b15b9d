/* syn exec artifacts ID [--get PHASE/PATH | --all] [-o FILE]: an execution's
 * artifacts as a table, and saving them — one file, or all of them as one tar or
 * ZIP. It stands alone as the CLI's one command whose answer is a file to save
 * rather than text to print: the bytes go to a temporary file beside the one
 * asked for as they arrive (client_download, so no size is held in memory) and
 * are renamed into place only when whole, so a cut download never leaves a
 * truncated file under that name. */
#include "cli/cli.h"
#include "cli/table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *text_of(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : fallback;
}

static void print_list(cli_t *cli, const json_t *list)
{
    const char *headers[] = {"PHASE", "ATTEMPT", "PATH", "SIZE", "TYPE", "SHA256", "CREATED"};
    table_t *t = table_new(7, headers);
    table_set_flexible(t, 2);
    table_set_right(t, 1);
    table_set_right(t, 3);
    int64_t now = (int64_t)time(NULL) * 1000000;
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a)
    {
        char attempt[16], size[32], sha[16], ago[32];
        snprintf(attempt, sizeof attempt, "%lld",
                 (long long)json_integer_value(json_object_get(a, "attempt")));
        table_bytes(json_integer_value(json_object_get(a, "size")), size, sizeof size);
        snprintf(sha, sizeof sha, "%.12s", text_of(a, "sha256", ""));
        table_ago(table_parse_time(text_of(a, "created_at", NULL)), now, ago, sizeof ago);
        /* the media type without its parameters ("; charset=utf-8") */
        char type[128];
        snprintf(type, sizeof type, "%s", text_of(a, "media_type", ""));
        type[strcspn(type, ";")] = '\0';
        const char *cells[] = {text_of(a, "phase_id", "?"), attempt, text_of(a, "path", "?"),
                               size, type, sha, ago};
        table_add(t, cells, NULL);
    }
    cli_print_table(cli, &t);
}

/* Percent-encodes a path's segments, keeping its slashes; -1 when it does not fit. */
static int escape_path(const char *path, char *out, size_t size)
{
    size_t used = 0;
    for (const char *seg = path;;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        char part[1024], escaped[3 * 1024];
        if (len >= sizeof part)
            return -1;
        memcpy(part, seg, len);
        part[len] = '\0';
        if (client_escape(part, escaped, sizeof escaped) != 0)
            return -1;
        int n = snprintf(out + used, size - used, "%s%s", escaped, slash ? "/" : "");
        if (n < 0 || (size_t)n >= size - used)
            return -1;
        used += (size_t)n;
        if (!slash)
            return 0;
        seg = slash + 1;
    }
}

/* GET path into file (NULL or "-": stdout), through a temporary file renamed into
 * place when the answer is whole. The exit code, errors on stderr; the bytes
 * written in *bytes. */
static int save(cli_t *cli, const char *path, const char *file, long long *bytes)
{
    bool to_stdout = !file || !strcmp(file, "-");
    char temp[4096] = "";
    FILE *out = stdout;
    if (!to_stdout) {
        if (snprintf(temp, sizeof temp, "%s.part-XXXXXX", file) >= (int)sizeof temp) {
            fprintf(stderr, "error: file name too long\n");
            return CLI_EXIT_USAGE;
        }
        int fd = mkstemp(temp);
        out = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (!out) {
            fprintf(stderr, "error: cannot write %s: %s\n", file, strerror(errno));
            if (fd >= 0) {
                close(fd);
                unlink(temp);
            }
            return CLI_EXIT_FAILED;
        }
    }
    client_response_t resp;
    client_download(cli->client, path, out, &resp);
    int code = client_exit_code(resp.status, json_string_value(json_object_get(resp.json, "detail")));
    if (code == CLI_EXIT_OK && resp.error[0])
        code = CLI_EXIT_FAILED; /* answered 200, but the file refused a write */
    if (code != CLI_EXIT_OK)
        fprintf(stderr, "error: %s\n", resp.error);
    *bytes = (long long)resp.len;
    client_response_clear(&resp);
    if (to_stdout) {
        fflush(stdout);
        return code;
    }
    if (fclose(out) != 0 && code == CLI_EXIT_OK) {
        fprintf(stderr, "error: cannot write %s: %s\n", file, strerror(errno));
        code = CLI_EXIT_FAILED;
    }
    if (code == CLI_EXIT_OK && rename(temp, file) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", file, strerror(errno));
        code = CLI_EXIT_FAILED;
    }
    if (code != CLI_EXIT_OK)
        unlink(temp);
    return code;
}

static const json_t *find_artifact(const json_t *list, const char *phase, const char *path)
{
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a) if (!strcmp(text_of(a, "phase_id", ""), phase) &&
                                       !strcmp(text_of(a, "path", ""), path)) return a;
    return NULL;
}

/* --get PHASE/PATH: the file named by default after PATH's last segment. */
static int get_one(cli_t *cli, const char *id, const json_t *list, const char *which,
                   const char *file, long long *bytes, const char **saved)
{
    const char *slash = strchr(which, '/');
    if (!slash || slash == which || !slash[1]) {
        fprintf(stderr, "error: --get takes PHASE/PATH, e.g. make/report.md (got '%s')\n",
                which);
        return CLI_EXIT_USAGE;
    }
    char phase[256];
    snprintf(phase, sizeof phase, "%.*s", (int)(slash - which), which);
    if (!find_artifact(list, phase, slash + 1)) {
        fprintf(stderr, "error: execution %s has no artifact %s (`syn exec artifacts %s` lists "
                        "them)\n",
                id, which, id);
        return CLI_EXIT_NOT_FOUND;
    }
    char id_escaped[256], phase_escaped[768], path_escaped[4096], url[6000];
    if (client_escape(id, id_escaped, sizeof id_escaped) != 0 ||
        client_escape(phase, phase_escaped, sizeof phase_escaped) != 0 ||
        escape_path(slash + 1, path_escaped, sizeof path_escaped) != 0) {
        fprintf(stderr, "error: PHASE/PATH too long\n");
        return CLI_EXIT_USAGE;
    }
    snprintf(url, sizeof url, "/executions/%s/artifacts/%s/%s", id_escaped, phase_escaped,
             path_escaped);
    if (!file) {
        const char *base = strrchr(which, '/') + 1;
        file = base;
    }
    *saved = file;
    return save(cli, url, file, bytes);
}

int cmd_artifacts(cli_t *cli, int argc, char **argv)
{
    const char *get = NULL, *file = NULL;
    bool all = false;
    const args_option_t options[] = {
        {0, "get", ARGS_VALUE, "PHASE/PATH",
         "save one artifact (to its file name, or -o FILE)", &get},
        {0, "all", ARGS_FLAG, NULL,
         "save them all in one archive: a ZIP when FILE ends in .zip, else a tar "
         "(default ID-artifacts.tar)",
         &all},
        {'o', "output", ARGS_VALUE, "FILE", "where to save (- for stdout)", &file},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn exec artifacts ID [--get PHASE/PATH | --all] [-o FILE]",
        "Lists the files an execution's phases left in artifacts/output (phase, attempt,\n"
        "path, size, media type, SHA-256), or saves one (--get) or all of them (--all).\n"
        "A download is written to FILE only once it is whole.",
        options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    if (get && all) {
        fprintf(stderr, "error: --get and --all contradict each other\n");
        return CLI_EXIT_USAGE;
    }
    if (file && !get && !all) {
        fprintf(stderr, "error: -o needs --get or --all\n");
        return CLI_EXIT_USAGE;
    }
    /* The list first, also for a download: it resolves an id prefix, and an
     * unknown execution or artifact is reported before any file is made. */
    char path[512];
    if (cli_path(path, sizeof path, "/executions/%s/artifacts", pos[0]) != 0) {
        fprintf(stderr, "error: id too long\n");
        return CLI_EXIT_USAGE;
    }
    json_t *answer = NULL;
    if ((code = client_call(cli->client, "GET", path, NULL, &answer)) != CLI_EXIT_OK)
        return code;
    const json_t *list = json_object_get(answer, "artifacts");
    char id[256];
    snprintf(id, sizeof id, "%s", text_of(answer, "execution_id", pos[0]));
    if (!get && !all) {
        size_t i;
        const json_t *a;
        if (cli->json)
            cli_print_json(answer);
        else if (cli->quiet)
            json_array_foreach(list, i, a)
                printf("%s/%s\n", text_of(a, "phase_id", ""), text_of(a, "path", ""));
        else if (json_array_size(list) == 0)
            printf("execution %s has no artifacts\n", id);
        else
            print_list(cli, list);
        json_decref(answer);
        return CLI_EXIT_OK;
    }
    long long bytes = 0;
    const char *saved = file;
    char archive[300], url[600];
    if (get) {
        code = get_one(cli, id, list, get, file, &bytes, &saved);
    } else {
        size_t len = file ? strlen(file) : 0;
        bool zip = len >= 4 && !strcmp(file + len - 4, ".zip");
        if (!file) {
            snprintf(archive, sizeof archive, "%s-artifacts.tar", id);
            saved = archive;
        }
        char escaped[256];
        client_escape(id, escaped, sizeof escaped);
        snprintf(url, sizeof url, "/executions/%s/artifacts.%s", escaped, zip ? "zip" : "tar");
        code = save(cli, url, saved, &bytes);
    }
    json_decref(answer);
    if (code != CLI_EXIT_OK || !strcmp(saved, "-"))
        return code;
    if (cli->json) {
        json_t *doc = json_pack("{s:s, s:I}", "file", saved, "bytes", (json_int_t)bytes);
        cli_print_json(doc);
        json_decref(doc);
    } else if (!cli->quiet) {
        char size[32];
        printf("saved %s (%s)\n", saved, table_bytes(bytes, size, sizeof size));
    }
    return CLI_EXIT_OK;
}
