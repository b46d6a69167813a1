/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spmetrics.c: the Prometheus text of metrics snapshots
 *
 * Checks the exact text of known snapshots, the format's rules line by
 * line (HELP and TYPE before each family's samples, one family once,
 * "samepage_" names, "_total" counters), and parses the text with
 * prometheus_client (tests/unit/prom-parse.py) to see hostile domain names
 * come back as they went in.
 */
#include "config.h"

#include <gio/gio.h>
#include <math.h>

#include "samepage/spjson.h"
#include "samepage/spmetrics.h"
#include "sptest.h"

#define UUID1 "6d3c1e0a-5b7f-4c2e-9a41-0f7e2b9c8d11"
#define UUID2 "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"

static void
ksm_set(SpMetricsSnapshot *s, SpKsmKey k, gint64 v)
{
    s->ksm.entry[k].supported = TRUE;
    s->ksm.entry[k].value = v;
}

/* Every key supported, a kernel 6.8-like host. */
static SpMetricsSnapshot *
full_snapshot(void)
{
    SpMetricsSnapshot *s = sp_metrics_snapshot_new();
    SpMetricsGuest *g;

    s->have_ksm = TRUE;
    s->page_size = 4096;
    ksm_set(s, SP_KSM_RUN, 1);
    ksm_set(s, SP_KSM_PAGES_TO_SCAN, 100);
    ksm_set(s, SP_KSM_SLEEP_MILLISECS, 20);
    ksm_set(s, SP_KSM_MAX_PAGE_SHARING, 256);
    ksm_set(s, SP_KSM_MERGE_ACROSS_NODES, 1);
    ksm_set(s, SP_KSM_USE_ZERO_PAGES, 0);
    ksm_set(s, SP_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS, 2000);
    ksm_set(s, SP_KSM_SMART_SCAN, 1);
    ksm_set(s, SP_KSM_ADVISOR_MODE, 1);
    ksm_set(s, SP_KSM_ADVISOR_MAX_CPU, 70);
    ksm_set(s, SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN, 500);
    ksm_set(s, SP_KSM_ADVISOR_MAX_PAGES_TO_SCAN, 30000);
    ksm_set(s, SP_KSM_ADVISOR_TARGET_SCAN_TIME, 200);
    ksm_set(s, SP_KSM_PAGES_SHARED, 1200);
    ksm_set(s, SP_KSM_PAGES_SHARING, 34000);
    ksm_set(s, SP_KSM_PAGES_UNSHARED, 5000);
    ksm_set(s, SP_KSM_PAGES_VOLATILE, 12);
    ksm_set(s, SP_KSM_PAGES_SKIPPED, 987654);
    ksm_set(s, SP_KSM_PAGES_SCANNED, 123456789);
    ksm_set(s, SP_KSM_FULL_SCANS, 7);
    ksm_set(s, SP_KSM_STABLE_NODE_CHAINS, 2);
    ksm_set(s, SP_KSM_STABLE_NODE_DUPS, 9);
    ksm_set(s, SP_KSM_KSM_ZERO_PAGES, 300);
    ksm_set(s, SP_KSM_GENERAL_PROFIT, -8192);
    s->have_ksmd_cpu = TRUE;
    s->ksmd_cpu_seconds = 12.5;

    g = sp_metrics_snapshot_add_guest(s, "web", UUID1);
    g->mergeable = TRUE;
    g->group = g_strdup("tenant-a");
    g->have_ksm_stat = TRUE;
    g->merging_pages = 1000;
    g->have_profit = TRUE;
    g->profit_bytes = -4096;
    g->have_prediction = TRUE;
    g->predicted_saving_bytes = 5000000;
    g = sp_metrics_snapshot_add_guest(s, "db", UUID2);
    g->mergeable = FALSE;

    {
        SpMetricsTrustGroup *t = sp_metrics_snapshot_add_trust_group(s, "tenant-a");
        t->mergeable = TRUE;
        t->have_saving = TRUE;
        t->predicted_saving_bytes = 7000000;
        t = sp_metrics_snapshot_add_trust_group(s, "tenant-b");
        t->mergeable = FALSE;       /* no prediction yet: left out of the savings */
        s->have_trust_chosen = TRUE;
        s->trust_chosen_saving_bytes = 7000000;
        s->have_trust_mixed = TRUE;
        s->trust_mixed_saving_bytes = 9500000;
    }
    s->have_prediction = TRUE;
    s->predicted_pages_sharing = 40000;
    s->predicted_saving_bytes = 40000ull * 4096;
    s->prediction_age_seconds = 3.25;
    s->have_controller = TRUE;
    sp_metrics_set_string(&s->controller_mode, "static");
    sp_metrics_set_string(&s->controller_reason, "configured knobs");
    s->controller_pages_to_scan = 1000;
    s->controller_sleep_ms = 50;
    return s;
}

