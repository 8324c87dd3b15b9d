/* models: see models.h. */
#include "worker/models.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* worker/models.json, compiled in so a worker needs no file to cost phases
 * (a unit test keeps the two identical). */
static const char default_table[] =
    "{\n"
    "  \"prices_as_of\": \"2025-11-24\",\n"
    "  \"source\": \"https://www.anthropic.com/pricing#api - list prices in USD per million tokens (standard context, 5-minute cache writes)\",\n"
    "  \"default_model\": \"sonnet\",\n"
    "  \"aliases\": {\n"
    "    \"haiku\": \"claude-haiku-4-5-20251001\",\n"
    "    \"sonnet\": \"claude-sonnet-4-5-20250929\",\n"
    "    \"opus\": \"claude-opus-4-5-20251101\"\n"
    "  },\n"
    "  \"models\": {\n"
    "    \"claude-opus-4-5-20251101\": {\"input\": 5.00, \"output\": 25.00, \"cache_write\": 6.25, \"cache_read\": 0.50},\n"
    "    \"claude-opus-4-1-20250805\": {\"input\": 15.00, \"output\": 75.00, \"cache_write\": 18.75, \"cache_read\": 1.50},\n"
    "    \"claude-opus-4-20250514\": {\"input\": 15.00, \"output\": 75.00, \"cache_write\": 18.75, \"cache_read\": 1.50},\n"
    "    \"claude-sonnet-4-5-20250929\": {\"input\": 3.00, \"output\": 15.00, \"cache_write\": 3.75, \"cache_read\": 0.30},\n"
    "    \"claude-sonnet-4-20250514\": {\"input\": 3.00, \"output\": 15.00, \"cache_write\": 3.75, \"cache_read\": 0.30},\n"
    "    \"claude-3-7-sonnet-20250219\": {\"input\": 3.00, \"output\": 15.00, \"cache_write\": 3.75, \"cache_read\": 0.30},\n"
    "    \"claude-haiku-4-5-20251001\": {\"input\": 1.00, \"output\": 5.00, \"cache_write\": 1.25, \"cache_read\": 0.10},\n"
    "    \"claude-3-5-haiku-20241022\": {\"input\": 0.80, \"output\": 4.00, \"cache_write\": 1.00, \"cache_read\": 0.08},\n"
    "    \"claude-3-haiku-20240307\": {\"input\": 0.25, \"output\": 1.25, \"cache_write\": 0.30, \"cache_read\": 0.03}\n"
    "  }\n"
    "}\n";

struct worker_models_t {
    json_t *root;
    json_t *aliases;   /* borrowed from root */
    json_t *models;    /* borrowed from root */
    const char *default_model;
};

const char *worker_models_default_text(void) { return default_table; }

static const char *const price_keys[] = {"input", "output", "cache_write", "cache_read"};

/* Checks the table's shape; 0, or -1 with the reason in err. */
static int validate(json_t *root, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        snprintf(err, errlen, "the model table must be a JSON object");
        return -1;
    }
    json_t *aliases = json_object_get(root, "aliases");
    json_t *models = json_object_get(root, "models");
    json_t *dflt = json_object_get(root, "default_model");
    json_t *as_of = json_object_get(root, "prices_as_of");
    if (aliases && !json_is_object(aliases)) {
        snprintf(err, errlen, "\"aliases\" must be an object of alias -> model id");
        return -1;
    }
    if (!json_is_object(models)) {
        snprintf(err, errlen, "\"models\" must be an object of model id -> prices");
        return -1;
    }
    if (dflt && !json_is_string(dflt)) {
        snprintf(err, errlen, "\"default_model\" must be a string");
        return -1;
    }
    if (as_of && !json_is_string(as_of)) {
        snprintf(err, errlen, "\"prices_as_of\" must be a string");
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(aliases, key, value) {
        if (!json_is_string(value) || !*json_string_value(value)) {
            snprintf(err, errlen, "alias \"%s\" must name a model id", key);
            return -1;
        }
    }
    json_object_foreach(models, key, value) {
        if (!json_is_object(value)) {
            snprintf(err, errlen, "model \"%s\" must be an object of prices", key);
            return -1;
        }
        for (size_t i = 0; i < 4; i++) {
            json_t *price = json_object_get(value, price_keys[i]);
            if (!json_is_number(price) || json_number_value(price) < 0) {
                snprintf(err, errlen, "model \"%s\" needs \"%s\": a price >= 0 (USD per million "
                         "tokens)", key, price_keys[i]);
                return -1;
            }
        }
    }
    return 0;
}

