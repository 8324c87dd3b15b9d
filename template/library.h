/* library: the workflows of a directory, as `syn-broker --workflows DIR` installs
 * them. DIR/NAME.yaml is a single-file workflow; DIR/NAME/workflow.yaml is a
 * package whose prompt files live next to it. Hidden entries (".x") are skipped,
 * and entries are taken in name order so runs are reproducible.
 *
 * A workflow without an id takes its file's (or package directory's) name, so
 * loading the same directory twice means the same workflows. Every entry carries a
 * content hash of the workflow JSON, prompt files included: same files, same hash;
 * any change, a new hash (the broker stores a new version only then). A file that
 * fails is kept as an entry with its errors; the others load. */
#ifndef SYN_TEMPLATE_LIBRARY_H
#define SYN_TEMPLATE_LIBRARY_H

#include "template/errors.h"
#include "template/sha256.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TEMPLATE_LIBRARY_MAX_ENTRIES 10000

typedef struct {
    char *path;                       /* DIR/x.yaml or DIR/pkg/workflow.yaml */
    json_t *workflow;                 /* the POST /workflows body; NULL when it failed */
    char hash[TEMPLATE_SHA256_HEX];   /* of the workflow; "" when it failed */
    template_errors_t *errors;        /* empty when it loaded */
} template_entry_t;

typedef struct template_library_t template_library_t;

template_library_t *template_library_new(void);
void template_library_destroy(template_library_t **self_p);

/* Loads every workflow of dir (added to those loaded before). Returns how many
 * loaded, or -1 when dir itself cannot be read (reason in why). A workflow id seen
 * in an earlier entry makes the later entry fail. */
int template_library_load_dir(template_library_t *self, const char *dir, char *why,
                              size_t why_size);

size_t template_library_count(const template_library_t *self);
const template_entry_t *template_library_entry(const template_library_t *self, size_t index);
/* Entries that failed. */
size_t template_library_failures(const template_library_t *self);

/* The content hash of a workflow: SHA-256 of its canonical JSON (sorted keys,
 * compact). 0, or -1 when it cannot be serialised. */
int template_workflow_hash(const json_t *workflow, char hex[TEMPLATE_SHA256_HEX]);

#endif
