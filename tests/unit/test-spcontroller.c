/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spcontroller.c: the controller's host side on a fake /proc and /sys
 * (gathering, hostile text, a ksmd that changes pid), the writes a decision
 * makes (pure), applying them all or nothing on a fake kernel, and the loop
 * on a GMainContext with a fake clock, restoring the knobs at stop.
 */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sptest.h"
#include "spfakeksm.h"
#include "samepage/spcontroller.h"
#include "samepage/spmaps.h"
#include "../../src/lib/tune/spcontrollerpriv.h"

#define STAT_FMT "%d (%s) S %d 0 0 0 -1 2129984 0 0 0 0 %u %u 0 0 25 5 1 0 9 0 0\n"

/* A mergeable anonymous VMA with @rss_kb present, or a shared one ("sh"). */
static char *
smaps_vma(guint64 start, guint64 rss_kb, const char *flags)
{
    return g_strdup_printf("%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x rw-p 00000000 00:00 0 \n"
                           "Size:           %" G_GUINT64_FORMAT " kB\n"
                           "Rss:            %" G_GUINT64_FORMAT " kB\n"
                           "Anonymous:      %" G_GUINT64_FORMAT " kB\n"
                           "KSM:                   0 kB\n"
                           "VmFlags: %s\n", start, start + 0x10000000, (guint64)0x10000000 / 1024,
                           rss_kb, rss_kb, flags);
}

typedef struct {
    char *root;
    char *sys;
    char *proc;
    SpHost *host;
    SpFakeKsm *kernel;
} Fake;