worker_models_t *worker_models_parse(const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "invalid JSON at line %d: %s", jerr.line, jerr.text);
        return NULL;
    }
    if (validate(root, err, errlen) != 0) {
        json_decref(root);
        return NULL;
    }
    worker_models_t *self = calloc(1, sizeof *self);
    if (!self) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->root = root;
    self->aliases = json_object_get(root, "aliases");
    self->models = json_object_get(root, "models");
    const char *dflt = json_string_value(json_object_get(root, "default_model"));
    self->default_model = dflt && *dflt ? dflt : "sonnet";
    return self;
}

/* A model table is a few KiB; anything past this is not one. */
#define MODELS_FILE_MAX (1024 * 1024)

worker_models_t *worker_models_load(const char *path, char *err, size_t errlen)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(MODELS_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, MODELS_FILE_MAX + 1, file) : 0;
    bool failed = text && ferror(file);
    fclose(file);
    if (!text || failed || len > MODELS_FILE_MAX) {
        snprintf(err, errlen, "cannot read %s: %s", path,
                 !text ? "out of memory" : failed ? "read error" : "larger than 1 MiB");
        free(text);
        return NULL;
    }
    text[len] = '\0';
    char why[256];
    worker_models_t *self = worker_models_parse(text, why, sizeof why);
    free(text);
    if (!self)
        snprintf(err, errlen, "%s: %s", path, why);
    return self;
}

worker_models_t *worker_models_default(void)
{
    char err[256];
    return worker_models_parse(default_table, err, sizeof err);
}

void worker_models_destroy(worker_models_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    json_decref((*self_p)->root);
    free(*self_p);
    *self_p = NULL;
}

const char *worker_models_resolve(const worker_models_t *self, const char *model)
{
    if (!model || !*model)
        model = self->default_model;
    const char *target = json_string_value(json_object_get(self->aliases, model));
    return target ? target : model;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static void read_price(const json_t *entry, worker_price_t *price)
{
    price->input = json_number_value(json_object_get(entry, "input"));
    price->output = json_number_value(json_object_get(entry, "output"));
    price->cache_write = json_number_value(json_object_get(entry, "cache_write"));
    price->cache_read = json_number_value(json_object_get(entry, "cache_read"));
}

bool worker_models_price(const worker_models_t *self, const char *model_id, worker_price_t *price)
{
    if (!model_id || !*model_id)
        return false;
    json_t *entry = json_object_get(self->models, model_id);
    if (!entry) {
        /* "claude-sonnet-4-5" names the newest "claude-sonnet-4-5-<date>". */
        size_t len = strlen(model_id);
        const char *key, *best = NULL;
        json_t *value;
        json_object_foreach(self->models, key, value) {
            if (strncmp(key, model_id, len) == 0 && key[len] == '-' && all_digits(key + len + 1) &&
                (!best || strcmp(key, best) > 0)) {
                best = key;
                entry = value;
            }
        }
    }
    if (!entry)
        return false;
    read_price(entry, price);
    return true;
}

bool worker_models_cost(const worker_models_t *self, const char *model_id, int64_t input,
                        int64_t output, int64_t cache_write, int64_t cache_read, double *cost)
{
    worker_price_t p;
    *cost = 0;
    if (!worker_models_price(self, model_id, &p))
        return false;
    *cost = ((double)input * p.input + (double)output * p.output +
             (double)cache_write * p.cache_write + (double)cache_read * p.cache_read) / 1e6;
    return true;
}

const char *worker_models_prices_as_of(const worker_models_t *self)
{
    const char *as_of = json_string_value(json_object_get(self->root, "prices_as_of"));
    return as_of ? as_of : "";
}