static void
assert_contains(const char *text, const char *want)
{
    if (!strstr(text, want)) {
        print_message("--- rendered text ---\n%s--- end ---\n", text);
        fail_msg("missing from the rendered text: %s", want);
    }
}

static void
assert_lacks(const char *text, const char *unwanted)
{
    if (strstr(text, unwanted))
        fail_msg("unexpected in the rendered text: %s", unwanted);
}

/* The format's rules, line by line. */
static void
check_structure(const char *text)
{
    g_auto(GStrv) lines = NULL;
    g_autoptr(GHashTable) types = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GHashTable) helps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *current = NULL;
    guint n = 0;

    assert_true(g_str_has_suffix(text, "\n"));
    assert_true(g_utf8_validate(text, -1, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] && lines[i + 1]; i++) {
        const char *l = lines[i];

        if (g_str_has_prefix(l, "# HELP ")) {
            g_auto(GStrv) w = g_strsplit(l + 7, " ", 2);
            assert_non_null(w[1]);
            if (!g_hash_table_add(helps, g_strdup(w[0])))
                fail_msg("HELP twice for %s", w[0]);
            g_free(current);
            current = g_strdup(w[0]);
        } else if (g_str_has_prefix(l, "# TYPE ")) {
            g_auto(GStrv) w = g_strsplit(l + 7, " ", -1);
            assert_int_equal(g_strv_length(w), 2);
            assert_non_null(current);
            assert_string_equal(w[0], current);     /* right after its HELP */
            assert_true(g_str_equal(w[1], "gauge") || g_str_equal(w[1], "counter"));
            if (g_str_equal(w[1], "counter") && !g_str_has_suffix(w[0], "_total"))
                fail_msg("counter %s does not end in _total", w[0]);
            if (!g_hash_table_insert(types, g_strdup(w[0]), g_strdup(w[1])))
                fail_msg("TYPE twice for %s", w[0]);
        } else {
            gsize name_len = strcspn(l, "{ ");
            g_autofree char *name = g_strndup(l, name_len);

            assert_false(l[0] == '#');
            assert_true(g_str_has_prefix(name, "samepage_"));
            for (const char *p = name; *p; p++)
                assert_true(g_ascii_isalnum(*p) || *p == '_');
            /* a sample of the family whose HELP and TYPE came last */
            if (!current || !g_str_equal(name, current))
                fail_msg("sample %s outside its family (current %s)", name,
                         current ? current : "none");
            assert_non_null(g_hash_table_lookup(types, name));
            n++;
        }
    }
    assert_true(n > 0);
}

static void
test_escape(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "", "" },
        { "web-01", "web-01" },
        { "a\"b", "a\\\"b" },
        { "back\\slash", "back\\\\slash" },
        { "two\nlines", "two\\nlines" },
        { "\\n", "\\\\n" },                           /* a literal backslash-n */
        { "x\"}\n{y=\"1\"", "x\\\"}\\n{y=\\\"1\\\"" },
        { "tab\there", "tab\there" },                 /* only \\, \" and \n escape */
        { "caf\xc3\xa9", "caf\xc3\xa9" },
        { "bad\xff", "bad\xef\xbf\xbd" },             /* not UTF-8: U+FFFD */
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *e = sp_metrics_escape_label_value(cases[i].in);
        assert_string_equal(e, cases[i].out);
    }
}