static void
fake_proc_write(Fake *f, const char *rel, const char *text)
{
    g_autofree char *path = g_build_filename(f->proc, rel, NULL);
    g_autofree char *dir = g_path_get_dirname(path);

    assert_int_equal(g_mkdir_with_parents(dir, 0700), 0);
    assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
fake_stat(Fake *f, int pid, const char *comm, int ppid, guint utime, guint stime)
{
    g_autofree char *rel = g_strdup_printf("%d/stat", pid);
    g_autofree char *text = g_strdup_printf(STAT_FMT, pid, comm, ppid, utime, stime);

    fake_proc_write(f, rel, text);
}

/* A host: KSM as in tests/data/sysfs-6.18 (run=0, advisor none), 16 GiB,
 * kthreadd (2), ksmd (57) with 100+50 ticks, and processes 1000 (two
 * mergeable VMAs, 4 MiB and 2 MiB present, one non-mergeable), 1001 (a
 * mergeable but shared VMA: KSM never scans it), 1002 (garbage smaps). */
static void
fake_new(Fake *f)
{
    g_autofree char *v1 = smaps_vma(0x10000000, 4096, "rd wr mr mw me ac mg");
    g_autofree char *v2 = smaps_vma(0x30000000, 2048, "rd wr mg mr mw me ac");
    g_autofree char *v3 = smaps_vma(0x50000000, 8192, "rd wr mr mw me ac");
    g_autofree char *s1000 = g_strconcat(v1, v2, v3, NULL);
    g_autofree char *s1001 = smaps_vma(0x10000000, 1024, "rd wr sh mr mw me ms mg");

    memset(f, 0, sizeof(*f));
    f->root = g_dir_make_tmp("samepage-controller-XXXXXX", NULL);
    f->sys = g_build_filename(f->root, "sys", NULL);
    f->proc = g_build_filename(f->root, "proc", NULL);
    {
        g_autofree char *src = sp_test_data_path("sysfs-6.18");
        sp_test_copy_tree(src, f->sys);
    }
    fake_proc_write(f, "meminfo", "MemTotal:       16777216 kB\nMemFree:         1000000 kB\n"
                    "MemAvailable:    8000000 kB\nBuffers:           20000 kB\n"
                    "Cached:           300000 kB\n");
    fake_proc_write(f, "pressure/memory", "some avg10=2.50 avg60=1.00 avg300=0.10 total=99\n"
                    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    fake_stat(f, 2, "kthreadd", 0, 0, 0);
    fake_stat(f, 57, "ksmd", 2, 100, 50);
    fake_stat(f, 1000, "dupmem", 1, 1, 1);
    fake_proc_write(f, "1000/smaps", s1000);
    fake_stat(f, 1001, "shm", 1, 1, 1);
    fake_proc_write(f, "1001/smaps", s1001);
    fake_stat(f, 1002, "odd", 1, 1, 1);
    fake_proc_write(f, "1002/smaps", "10000000-20000000 rw-p 00000000 00:00 0\nRss: many kB\n"
                    "VmFlags: mg\n");
    f->host = sp_host_new_with_roots(f->sys, f->proc);
    f->kernel = sp_fake_ksm_new(f->host, f->sys);
}

static void
fake_free(Fake *f)
{
    sp_fake_ksm_free(f->kernel);
    sp_host_free(f->host);
    sp_test_remove_tree(f->root);
    g_free(f->root);
    g_free(f->sys);
    g_free(f->proc);
}

static void
assert_error_has(const GError *error, GQuark domain, int code, const char *part)
{
    assert_non_null(error);
    if (!g_error_matches(error, domain, code) || !strstr(error->message, part))
        fail_msg("unexpected error (%d): %s; wanted \"%s\"", error->code, error->message, part);
}

/* ------------------------------------------------------------ gathering */

static void
test_gather(void **state)
{
    g_autoptr(SpControlGatherer) g = NULL;
    g_autoptr(GArray) pids = NULL;
    SpControlSnapshot s;
    SpKsmState ksm;
    Fake f;

    (void)state;
    fake_new(&f);
    sp_fake_ksm_put(f.kernel, "pages_sharing", "777\n");
    sp_fake_ksm_put(f.kernel, "full_scans", "3\n");
    g = sp_control_gatherer_new(f.host);
    assert_true(sp_control_gather(g, 12.5, &s, &ksm, NULL));
    assert_true(s.t == 12.5);
    assert_false(s.run);
    assert_int_equal(s.pages_to_scan, 100);
    assert_int_equal(s.sleep_ms, 20);
    assert_true(s.has_smart_scan && s.smart_scan && s.has_advisor && s.has_pages_scanned);
    assert_int_equal(s.pages_sharing, 777);
    assert_int_equal(s.full_scans, 3);
    assert_int_equal(ksm.entry[SP_KSM_PAGES_SHARING].value, 777);
    assert_int_equal(s.ksmd_pid, 57);
    assert_true(fabs(s.ksmd_cpu_s - 150.0 / sysconf(_SC_CLK_TCK)) < 1e-9);
    assert_int_equal(s.mem_total_kib, 16777216);
    assert_int_equal(s.mem_available_kib, 8000000);
    assert_int_equal(s.mem_free_kib, 1320000);
    assert_true(s.psi_some_avg10 == 2.5);
    /* 4 MiB + 2 MiB in 1000's mergeable VMAs; 1001's is shared, 1002 unreadable */
    assert_int_equal(s.registered_pages, 1536);
    assert_int_equal(s.committed_kib, 6144);
    assert_false(s.have_prediction);
    assert_true(s.last_guest_start_t < 0);

    assert_int_equal(sp_maps_mergeable_present(f.host, &pids), 1536);
    assert_int_equal(pids->len, 1);
    assert_int_equal(g_array_index(pids, pid_t, 0), 1000);
    fake_free(&f);
}

/* ksmd is looked for again when its pid goes, or when the pid is now
 * somebody else's (a process may call itself ksmd). */
static void
test_gather_ksmd_changes(void **state)
{
    g_autoptr(SpControlGatherer) g = NULL;
    g_autofree char *old = NULL;
    SpControlSnapshot s;
    Fake f;

    (void)state;
    fake_new(&f);
    g = sp_control_gatherer_new(f.host);
    assert_true(sp_control_gather(g, 1, &s, NULL, NULL));
    assert_int_equal(s.ksmd_pid, 57);

    /* ksmd gone, a new one at 91 */
    old = g_build_filename(f.proc, "57", NULL);
    sp_test_remove_tree(old);
    fake_stat(&f, 91, "ksmd", 2, 3, 4);
    assert_true(sp_control_gather(g, 2, &s, NULL, NULL));
    assert_int_equal(s.ksmd_pid, 91);
    assert_true(fabs(s.ksmd_cpu_s - 7.0 / sysconf(_SC_CLK_TCK)) < 1e-9);

    /* 91 reused by a user process named ksmd; the real one is at 120 */
    fake_stat(&f, 91, "ksmd", 1, 900, 900);
    fake_stat(&f, 120, "ksmd", 2, 1, 1);
    assert_true(sp_control_gather(g, 3, &s, NULL, NULL));
    assert_int_equal(s.ksmd_pid, 120);

    /* no ksmd at all: pid 0, not an error */
    fake_stat(&f, 120, "kworker", 2, 1, 1);
    assert_true(sp_control_gather(g, 4, &s, NULL, NULL));
    assert_int_equal(s.ksmd_pid, 0);
    assert_true(s.ksmd_cpu_s == 0);

    /* a stat cut short is not ksmd either */
    fake_proc_write(&f, "120/stat", "120 (ksmd) S 2 0");
    assert_true(sp_control_gather(g, 5, &s, NULL, NULL));
    assert_int_equal(s.ksmd_pid, 0);
    fake_free(&f);
}

/* Hostile or missing files: KSM and meminfo are needed (an error naming
 * the file), PSI is not (unknown: -1). */
static void
test_gather_hostile(void **state)
{
    g_autoptr(SpControlGatherer) g = NULL;
    SpControlSnapshot s;
    Fake f;

    (void)state;
    fake_new(&f);
    g = sp_control_gatherer_new(f.host);

    fake_proc_write(&f, "pressure/memory", "some avg10=lots\n");
    assert_true(sp_control_gather(g, 1, &s, NULL, NULL));
    assert_true(s.psi_some_avg10 < 0);
    {
        g_autofree char *psi = g_build_filename(f.proc, "pressure", NULL);
        sp_test_remove_tree(psi);
    }
    assert_true(sp_control_gather(g, 2, &s, NULL, NULL));
    assert_true(s.psi_some_avg10 < 0);

    sp_fake_ksm_put(f.kernel, "pages_sharing", "12abc\n");
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_control_gather(g, 3, &s, NULL, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_GATHER, "pages_sharing");
    }
    sp_fake_ksm_put(f.kernel, "pages_sharing", "0\n");

    fake_proc_write(&f, "meminfo", "MemTotal: 16 kB\nMemAvailable: -5 kB\n");
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_control_gather(g, 4, &s, NULL, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_GATHER, "meminfo");
    }
    fake_proc_write(&f, "meminfo", "MemTotal: 16 kB\nMemAvailable: 8 kB\n");
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_control_gather(g, 5, &s, NULL, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_GATHER, "MemFree");
    }

    /* a smaps claiming more than any machine has saturates, never wraps */
    {
        g_autofree char *h1 = smaps_vma(0x10000000, G_MAXUINT64 - 5, "mg");
        g_autofree char *h2 = smaps_vma(0x30000000, G_MAXUINT64 - 5, "mg");
        g_autofree char *huge = g_strconcat(h1, h2, NULL);
        fake_proc_write(&f, "meminfo", "MemTotal: 16 kB\nMemAvailable: 8 kB\nMemFree: 1 kB\n"
                        "Buffers: 1 kB\nCached: 1 kB\n");
        fake_proc_write(&f, "1001/smaps", huge);
        assert_true(sp_control_gather(g, 6, &s, NULL, NULL));
        assert_true(s.registered_pages == 1536 + G_MAXUINT64 / 2 / 4);
    }

    {
        g_autofree char *ksm = g_build_filename(f.sys, "kernel", NULL);
        g_autoptr(GError) error = NULL;
        sp_test_remove_tree(ksm);
        assert_false(sp_control_gather(g, 7, &s, NULL, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_GATHER, "no KSM");
    }
    fake_free(&f);
}

