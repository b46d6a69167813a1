/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <unistd.h>

#include "samepage/spksm.h"
#include "spfakeksm.h"
#include "sptest.h"

#define KSM "kernel/mm/ksm/"

typedef struct {
    char *root;       /* temporary copy of tests/data/sysfs-6.18 */
    SpHost *host;
} Fixture;

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);

    f->root = sp_test_tree_new("sysfs-6.18");
    f->host = sp_host_new_with_roots(f->root, "/nonexistent-proc");
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    sp_test_remove_tree(f->root);
    sp_host_free(f->host);
    g_free(f->root);
    g_free(f);
    return 0;
}

static SpKsmSetting
setting(const char *text)
{
    SpKsmSetting s;
    g_autoptr(GError) error = NULL;

    assert_true(sp_ksm_parse_setting(text, &s, &error));
    return s;
}

static void
test_read_all(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpKsmState st;

    sp_test_write(f->root, KSM "pages_shared", "74175\n");
    sp_test_write(f->root, KSM "general_profit", "-4096\n");
    sp_test_write(f->root, KSM "advisor_mode", "none [scan-time]\n");
    assert_true(sp_ksm_read(f->host, &st, &error));
    for (guint i = 0; i < SP_KSM_N_KEYS; i++)
        assert_true(st.entry[i].supported);
    assert_int_equal(st.entry[SP_KSM_RUN].value, 0);
    assert_int_equal(st.entry[SP_KSM_PAGES_TO_SCAN].value, 100);
    assert_int_equal(st.entry[SP_KSM_MAX_PAGE_SHARING].value, 256);
    assert_int_equal(st.entry[SP_KSM_PAGES_SHARED].value, 74175);
    assert_int_equal(st.entry[SP_KSM_GENERAL_PROFIT].value, -4096);
    assert_int_equal(st.entry[SP_KSM_ADVISOR_MODE].value, 1);
}

/* A 6.6 kernel: no smart_scan, no advisor.  Those are unsupported, the rest reads. */
static void
test_missing_knob(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    const char *gone[] = { "smart_scan", "pages_skipped", "advisor_mode", "advisor_max_cpu",
                           "advisor_min_pages_to_scan", "advisor_max_pages_to_scan",
                           "advisor_target_scan_time" };
    SpKsmState st;

    for (gsize i = 0; i < G_N_ELEMENTS(gone); i++) {
        g_autofree char *p = g_build_filename(f->root, KSM, gone[i], NULL);
        assert_int_equal(g_unlink(p), 0);
    }
    assert_true(sp_ksm_read(f->host, &st, &error));
    assert_false(st.entry[SP_KSM_SMART_SCAN].supported);
    assert_false(st.entry[SP_KSM_ADVISOR_MODE].supported);
    assert_true(st.entry[SP_KSM_RUN].supported);
    assert_true(st.entry[SP_KSM_USE_ZERO_PAGES].supported);

    /* Writing it is refused before anything is written. */
    SpKsmSetting s[] = { setting("run=1"), setting("smart_scan=0") };
    assert_false(sp_ksm_apply(f->host, s, G_N_ELEMENTS(s), &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_UNSUPPORTED));
    assert_non_null(strstr(error->message, "smart_scan"));
    g_autofree char *run = sp_test_read(f->root, KSM "run");
    assert_string_equal(run, "0");
    g_autofree char *p = g_build_filename(f->root, KSM, "smart_scan", NULL);
    assert_false(g_file_test(p, G_FILE_TEST_EXISTS));
}

static void
test_garbage_value(void **state)
{
    Fixture *f = *state;
    const char *garbage[] = { "12abc\n", "\n", "-5\n", "99999999999999999999999\n", "[bogus] none\n" };
    const char *file[] = { "pages_to_scan", "sleep_millisecs", "pages_shared",
                           "full_scans", "advisor_mode" };

    for (gsize i = 0; i < G_N_ELEMENTS(garbage); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *rel = g_strconcat(KSM, file[i], NULL);
        g_autofree char *old = sp_test_read(f->root, rel);
        SpKsmState st;

        sp_test_write(f->root, rel, garbage[i]);
        assert_false(sp_ksm_read(f->host, &st, &error));
        assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE));
        /* The message names the file. */
        assert_non_null(strstr(error->message, file[i]));
        sp_test_write(f->root, rel, old);
    }
}

static void
test_not_built(void **state)
{
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent-sys", "/nonexistent-proc");
    g_autoptr(GError) error = NULL;
    SpKsmState st;

    assert_false(sp_ksm_read(host, &st, &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_NOT_BUILT));
    assert_non_null(strstr(error->message, "/nonexistent-sys/kernel/mm/ksm"));
}