static void
test_render_full(void **state)
{
    g_autoptr(SpMetricsSnapshot) s = full_snapshot();
    g_autofree char *t = sp_metrics_render(s);

    (void)state;
    check_structure(t);
    /* knobs and figures, in base units */
    assert_contains(t, "# TYPE samepage_ksm_run gauge\nsamepage_ksm_run 1\n");
    assert_contains(t, "\nsamepage_ksm_pages_to_scan 100\n");
    assert_contains(t, "\nsamepage_ksm_sleep_seconds 0.02\n");
    assert_contains(t, "\nsamepage_ksm_stable_node_chains_prune_seconds 2\n");
    assert_contains(t, "\nsamepage_ksm_advisor_mode{mode=\"none\"} 0\n"
                       "samepage_ksm_advisor_mode{mode=\"scan-time\"} 1\n");
    assert_contains(t, "\nsamepage_ksm_advisor_max_cpu_ratio 0.7\n");
    assert_contains(t, "\nsamepage_ksm_advisor_target_scan_time_seconds 200\n");
    assert_contains(t, "\nsamepage_ksm_pages_sharing 34000\n");
    assert_contains(t, "\nsamepage_ksm_saving_bytes 139264000\n");
    assert_contains(t, "# TYPE samepage_ksm_full_scans_total counter\n"
                       "samepage_ksm_full_scans_total 7\n");
    assert_contains(t, "# TYPE samepage_ksm_pages_scanned_total counter\n"
                       "samepage_ksm_pages_scanned_total 123456789\n");
    assert_contains(t, "\nsamepage_ksm_general_profit_bytes -8192\n");
    assert_contains(t, "# TYPE samepage_ksmd_cpu_seconds_total counter\n"
                       "samepage_ksmd_cpu_seconds_total 12.5\n");
    /* guests */
    assert_contains(t, "\nsamepage_guests 2\n");
    assert_contains(t, "\nsamepage_guests_mergeable 1\n");
    assert_contains(t, "# TYPE samepage_guest_mergeable gauge\n"
                       "samepage_guest_mergeable{domain=\"web\",uuid=\"" UUID1 "\"} 1\n"
                       "samepage_guest_mergeable{domain=\"db\",uuid=\"" UUID2 "\"} 0\n");
    assert_contains(t, "\nsamepage_guest_ksm_merging_pages{domain=\"web\",uuid=\"" UUID1
                       "\"} 1000\n");
    assert_contains(t, "\nsamepage_guest_ksm_merging_bytes{domain=\"web\",uuid=\"" UUID1
                       "\"} 4096000\n");
    assert_contains(t, "\nsamepage_guest_ksm_profit_bytes{domain=\"web\",uuid=\"" UUID1
                       "\"} -4096\n");
    assert_contains(t, "\nsamepage_guest_predicted_saving_bytes{domain=\"web\",uuid=\"" UUID1
                       "\"} 5000000\n");
    assert_contains(t, "\nsamepage_guest_trust_group{domain=\"web\",uuid=\"" UUID1
                       "\",group=\"tenant-a\"} 1\n");
    /* db has no ksm_stat, prediction nor group: left out, not 0 */
    assert_lacks(t, "samepage_guest_ksm_merging_pages{domain=\"db\"");
    assert_lacks(t, "samepage_guest_predicted_saving_bytes{domain=\"db\"");
    assert_lacks(t, "samepage_guest_trust_group{domain=\"db\"");
    /* trust groups: what the isolation costs */
    assert_contains(t, "# TYPE samepage_trust_group_mergeable gauge\n"
                       "samepage_trust_group_mergeable{group=\"tenant-a\"} 1\n"
                       "samepage_trust_group_mergeable{group=\"tenant-b\"} 0\n");
    assert_contains(t, "# TYPE samepage_trust_group_predicted_saving_bytes gauge\n"
                       "samepage_trust_group_predicted_saving_bytes{group=\"tenant-a\"} 7000000\n");
    assert_lacks(t, "samepage_trust_group_predicted_saving_bytes{group=\"tenant-b\"}");
    assert_contains(t, "\nsamepage_trust_isolated_predicted_saving_bytes 7000000\n");
    assert_contains(t, "# TYPE samepage_trust_mixed_predicted_saving_bytes gauge\n"
                       "samepage_trust_mixed_predicted_saving_bytes 9500000\n");
    /* model and controller */
    assert_contains(t, "\nsamepage_model_predicted_pages_sharing 40000\n");
    assert_contains(t, "\nsamepage_model_predicted_saving_bytes 163840000\n");
    assert_contains(t, "\nsamepage_model_prediction_age_seconds 3.25\n");
    assert_contains(t, "\nsamepage_controller_mode{mode=\"static\"} 1\n");
    assert_contains(t, "\nsamepage_controller_decision{reason=\"configured knobs\"} 1\n");
    assert_contains(t, "\nsamepage_controller_pages_to_scan 1000\n");
    assert_contains(t, "\nsamepage_controller_sleep_seconds 0.05\n");
}

