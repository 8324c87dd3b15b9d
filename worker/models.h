/* models: model aliases and prices, for choosing a model and costing a phase.
 *
 * A phase's model may be an alias ("haiku", "sonnet", "opus") that the table
 * maps to a full model id; no model means the table's default_model. Prices
 * are USD per million tokens for input, output, cache writes and cache reads.
 * The default table is compiled in (it is worker/models.json, which a test
 * keeps identical); `syn-worker --models FILE` replaces it with another file
 * of the same shape. */
#ifndef SYN_WORKER_MODELS_H
#define SYN_WORKER_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double input, output, cache_write, cache_read; /* USD per million tokens */
} worker_price_t;

typedef struct worker_models_t worker_models_t;

/* The compiled-in table (NULL only when out of memory). */
worker_models_t *worker_models_default(void);
/* The compiled-in table's JSON text. */
const char *worker_models_default_text(void);
/* A table from JSON text or a file; NULL with the reason in err. */
worker_models_t *worker_models_parse(const char *text, char *err, size_t errlen);
worker_models_t *worker_models_load(const char *path, char *err, size_t errlen);
void worker_models_destroy(worker_models_t **self_p);

/* The full model id for what a phase asked for: an alias's target, the
 * default model's id for NULL or "", anything else unchanged. */
const char *worker_models_resolve(const worker_models_t *self, const char *model);
/* The price of a model id: an exact entry, or for an id without a date suffix
 * ("claude-sonnet-4-5") the newest dated entry it names. false when unknown. */
bool worker_models_price(const worker_models_t *self, const char *model_id, worker_price_t *price);
/* USD for the given token counts at the model's price; false when the model
 * has no price (*cost is then 0). */
bool worker_models_cost(const worker_models_t *self, const char *model_id, int64_t input,
                        int64_t output, int64_t cache_write, int64_t cache_read, double *cost);
/* "2025-11-24": when the prices were taken (or "" when the file does not say). */
const char *worker_models_prices_as_of(const worker_models_t *self);

#endif
