/* usage: tolerant reading of a worker's accounting report. */
#include "broker/usage.h"

#include "common/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 10^15 tokens or dollars is far beyond any real agent run, and a million such
 * values still sum without overflowing int64. */
#define COUNT_MAX 1000000000000000LL
#define COST_MAX 1e12

static int64_t count_of(const json_t *map, const char *key, const char *alias)
{
    const json_t *v = json_object_get(map, key);
    if (!json_is_integer(v) && alias)
        v = json_object_get(map, alias);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    json_int_t n = json_integer_value(v);
    return n > COUNT_MAX ? COUNT_MAX : (int64_t)n;
}

static double cost_of(const json_t *map)
{
    const json_t *v = json_object_get(map, "cost_usd");
    if (!json_is_number(v))
        v = json_object_get(map, "total_cost_usd");
    if (!json_is_number(v))
        return 0;
    double cost = json_number_value(v);
    if (!isfinite(cost) || cost < 0)
        return 0;
    return cost > COST_MAX ? COST_MAX : cost;
}

/* A name cut to BROKER_USAGE_NAME_MAX bytes on a character boundary. */
static json_t *short_name(const char *name)
{
    return json_stringn(name, syn_utf8_cut(name, strlen(name), BROKER_USAGE_NAME_MAX));
}

static json_t *tool_entry(const json_t *item)
{
    if (json_is_string(item))
        return json_pack("{s:o, s:n}", "name", short_name(json_string_value(item)), "success");
    const char *name = json_string_value(json_object_get(item, "name"));
    if (!json_is_object(item) || !name)
        return NULL;
    const json_t *success = json_object_get(item, "success");
    const json_t *is_error = json_object_get(item, "is_error");
    json_t *ok = json_is_boolean(success)    ? json_boolean(json_is_true(success))
                 : json_is_boolean(is_error) ? json_boolean(!json_is_true(is_error))
                                             : json_null();
    return json_pack("{s:o, s:o}", "name", short_name(name), "success", ok);
}

bool broker_usage_parse(const json_t *usage, broker_usage_t *out)
{
    memset(out, 0, sizeof *out);
    out->tool_calls = json_array();
    if (!json_is_object(usage))
        return false;
    out->input_tokens = count_of(usage, "input_tokens", NULL);
    out->output_tokens = count_of(usage, "output_tokens", NULL);
    out->cache_creation_tokens =
        count_of(usage, "cache_creation_tokens", "cache_creation_input_tokens");
    out->cache_read_tokens = count_of(usage, "cache_read_tokens", "cache_read_input_tokens");
    out->cost_usd = cost_of(usage);
    out->num_turns = count_of(usage, "num_turns", NULL);
    out->duration_ms = count_of(usage, "duration_ms", NULL);
    const char *model = json_string_value(json_object_get(usage, "model"));
    if (model && *model) {
        json_t *cut = short_name(model);
        out->model = cut ? strdup(json_string_value(cut)) : NULL;
        json_decref(cut);
    }
    const json_t *tools = json_object_get(usage, "tool_calls");
    if (json_is_array(tools)) {
        size_t i;
        const json_t *item;
        json_array_foreach(tools, i, item)
        {
            json_t *entry = tool_entry(item);
            if (!entry)
                continue;
            out->tool_call_count++;
            if (json_array_size(out->tool_calls) < BROKER_USAGE_TOOLS_MAX && out->tool_calls)
                json_array_append_new(out->tool_calls, entry);
            else
                json_decref(entry);
        }
    } else if (json_is_integer(tools)) {
        out->tool_call_count = count_of(usage, "tool_calls", NULL);
    }
    if (json_is_integer(json_object_get(usage, "tool_call_count")))
        out->tool_call_count = count_of(usage, "tool_call_count", NULL);
    return true;
}

void broker_usage_clear(broker_usage_t *usage)
{
    free(usage->model);
    json_decref(usage->tool_calls);
    memset(usage, 0, sizeof *usage);
}

void broker_usage_put(const broker_usage_t *usage, json_t *object, const char *fallback_model,
                      bool with_tools)
{
    const char *model = usage->model ? usage->model : fallback_model;
    json_object_set_new(object, "input_tokens", json_integer(usage->input_tokens));
    json_object_set_new(object, "output_tokens", json_integer(usage->output_tokens));
    json_object_set_new(object, "cache_creation_tokens",
                        json_integer(usage->cache_creation_tokens));
    json_object_set_new(object, "cache_read_tokens", json_integer(usage->cache_read_tokens));
    json_object_set_new(object, "total_tokens",
                        json_integer(usage->input_tokens + usage->output_tokens +
                                     usage->cache_creation_tokens + usage->cache_read_tokens));
    json_object_set_new(object, "cost_usd", json_real(usage->cost_usd));
    json_object_set_new(object, "num_turns", json_integer(usage->num_turns));
    json_object_set_new(object, "duration_ms", json_integer(usage->duration_ms));
    json_object_set_new(object, "model", model ? json_string(model) : json_null());
    json_object_set_new(object, "tool_call_count", json_integer(usage->tool_call_count));
    if (with_tools)
        json_object_set_new(object, "tool_calls",
                            usage->tool_calls ? json_deep_copy(usage->tool_calls) : json_array());
}