/* An old kernel (no advisor, no smart scan, no pages_scanned), no ksmd, no
 * guests, no model, no controller. */
static void
test_render_sparse(void **state)
{
    g_autoptr(SpMetricsSnapshot) s = sp_metrics_snapshot_new();
    g_autofree char *t = NULL;

    (void)state;
    s->have_ksm = TRUE;
    ksm_set(s, SP_KSM_RUN, 0);
    ksm_set(s, SP_KSM_PAGES_SHARING, 0);
    ksm_set(s, SP_KSM_FULL_SCANS, 0);
    t = sp_metrics_render(s);
    check_structure(t);
    assert_contains(t, "\nsamepage_ksm_run 0\n");
    assert_contains(t, "\nsamepage_ksm_full_scans_total 0\n");
    assert_contains(t, "\nsamepage_ksm_saving_bytes 0\n");
    assert_contains(t, "\nsamepage_guests 0\n");
    assert_lacks(t, "advisor");
    assert_lacks(t, "smart_scan");
    assert_lacks(t, "pages_scanned");
    assert_lacks(t, "ksmd_cpu");
    assert_lacks(t, "samepage_guest_mergeable");
    assert_lacks(t, "samepage_model_");
    assert_lacks(t, "samepage_controller_");
    assert_lacks(t, "samepage_trust_");
}

/* NaN and infinities are spelt as the format wants. */
static void
test_render_special_values(void **state)
{
    g_autoptr(SpMetricsSnapshot) s = sp_metrics_snapshot_new();
    g_autofree char *t = NULL;

    (void)state;
    s->have_ksmd_cpu = TRUE;
    s->ksmd_cpu_seconds = INFINITY;
    s->have_prediction = TRUE;
    s->prediction_age_seconds = NAN;
    t = sp_metrics_render(s);
    check_structure(t);
    assert_contains(t, "\nsamepage_ksmd_cpu_seconds_total +Inf\n");
    assert_contains(t, "\nsamepage_model_prediction_age_seconds NaN\n");
}

/* ------------------------------------------------------------ prometheus_client */