static void
test_parse_setting(void **state)
{
    struct { const char *text; int code; } bad[] = {
        { "run", SP_KSM_ERROR_INVALID_VALUE },
        { "=1", SP_KSM_ERROR_INVALID_VALUE },
        { "run=", SP_KSM_ERROR_INVALID_VALUE },
        { "run=3", SP_KSM_ERROR_INVALID_VALUE },
        { "run=abc", SP_KSM_ERROR_INVALID_VALUE },
        { "max_page_sharing=1", SP_KSM_ERROR_INVALID_VALUE },
        { "pages_to_scan=-1", SP_KSM_ERROR_INVALID_VALUE },
        { "pages_to_scan=4294967296", SP_KSM_ERROR_INVALID_VALUE },
        { "advisor_mode=fast", SP_KSM_ERROR_INVALID_VALUE },
        { "pages_shared=3", SP_KSM_ERROR_READ_ONLY },
        { "no_such_knob=1", SP_KSM_ERROR_UNKNOWN_KEY },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        SpKsmSetting s;
        assert_false(sp_ksm_parse_setting(bad[i].text, &s, &error));
        assert_true(g_error_matches(error, SP_KSM_ERROR, bad[i].code));
    }
    SpKsmSetting s = setting("advisor_mode=scan-time");
    assert_int_equal(s.key, SP_KSM_ADVISOR_MODE);
    assert_int_equal(s.value, 1);
    s = setting("pages_to_scan= 1000 ");
    assert_int_equal(s.value, 1000);
}

static void
test_validate_rules(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpKsmState st;

    assert_true(sp_ksm_read(f->host, &st, &error));

    /* pages_to_scan is EINVAL in the kernel while the advisor runs ... */
    st.entry[SP_KSM_ADVISOR_MODE].value = 1;
    SpKsmSetting a[] = { setting("pages_to_scan=1000") };
    assert_false(sp_ksm_validate(&st, a, 1, &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_CONFLICT));
    g_clear_error(&error);
    /* ... unless the same request turns it off first. */
    SpKsmSetting b[] = { setting("advisor_mode=none"), setting("pages_to_scan=1000") };
    assert_true(sp_ksm_validate(&st, b, 2, &error));
    SpKsmSetting b2[] = { setting("pages_to_scan=1000"), setting("advisor_mode=none") };
    assert_false(sp_ksm_validate(&st, b2, 2, &error));
    g_clear_error(&error);
    st.entry[SP_KSM_ADVISOR_MODE].value = 0;

    /* max_page_sharing and merge_across_nodes are EBUSY while pages are shared. */
    st.entry[SP_KSM_PAGES_SHARED].value = 10;
    SpKsmSetting c[] = { setting("merge_across_nodes=0") };
    assert_false(sp_ksm_validate(&st, c, 1, &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_CONFLICT));
    assert_non_null(strstr(error->message, "pages_shared=10"));
    g_clear_error(&error);
    SpKsmSetting d[] = { setting("run=2"), setting("max_page_sharing=512") };
    assert_true(sp_ksm_validate(&st, d, 2, &error));
    /* Writing the value it already has is not a change. */
    SpKsmSetting e[] = { setting("max_page_sharing=256") };
    assert_true(sp_ksm_validate(&st, e, 1, &error));

    SpKsmSetting twice[] = { setting("run=1"), setting("run=0") };
    assert_false(sp_ksm_validate(&st, twice, 2, &error));
    assert_non_null(strstr(error->message, "twice"));
    g_clear_error(&error);

    assert_false(sp_ksm_validate(&st, NULL, 0, &error));
    g_clear_error(&error);

    SpKsmSetting ro = { SP_KSM_PAGES_SHARING, 5 };
    assert_false(sp_ksm_validate(&st, &ro, 1, &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_READ_ONLY));
    g_clear_error(&error);
    SpKsmSetting range = { SP_KSM_RUN, 7 };
    assert_false(sp_ksm_validate(&st, &range, 1, &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE));
}

static void
test_apply(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpKsmSetting s[] = { setting("pages_to_scan=1000"), setting("sleep_millisecs=10"),
                         setting("advisor_mode=scan-time"), setting("run=1") };

    assert_true(sp_ksm_apply(f->host, s, G_N_ELEMENTS(s), &error));
    assert_null(error);
    g_autofree char *a = sp_test_read(f->root, KSM "pages_to_scan");
    g_autofree char *b = sp_test_read(f->root, KSM "sleep_millisecs");
    g_autofree char *c = sp_test_read(f->root, KSM "advisor_mode");
    g_autofree char *d = sp_test_read(f->root, KSM "run");
    assert_string_equal(a, "1000");
    assert_string_equal(b, "10");
    assert_string_equal(c, "scan-time");
    assert_string_equal(d, "1");
}