/* ------------------------------------------------------------ writes */

static void
state_init(SpKsmState *k)
{
    memset(k, 0, sizeof(*k));
    for (guint i = 0; i < SP_KSM_N_KEYS; i++)
        k->entry[i].supported = TRUE;
    k->entry[SP_KSM_RUN].value = 1;
    k->entry[SP_KSM_PAGES_TO_SCAN].value = 100;
    k->entry[SP_KSM_SLEEP_MILLISECS].value = 20;
    k->entry[SP_KSM_SMART_SCAN].value = 1;
    k->entry[SP_KSM_MAX_PAGE_SHARING].value = 256;
}

static void
decision_init(SpControlDecision *d, guint pages, guint sleep)
{
    memset(d, 0, sizeof(*d));
    d->run = 1;
    d->pages_to_scan = pages;
    d->sleep_ms = sleep;
    d->smart_scan = -1;
    d->advisor_scan_time = -1;
}

static char *
writes_str(const SpControlWrites *w)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; i < w->n_settings; i++) {
        g_autofree char *v = sp_ksm_format_value(w->settings[i].key, w->settings[i].value);
        g_string_append_printf(s, "%s%s=%s", i ? " " : "",
                               sp_ksm_key_info(w->settings[i].key)->name, v);
    }
    return g_string_free(s, FALSE);
}

static void
check_writes(const SpKsmState *k, const SpControlDecision *d, gboolean own, const char *want)
{
    SpControlWrites w;
    g_autofree char *got = NULL;
    g_autoptr(GError) error = NULL;

    if (!sp_control_writes(k, d, own, &w, &error))
        fail_msg("refused: %s", error->message);
    got = writes_str(&w);
    if (!g_str_equal(got, want))
        fail_msg("writes '%s', wanted '%s'", got, want);
}

