/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-controller: every scan-rate controller mode on the same workloads,
 * side by side, with a static 1000 pages / 20 ms baseline.
 *
 * For each workload and each mode:
 *   1. KSM is reset: run=2 (every merged page unmerged, ksmd's state gone),
 *      then every knob back to what the bench found when it started;
 *   2. the workload starts: dupmem processes (tests/integration/dupmem)
 *      with designed duplication, each of --mib MiB: half of it equal
 *      across the processes, a tenth in groups of 4 equal pages, a
 *      twentieth zero-filled, the rest unique;
 *        held-out  --processes processes started together;
 *        arrival   the same processes started one after another,
 *                  --arrival-interval seconds apart, the controller
 *                  running from before the first;
 *   3. the library's estimate (sp_estimate_targets_async() over every process
 *      registered with KSM: the dupmem pids, and whatever else runs here,
 *      since ksmd scans it all) predicts pages_sharing, and the prediction
 *      goes to the controller (after every arrival too), as samepaged's
 *      background model does;
 *   4. the controller runs (the same SpController samepaged hosts, on this
 *      program's main loop) until pages_sharing reaches 90% of the
 *      prediction, then for a steady window of --steady seconds; the
 *      baseline row sets pages_to_scan=1000 sleep_millisecs=20 run=1
 *      itself instead;
 *   5. the controller stops (knobs as found), the workload is killed.
 * Columns: seconds until 90% of the prediction, ksmd CPU-seconds until
 * then, ksmd CPU-seconds over the steady window (and its mean % of one
 * CPU), the final pages_sharing (and its share of the prediction), the
 * peak ksmd CPU % over 5-second windows, and a note (why a row stopped).
 * A mode that turns KSM off (ksmtuned and kubevirt without memory
 * pressure) or that does not reach 90% within --timeout says so.
 *
 * Needs root and KSM.  Run it alone: `flock /tmp/samepage-integration.lock
 * bench/bench-controller ...`.  Every KSM knob is restored and every
 * process it started is killed (by pid) on every way out, SIGINT and
 * SIGTERM included; the workload also gets SIGTERM should the bench die
 * (PR_SET_PDEATHSIG).  It prints figures and judges nothing.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "samepage/spcontroller.h"
#include "samepage/spestimate.h"
#include "samepage/spksm.h"
#include "samepage/spproc.h"

#include "bench-workload.h"

#define PEAK_WINDOW_S 5.0

typedef enum { WL_HELD_OUT, WL_ARRIVAL } Workload;
static const char *const wl_names[] = { "held-out", "arrival" };

typedef struct {
    char *label;
    gboolean baseline;          /* static 1000/20 set by the bench, no controller */
    SpControlMode mode;
} Row;

typedef struct {
    gboolean ran;
    char *note;
    guint64 predicted;
    guint64 registered;
    guint64 others;             /* of those, pages of processes not the workload's */
    double t90;                 /* < 0: not reached */
    double cpu90;
    double steady_s;            /* length of the steady window measured */
    double steady_cpu;          /* < 0: not measured */
    guint64 final_sharing;
    double peak_pct;
} Result;

typedef struct {
    double t;
    double cpu;
} Sample;

typedef struct {
    /* options */
    guint processes;
    guint mib;
    guint steady;
    guint timeout;
    guint arrival_interval;
    double max_cpu;
    char *dupmem;
    /* state */
    SpHost *host;
    SpKsmState found;
    gboolean have_found;
    BenchWorkload wl;
    char *tmpdir;
    GMainLoop *loop;
    gboolean interrupted;
    pid_t ksmd;
    double clk_tck;
    gboolean log;               /* every decision to stderr */
    double t0;
    int phase;                  /* of the last decision; -1 before the first */
    char *phase_reason;         /* the reason of the decision that entered it */
} Bench;

static double
now_s(void)
{
    return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

static gboolean
on_signal(gpointer data)
{
    Bench *b = data;

    if (!b->interrupted)
        fprintf(stderr, "bench: interrupted: restoring KSM and stopping the workload\n");
    b->interrupted = TRUE;
    g_main_loop_quit(b->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean
on_quit(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

/* Runs the main loop (the controller's ticks, signals) for @seconds. */
static void
bench_sleep(Bench *b, double seconds)
{
    GSource *src;

    if (b->interrupted)
        return;
    src = g_timeout_source_new((guint)(MAX(seconds, 0.0) * 1000.0));
    g_source_set_callback(src, on_quit, b->loop, NULL);
    g_source_attach(src, NULL);
    g_main_loop_run(b->loop);
    g_source_destroy(src);
    g_source_unref(src);
}

static void
bench_wait(gpointer data, double seconds)
{
    bench_sleep(data, seconds);
}

static double
ksmd_cpu(Bench *b)
{
    g_auto(SpProcStat) st = { 0 };

    if (b->ksmd <= 0 || !sp_proc_read_stat(b->host, b->ksmd, &st, NULL) ||
        !g_str_equal(st.comm, "ksmd")) {
        sp_proc_stat_clear(&st);
        b->ksmd = sp_proc_find_ksmd(b->host);
        if (b->ksmd <= 0 || !sp_proc_read_stat(b->host, b->ksmd, &st, NULL))
            return 0;
    }
    return (double)(st.utime + st.stime) / b->clk_tck;
}

static gint64
ksm_get(Bench *b, SpKsmKey key)
{
    SpKsmState st;

    if (!sp_ksm_read(b->host, &st, NULL) || !st.entry[key].supported)
        return -1;
    return st.entry[key].value;
}

typedef struct {
    gboolean done;
    SpEstimate *est;
    GError *error;
} EstWait;

static void
on_estimated(GObject *source, GAsyncResult *result, gpointer data)
{
    EstWait *w = data;

    (void)source;
    w->est = sp_estimate_targets_finish(result, &w->error);
    w->done = TRUE;
}

/* The model's pages_sharing for every process registered with KSM (the
 * workload's, and whatever else runs here: ksmd scans them all, and so
 * does samepaged's model), and the present pages it covered; @others gets
 * the pages of processes that are not the workload's.  The estimate runs
 * in its own thread (sp_estimate_targets_async(), as samepaged runs it):
 * the controller keeps ticking meanwhile. */
static gboolean
predict(Bench *b, guint64 *sharing, guint64 *registered, guint64 *others, GError **error)
{
    g_autoptr(GArray) targets = g_array_new(FALSE, TRUE, sizeof(SpEstimateTarget));
    g_autoptr(GArray) pids = NULL;
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(SpEstimate) est = NULL;
    EstWait w = { FALSE, NULL, NULL };
    SpEstimateOptions eopt;
    SpScanOptions sopt;

    if (!sp_estimate_options_from_host(&eopt, b->host, error))
        return FALSE;
    sp_scan_options_init(&sopt);
    sopt.interval_ms = 500;
    for (guint i = 0; i < b->wl.children->len; i++) {
        SpEstimateTarget t = { .pid = g_array_index(b->wl.children, pid_t, i) };
        g_array_append_val(targets, t);
    }
    sp_control_registered_pages(b->host, &pids);
    for (guint i = 0; i < pids->len; i++) {
        /* someone else's: it may exit meanwhile */
        SpEstimateTarget t = { .pid = g_array_index(pids, pid_t, i), .optional = TRUE };
        if (!bench_workload_is_child(&b->wl, t.pid))
            g_array_append_val(targets, t);
    }
    sp_estimate_targets_async(b->host, (const SpEstimateTarget *)targets->data, targets->len,
                              &sopt, &eopt, cancel, on_estimated, &w);
    while (!w.done) {
        if (b->interrupted)
            g_cancellable_cancel(cancel);
        g_main_context_iteration(NULL, TRUE);
    }
    if (!w.est) {
        g_propagate_error(error, w.error);
        return FALSE;
    }
    est = w.est;
    *sharing = sp_estimate_get_counters(est)->pages_sharing;
    *registered = sp_estimate_get_present_pages(est);
    *others = 0;
    for (guint i = 0; i < sp_estimate_get_n_processes(est); i++) {
        const SpEstimateProcess *p = sp_estimate_get_process(est, i);
        if (!bench_workload_is_child(&b->wl, p->pid))
            *others += p->present_pages;
    }
    return TRUE;
}

/* ------------------------------------------------------------ KSM */

/* run=2, then every knob as found. */
static gboolean
ksm_reset(Bench *b, GError **error)
{
    SpKsmSetting unmerge = { SP_KSM_RUN, 2 };
    gint64 sharing = ksm_get(b, SP_KSM_PAGES_SHARING);

    if (!sp_ksm_unmerge_check(MAX(sharing, 0), SP_PAGE_SIZE, sp_host_mem_available(b->host),
                              NULL, error) ||
        !sp_ksm_apply(b->host, &unmerge, 1, error) ||
        !sp_ksm_restore(b->host, &b->found, NULL, error))
        return FALSE;
    return TRUE;
}

static gboolean
baseline_start(Bench *b, GError **error)
{
    SpKsmSetting s[4];
    gsize n = 0;

    if (b->found.entry[SP_KSM_ADVISOR_MODE].supported)
        s[n++] = (SpKsmSetting){ SP_KSM_ADVISOR_MODE, 0 };
    s[n++] = (SpKsmSetting){ SP_KSM_PAGES_TO_SCAN, 1000 };
    s[n++] = (SpKsmSetting){ SP_KSM_SLEEP_MILLISECS, 20 };
    s[n++] = (SpKsmSetting){ SP_KSM_RUN, 1 };
    return sp_ksm_apply(b->host, s, n, error);
}

/* ------------------------------------------------------------ one row */

static void
on_decision(SpController *c, gpointer data)
{
    Bench *b = data;
    const SpControlDecision *d = sp_controller_get_decision(c);
    const SpControlSnapshot *s = sp_controller_get_snapshot(c);

    if (d && (int)d->phase != b->phase) {
        b->phase = (int)d->phase;
        g_free(b->phase_reason);
        b->phase_reason = g_strdup(d->reason);
    }
    if (!b->log)
        return;
    if (!d) {
        fprintf(stderr, "bench: %7.1f s: %s\n", now_s() - b->t0, sp_controller_get_error(c));
        return;
    }
    fprintf(stderr, "bench: %7.1f s: %s, sharing %" G_GUINT64_FORMAT ", ksmd %.1f%%: %s\n",
            now_s() - b->t0, sp_control_phase_name(d->phase), s->pages_sharing,
            d->ksmd_cpu_pct, d->reason);
}

static void
run_row(Bench *b, Workload wl, const Row *row, Result *r)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpController) c = NULL;
    g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(Sample));
    double t0, cpu0, next_arrival = 0, steady_end = 0, off_since = -1;
    guint started = 0;

    memset(r, 0, sizeof(*r));
    r->t90 = -1;
    r->steady_cpu = -1;
    r->peak_pct = -1;
    fprintf(stderr, "bench: %s: %s\n", wl_names[wl], row->label);
    if (!ksm_reset(b, &error)) {
        r->note = g_strdup_printf("reset: %s", error->message);
        return;
    }
    if (wl == WL_HELD_OUT) {
        for (guint i = 0; i < b->processes; i++) {
            g_autofree char *ready = NULL;
            if (bench_workload_spawn_dupmem(&b->wl, i, &ready, &error) <= 0)
                goto out;
        }
        for (guint i = 0; i < b->processes; i++) {
            g_autofree char *ready = g_strdup_printf("%s/ready-%u", b->tmpdir, i);
            if (!bench_workload_wait_ready(&b->wl, g_array_index(b->wl.children, pid_t, i), ready, &error))
                goto out;
        }
        started = b->processes;
        if (!predict(b, &r->predicted, &r->registered, &r->others, &error))
            goto out;
    }

    t0 = now_s();
    b->t0 = t0;
    cpu0 = ksmd_cpu(b);
    if (row->baseline) {
        if (!baseline_start(b, &error))
            goto out;
    } else {
        SpControlConfig cfg;
        sp_control_config_init(&cfg);
        cfg.mode = row->mode;
        cfg.max_ksmd_cpu_pct = b->max_cpu;
        c = sp_controller_new(b->host, &cfg);
        b->phase = -1;
        sp_controller_set_notify(c, on_decision, b);
        if (r->predicted)
            sp_controller_set_prediction(c, r->predicted, r->registered);
        if (!sp_controller_start(c, NULL, &error))
            goto out;
    }
    r->ran = TRUE;

    while (!b->interrupted) {
        Sample s;
        gint64 sharing;

        if (wl == WL_ARRIVAL && started < b->processes && now_s() >= t0 + next_arrival) {
            if (!bench_workload_start_one(&b->wl, started, &error))
                goto out;
            started++;
            next_arrival += b->arrival_interval;
            if (!predict(b, &r->predicted, &r->registered, &r->others, &error))
                goto out;
            if (c) {
                sp_controller_guest_started(c);
                sp_controller_set_prediction(c, r->predicted, r->registered);
            }
        }
        bench_sleep(b, 1.0);
        s.t = now_s() - t0;
        s.cpu = ksmd_cpu(b) - cpu0;
        g_array_append_val(samples, s);
        for (guint i = samples->len - 1; i > 0; i--) {
            const Sample *p = &g_array_index(samples, Sample, i - 1);
            if (s.t - p->t >= PEAK_WINDOW_S) {
                r->peak_pct = MAX(r->peak_pct, 100.0 * (s.cpu - p->cpu) / (s.t - p->t));
                break;
            }
        }
        sharing = ksm_get(b, SP_KSM_PAGES_SHARING);
        r->final_sharing = (guint64)MAX(sharing, 0);
        if (started < b->processes || r->predicted == 0)
            continue;
        if (r->t90 < 0 && (double)r->final_sharing >= 0.9 * (double)r->predicted) {
            r->t90 = s.t;
            r->cpu90 = s.cpu;
            steady_end = s.t + b->steady;
        }
        if (r->t90 >= 0 && s.t >= steady_end) {
            r->steady_s = s.t - r->t90;
            r->steady_cpu = s.cpu - r->cpu90;
            break;
        }
        if (r->t90 < 0 && s.t > b->timeout) {
            r->note = g_strdup_printf("90%% not reached in %u s", b->timeout);
            break;
        }
        /* the law turned KSM off (and nothing left on): it stays off */
        if (r->t90 < 0 && c && sp_controller_get_decision(c) &&
            sp_controller_get_decision(c)->run == 0 && ksm_get(b, SP_KSM_RUN) != 1) {
            if (off_since < 0)
                off_since = s.t;
            if (s.t - off_since >= 10) {
                r->note = g_strdup_printf("KSM off: %s", b->phase_reason);
                break;
            }
        } else {
            off_since = -1;
        }
    }
    if (b->interrupted && !r->note)
        r->note = g_strdup("interrupted");

out:
    if (error && !r->note)
        r->note = g_strdup(error->message);
    if (c) {
        g_autoptr(GError) e = NULL;
        if (!sp_controller_stop(c, &e)) {
            fprintf(stderr, "bench: %s\n", e->message);
            if (!r->note)
                r->note = g_strdup(e->message);
        }
    } else {
        g_autoptr(GError) e = NULL;
        if (!sp_ksm_restore(b->host, &b->found, NULL, &e))
            fprintf(stderr, "bench: %s\n", e->message);
    }
    bench_workload_kill(&b->wl);
}

/* ------------------------------------------------------------ the table */

static void
print_table(Bench *b, Workload wl, const Row *rows, const Result *res, guint n)
{
    guint64 pred = 0, others = 0;

    for (guint i = 0; i < n; i++) {
        pred = MAX(pred, res[i].predicted);
        others = MAX(others, res[i].others);
    }
    printf("\nworkload %s: %u dupmem x %u MiB (%s), predicted pages_sharing %" G_GUINT64_FORMAT
           ", steady window %u s, budget %.0f%% of a CPU\n", wl_names[wl], b->processes, b->mib,
           wl == WL_ARRIVAL ? "one every arrival interval" : "started together", pred, b->steady,
           b->max_cpu);
    if (others)
        printf("other processes registered with KSM here: up to %" G_GUINT64_FORMAT " present "
               "pages (in the prediction and in ksmd's work)\n", others);
    printf("%-16s %9s %11s %11s %8s %10s %10s %7s %9s  %s\n", "mode", "90% at s",
           "CPU-s to 90", "steady CPU-s", "steady %", "predicted", "final", "% pred",
           "peak CPU%", "note");
    for (guint i = 0; i < n; i++) {
        const Result *r = &res[i];
        g_autofree char *t90 = r->t90 >= 0 ? g_strdup_printf("%.1f", r->t90) : g_strdup("-");
        g_autofree char *c90 = r->t90 >= 0 ? g_strdup_printf("%.2f", r->cpu90) : g_strdup("-");
        g_autofree char *sc = r->steady_cpu >= 0 ? g_strdup_printf("%.2f", r->steady_cpu)
                                                 : g_strdup("-");
        g_autofree char *sp = r->steady_cpu >= 0 && r->steady_s > 0
            ? g_strdup_printf("%.2f", 100.0 * r->steady_cpu / r->steady_s) : g_strdup("-");
        g_autofree char *pp = r->predicted ? g_strdup_printf("%.1f", 100.0 * r->final_sharing
                                                             / r->predicted) : g_strdup("-");
        g_autofree char *pk = r->peak_pct >= 0 ? g_strdup_printf("%.1f", r->peak_pct)
                                               : g_strdup("-");

        printf("%-16s %9s %11s %11s %8s %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT
               " %7s %9s  %s\n", rows[i].label, t90, c90, sc, sp, r->predicted,
               r->final_sharing, pp, pk,
               r->note ? r->note : r->ran ? "" : "not run");
    }
    fflush(stdout);
}

static gboolean
parse_list(const char *text, const char *const *names, guint n_names, gboolean *want,
           const char *what)
{
    g_auto(GStrv) words = g_strsplit(text, ",", -1);

    memset(want, 0, n_names * sizeof(gboolean));
    for (char **w = words; *w; w++) {
        guint i;
        for (i = 0; i < n_names && !g_str_equal(*w, names[i]); i++)
            ;
        if (i == n_names) {
            fprintf(stderr, "bench: %s: '%s' is not one of the names\n", what, *w);
            return FALSE;
        }
        want[i] = TRUE;
    }
    return TRUE;
}

int
main(int argc, char **argv)
{
    Bench b = { .processes = 4, .mib = 256, .steady = 600, .timeout = 900,
                .arrival_interval = 30, .max_cpu = 25 };
    g_autofree char *modes = NULL, *workloads = NULL, *dupmem = NULL;
    const char *row_names[SP_CONTROL_N_MODES + 1];
    gboolean want_row[SP_CONTROL_N_MODES + 1], want_wl[2];
    g_autoptr(GError) error = NULL;
    int status = 0;
    const GOptionEntry entries[] = {
        { "processes", 0, 0, G_OPTION_ARG_INT, &b.processes, "dupmem processes (4)", "N" },
        { "mib", 0, 0, G_OPTION_ARG_INT, &b.mib, "MiB per process (256)", "M" },
        { "steady", 0, 0, G_OPTION_ARG_INT, &b.steady,
          "steady window after 90%, seconds (600)", "S" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &b.timeout,
          "give up on 90% after this many seconds (900)", "S" },
        { "arrival-interval", 0, 0, G_OPTION_ARG_INT, &b.arrival_interval,
          "arrival: seconds between two starts (30)", "S" },
        { "max-ksmd-cpu", 0, 0, G_OPTION_ARG_DOUBLE, &b.max_cpu,
          "samepage mode's budget, % of a CPU (25)", "P" },
        { "modes", 0, 0, G_OPTION_ARG_STRING, &modes,
          "rows, comma-separated (all: static-1000/20,static,ksmtuned,kubevirt,"
          "kernel-advisor,samepage)", "LIST" },
        { "workloads", 0, 0, G_OPTION_ARG_STRING, &workloads,
          "held-out,arrival (both)", "LIST" },
        { "log", 0, 0, G_OPTION_ARG_NONE, &b.log, "print every decision to stderr", NULL },
        { "dupmem", 0, 0, G_OPTION_ARG_FILENAME, &dupmem,
          "the workload program (the build's tests/integration/dupmem)", "PATH" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- the scan-rate controller's modes, "
                                                         "side by side");
    Row rows[SP_CONTROL_N_MODES + 1];
    guint n_rows = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "bench: %s\n", error->message);
        return 2;
    }
    if (b.processes < 1 || b.processes > 64 || b.mib < 1 || b.mib > 65536 || b.timeout < 1 ||
        b.max_cpu <= 0 || b.max_cpu > 100) {
        fprintf(stderr, "bench: --processes 1..64, --mib 1..65536, --timeout >= 1, "
                "--max-ksmd-cpu in (0, 100]\n");
        return 2;
    }
    row_names[0] = "static-1000/20";
    for (guint i = 0; i < SP_CONTROL_N_MODES; i++)
        row_names[i + 1] = sp_control_mode_name(i);
    if (!parse_list(modes ? modes : "static-1000/20,static,ksmtuned,kubevirt,kernel-advisor,"
                    "samepage", row_names, SP_CONTROL_N_MODES + 1, want_row, "--modes") ||
        !parse_list(workloads ? workloads : "held-out,arrival", wl_names, 2, want_wl,
                    "--workloads"))
        return 2;
    for (guint i = 0; i < SP_CONTROL_N_MODES + 1; i++) {
        if (!want_row[i])
            continue;
        rows[n_rows].label = (char *)row_names[i];
        rows[n_rows].baseline = i == 0;
        rows[n_rows].mode = i == 0 ? SP_CONTROL_STATIC : i - 1;
        n_rows++;
    }
    b.dupmem = dupmem ? g_strdup(dupmem)
                      : g_build_filename(SP_TOP_BUILDDIR, "tests", "integration", "dupmem", NULL);
    if (geteuid() != 0) {
        fprintf(stderr, "bench: needs root (it writes /sys/kernel/mm/ksm)\n");
        return 77;
    }
    if (!g_file_test(b.dupmem, G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "bench: %s is missing: run make check or make bench first\n", b.dupmem);
        return 77;
    }
    b.host = sp_host_new();
    b.clk_tck = sysconf(_SC_CLK_TCK) > 0 ? (double)sysconf(_SC_CLK_TCK) : 100.0;
    if (!sp_ksm_snapshot(b.host, &b.found, &error)) {
        fprintf(stderr, "bench: %s\n", error->message);
        return 77;
    }
    b.have_found = TRUE;
    b.wl.dupmem = b.dupmem;
    b.wl.mib = b.mib;
    b.wl.interrupted = &b.interrupted;
    b.wl.wait = bench_wait;
    b.wl.wait_data = &b;
    bench_workload_init(&b.wl);
    b.tmpdir = g_dir_make_tmp("bench-controller-XXXXXX", NULL);
    b.wl.tmpdir = b.tmpdir;
    b.loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGINT, on_signal, &b);
    g_unix_signal_add(SIGTERM, on_signal, &b);

    for (guint w = 0; w < 2 && !b.interrupted; w++) {
        g_autofree Result *res = NULL;
        if (!want_wl[w])
            continue;
        res = g_new0(Result, n_rows);
        for (guint i = 0; i < n_rows && !b.interrupted; i++)
            run_row(&b, w, &rows[i], &res[i]);
        print_table(&b, w, rows, res, n_rows);
        for (guint i = 0; i < n_rows; i++)
            g_free(res[i].note);
    }

    /* every way out comes here: the workload gone, the knobs as found */
    bench_workload_kill(&b.wl);
    {
        g_autoptr(GError) e = NULL;
        if (!sp_ksm_restore(b.host, &b.found, NULL, &e)) {
            fprintf(stderr, "bench: %s\n", e->message);
            status = 1;
        }
    }
    if (b.tmpdir) {
        g_autoptr(GDir) d = g_dir_open(b.tmpdir, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(b.tmpdir, name, NULL);
            g_unlink(p);
        }
        g_rmdir(b.tmpdir);
    }
    g_main_loop_unref(b.loop);
    bench_workload_clear(&b.wl);
    sp_host_free(b.host);
    g_free(b.tmpdir);
    g_free(b.dupmem);
    g_free(b.phase_reason);
    return b.interrupted ? 130 : status;
}