/*
 * The third write fails (the file is a read-only attribute even for root);
 * the two before it get their previous values back.
 */
static void
test_apply_fails_half_way(void **state)
{
    Fixture *f = *state;
    const char *ro = "/proc/sys/kernel/random/poolsize";
    g_autofree char *target = g_build_filename(f->root, KSM, "max_page_sharing", NULL);
    g_autoptr(GError) error = NULL;

    if (access(ro, R_OK) != 0) {
        print_message("skipped: %s (a read-only number) is not readable here\n", ro);
        skip();
    }
    assert_int_equal(g_unlink(target), 0);
    assert_int_equal(symlink(ro, target), 0);

    SpKsmSetting s[] = { setting("run=1"), setting("pages_to_scan=5000"),
                         setting("max_page_sharing=300"), setting("sleep_millisecs=5") };
    assert_false(sp_ksm_apply(f->host, s, G_N_ELEMENTS(s), &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_IO));
    assert_non_null(strstr(error->message, "max_page_sharing"));
    assert_non_null(strstr(error->message, "restored pages_to_scan=100 run=0"));

    g_autofree char *run = sp_test_read(f->root, KSM "run");
    g_autofree char *pts = sp_test_read(f->root, KSM "pages_to_scan");
    g_autofree char *slp = sp_test_read(f->root, KSM "sleep_millisecs");
    assert_string_equal(run, "0");
    assert_string_equal(pts, "100");
    assert_string_equal(slp, "20");   /* never reached */
}

/* The one unmerge rule (ksm set run=2, mark --off, ksm numa, experiments):
 * MemAvailable must cover pages x page size + 10%. */
static void
test_unmerge_check(void **unused)
{
    g_autoptr(GError) error = NULL;
    guint64 need = 0;
    const SpKsmSetting stop = { SP_KSM_RUN, 0 }, unmerge = { SP_KSM_RUN, 2 };
    const SpKsmSetting pts = { SP_KSM_PAGES_TO_SCAN, 2 };
    const SpKsmSetting several[] = { pts, unmerge };

    /* 250000 pages of 4 KiB = 976.6 MiB, + 10% = 1074.2 MiB. */
    assert_true(sp_ksm_unmerge_check(250000, 4096, 4ULL << 30, &need, &error));
    assert_int_equal(need, 250000ULL * 4096 + 250000ULL * 4096 / 10);
    assert_false(sp_ksm_unmerge_check(250000, 4096, 1ULL << 30, &need, &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_MEMORY));
    assert_non_null(strstr(error->message, "250000"));
    assert_non_null(strstr(error->message, "1074.2 MiB"));
    assert_non_null(strstr(error->message, "MemAvailable is 1024.0 MiB"));
    g_clear_error(&error);
    /* Larger pages count as such. */
    assert_false(sp_ksm_unmerge_check(250000, 65536, 4ULL << 30, NULL, &error));
    g_clear_error(&error);
    /* Nothing merged: nothing needed, even with MemAvailable unknown (0). */
    assert_true(sp_ksm_unmerge_check(0, 4096, 0, &need, &error));
    assert_int_equal(need, 0);
    assert_true(sp_ksm_unmerge_check(-5, 4096, 0, NULL, &error));
    /* A figure that would overflow is refused, not wrapped. */
    assert_false(sp_ksm_unmerge_check(G_MAXINT64, 4096, G_MAXUINT64, NULL, &error));
    g_clear_error(&error);

    /* Which writes unmerge. */
    assert_true(sp_ksm_settings_unmerge(&unmerge, 1));
    assert_true(sp_ksm_settings_unmerge(several, 2));
    assert_false(sp_ksm_settings_unmerge(&stop, 1));
    assert_false(sp_ksm_settings_unmerge(&pts, 1));
}

/*
 * mm/ksm.c: writing advisor_mode (a change) sets pages_to_scan to 100 or to
 * advisor_min_pages_to_scan.  A request that turns the advisor on and then
 * fails must leave pages_to_scan as it was, though it never named it.
 */