static void
test_writes(void **state)
{
    SpKsmState k;
    SpControlDecision d;
    SpControlWrites w;

    (void)state;
    state_init(&k);
    decision_init(&d, 100, 20);
    check_writes(&k, &d, FALSE, "");                     /* nothing changed */
    decision_init(&d, 4000, 20);
    check_writes(&k, &d, FALSE, "pages_to_scan=4000");   /* only what changed */
    decision_init(&d, 0, 200);
    check_writes(&k, &d, FALSE, "sleep_millisecs=200");  /* 0: leave pages_to_scan */
    decision_init(&d, 437, 200);
    d.smart_scan = 0;
    check_writes(&k, &d, FALSE, "pages_to_scan=437 sleep_millisecs=200 smart_scan=0");
    d.smart_scan = 1;
    check_writes(&k, &d, FALSE, "pages_to_scan=437 sleep_millisecs=200");

    /* stopped: the rate first, run=1 last */
    k.entry[SP_KSM_RUN].value = 0;
    decision_init(&d, 4000, 20);
    assert_true(sp_control_writes(&k, &d, FALSE, &w, NULL));
    assert_true(w.turns_on);
    check_writes(&k, &d, FALSE, "pages_to_scan=4000 run=1");
    k.entry[SP_KSM_RUN].value = 2;
    check_writes(&k, &d, FALSE, "pages_to_scan=4000 run=1");

    /* the advisor on (someone else's): off first, then the rate, even equal */
    k.entry[SP_KSM_RUN].value = 1;
    k.entry[SP_KSM_ADVISOR_MODE].value = 1;
    decision_init(&d, 100, 20);
    check_writes(&k, &d, FALSE, "advisor_mode=none pages_to_scan=100");
    /* advisor on, a decision without a rate: left alone */
    decision_init(&d, 0, 0);
    check_writes(&k, &d, FALSE, "");
    /* kernel-advisor mode: on, and pages_to_scan left to it */
    k.entry[SP_KSM_ADVISOR_MODE].value = 0;
    decision_init(&d, 0, 0);
    d.advisor_scan_time = 1;
    check_writes(&k, &d, FALSE, "advisor_mode=scan-time");
    k.entry[SP_KSM_ADVISOR_MODE].value = 1;
    check_writes(&k, &d, FALSE, "");
    /* static mode from advisor on: none, then the rate */
    decision_init(&d, 1000, 20);
    d.advisor_scan_time = 0;
    check_writes(&k, &d, FALSE, "advisor_mode=none pages_to_scan=1000");
}

/* run=0 only when the controller turned ksmd on; nothing else with it. */
static void
test_writes_ownership(void **state)
{
    SpKsmState k;
    SpControlDecision d;
    SpControlWrites w;

    (void)state;
    state_init(&k);
    decision_init(&d, 64, 1000);
    d.run = 0;
    assert_true(sp_control_writes(&k, &d, FALSE, &w, NULL));
    assert_int_equal(w.n_settings, 0);
    assert_true(w.kept_on);
    assert_true(sp_control_writes(&k, &d, TRUE, &w, NULL));
    assert_false(w.kept_on);
    check_writes(&k, &d, TRUE, "run=0");
    /* stopped already (0, or 2): nothing, and never run=2 */
    k.entry[SP_KSM_RUN].value = 0;
    check_writes(&k, &d, TRUE, "");
    k.entry[SP_KSM_RUN].value = 2;
    check_writes(&k, &d, FALSE, "");
    assert_true(sp_control_writes(&k, &d, FALSE, &w, NULL));
    assert_false(w.kept_on);
}

/* Decisions that cannot be applied whole are refused, saying why. */
static void
test_writes_invalid(void **state)
{
    SpKsmState k;
    SpControlDecision d;
    SpControlWrites w;
    static const struct { int run, smart, advisor; guint pages; const char *part; } bad[] = {
        { 2, -1, -1, 100, "run=2 is neither 0 nor 1" },
        { -1, -1, -1, 100, "run=-1" },
        { 1, 2, -1, 100, "smart_scan=2 is out of range" },
        { 1, -2, -1, 100, "smart_scan=-2" },
        { 1, -1, 5, 100, "advisor_scan_time=5 is out of range" },
        { 1, -1, 1, 100, "pages_to_scan=100 with advisor_mode=scan-time" },
    };

    (void)state;
    state_init(&k);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        decision_init(&d, bad[i].pages, 20);
        d.run = bad[i].run;
        d.smart_scan = bad[i].smart;
        d.advisor_scan_time = bad[i].advisor;
        assert_false(sp_control_writes(&k, &d, TRUE, &w, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID, bad[i].part);
    }
    /* knobs this kernel lacks */
    k.entry[SP_KSM_SMART_SCAN].supported = FALSE;
    k.entry[SP_KSM_ADVISOR_MODE].supported = FALSE;
    {
        g_autoptr(GError) e1 = NULL, e2 = NULL;
        decision_init(&d, 100, 20);
        d.smart_scan = 0;
        assert_false(sp_control_writes(&k, &d, TRUE, &w, &e1));
        assert_error_has(e1, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID, "no smart_scan");
        decision_init(&d, 0, 0);
        d.advisor_scan_time = 1;
        assert_false(sp_control_writes(&k, &d, TRUE, &w, &e2));
        assert_error_has(e2, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID, "no advisor_mode");
    }
    /* without the advisor, a rate is written as usual */
    decision_init(&d, 500, 20);
    check_writes(&k, &d, FALSE, "pages_to_scan=500");
}

