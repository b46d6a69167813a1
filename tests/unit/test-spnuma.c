/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <signal.h>
#include <glib-unix.h>

#include "samepage/spnuma.h"
#include "spfakeksm.h"
#include "sptest.h"

#define KSM "kernel/mm/ksm/"

static SpKsmState
state(gint64 man, gint64 run, gint64 shared, gint64 sharing)
{
    SpKsmState st;
    memset(&st, 0, sizeof(st));
    for (guint i = 0; i < SP_KSM_N_KEYS; i++)
        st.entry[i].supported = TRUE;
    st.entry[SP_KSM_MERGE_ACROSS_NODES].value = man;
    st.entry[SP_KSM_RUN].value = run;
    st.entry[SP_KSM_PAGES_SHARED].value = shared;
    st.entry[SP_KSM_PAGES_SHARING].value = sharing;
    return st;
}

static void
test_plan(void **unused)
{
    g_autoptr(GError) error = NULL;
    SpNumaPlan plan;
    SpKsmState st = state(1, 1, 1000, 250000);   /* 250000 sharing = 976.6 MiB to copy */

    assert_true(sp_numa_plan(&st, 4ULL << 30, TRUE, FALSE, &plan, &error));
    assert_true(plan.nothing_to_do);

    assert_true(sp_numa_plan(&st, 4ULL << 30, FALSE, FALSE, &plan, &error));
    assert_false(plan.nothing_to_do);
    assert_true(plan.unmerge);
    assert_int_equal(plan.unmerge_bytes, 250000ULL * 4096);
    assert_int_equal(plan.restore_run, 1);

    /* Not enough memory for the copies: refused with the numbers ... */
    assert_false(sp_numa_plan(&st, 1ULL << 30, FALSE, FALSE, &plan, &error));
    assert_true(g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_MEMORY));
    assert_non_null(strstr(error->message, "1074.2 MiB"));
    assert_non_null(strstr(error->message, "1024.0 MiB"));
    g_clear_error(&error);
    /* ... unless forced. */
    assert_true(sp_numa_plan(&st, 1ULL << 30, FALSE, TRUE, &plan, &error));

    /* Nothing shared: no unmerge, no memory needed; run=2 is put back as 0. */
    SpKsmState idle = state(0, 2, 0, 0);
    assert_true(sp_numa_plan(&idle, 0, TRUE, FALSE, &plan, &error));
    assert_false(plan.unmerge);
    assert_int_equal(plan.restore_run, 0);

    SpKsmState nonuma = state(1, 1, 0, 0);
    nonuma.entry[SP_KSM_MERGE_ACROSS_NODES].supported = FALSE;
    assert_false(sp_numa_plan(&nonuma, 0, FALSE, FALSE, &plan, &error));
    assert_true(g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_UNSUPPORTED));
}

/*
 * The switch driven as the agent will drive it: a timer of the caller's
 * main loop takes a step every SP_NUMA_STEP_MS, a cancelled @cancel (a
 * signal handler's doing) aborts it, and nothing blocks in the library.
 * Called as the blocking sp_numa_switch() of old was.
 */
typedef void (*Progress)(gint64 pages_shared, double elapsed_s, gpointer user_data);

typedef struct {
    SpNumaSwitch *sw;
    GMainLoop *loop;
    Progress progress;
    gpointer data;
    gboolean ok;
    GError *error;
} Drive;