static void
test_apply_rollback_advisor(void **state)
{
    Fixture *f = *state;
    SpFakeKsm *k = sp_fake_ksm_new(f->host, f->root);
    g_autoptr(GError) error = NULL;

    sp_test_write(f->root, KSM "pages_to_scan", "1000\n");
    k->fail_key = "sleep_millisecs";
    SpKsmSetting s[] = { setting("advisor_mode=scan-time"), setting("sleep_millisecs=5") };
    assert_false(sp_ksm_apply(f->host, s, G_N_ELEMENTS(s), &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_IO));
    assert_non_null(strstr(error->message, "sleep_millisecs"));
    assert_non_null(strstr(error->message, "restored advisor_mode=none pages_to_scan=1000"));

    g_autofree char *adv = sp_test_read(f->root, KSM "advisor_mode");
    g_autofree char *pts = sp_test_read(f->root, KSM "pages_to_scan");
    assert_non_null(strstr(adv, "[none]"));
    assert_string_equal(pts, "1000");
    sp_fake_ksm_free(k);
}

/* Rolling back to a run=2 must not unmerge again: the user's KSM was
 * stopped, and is left stopped (run=0). */
static void
test_apply_rollback_run2(void **state)
{
    Fixture *f = *state;
    SpFakeKsm *k = sp_fake_ksm_new(f->host, f->root);
    g_autoptr(GError) error = NULL;

    sp_test_write(f->root, KSM "run", "2\n");
    k->fail_key = "sleep_millisecs";
    SpKsmSetting s[] = { setting("run=1"), setting("sleep_millisecs=5") };
    assert_false(sp_ksm_apply(f->host, s, G_N_ELEMENTS(s), &error));
    assert_int_equal(k->unmerges, 0);
    g_autofree char *run = sp_test_read(f->root, KSM "run");
    assert_string_equal(run, "0");
    assert_non_null(strstr(error->message, "restored run=0"));
    sp_fake_ksm_free(k);
}

static SpKsmState
full_state(void)
{
    SpKsmState st;

    memset(&st, 0, sizeof(st));
    for (guint i = 0; i < SP_KSM_N_KEYS; i++)
        st.entry[i].supported = TRUE;
    st.entry[SP_KSM_PAGES_TO_SCAN].value = 100;
    st.entry[SP_KSM_SLEEP_MILLISECS].value = 20;
    st.entry[SP_KSM_MAX_PAGE_SHARING].value = 256;
    st.entry[SP_KSM_MERGE_ACROSS_NODES].value = 1;
    st.entry[SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN].value = 500;
    return st;
}

static int
step_index(GArray *plan, SpKsmKey key)
{
    for (guint i = 0; i < plan->len; i++) {
        if (g_array_index(plan, SpKsmRestoreStep, i).key == key)
            return (int)i;
    }
    return -1;
}