/* ------------------------------------------------------------ applying */

static void
test_apply(void **state)
{
    SpControlDecision d;
    SpControlWrites w;
    gboolean own = FALSE;
    Fake f;

    (void)state;
    fake_new(&f);
    decision_init(&d, 4000, 20);
    assert_true(sp_control_apply(f.host, &d, &own, &w, NULL));
    assert_string_equal(f.kernel->log->str, "pages_to_scan=4000 run=1 ");
    assert_true(own);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 1);

    /* the same again: no write at all */
    g_string_truncate(f.kernel->log, 0);
    assert_true(sp_control_apply(f.host, &d, &own, &w, NULL));
    assert_int_equal(w.n_settings, 0);
    assert_string_equal(f.kernel->log->str, "");

    /* a write the kernel refuses: nothing left half applied */
    decision_init(&d, 500, 200);
    d.smart_scan = 0;
    f.kernel->fail_key = "smart_scan";
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_control_apply(f.host, &d, &own, &w, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_APPLY, "smart_scan");
    }
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 4000);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 20);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "smart_scan"), 1);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 1);
    f.kernel->fail_key = NULL;

    /* stop: it turned ksmd on, so it may */
    decision_init(&d, 64, 100);
    d.run = 0;
    assert_true(sp_control_apply(f.host, &d, &own, &w, NULL));
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 0);
    assert_false(own);
    assert_int_equal(f.kernel->unmerges, 0);

    /* found running (someone else's): never stopped */
    sp_fake_ksm_put(f.kernel, "run", "1\n");
    assert_true(sp_control_apply(f.host, &d, &own, &w, NULL));
    assert_true(w.kept_on);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 1);

    /* an invalid decision writes nothing */
    g_string_truncate(f.kernel->log, 0);
    decision_init(&d, 100, 20);
    d.run = 7;
    assert_false(sp_control_apply(f.host, &d, &own, &w, NULL));
    assert_string_equal(f.kernel->log->str, "");
    fake_free(&f);
}

/* ------------------------------------------------------------ the loop */

typedef struct {
    double t;
    guint notified;
} Clock;

static double
fake_clock(gpointer data)
{
    return ((Clock *)data)->t;
}

static void
on_notify(SpController *c, gpointer data)
{
    (void)c;
    ((Clock *)data)->notified++;
}

/* A controller on @f's host with the clock and notifications of @clk,
 * started in @ctx. */
static SpController *
loop_start(Fake *f, const SpControlConfig *cfg, GMainContext *ctx, Clock *clk)
{
    SpController *c = sp_controller_new(f->host, cfg);

    sp_controller_set_clock(c, fake_clock, clk);
    sp_controller_set_notify(c, on_notify, clk);
    assert_true(sp_controller_start(c, ctx, NULL));
    return c;
}

/* Runs the context until the next tick has ended (it gathers in a worker
 * thread, then decides back in the context); at most 30 s. */
static void
run_tick(GMainContext *ctx, Clock *clk)
{
    guint before = clk->notified;
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    while (clk->notified == before && g_get_monotonic_time() < deadline) {
        if (!g_main_context_iteration(ctx, FALSE))
            g_usleep(1000);
    }
    assert_int_equal(clk->notified, before + 1);
}

/* Runs what is ready in the context for @ms milliseconds. */
static void
run_for(GMainContext *ctx, guint ms)
{
    gint64 deadline = g_get_monotonic_time() + ms * 1000;

    while (g_get_monotonic_time() < deadline) {
        if (!g_main_context_iteration(ctx, FALSE))
            g_usleep(1000);
    }
}