/* Parses @text with prom-parse.py; skips the test without prometheus_client. */
static json_object *
prom_parse(const char *text)
{
    g_autofree char *script = g_build_filename(SP_TOP_SRCDIR, "tests", "unit",
                                               "prom-parse.py", NULL);
    const char *argv[] = { "/usr/bin/python3", script, NULL };
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GBytes) in = g_bytes_new(text, strlen(text));
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GBytes) err = NULL;
    g_autoptr(GError) error = NULL;
    json_object *root;

    if (!g_file_test(argv[0], G_FILE_TEST_IS_EXECUTABLE)) {
        print_message("no /usr/bin/python3: skipping the parser check\n");
        skip();
    }
    p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                          | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
    assert_non_null(p);
    assert_true(g_subprocess_communicate(p, in, NULL, &out, &err, &error));
    if (g_subprocess_get_exit_status(p) == 77) {
        print_message("no prometheus_client (python3-prometheus-client): skipping\n");
        skip();
    }
    if (g_subprocess_get_exit_status(p) != 0)
        fail_msg("prometheus_client refused the text: %.*s\n--- text ---\n%s",
                 (int)g_bytes_get_size(err), (const char *)g_bytes_get_data(err, NULL), text);
    root = json_tokener_parse(g_bytes_get_data(out, NULL));
    assert_non_null(root);
    return root;
}

static json_object *
family_of(json_object *root, const char *name)
{
    json_object *fams = json_object_object_get(root, "families");

    for (size_t i = 0; i < json_object_array_length(fams); i++) {
        json_object *f = json_object_array_get_idx(fams, i);
        if (g_str_equal(json_object_get_string(json_object_object_get(f, "name")), name))
            return f;
    }
    fail_msg("prometheus_client found no family %s", name);
    return NULL;
}

static double
sample_value(json_object *fam, const char *label, const char *value)
{
    json_object *samples = json_object_object_get(fam, "samples");

    for (size_t i = 0; i < json_object_array_length(samples); i++) {
        json_object *s = json_object_array_get_idx(samples, i);
        json_object *labels = json_object_object_get(s, "labels");
        json_object *l = label ? json_object_object_get(labels, label) : NULL;

        if (!label || (l && g_str_equal(json_object_get_string(l), value)))
            return json_object_get_double(json_object_object_get(s, "value"));
    }
    fail_msg("no sample with %s=%s", label, value);
    return 0;
}

static void
test_parser_full(void **state)
{
    g_autoptr(SpMetricsSnapshot) s = full_snapshot();
    g_autofree char *t = sp_metrics_render(s);
    g_autoptr(json_object) root = prom_parse(t);
    json_object *f;

    (void)state;
    /* prometheus_client names a counter family without _total */
    f = family_of(root, "samepage_ksm_full_scans");
    assert_string_equal(json_object_get_string(json_object_object_get(f, "type")), "counter");
    assert_true(sample_value(f, NULL, NULL) == 7);
    f = family_of(root, "samepage_ksmd_cpu_seconds");
    assert_string_equal(json_object_get_string(json_object_object_get(f, "type")), "counter");
    assert_true(sample_value(f, NULL, NULL) == 12.5);
    f = family_of(root, "samepage_guest_mergeable");
    assert_string_equal(json_object_get_string(json_object_object_get(f, "type")), "gauge");
    assert_true(sample_value(f, "domain", "web") == 1);
    assert_true(sample_value(f, "domain", "db") == 0);
    f = family_of(root, "samepage_ksm_general_profit_bytes");
    assert_true(sample_value(f, NULL, NULL) == -8192);
    f = family_of(root, "samepage_ksm_sleep_seconds");
    assert_true(sample_value(f, NULL, NULL) == 0.02);
    f = family_of(root, "samepage_ksm_advisor_mode");
    assert_true(sample_value(f, "mode", "scan-time") == 1);
    f = family_of(root, "samepage_guest_trust_group");
    assert_true(sample_value(f, "group", "tenant-a") == 1);
    f = family_of(root, "samepage_controller_decision");
    assert_true(sample_value(f, "reason", "configured knobs") == 1);
    f = family_of(root, "samepage_trust_group_predicted_saving_bytes");
    assert_true(sample_value(f, "group", "tenant-a") == 7000000);
    f = family_of(root, "samepage_trust_mixed_predicted_saving_bytes");
    assert_true(sample_value(f, NULL, NULL) == 9500000);
}

/* Domain names meant to break the format come back from the parser as they
 * went in (bytes that are not UTF-8 as U+FFFD), each its own sample. */