/* The order of a restore, a pure function of the snapshot and now. */
static void
test_restore_plan(void **state)
{
    SpKsmState snap = full_state(), now = full_state();

    /* Nothing differs: nothing to write. */
    g_autoptr(GArray) none = sp_ksm_restore_plan(&snap, &now);
    assert_int_equal(none->len, 0);

    /* The user had run=1, merge_across_nodes=1, pages_to_scan=1000, the
     * advisor off; now ksmd runs with per-node trees, the advisor on, a
     * different advisor minimum, nothing shared. */
    snap.entry[SP_KSM_RUN].value = 1;
    snap.entry[SP_KSM_PAGES_TO_SCAN].value = 1000;
    now.entry[SP_KSM_RUN].value = 1;
    now.entry[SP_KSM_MERGE_ACROSS_NODES].value = 0;
    now.entry[SP_KSM_ADVISOR_MODE].value = 1;
    now.entry[SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN].value = 800;
    now.entry[SP_KSM_PAGES_TO_SCAN].value = 1000;   /* the advisor's, by chance */
    now.entry[SP_KSM_SLEEP_MILLISECS].value = 5;
    g_autoptr(GArray) p = sp_ksm_restore_plan(&snap, &now);
    /* ksmd stopped first (nothing may merge before merge_across_nodes) ... */
    assert_int_equal(g_array_index(p, SpKsmRestoreStep, 0).key, SP_KSM_RUN);
    assert_int_equal(g_array_index(p, SpKsmRestoreStep, 0).value, 0);
    assert_true(step_index(p, SP_KSM_MERGE_ACROSS_NODES) > 0);
    assert_null(g_array_index(p, SpKsmRestoreStep, step_index(p, SP_KSM_MERGE_ACROSS_NODES)).blocked);
    /* ... the advisor's knobs before advisor_mode, pages_to_scan after it
     * (written although equal: the advisor_mode write resets it) ... */
    assert_true(step_index(p, SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN) < step_index(p, SP_KSM_ADVISOR_MODE));
    assert_true(step_index(p, SP_KSM_ADVISOR_MODE) < step_index(p, SP_KSM_PAGES_TO_SCAN));
    assert_int_equal(g_array_index(p, SpKsmRestoreStep, step_index(p, SP_KSM_PAGES_TO_SCAN)).value,
                     1000);
    assert_true(step_index(p, SP_KSM_SLEEP_MILLISECS) >= 0);
    /* ... and run last. */
    assert_int_equal(g_array_index(p, SpKsmRestoreStep, p->len - 1).key, SP_KSM_RUN);
    assert_int_equal(g_array_index(p, SpKsmRestoreStep, p->len - 1).value, 1);

    /* Pages shared: merge_across_nodes cannot be written (EBUSY), said so. */
    now.entry[SP_KSM_PAGES_SHARED].value = 42;
    g_autoptr(GArray) busy = sp_ksm_restore_plan(&snap, &now);
    const SpKsmRestoreStep *man = &g_array_index(busy, SpKsmRestoreStep,
                                                 step_index(busy, SP_KSM_MERGE_ACROSS_NODES));
    assert_non_null(man->blocked);
    assert_non_null(strstr(man->blocked, "pages are shared"));

    /* The user's advisor was on: pages_to_scan is the kernel's, not written. */
    SpKsmState adv = full_state(), cur = full_state();
    adv.entry[SP_KSM_ADVISOR_MODE].value = 1;
    adv.entry[SP_KSM_PAGES_TO_SCAN].value = 640;
    cur.entry[SP_KSM_PAGES_TO_SCAN].value = 5000;
    g_autoptr(GArray) a = sp_ksm_restore_plan(&adv, &cur);
    assert_int_equal(a->len, 1);
    assert_int_equal(g_array_index(a, SpKsmRestoreStep, 0).key, SP_KSM_ADVISOR_MODE);

    /* run=2 in the snapshot is "stopped": 0 if ksmd runs now, else nothing
     * (writing 2 would unmerge again). */
    SpKsmState two = full_state(), running = full_state(), stopped = full_state();
    two.entry[SP_KSM_RUN].value = 2;
    running.entry[SP_KSM_RUN].value = 1;
    g_autoptr(GArray) r1 = sp_ksm_restore_plan(&two, &running);
    assert_int_equal(r1->len, 1);
    assert_int_equal(g_array_index(r1, SpKsmRestoreStep, 0).value, 0);
    g_autoptr(GArray) r0 = sp_ksm_restore_plan(&two, &stopped);
    assert_int_equal(r0->len, 0);
    /* A knob this kernel lacks is never part of it. */
    SpKsmState old = full_state();
    old.entry[SP_KSM_SMART_SCAN].supported = FALSE;
    old.entry[SP_KSM_SMART_SCAN].value = 1;
    g_autoptr(GArray) o = sp_ksm_restore_plan(&old, &stopped);
    assert_int_equal(o->len, 0);
}

/* Restore on the fake kernel: everything it can write comes back, what it
 * cannot is named, and it never unmerges. */
static void
test_snapshot_restore(void **state)
{
    Fixture *f = *state;
    SpFakeKsm *k = sp_fake_ksm_new(f->host, f->root);
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) done = NULL;
    SpKsmState snap;

    sp_test_write(f->root, KSM "pages_to_scan", "1000\n");
    sp_test_write(f->root, KSM "run", "1\n");
    assert_true(sp_ksm_snapshot(f->host, &snap, &error));
    SpKsmSetting s[] = { setting("run=2"), setting("merge_across_nodes=0"),
                         setting("advisor_min_pages_to_scan=700"),
                         setting("advisor_mode=scan-time"), setting("smart_scan=0") };
    SpKsmSetting on = setting("run=1");
    if (!sp_ksm_apply(f->host, s, G_N_ELEMENTS(s), &error) ||
        !sp_ksm_apply(f->host, &on, 1, &error))
        fail_msg("%s", error->message);
    assert_int_equal(k->unmerges, 1);
    /* ksmd merged again since. */
    sp_test_write(f->root, KSM "pages_shared", "10\n");

    assert_false(sp_ksm_restore(f->host, &snap, &done, &error));
    assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_NOT_RESTORED));
    assert_non_null(strstr(error->message, "merge_across_nodes=1"));
    assert_non_null(strstr(error->message, "pages_shared=10"));
    assert_null(strstr(error->message, "pages_to_scan"));
    assert_int_equal(k->unmerges, 1);
    g_autofree char *pts = sp_test_read(f->root, KSM "pages_to_scan");
    g_autofree char *adv = sp_test_read(f->root, KSM "advisor_mode");
    g_autofree char *min = sp_test_read(f->root, KSM "advisor_min_pages_to_scan");
    g_autofree char *ss = sp_test_read(f->root, KSM "smart_scan");
    g_autofree char *run = sp_test_read(f->root, KSM "run");
    g_autofree char *man = sp_test_read(f->root, KSM "merge_across_nodes");
    assert_string_equal(pts, "1000");
    assert_non_null(strstr(adv, "[none]"));
    assert_string_equal(min, "500");
    assert_string_equal(ss, "1");
    assert_string_equal(run, "1");
    assert_string_equal(man, "0");
    assert_true(done->len >= 5);

    /* Nothing shared any more: a second restore finishes the job. */
    sp_test_write(f->root, KSM "pages_shared", "0\n");
    g_clear_error(&error);
    assert_true(sp_ksm_restore(f->host, &snap, NULL, &error));
    g_autofree char *man2 = sp_test_read(f->root, KSM "merge_across_nodes");
    g_autofree char *run2 = sp_test_read(f->root, KSM "run");
    assert_string_equal(man2, "1");
    assert_string_equal(run2, "1");
    assert_int_equal(k->unmerges, 1);
    sp_fake_ksm_free(k);
}