static gboolean
drive_step(gpointer p)
{
    Drive *d = p;
    gboolean done = FALSE;
    gint64 shared;
    double el;

    if (!sp_numa_switch_step(d->sw, &done, &shared, &el, &d->error)) {
        d->ok = FALSE;
        g_main_loop_quit(d->loop);
        return G_SOURCE_REMOVE;
    }
    if (shared >= 0 && d->progress)
        d->progress(shared, el, d->data);
    if (done) {
        d->ok = TRUE;
        g_main_loop_quit(d->loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean
drive_cancelled(GCancellable *cancel, gpointer p)
{
    Drive *d = p;

    d->ok = sp_numa_switch_abort(d->sw, &d->error);
    g_main_loop_quit(d->loop);
    return G_SOURCE_REMOVE;
}

static gboolean
run_switch(const SpHost *host, gboolean want, gboolean force, guint timeout_s, Progress progress,
           gpointer data, GCancellable *cancel, SpNumaPlan *plan, GError **error)
{
    g_autoptr(SpNumaSwitch) sw = sp_numa_switch_new(host, want, force, timeout_s, error);
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    GSource *timer, *cancelled = NULL;

    if (!sw)
        return FALSE;
    *plan = *sp_numa_switch_get_plan(sw);
    if (g_cancellable_is_cancelled(cancel))
        return sp_numa_switch_abort(sw, error);
    Drive d = { sw, loop, progress, data, FALSE, NULL };
    if (!drive_step(&d)) {          /* the first step at once */
        if (!d.ok)
            g_propagate_error(error, d.error);
        return d.ok;
    }
    timer = g_timeout_source_new(SP_NUMA_STEP_MS);
    g_source_set_callback(timer, drive_step, &d, NULL);
    g_source_attach(timer, NULL);
    if (cancel) {
        cancelled = g_cancellable_source_new(cancel);
        g_source_set_callback(cancelled, G_SOURCE_FUNC(drive_cancelled), &d, NULL);
        g_source_attach(cancelled, NULL);
    }
    g_main_loop_run(loop);
    g_source_destroy(timer);
    g_source_unref(timer);
    if (cancelled) {
        g_source_destroy(cancelled);
        g_source_unref(cancelled);
    }
    if (!d.ok)
        g_propagate_error(error, d.error);
    return d.ok;
}

static void
test_switch_fake(void **unused)
{
    g_autofree char *root = sp_test_tree_new("sysfs-6.18");
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots(root, proc);
    g_autoptr(GError) error = NULL;
    SpNumaPlan plan;

    sp_test_write(proc, "meminfo", "MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n");
    sp_test_write(root, KSM "run", "1\n");
    /* Nothing shared: the switch goes through and run comes back to 1. */
    assert_true(run_switch(host, FALSE, FALSE, 5, NULL, NULL, NULL, &plan, &error));
    g_autofree char *man = sp_test_read(root, KSM "merge_across_nodes");
    g_autofree char *run = sp_test_read(root, KSM "run");
    assert_string_equal(man, "0");
    assert_string_equal(run, "1");

    /* Pages shared that never go away (a fake file does not unmerge): the
     * wait times out, merge_across_nodes is untouched and run restored. */
    sp_test_write(root, KSM "pages_shared", "500\n");
    sp_test_write(root, KSM "pages_sharing", "900\n");
    assert_false(run_switch(host, TRUE, FALSE, 1, NULL, NULL, NULL, &plan, &error));
    assert_true(g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_TIMEOUT));
    assert_non_null(strstr(error->message, "pages_shared is still 500"));
    g_autofree char *man2 = sp_test_read(root, KSM "merge_across_nodes");
    g_autofree char *run2 = sp_test_read(root, KSM "run");
    assert_string_equal(man2, "0");
    assert_string_equal(run2, "1");

    sp_test_remove_tree(root);
    sp_test_remove_tree(proc);
}

/*
 * Huge page counts (a corrupt or hostile sysfs value) must not wrap the
 * memory arithmetic into a small need that MemAvailable covers.
 */
static void
test_plan_overflow(void **unused)
{
    static const gint64 sharing[] = {
        G_GINT64_CONSTANT(1) << 62,             /* x 4096 wraps to 0 */
        G_MAXINT64,                             /* x 4096 wraps to 2^64 - 4096 */
        G_GINT64_CONSTANT(4000000000000000),    /* fits, but + 10% wraps */
    };

    for (gsize i = 0; i < G_N_ELEMENTS(sharing); i++) {
        g_autoptr(GError) error = NULL;
        SpNumaPlan plan;
        SpKsmState st = state(1, 1, 1000, sharing[i]);

        if (sp_numa_plan(&st, G_GUINT64_CONSTANT(1) << 60, FALSE, FALSE, &plan, &error))
            fail_msg("pages_sharing %" G_GINT64_FORMAT ": planned with %" G_GUINT64_FORMAT
                     " bytes to copy and 1 EiB available", sharing[i], plan.unmerge_bytes);
        assert_true(g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_MEMORY));
        /* Forced, the plan still says how much: saturated, not wrapped. */
        assert_true(sp_numa_plan(&st, 0, FALSE, TRUE, &plan, NULL));
        assert_true(plan.unmerge_bytes >= G_GUINT64_CONSTANT(4000000000000000) * 4096);
    }
}

/* MemAvailable in kB times 1024 must not wrap: an overflowing value is unknown (0). */
static void
test_mem_available_overflow(void **unused)
{
    static const struct {
        const char *value;
        guint64 bytes;
    } cases[] = {
        { "20000000 kB", G_GUINT64_CONSTANT(20000000) * 1024 },
        { "18014398509481984 kB", 0 },        /* 2^54 kB: x 1024 wraps to 0 */
        { "18014398509481985 kB", 0 },        /* ... to 1024 */
        { "18446744073709551615 kB", 0 },     /* to 2^64 - 1024 */
        { "99999999999999999999999 kB", 0 },  /* saturates, then wraps */
        { "0x100 kB", 0 },
        { "-5 kB", 0 },
        { "12", 0 },                          /* no unit */
    };
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strdup_printf("MemTotal: 24000000 kB\nMemAvailable: %s\n"
                                                "Buffers: 1 kB\n", cases[i].value);
        guint64 got;

        sp_test_write(proc, "meminfo", text);
        got = sp_host_mem_available(host);
        if (got != cases[i].bytes)
            fail_msg("MemAvailable: %s gave %" G_GUINT64_FORMAT " bytes, not %" G_GUINT64_FORMAT,
                     cases[i].value, got, cases[i].bytes);
    }
}