static void
test_loop(void **state)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    SpControlConfig cfg;
    SpController *c;
    const SpControlDecision *d;
    Clock clk = { 1000.0, 0 };
    Fake f;

    (void)state;
    fake_new(&f);
    sp_fake_ksm_put(f.kernel, "sleep_millisecs", "33\n");
    sp_control_config_init(&cfg);
    cfg.max_ksmd_cpu_pct = 20;
    c = sp_controller_new(f.host, &cfg);
    sp_controller_set_clock(c, fake_clock, &clk);
    sp_controller_set_notify(c, on_notify, &clk);
    assert_null(sp_controller_get_decision(c));
    {
        g_autoptr(json_object) j = sp_controller_to_json(c);
        assert_string_equal(json_object_get_string(json_object_object_get(j, "mode")), "samepage");
        assert_null(json_object_object_get(j, "phase"));
    }
    assert_true(sp_controller_start(c, ctx, NULL));
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_controller_start(c, ctx, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_STATE, "already");
    }
    assert_true(sp_controller_is_running(c));
    run_tick(ctx, &clk);
    assert_int_equal(clk.notified, 1);
    d = sp_controller_get_decision(c);
    assert_non_null(d);
    assert_int_equal(d->phase, SP_CONTROL_PHASE_BOOST);
    assert_non_null(strstr(d->reason, "stale (none yet)"));
    /* no measurement: 1 us a page at 20% is 200,000 pages/s, capped at a
     * full scan a second of the 1,536 registered pages (at least 1000):
     * 30.72 pages every 20 ms, at least 100 */
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 100);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 20);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 1);
    assert_int_equal(sp_controller_get_snapshot(c)->registered_pages, 1536);
    assert_null(sp_controller_get_error(c));

    /* nothing more is due until next_s has passed (in real time) */
    assert_false(g_main_context_iteration(ctx, FALSE));

    /* a prediction the kernel has reached: maintain at once */
    sp_fake_ksm_put(f.kernel, "pages_sharing", "700\n");
    clk.t += 2;
    sp_controller_set_prediction(c, 700, 1536);
    run_tick(ctx, &clk);
    assert_int_equal(clk.notified, 2);
    d = sp_controller_get_decision(c);
    assert_int_equal(d->phase, SP_CONTROL_PHASE_MAINTAIN);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 200);
    {
        g_autoptr(json_object) j = sp_controller_to_json(c);
        json_object *k = json_object_object_get(j, "knobs");
        json_object *p = json_object_object_get(j, "prediction");
        assert_string_equal(json_object_get_string(json_object_object_get(j, "phase")),
                            "maintain");
        assert_int_equal(json_object_get_int(json_object_object_get(k, "sleep_millisecs")), 200);
        assert_int_equal(json_object_get_int(json_object_object_get(k, "run")), 1);
        assert_int_equal(json_object_get_int64(json_object_object_get(p, "pages_sharing")), 700);
        assert_int_equal(json_object_get_int64(json_object_object_get(j, "decisions")), 2);
        /* no committed memory given: the 1,536 registered pages count */
        assert_int_equal(json_object_get_int64(json_object_object_get(j, "committed_kib")),
                         1536 * 4);
        assert_string_equal(json_object_get_string(json_object_object_get(j, "committed_from")),
                            "registered");
    }
    /* the owner's figure (samepaged: the guests' RAM) from the next decision on */
    sp_controller_set_committed(c, 1048576);
    {
        g_autoptr(json_object) j = sp_controller_to_json(c);
        assert_string_equal(json_object_get_string(json_object_object_get(j, "committed_from")),
                            "registered");
    }
    clk.t += 20;
    assert_true(sp_controller_tick(c, NULL));
    assert_int_equal(sp_controller_get_snapshot(c)->committed_kib, 1048576);
    {
        g_autoptr(json_object) j = sp_controller_to_json(c);
        assert_int_equal(json_object_get_int64(json_object_object_get(j, "committed_kib")),
                         1048576);
        assert_string_equal(json_object_get_string(json_object_object_get(j, "committed_from")),
                            "guests");
    }

    /* a tick that cannot read the host keeps the error, and the last decision */
    sp_fake_ksm_put(f.kernel, "full_scans", "x\n");
    clk.t += 20;
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_controller_tick(c, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_GATHER, "full_scans");
    }
    assert_non_null(strstr(sp_controller_get_error(c), "full_scans"));
    assert_int_equal(sp_controller_get_n_errors(c), 1);
    assert_int_equal(sp_controller_get_decision(c)->phase, SP_CONTROL_PHASE_MAINTAIN);
    sp_fake_ksm_put(f.kernel, "full_scans", "0\n");
    assert_true(sp_controller_tick(c, NULL));
    assert_null(sp_controller_get_error(c));

    /* stop: every knob as found (run=0: the merged pages stay merged) */
    assert_true(sp_controller_stop(c, NULL));
    assert_false(sp_controller_is_running(c));
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 0);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 100);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 33);
    assert_int_equal(f.kernel->unmerges, 0);
    assert_false(g_main_context_iteration(ctx, FALSE));
    sp_controller_free(c);
    fake_free(&f);
}

/* ksmtuned's law on a host with plenty of memory says off; KSM found
 * running stays running, and the knobs found come back at free(). */