/* `samepage ksm --json`: every key under its sysfs name, in table order;
 * an enum as its choice, a key the kernel lacks as null. */
static void
test_state_to_json(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpKsmState st;
    guint i = 0;

    sp_test_write(f->root, KSM "general_profit", "-4096\n");
    sp_test_write(f->root, KSM "advisor_mode", "none [scan-time]\n");
    g_autofree char *p = g_build_filename(f->root, KSM, "smart_scan", NULL);
    assert_int_equal(g_unlink(p), 0);
    assert_true(sp_ksm_read(f->host, &st, &error));
    g_autoptr(json_object) o = sp_ksm_state_to_json(&st);
    assert_int_equal(json_object_object_length(o), SP_KSM_N_KEYS);
    json_object_object_foreach(o, key, val) {
        assert_string_equal(key, sp_ksm_key_info(i)->name);
        i++;
        (void)val;
    }
    assert_int_equal(json_object_get_int64(json_object_object_get(o, "run")), 0);
    assert_int_equal(json_object_get_int64(json_object_object_get(o, "pages_to_scan")), 100);
    assert_int_equal(json_object_get_int64(json_object_object_get(o, "general_profit")), -4096);
    assert_true(json_object_is_type(json_object_object_get(o, "advisor_mode"), json_type_string));
    assert_string_equal(json_object_get_string(json_object_object_get(o, "advisor_mode")),
                        "scan-time");
    assert_true(json_object_object_get_ex(o, "smart_scan", NULL));
    assert_null(json_object_object_get(o, "smart_scan"));
    g_autofree char *text = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    assert_true(g_str_has_prefix(text, "{\"run\":0,\"pages_to_scan\":100,\"sleep_millisecs\":20,"));
    assert_non_null(strstr(text, "\"smart_scan\":null,\"advisor_mode\":\"scan-time\","));
}

/* `samepage ksm set --json`: before and after of each key written, numbers
 * but for an enum's choice; before unknown (through libvirt) is null. */
static void
test_changes_to_json(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpKsmState before, after;
    SpKsmSetting s[] = { setting("pages_to_scan=500"), setting("advisor_mode=none"),
                         setting("run=1") };

    sp_test_write(f->root, KSM "advisor_mode", "none [scan-time]\n");
    assert_true(sp_ksm_read(f->host, &before, &error));
    after = before;
    after.entry[SP_KSM_PAGES_TO_SCAN].value = 500;
    after.entry[SP_KSM_ADVISOR_MODE].value = 0;
    after.entry[SP_KSM_RUN].value = 1;
    g_autoptr(json_object) arr = sp_ksm_changes_to_json(s, G_N_ELEMENTS(s), &before, &after);
    assert_string_equal(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN),
                        "[{\"key\":\"pages_to_scan\",\"before\":100,\"after\":500},"
                        "{\"key\":\"advisor_mode\",\"before\":\"scan-time\",\"after\":\"none\"},"
                        "{\"key\":\"run\",\"before\":0,\"after\":1}]");
    g_autoptr(json_object) unknown = sp_ksm_changes_to_json(s, 1, NULL, &after);
    assert_string_equal(json_object_to_json_string_ext(unknown, JSON_C_TO_STRING_PLAIN),
                        "[{\"key\":\"pages_to_scan\",\"before\":null,\"after\":500}]");
    g_autoptr(json_object) none = sp_ksm_changes_to_json(s, 0, &before, &after);
    assert_int_equal(json_object_array_length(none), 0);
}