typedef struct {
    GCancellable *cancel;
    guint progress_calls;
    gboolean caught;
} Interrupt;

static gboolean
on_sighup(gpointer data)
{
    Interrupt *in = data;

    in->caught = TRUE;
    g_cancellable_cancel(in->cancel);
    return G_SOURCE_CONTINUE;
}

/* The user presses Ctrl-C (here: SIGHUP to ourselves) while the switch waits. */
static void
interrupt_progress(gint64 shared, double elapsed, gpointer data)
{
    Interrupt *in = data;

    if (in->progress_calls++ == 1)
        raise(SIGHUP);
}

/*
 * A signal during the wait for pages_shared=0 (a slow unmerge: the fake
 * kernel leaves pages_shared as it is): the switch stops at once, writes
 * back run and every other knob as they were before, and says it was
 * interrupted.  Before, nothing could stop the wait and a signal left run=2.
 */
static void
test_switch_interrupted(void **unused)
{
    g_autofree char *root = sp_test_tree_new("sysfs-6.18");
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots(root, proc);
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GError) error = NULL;
    SpFakeKsm *k = sp_fake_ksm_new(host, root);
    Interrupt in = { cancel, 0, FALSE };
    SpNumaPlan plan;
    guint sig;
    gint64 t0;

    sp_test_write(proc, "meminfo", "MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n");
    sp_test_write(root, KSM "run", "1\n");
    sp_test_write(root, KSM "pages_to_scan", "1000\n");
    sp_test_write(root, KSM "pages_shared", "500\n");
    sp_test_write(root, KSM "pages_sharing", "900\n");
    k->slow_unmerge = TRUE;
    sig = g_unix_signal_add(SIGHUP, on_sighup, &in);

    t0 = g_get_monotonic_time();
    assert_false(run_switch(host, FALSE, FALSE, 60, interrupt_progress, &in, cancel, &plan,
                                &error));
    g_source_remove(sig);
    assert_true(in.caught);
    assert_true(g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_INTERRUPTED));
    assert_non_null(strstr(error->message, "interrupted"));
    assert_non_null(strstr(error->message, "restored"));
    assert_true(g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC);
    /* run=2 was written once (the unmerge), never again; everything is back. */
    assert_int_equal(k->unmerges, 1);
    g_autofree char *run = sp_test_read(root, KSM "run");
    g_autofree char *man = sp_test_read(root, KSM "merge_across_nodes");
    g_autofree char *pts = sp_test_read(root, KSM "pages_to_scan");
    assert_string_equal(run, "1");
    assert_string_equal(man, "1");
    assert_string_equal(pts, "1000");

    /* Cancelled before it starts: nothing is written at all. */
    g_clear_error(&error);
    g_string_truncate(k->log, 0);
    assert_false(run_switch(host, FALSE, FALSE, 60, NULL, NULL, cancel, &plan, &error));
    assert_true(g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_INTERRUPTED));
    assert_int_equal(k->log->len, 0);

    sp_fake_ksm_free(k);
    sp_test_remove_tree(root);
    sp_test_remove_tree(proc);
}