static void
test_loop_ownership_and_free(void **state)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    SpControlConfig cfg;
    SpController *c;
    Clock clk = { 5.0, 0 };
    Fake f;

    (void)state;
    fake_new(&f);
    sp_fake_ksm_put(f.kernel, "run", "1\n");
    sp_fake_ksm_put(f.kernel, "pages_to_scan", "1234\n");
    sp_control_config_init(&cfg);
    cfg.mode = SP_CONTROL_KSMTUNED;
    c = loop_start(&f, &cfg, ctx, &clk);
    run_tick(ctx, &clk);
    assert_int_equal(sp_controller_get_decision(c)->phase, SP_CONTROL_PHASE_OFF);
    assert_true(sp_controller_get_writes(c)->kept_on);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 1);

    /* committed memory from the owner: now the law scans */
    sp_controller_set_committed(c, 16ULL * 1024 * 1024);
    clk.t += 61;
    assert_true(sp_controller_tick(c, NULL));
    assert_int_equal(sp_controller_get_decision(c)->phase, SP_CONTROL_PHASE_LAW);
    /* free 1,320,000 KiB is below 20% of 16 GiB: 1234 + 300, clamped to 1250 */
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 1250);
    /* sleep 10 ms x 16 GiB / 16 GiB */
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 10);

    sp_controller_free(c);          /* still running: stops, restores */
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 1);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 1234);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 20);
    fake_free(&f);
}

/* The loop gathers in a worker: the context is free meanwhile.  A kick
 * that comes then is served by that gather's decision (the prediction is
 * read when the decision is made); a controller freed while its gather
 * runs restores the knobs at once and is not touched by the gather's end
 * (ASan: no use after free, no leak). */
static void
test_loop_gather_in_worker(void **state)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    SpControlConfig cfg;
    SpController *c;
    Clock clk = { 100.0, 0 };
    Fake f;

    (void)state;
    fake_new(&f);
    sp_fake_ksm_put(f.kernel, "pages_sharing", "700\n");
    sp_control_config_init(&cfg);
    c = loop_start(&f, &cfg, ctx, &clk);
    /* the first tick is due at once: it hands the gather to a worker */
    assert_true(g_main_context_iteration(ctx, FALSE));
    assert_int_equal(clk.notified, 0);
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_controller_tick(c, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_STATE, "under way");
    }
    sp_controller_set_prediction(c, 700, 1536);
    run_tick(ctx, &clk);
    assert_int_equal(sp_controller_get_decision(c)->phase, SP_CONTROL_PHASE_MAINTAIN);
    /* the kick's tick found the gather under way and left it the decision */
    run_for(ctx, 200);
    assert_int_equal(clk.notified, 1);
    assert_int_equal(sp_controller_get_n_decisions(c), 1);

    /* freed while a gather runs */
    sp_controller_kick(c);
    assert_true(g_main_context_iteration(ctx, FALSE));
    sp_controller_free(c);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 0);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 20);
    run_for(ctx, 300);
    assert_int_equal(clk.notified, 1);

    /* stopped while a gather runs, then started again: a fresh gatherer */
    c = loop_start(&f, &cfg, ctx, &clk);
    assert_true(g_main_context_iteration(ctx, FALSE));
    assert_true(sp_controller_stop(c, NULL));
    run_for(ctx, 300);
    assert_int_equal(clk.notified, 1);
    assert_true(sp_controller_start(c, ctx, NULL));
    run_tick(ctx, &clk);
    assert_int_equal(sp_controller_get_n_decisions(c), 1);
    assert_true(sp_controller_stop(c, NULL));
    sp_controller_free(c);
    fake_free(&f);
}

/* A gather that outlives both the controller and the owner's SpHost (as
 * samepaged frees them on its way out) reads through its own reference
 * to the host: no use after free (ASan).  A FIFO as one process's smaps
 * holds the gather until the test has freed both; more processes follow
 * it in either directory order, so the walk goes on using the host. */
static void
test_gather_outlives_owner(void **state)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autofree char *fifo = NULL;
    g_autofree char *v = smaps_vma(0x10000000, 64, "rd wr mr mw me ac mg");
    SpControlConfig cfg;
    SpController *c;
    Clock clk = { 100.0, 0 };
    gint64 deadline;
    int fd = -1;
    Fake f;

    (void)state;
    fake_new(&f);
    fake_stat(&f, 1003, "held", 1, 1, 1);
    fifo = g_build_filename(f.proc, "1003", "smaps", NULL);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    fake_stat(&f, 1004, "after", 1, 1, 1);
    fake_proc_write(&f, "1004/smaps", v);
    fake_stat(&f, 1005, "after", 1, 1, 1);
    fake_proc_write(&f, "1005/smaps", v);

    sp_control_config_init(&cfg);
    c = loop_start(&f, &cfg, ctx, &clk);
    assert_true(g_main_context_iteration(ctx, FALSE));
    /* the gather has opened the FIFO when a writer can */
    deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    while ((fd = open(fifo, O_WRONLY | O_NONBLOCK)) < 0 && g_get_monotonic_time() < deadline)
        g_usleep(1000);
    assert_true(fd >= 0);

    sp_controller_free(c);
    sp_fake_ksm_free(f.kernel);
    f.kernel = NULL;
    g_clear_pointer(&f.host, sp_host_free);
    assert_int_equal(write(fd, v, strlen(v)), (ssize_t)strlen(v));
    close(fd);
    run_for(ctx, 300);
    assert_int_equal(clk.notified, 0);
    fake_free(&f);
}

