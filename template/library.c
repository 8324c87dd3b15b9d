/* library: directory scan → parsed entries with hashes. */
#include "template/library.h"

#include "common/ids.h"
#include "template/schema.h"
#include "template/workflow.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct template_library_t {
    template_entry_t *entries;
    size_t count, cap;
};

template_library_t *template_library_new(void)
{
    return calloc(1, sizeof(template_library_t));
}

void template_library_destroy(template_library_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    template_library_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free(self->entries[i].path);
        json_decref(self->entries[i].workflow);
        template_errors_destroy(&self->entries[i].errors);
    }
    free(self->entries);
    free(self);
    *self_p = NULL;
}

size_t template_library_count(const template_library_t *self)
{
    return self->count;
}

const template_entry_t *template_library_entry(const template_library_t *self, size_t index)
{
    return index < self->count ? &self->entries[index] : NULL;
}

size_t template_library_failures(const template_library_t *self)
{
    size_t failed = 0;
    for (size_t i = 0; i < self->count; i++)
        failed += self->entries[i].workflow == NULL;
    return failed;
}

int template_workflow_hash(const json_t *workflow, char hex[TEMPLATE_SHA256_HEX])
{
    char *text = json_dumps(workflow, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!text)
        return -1;
    template_sha256_hex(text, strlen(text), hex);
    free(text);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n > m && strcmp(text + n - m, suffix) == 0;
}

/* The id a file implies: its name without ".yaml", or its package directory's name. */
static void id_from_name(const char *name, bool package, char *id, size_t size)
{
    snprintf(id, size, "%s", name);
    if (!package && ends_with(id, ".yaml"))
        id[strlen(id) - 5] = '\0';
}

static template_entry_t *add_entry(template_library_t *self, char *path)
{
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        template_entry_t *grown = realloc(self->entries, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->entries = grown;
        self->cap = cap;
    }
    template_entry_t *entry = &self->entries[self->count];
    memset(entry, 0, sizeof *entry);
    entry->errors = template_errors_new();
    if (!entry->errors)
        return NULL;
    entry->path = path;
    self->count++;
    return entry;
}

static const template_entry_t *entry_with_id(const template_library_t *self, const char *id,
                                             const template_entry_t *except)
{
    for (size_t i = 0; i < self->count; i++) {
        const template_entry_t *e = &self->entries[i];
        if (e != except && e->workflow &&
            strcmp(json_string_value(json_object_get(e->workflow, "id")), id) == 0)
            return e;
    }
    return NULL;
}

/* Parses one file into a new entry; true when it loaded. */
static bool load_one(template_library_t *self, char *path, const char *name, bool package)
{
    if (!path)
        return false;
    template_entry_t *entry = add_entry(self, path);
    if (!entry) {
        free(path);
        return false;
    }
    json_t *workflow = template_workflow_parse_file(path, entry->errors);
    if (!workflow)
        return false;
    if (!json_object_get(workflow, "id")) {
        char id[256];
        id_from_name(name, package, id, sizeof id);
        if (!syn_id_is_valid(id)) {
            template_errors_add(entry->errors, TEMPLATE_ERROR_INVALID, path, 0, 0, "id",
                                "no id, and the %s name '%s' is not a valid id (%s): add an "
                                "id key",
                                package ? "directory" : "file", id, SYN_ID_PATTERN);
            json_decref(workflow);
            return false;
        }
        /* id first, as people write it */
        json_t *with_id = json_pack("{s:s}", "id", id);
        json_object_update(with_id, workflow);
        json_decref(workflow);
        workflow = with_id;
    }
    const char *id = json_string_value(json_object_get(workflow, "id"));
    const template_entry_t *other = entry_with_id(self, id, entry);
    if (other) {
        template_errors_add(entry->errors, TEMPLATE_ERROR_INVALID, path, 0, 0, "id",
                            "workflow id '%s' is already used by %s", id, other->path);
        json_decref(workflow);
        return false;
    }
    if (template_workflow_hash(workflow, entry->hash) < 0) {
        template_errors_add(entry->errors, TEMPLATE_ERROR_INVALID, path, 0, 0, NULL,
                            "cannot serialise the workflow");
        json_decref(workflow);
        return false;
    }
    entry->workflow = workflow;
    return true;
}

static char *join(const char *a, const char *b)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s", a, b) < 0)
        return NULL;
    return path;
}

/* The original's plugin manifest (syntropic137.yaml): metadata, not a workflow. */
static bool is_manifest(const char *name)
{
    return strcmp(name, "syntropic137.yaml") == 0;
}

static int load_dir(template_library_t *self, const char *dir, int depth);

int template_library_load_dir(template_library_t *self, const char *dir, char *why,
                              size_t why_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, why_size, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    closedir(d);
    return load_dir(self, dir, 0);
}

/* Loads dir's single files, packages and plugin folders (plugins nest at most
 * twice: DIR/PLUGIN/workflows/NAME). */
static int load_dir(template_library_t *self, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && count < TEMPLATE_LIBRARY_MAX_ENTRIES) {
        if (de->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, cap * sizeof *grown);
            if (!grown)
                break;
            names = grown;
        }
        names[count] = strdup(de->d_name);
        if (names[count])
            count++;
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof *names, by_name);
    int loaded = 0;
    for (size_t i = 0; i < count; i++) {
        char *path = join(dir, names[i]);
        struct stat st;
        if (path && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            char *file = join(path, "workflow.yaml");
            char *plugin = join(path, "workflows");
            if (file && stat(file, &st) == 0) {
                loaded += load_one(self, file, names[i], true);
                file = NULL;
            } else if (depth < 2 && strcmp(names[i], "workflows") == 0) {
                /* DIR is a plugin folder itself: its workflows/ holds packages */
                loaded += load_dir(self, path, depth + 1);
            } else if (depth < 2 && plugin && stat(plugin, &st) == 0 && S_ISDIR(st.st_mode)) {
                /* a plugin folder (PLUGIN/workflows/NAME/workflow.yaml, shared phases
                 * in PLUGIN/phase-library/): all its workflows load with it */
                loaded += load_dir(self, plugin, depth + 1);
            }
            free(file);
            free(plugin);
        } else if (path && is_manifest(names[i])) {
            /* the original's plugin manifest: names the plugin, holds no workflow */
        } else if (path && ends_with(names[i], ".yaml")) {
            loaded += load_one(self, strdup(path), names[i], false);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return loaded;
}
