/* usage: what one attempt of an agent cost — tokens, money, turns, time, tools.
 *
 * Workers report it in RESULT's optional `usage` map. The broker accepts these
 * keys (anything else is ignored, a value of the wrong type counts as absent):
 *   input_tokens, output_tokens                       integers ≥ 0
 *   cache_creation_tokens (or cache_creation_input_tokens)
 *   cache_read_tokens (or cache_read_input_tokens)    integers ≥ 0
 *   cost_usd (or total_cost_usd)                      number ≥ 0
 *   num_turns, duration_ms                            integers ≥ 0
 *   model                                             string (the model actually used)
 *   tool_calls    array of {name, success} maps (or of names), or an integer count
 *   tool_call_count                                   integer (wins over the array length)
 * Peers are not trusted: numbers are clamped so sums cannot overflow and the
 * tool list is cut at BROKER_USAGE_TOOLS_MAX entries (the count stays exact). */
#ifndef SYN_BROKER_USAGE_H
#define SYN_BROKER_USAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BROKER_USAGE_TOOLS_MAX 100
#define BROKER_USAGE_NAME_MAX 200

typedef struct {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cache_creation_tokens;
    int64_t cache_read_tokens;
    double cost_usd;
    int64_t num_turns;
    int64_t duration_ms;
    int64_t tool_call_count;
    char *model;          /* NULL when not reported */
    json_t *tool_calls;   /* array of {name, success: bool|null}; never NULL after parse */
} broker_usage_t;

/* Fills out from a RESULT's usage value (NULL or not a map: all zero). Returns
 * true when something was reported. Free with broker_usage_clear. */
bool broker_usage_parse(const json_t *usage, broker_usage_t *out);
void broker_usage_clear(broker_usage_t *usage);

/* Adds the usage's fields to object: input_tokens, output_tokens,
 * cache_creation_tokens, cache_read_tokens, total_tokens, cost_usd, num_turns,
 * duration_ms, model (fallback_model when none was reported), tool_call_count and,
 * when with_tools, tool_calls. */
void broker_usage_put(const broker_usage_t *usage, json_t *object, const char *fallback_model,
                      bool with_tools);

#endif