/* --dry-run: decisions as usual, nothing written, nothing to restore. */
static void
test_loop_dry_run(void **state)
{
    SpControlConfig cfg;
    g_autoptr(SpController) c = NULL;
    Clock clk = { 0.0, 0 };
    Fake f;

    (void)state;
    fake_new(&f);
    sp_control_config_init(&cfg);
    cfg.mode = SP_CONTROL_STATIC;
    c = sp_controller_new(f.host, &cfg);
    sp_controller_set_clock(c, fake_clock, &clk);
    sp_controller_set_dry_run(c, TRUE);
    assert_true(sp_controller_tick(c, NULL));
    assert_int_equal(sp_controller_get_writes(c)->n_settings, 2);
    {
        g_autofree char *w = writes_str(sp_controller_get_writes(c));
        assert_string_equal(w, "pages_to_scan=1000 run=1");
    }
    assert_string_equal(f.kernel->log->str, "");
    assert_true(sp_controller_stop(c, NULL));
    assert_string_equal(f.kernel->log->str, "");
    fake_free(&f);
}

/* stop() puts back what the controller wrote; what someone else changed
 * since stays theirs; a knob that cannot come back is named. */
static void
test_stop_keeps_others_changes(void **state)
{
    SpControlConfig cfg;
    g_autoptr(SpController) c = NULL;
    Clock clk = { 0.0, 0 };
    Fake f;

    (void)state;
    fake_new(&f);
    sp_control_config_init(&cfg);
    cfg.mode = SP_CONTROL_STATIC;
    cfg.static_sleep_ms = 50;
    c = sp_controller_new(f.host, &cfg);
    sp_controller_set_clock(c, fake_clock, &clk);
    assert_true(sp_controller_start(c, NULL, NULL));
    assert_true(sp_controller_tick(c, NULL));
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 1000);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 50);
    /* meanwhile someone set sleep_millisecs (written by the controller) and
     * max_page_sharing (never written by it), and pages got merged */
    sp_fake_ksm_put(f.kernel, "sleep_millisecs", "70\n");
    sp_fake_ksm_put(f.kernel, "max_page_sharing", "512\n");
    sp_fake_ksm_put(f.kernel, "pages_shared", "10\n");
    assert_true(sp_controller_stop(c, NULL));
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 100);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 0);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 70);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "max_page_sharing"), 512);

    /* again; now the kernel refuses to take pages_to_scan back */
    assert_true(sp_controller_start(c, NULL, NULL));
    assert_true(sp_controller_tick(c, NULL));
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 1000);
    f.kernel->fail_key = "pages_to_scan";
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_controller_stop(c, &error));
        assert_error_has(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_RESTORE,
                         "pages_to_scan=100");
    }
    /* the rest came back all the same */
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 0);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "sleep_millisecs"), 70);
    fake_free(&f);
}

/* kernel-advisor: the advisor goes off at stop, and pages_to_scan (which
 * the kernel set when it came on) goes back too. */
static void
test_stop_advisor(void **state)
{
    SpControlConfig cfg;
    g_autoptr(SpController) c = NULL;
    Clock clk = { 0.0, 0 };
    Fake f;

    (void)state;
    fake_new(&f);
    sp_fake_ksm_put(f.kernel, "pages_to_scan", "321\n");
    sp_control_config_init(&cfg);
    cfg.mode = SP_CONTROL_KERNEL_ADVISOR;
    c = sp_controller_new(f.host, &cfg);
    sp_controller_set_clock(c, fake_clock, &clk);
    assert_true(sp_controller_start(c, NULL, NULL));
    assert_true(sp_controller_tick(c, NULL));
    assert_int_equal(sp_fake_ksm_get(f.kernel, "advisor_mode"), 1);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 500);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 1);
    assert_true(sp_controller_stop(c, NULL));
    assert_int_equal(sp_fake_ksm_get(f.kernel, "advisor_mode"), 0);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "pages_to_scan"), 321);
    assert_int_equal(sp_fake_ksm_get(f.kernel, "run"), 0);
    fake_free(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_gather_ksmd_changes),
        cmocka_unit_test(test_gather_hostile),
        cmocka_unit_test(test_writes),
        cmocka_unit_test(test_writes_ownership),
        cmocka_unit_test(test_writes_invalid),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_loop),
        cmocka_unit_test(test_loop_ownership_and_free),
        cmocka_unit_test(test_loop_gather_in_worker),
        cmocka_unit_test(test_gather_outlives_owner),
        cmocka_unit_test(test_loop_dry_run),
        cmocka_unit_test(test_stop_keeps_others_changes),
        cmocka_unit_test(test_stop_advisor),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
