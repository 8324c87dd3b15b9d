/* fuzz_yaml: the YAML workflow loader with prompt files and their front matter
 * (template/workflow.c, template/yamltree.c, template/frontmatter.c,
 * template/files.c).
 *
 * The input is a workflow document and up to three prompt files, separated by
 * lines "%%%%": the files are written as prompts/a.md, prompts/b.md and c.md
 * into a directory made once per process, and template_workflow_parse reads the
 * document with that directory (so prompt_file and front matter are reached).
 * Beyond "no crash": a document gives a workflow and no error, or errors with a
 * summary and a JSON list; a workflow exports to YAML (template_export_yaml)
 * that parses back to the same workflow; and no workflow holds the text of
 * ../outside.md, a file next to the directory, unless the input does
 * (prompt_file must not leave the directory). */
#include "template/errors.h"
#include "template/export.h"
#include "template/workflow.h"
#include "tests/fuzz/fuzz_check.h"

#include <sys/stat.h>
#include <unistd.h>

#define SEPARATOR "\n%%%%\n"

static const char *const prompt_names[] = {"prompts/a.md", "prompts/b.md", "c.md"};
#define PROMPTS (sizeof prompt_names / sizeof prompt_names[0])

/* The text of ../outside.md: random per process, so no input holds it by chance. */
static char canary[40];

static char root[64]; /* holds outside.md and wf/, the workflow's directory */
static char dir[80];

static void remove_dir(void)
{
    char path[128];
    for (size_t i = 0; i < PROMPTS; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, prompt_names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/prompts", dir);
    rmdir(path);
    rmdir(dir);
    snprintf(path, sizeof path, "%s/outside.md", root);
    unlink(path);
    rmdir(root);
}

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%.40s/syn-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(root) != NULL);
    atexit(remove_dir);
    char path[128];
    snprintf(path, sizeof path, "%s/outside.md", root);
    unsigned char noise[8];
    FUZZ_CHECK(getentropy(noise, sizeof noise) == 0);
    int at = snprintf(canary, sizeof canary, "outside-");
    for (size_t i = 0; i < sizeof noise; i++)
        at += snprintf(canary + at, sizeof canary - (size_t)at, "%02x", noise[i]);
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f != NULL && fprintf(f, "%s\n", canary) > 0 && fclose(f) == 0);
    snprintf(dir, sizeof dir, "%s/wf", root);
    FUZZ_CHECK(mkdir(dir, 0700) == 0);
    snprintf(path, sizeof path, "%s/prompts", dir);
    FUZZ_CHECK(mkdir(path, 0700) == 0);
}

/* No prompt text came from outside the directory: the workflow holds the
 * canary only when the input itself does. */
static void check_inside(const json_t *workflow, const uint8_t *data, size_t size)
{
    char *text = json_dumps(workflow, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    if (strstr(text, canary) && !memmem(data, size, canary, strlen(canary))) {
        fprintf(stderr, "fuzz_yaml: a prompt file outside the directory was read: %s\n", text);
        abort();
    }
    free(text);
}

/* Writes (or, when text is NULL, removes) prompt file i. */
static void put_prompt(size_t i, const char *text, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, prompt_names[i]);
    unlink(path);
    if (!text)
        return;
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(text, 1, len, f) == len || len == 0);
    FUZZ_CHECK(fclose(f) == 0);
}

static void check_round_trip(const json_t *workflow)
{
    char why[256];
    char *yaml = template_export_yaml(workflow, NULL, why, sizeof why);
    if (!yaml) {
        fprintf(stderr, "fuzz_yaml: a parsed workflow does not export: %s\n", why);
        abort();
    }
    template_errors_t *errors = template_errors_new();
    json_t *back = template_workflow_parse(yaml, strlen(yaml), "export.yaml", NULL, errors);
    if (!back || !json_equal(back, workflow)) {
        char *summary = template_errors_summary(errors);
        fprintf(stderr, "fuzz_yaml: the export does not parse back the same (%s):\n%s\n",
                summary, yaml);
        abort();
    }
    json_decref(back);
    template_errors_destroy(&errors);
    free(yaml);
}

static void check_errors(const template_errors_t *errors)
{
    FUZZ_CHECK(template_errors_count(errors) > 0);
    char *summary = template_errors_summary(errors);
    FUZZ_CHECK(summary != NULL && summary[0] != '\0');
    json_t *as_json = json_string(summary); /* valid UTF-8 */
    FUZZ_CHECK(as_json != NULL);
    json_decref(as_json);
    free(summary);
    json_t *list = template_errors_json(errors);
    FUZZ_CHECK(json_array_size(list) ==
               template_errors_count(errors) +
                   (template_errors_total(errors) > template_errors_count(errors)));
    json_decref(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0])
        make_dir();
    const char *text = (const char *)data;
    const char *end = text + size;
    const char *cut = memmem(text, size, SEPARATOR, strlen(SEPARATOR));
    size_t doc_len = cut ? (size_t)(cut - text) : size;
    const char *next = cut ? cut + strlen(SEPARATOR) : NULL;
    for (size_t i = 0; i < PROMPTS; i++) {
        if (!next) {
            put_prompt(i, NULL, 0);
            continue;
        }
        const char *stop = memmem(next, (size_t)(end - next), SEPARATOR, strlen(SEPARATOR));
        size_t len = stop ? (size_t)(stop - next) : (size_t)(end - next);
        put_prompt(i, next, len);
        next = stop ? stop + strlen(SEPARATOR) : NULL;
    }
    /* A copy of exactly the document, so ASan sees any read past it. */
    char *doc = malloc(doc_len ? doc_len : 1);
    FUZZ_CHECK(doc != NULL);
    memcpy(doc, text, doc_len);
    template_errors_t *errors = template_errors_new();
    json_t *workflow = template_workflow_parse(doc, doc_len, "workflow.yaml", dir, errors);
    if (workflow) {
        FUZZ_CHECK(template_errors_total(errors) == 0);
        check_inside(workflow, data, size);
        check_round_trip(workflow);
        json_decref(workflow);
    } else {
        check_errors(errors);
    }
    template_errors_destroy(&errors);
    free(doc);
    return 0;
}