/* run=2 on a fake host: pages_sharing x page size + 10% against its
 * MemAvailable; the figures come back whatever the answer. */
static void
test_unmerge_all_check(void **state)
{
    Fixture *f = *state;
    g_autofree char *proc = g_dir_make_tmp("samepage-test-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots(f->root, proc);
    guint64 page = sysconf(_SC_PAGESIZE), bytes = 0, avail = 1;
    guint64 need = 1000 * page + 1000 * page / 10;
    g_autofree char *short_of = g_strdup_printf("MemAvailable: %" G_GUINT64_FORMAT " kB\n",
                                                need / 1024 - 1);
    g_autofree char *enough = g_strdup_printf("MemAvailable: %" G_GUINT64_FORMAT " kB\n",
                                              need / 1024 + 1);
    SpKsmState st;

    sp_test_write(f->root, KSM "pages_sharing", "1000\n");
    assert_true(sp_ksm_read(host, &st, NULL));
    {   /* no meminfo: MemAvailable 0 */
        g_autoptr(GError) error = NULL;
        assert_false(sp_ksm_unmerge_all_check(host, &st, &bytes, &avail, &error));
        assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_MEMORY));
        assert_int_equal(bytes, 1000 * page);
        assert_int_equal(avail, 0);
    }
    sp_test_write(proc, "meminfo", short_of);
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_ksm_unmerge_all_check(host, &st, &bytes, &avail, &error));
        assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_MEMORY));
        assert_non_null(strstr(error->message, "1000 merged pages"));
        assert_int_equal(avail, (need / 1024 - 1) * 1024);
    }
    sp_test_write(proc, "meminfo", enough);
    {
        g_autoptr(GError) error = NULL;
        assert_true(sp_ksm_unmerge_all_check(host, &st, NULL, NULL, &error));
        assert_null(error);
    }
    /* Nothing merged: nothing needed, even with no memory. */
    sp_test_write(proc, "meminfo", "MemAvailable: 0 kB\n");
    sp_test_write(f->root, KSM "pages_sharing", "0\n");
    assert_true(sp_ksm_read(host, &st, NULL));
    assert_true(sp_ksm_unmerge_all_check(host, &st, &bytes, &avail, NULL));
    assert_int_equal(bytes, 0);
    sp_test_remove_tree(proc);
}

/* An experiment's knobs put back after its run=2 (pages_shared 0): what
 * SpKsm writes, and that the kernel takes each write in that order. */
static SpKsmState
after_state(gint64 run, gint64 pts, gint64 mps, gint64 adv)
{
    SpKsmState st = full_state();

    st.entry[SP_KSM_RUN].value = run;
    st.entry[SP_KSM_PAGES_TO_SCAN].value = pts;
    st.entry[SP_KSM_MAX_PAGE_SHARING].value = mps;
    st.entry[SP_KSM_ADVISOR_MODE].value = adv;
    st.entry[SP_KSM_ADVISOR_MAX_CPU].value = 70;
    st.entry[SP_KSM_ADVISOR_MAX_PAGES_TO_SCAN].value = 30000;
    st.entry[SP_KSM_ADVISOR_TARGET_SCAN_TIME].value = 200;
    st.entry[SP_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS].value = 2000;
    st.entry[SP_KSM_SMART_SCAN].value = 1;
    st.entry[SP_KSM_PAGES_SHARED].value = 0;
    return st;
}

static GArray *
plan_settings(GArray *plan)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(SpKsmSetting));

    for (guint i = 0; i < plan->len; i++) {
        const SpKsmRestoreStep *step = &g_array_index(plan, SpKsmRestoreStep, i);
        SpKsmSetting s = { step->key, step->value };
        assert_null(step->blocked);
        g_array_append_val(a, s);
    }
    return a;
}