static void
test_parser_hostile_names(void **state)
{
    static const struct {
        const char *name;
        const char *parsed;
    } names[] = {
        { "quote\"inside", "quote\"inside" },
        { "back\\slash", "back\\slash" },
        { "line\nbreak", "line\nbreak" },
        { "\\n-literal", "\\n-literal" },
        { "fake\"} 1\nsamepage_guest_mergeable{domain=\"x", NULL },
        { "trail\\", "trail\\" },
        { "{braces},=", "{braces},=" },
        { "# HELP samepage_guests x", "# HELP samepage_guests x" },
        { "caf\xc3\xa9-\xf0\x9f\x90\xb3", "caf\xc3\xa9-\xf0\x9f\x90\xb3" },
        { "bad\xff\xfe", "bad\xef\xbf\xbd\xef\xbf\xbd" },
        { "", "" },
    };
    g_autoptr(SpMetricsSnapshot) s = sp_metrics_snapshot_new();
    g_autofree char *t = NULL;
    g_autoptr(json_object) root = NULL;
    json_object *samples;

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *uuid = g_strdup_printf("00000000-0000-0000-0000-%012zu", i);
        SpMetricsGuest *g = sp_metrics_snapshot_add_guest(s, names[i].name, uuid);
        g->mergeable = i % 2;
        g->group = g_strdup(names[i].name);
    }
    t = sp_metrics_render(s);
    check_structure(t);
    root = prom_parse(t);
    samples = json_object_object_get(family_of(root, "samepage_guest_mergeable"), "samples");
    assert_int_equal(json_object_array_length(samples), G_N_ELEMENTS(names));
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        json_object *smp = json_object_array_get_idx(samples, i);
        json_object *labels = json_object_object_get(smp, "labels");
        const char *want = names[i].parsed ? names[i].parsed : names[i].name;
        g_autofree char *uuid = g_strdup_printf("00000000-0000-0000-0000-%012zu", i);

        assert_string_equal(json_object_get_string(json_object_object_get(labels, "domain")),
                            want);
        assert_string_equal(json_object_get_string(json_object_object_get(labels, "uuid")),
                            uuid);
        assert_int_equal(json_object_object_length(labels), 2);
        assert_true(json_object_get_double(json_object_object_get(smp, "value")) == i % 2);
    }
    samples = json_object_object_get(family_of(root, "samepage_guest_trust_group"), "samples");
    assert_int_equal(json_object_array_length(samples), G_N_ELEMENTS(names));
    /* no sample invented by a name: guests and guests_mergeable hold one each */
    samples = json_object_object_get(family_of(root, "samepage_guests"), "samples");
    assert_int_equal(json_object_array_length(samples), 1);
    assert_true(sample_value(family_of(root, "samepage_guests"), NULL, NULL)
                == G_N_ELEMENTS(names));
}

/* The parser is not a rubber stamp: a broken text fails it. */
static void
test_parser_rejects(void **state)
{
    g_autofree char *script = g_build_filename(SP_TOP_SRCDIR, "tests", "unit",
                                               "prom-parse.py", NULL);
    const char *argv[] = { "/usr/bin/python3", script, NULL };
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GBytes) in = NULL;
    g_autoptr(GError) error = NULL;
    const char *bad = "samepage_guest_mergeable{domain=\"a\"b\"} 1\n";

    (void)state;
    if (!g_file_test(argv[0], G_FILE_TEST_IS_EXECUTABLE))
        skip();
    in = g_bytes_new_static(bad, strlen(bad));
    p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                          | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
    assert_non_null(p);
    assert_true(g_subprocess_communicate(p, in, NULL, NULL, NULL, &error));
    if (g_subprocess_get_exit_status(p) == 77)
        skip();
    assert_int_equal(g_subprocess_get_exit_status(p), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_render_full),
        cmocka_unit_test(test_render_sparse),
        cmocka_unit_test(test_render_special_values),
        cmocka_unit_test(test_parser_full),
        cmocka_unit_test(test_parser_hostile_names),
        cmocka_unit_test(test_parser_rejects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
