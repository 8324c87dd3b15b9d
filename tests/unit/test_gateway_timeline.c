/* gateway/timeline: the SVG picture of an execution. */
#include "common/clock.h"
#include "gateway/timeline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static size_t count(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(syn_time_parse("1970-01-01T00:00:01.5Z", &t), 0);
    assert_int_equal(t, 1500000);
    assert_int_equal(syn_time_parse("2026-11-28T14:56:19.123456Z", &t), 0);
    assert_int_equal(t, 1795877779123456LL);
    assert_int_equal(syn_time_parse("2026-11-28T14:56:19Z", &t), 0);
    assert_int_equal(t, 1795877779000000LL);
    const char *bad[] = {"", "2026-11-28", "2026-11-28T14:56:19", "2026-11-28T14:56:19.Z",
                         "2026-13-28T14:56:19Z", "2026-11-28T14:56:19+01:00", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(syn_time_parse(bad[i], &t), -1);
    assert_int_equal(syn_time_parse(NULL, &t), -1);
}

static const char *DETAIL =
    "{\"execution_id\":\"exec-0123456789ab\",\"workflow_id\":\"wf<&>\",\"status\":\"running\","
    " \"started_at\":\"2026-11-28T10:00:00.000000Z\",\"completed_at\":null,\"error\":null,"
    " \"phases\":["
    "  {\"phase_id\":\"plan\",\"name\":\"Plan <first>\",\"status\":\"completed\",\"attempts\":["
    "    {\"attempt\":1,\"worker\":\"w1\",\"status\":\"lost\",\"error\":\"worker w1 gone\","
    "     \"started_at\":\"2026-11-28T10:00:00.000000Z\","
    "     \"completed_at\":\"2026-11-28T10:00:03.000000Z\"},"
    "    {\"attempt\":2,\"worker\":\"w2\",\"status\":\"completed\",\"error\":null,"
    "     \"started_at\":\"2026-11-28T10:00:03.000000Z\","
    "     \"completed_at\":\"2026-11-28T10:00:05.000000Z\"}]},"
    "  {\"phase_id\":\"build\",\"name\":\"Build\",\"status\":\"running\",\"attempts\":["
    "    {\"attempt\":1,\"worker\":\"w2\",\"status\":\"running\",\"error\":null,"
    "     \"started_at\":\"2026-11-28T10:00:05.000000Z\",\"completed_at\":null}]},"
    "  {\"phase_id\":\"review\",\"name\":\"Review\",\"status\":\"pending\",\"attempts\":[]}]}";

static void test_render_draws_every_attempt_on_one_axis(void **state)
{
    (void)state;
    json_t *detail = json_loads(DETAIL, 0, NULL);
    assert_non_null(detail);
    int64_t now;
    assert_int_equal(syn_time_parse("2026-11-28T10:00:10.000000Z", &now), 0);
    char err[128];
    char *svg = timeline_render_svg(detail, now, err, sizeof err);
    assert_non_null(svg);
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "</svg>\n"));
    /* Three attempt bars (each has a tooltip) plus six legend swatches. */
    assert_int_equal(count(svg, "<title>"), 3);
    assert_non_null(strstr(svg, "attempt 1 on w1: lost, 3.000 s — worker w1 gone"));
    assert_non_null(strstr(svg, "attempt 1 on w2: running, 5.000 s"));
    /* The axis spans start → now (10 s) for a running execution. */
    assert_non_null(strstr(svg, "running, 10.000 s"));
    assert_non_null(strstr(svg, ">10 s</text>"));
    /* Names from the detail are escaped, never markup. */
    assert_null(strstr(svg, "Plan <first>"));
    assert_non_null(strstr(svg, "Plan &lt;first&gt;"));
    assert_non_null(strstr(svg, "wf&lt;&amp;&gt;"));
    free(svg);
    json_decref(detail);
}

static void test_render_refuses_what_has_not_started(void **state)
{
    (void)state;
    char err[128] = "";
    json_t *pending = json_loads("{\"execution_id\":\"e\",\"started_at\":null,\"phases\":[]}", 0,
                                 NULL);
    assert_null(timeline_render_svg(pending, 0, err, sizeof err));
    assert_string_equal(err, "the execution has not started yet");
    json_t *not_detail = json_string("nope");
    assert_null(timeline_render_svg(not_detail, 0, err, sizeof err));
    json_decref(pending);
    json_decref(not_detail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_render_draws_every_attempt_on_one_axis),
        cmocka_unit_test(test_render_refuses_what_has_not_started),
    };
    return cmocka_run_group_tests_name("gateway_timeline", tests, NULL, NULL);
}