static void
test_restore_after_unmerge(void **state)
{
    g_autoptr(GError) error = NULL;

    /* The plan set pages_to_scan and max_page_sharing and the advisor off:
     * max_page_sharing back, the advisor back (it sets pages_to_scan
     * itself, so that is not written), run back last. */
    SpKsmState orig = after_state(0, 100, 256, 1), after = after_state(2, 1000, 16, 0);
    g_autoptr(GArray) restore = sp_ksm_restore_plan(&orig, &after);
    g_autoptr(GArray) writes = plan_settings(restore);
    assert_int_equal(restore->len, 3);
    assert_int_equal(g_array_index(restore, SpKsmRestoreStep, 0).key, SP_KSM_MAX_PAGE_SHARING);
    assert_int_equal(g_array_index(restore, SpKsmRestoreStep, 1).key, SP_KSM_ADVISOR_MODE);
    assert_int_equal(g_array_index(restore, SpKsmRestoreStep, 2).key, SP_KSM_RUN);
    assert_int_equal(g_array_index(restore, SpKsmRestoreStep, 2).value, 0);
    if (!sp_ksm_validate(&after, (SpKsmSetting *)writes->data, writes->len, &error))
        fail_msg("%s", error->message);

    /* The other way round: the experiment turned the advisor on. */
    SpKsmState o2 = after_state(1, 100, 256, 0), a2 = after_state(2, 500, 256, 1);
    g_autoptr(GArray) r2 = sp_ksm_restore_plan(&o2, &a2);
    g_autoptr(GArray) w2 = plan_settings(r2);
    assert_int_equal(g_array_index(r2, SpKsmRestoreStep, 0).key, SP_KSM_ADVISOR_MODE);
    assert_true(sp_ksm_validate(&a2, (SpKsmSetting *)w2->data, w2->len, NULL));
    /* Nothing changed but run: run back only. */
    SpKsmState a3 = after_state(2, 100, 256, 0);
    g_autoptr(GArray) r3 = sp_ksm_restore_plan(&o2, &a3);
    assert_int_equal(r3->len, 1);
    /* Original run=2: nothing at all. */
    SpKsmState o4 = after_state(2, 100, 256, 0);
    g_autoptr(GArray) r4 = sp_ksm_restore_plan(&o4, &o4);
    assert_int_equal(r4->len, 0);
}


/*
 * The plan turned the advisor on with advisor_min_pages_to_scan=1000, so the
 * kernel set pages_to_scan to 1000: the user's own value.  Putting the
 * advisor back to none makes the kernel reset pages_to_scan to 100, so it
 * must be written again although it read equal before.
 */
static void
test_unmerge_and_restore_advisor(void **state)
{
    g_autofree char *root = sp_test_tree_new("sysfs-6.18");
    g_autoptr(SpHost) host = sp_host_new_with_roots(root, "/nonexistent-proc");
    SpFakeKsm *k = sp_fake_ksm_new(host, root);
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) done = NULL;
    SpKsmState orig;
    SpKsmSetting plan[] = { { SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN, 1000 },
                            { SP_KSM_ADVISOR_MODE, 1 }, { SP_KSM_RUN, 1 } };

    sp_test_write(root, "kernel/mm/ksm/pages_to_scan", "1000\n");
    sp_test_write(root, "kernel/mm/ksm/run", "1\n");
    assert_true(sp_ksm_read(host, &orig, &error));
    assert_true(sp_ksm_apply(host, plan, G_N_ELEMENTS(plan), &error));
    sp_test_write(root, "kernel/mm/ksm/pages_shared", "300\n");

    if (!sp_ksm_unmerge_and_restore(host, &orig, &done, &error))
        fail_msg("%s", error->message);
    g_autofree char *pts = sp_test_read(root, "kernel/mm/ksm/pages_to_scan");
    g_autofree char *adv = sp_test_read(root, "kernel/mm/ksm/advisor_mode");
    g_autofree char *min = sp_test_read(root, "kernel/mm/ksm/advisor_min_pages_to_scan");
    g_autofree char *run = sp_test_read(root, "kernel/mm/ksm/run");
    assert_string_equal(pts, "1000");
    assert_non_null(strstr(adv, "[none]"));
    assert_string_equal(min, "500");
    assert_string_equal(run, "1");
    /* One unmerge (its own run=2), not one more for run. */
    assert_int_equal(k->unmerges, 1);
    sp_fake_ksm_free(k);
    sp_test_remove_tree(root);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_knob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_value, setup, teardown),
        cmocka_unit_test(test_not_built),
        cmocka_unit_test(test_parse_setting),
        cmocka_unit_test_setup_teardown(test_validate_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_fails_half_way, setup, teardown),
        cmocka_unit_test(test_unmerge_check),
        cmocka_unit_test_setup_teardown(test_state_to_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_to_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmerge_all_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_rollback_advisor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_rollback_run2, setup, teardown),
        cmocka_unit_test(test_restore_plan),
        cmocka_unit_test(test_restore_after_unmerge),
        cmocka_unit_test(test_unmerge_and_restore_advisor),
        cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