/*
 * The switch as steps a main loop drives (what samepaged will call): no
 * step waits; each says where it is; an abort while unmerging puts
 * everything back; once done there is nothing to abort.
 */
static void
test_switch_steps(void **unused)
{
    g_autofree char *root = sp_test_tree_new("sysfs-6.18");
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots(root, proc);
    g_autoptr(GError) error = NULL;
    SpFakeKsm *k = sp_fake_ksm_new(host, root);
    gboolean done = TRUE;
    gint64 shared = 0;
    double el = -1;

    sp_test_write(proc, "meminfo", "MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n");
    sp_test_write(root, KSM "run", "1\n");
    sp_test_write(root, KSM "pages_shared", "500\n");
    sp_test_write(root, KSM "pages_sharing", "900\n");
    k->slow_unmerge = TRUE;

    g_autoptr(SpNumaSwitch) sw = sp_numa_switch_new(host, FALSE, FALSE, 60, &error);
    assert_non_null(sw);
    assert_true(sp_numa_switch_get_plan(sw)->unmerge);
    assert_int_equal(k->log->len, 0);          /* planning writes nothing */
    /* 1: run=2, then pages_shared read back, still 500 */
    assert_true(sp_numa_switch_step(sw, &done, &shared, &el, &error));
    assert_false(done);
    assert_int_equal(shared, 500);
    assert_true(el >= 0 && el < 5);
    assert_int_equal(k->unmerges, 1);
    assert_true(sp_numa_switch_step(sw, &done, &shared, NULL, &error));
    assert_false(done);
    /* the kernel finishes the unmerge: pages_shared 0, the knob is next */
    sp_test_write(root, KSM "pages_shared", "0\n");
    assert_true(sp_numa_switch_step(sw, &done, &shared, NULL, &error));
    assert_false(done);
    assert_int_equal(shared, 0);
    g_autofree char *man1 = sp_test_read(root, KSM "merge_across_nodes");
    assert_string_equal(man1, "1");
    assert_true(sp_numa_switch_step(sw, &done, &shared, NULL, &error));
    assert_true(done);
    g_autofree char *man0 = sp_test_read(root, KSM "merge_across_nodes");
    g_autofree char *run = sp_test_read(root, KSM "run");
    assert_string_equal(man0, "0");
    assert_string_equal(run, "1");
    assert_true(sp_numa_switch_abort(sw, &error));
    assert_null(error);

    /* An abort while unmerging restores run (never a second unmerge). */
    sp_test_write(root, KSM "pages_shared", "500\n");
    g_autoptr(SpNumaSwitch) sw2 = sp_numa_switch_new(host, TRUE, FALSE, 60, &error);
    assert_non_null(sw2);
    assert_true(sp_numa_switch_step(sw2, &done, &shared, NULL, &error));
    assert_int_equal(k->unmerges, 2);
    assert_false(sp_numa_switch_abort(sw2, &error));
    assert_true(g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_INTERRUPTED));
    assert_non_null(strstr(error->message, "interrupted while unmerging"));
    assert_non_null(strstr(error->message, "restored"));
    assert_int_equal(k->unmerges, 2);
    g_autofree char *run2 = sp_test_read(root, KSM "run");
    g_autofree char *man2 = sp_test_read(root, KSM "merge_across_nodes");
    assert_string_equal(run2, "1");
    assert_string_equal(man2, "0");
    g_clear_error(&error);
    /* A failed switch takes no more steps. */
    assert_false(sp_numa_switch_step(sw2, &done, &shared, NULL, &error));

    sp_fake_ksm_free(k);
    sp_test_remove_tree(root);
    sp_test_remove_tree(proc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_switch_fake),
        cmocka_unit_test(test_plan_overflow),
        cmocka_unit_test(test_mem_available_overflow),
        cmocka_unit_test(test_switch_interrupted),
        cmocka_unit_test(test_switch_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
