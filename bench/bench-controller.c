/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-controller: every scan-rate controller mode on the same workloads,
 * side by side, with a static 1000 pages / 20 ms baseline.
 *
 * For each workload and each mode:
 *   1. KSM is reset: run=2 (every merged page unmerged, ksmd's state gone),
 *      then every knob back to what the bench found when it started;
 *   2. the workload starts (bench-workload.c):
 *        boot-storm --guests cloned Debian guests (--guest-mib MiB, TCG,
 *                  plain QEMU on qcow2 overlays of the cached image in
 *                  the bench's tmpdir; QEMU's default mem-merge=on
 *                  registers their RAM with KSM) started together, the
 *                  controller running from before the first; skipped,
 *                  saying why, without the image or QEMU;
 *        held-out  --processes dupmem processes (tests/integration/dupmem)
 *                  with designed duplication, each of --mib MiB: half of
 *                  it equal across the processes, a tenth in groups of 4
 *                  equal pages, a twentieth zero-filled, the rest unique,
 *                  started together;
 *        arrival   the same processes started one after another,
 *                  --arrival-interval seconds apart, the controller
 *                  running from before the first;
 *        pressure  held-out, after a hog (a dupmem of unique pages, not
 *                  registered with KSM) sized from /proc/meminfo at the
 *                  row's start so that MemAvailable is about 15% of
 *                  MemTotal with the workload in; released should
 *                  MemAvailable fall under 10%.  The controller is told
 *                  the workload and the hog as committed memory (ksmtuned
 *                  counts guests' memory: the hog stands for guests whose
 *                  memory does not merge);
 *   3. the library's estimate (sp_estimate_targets_async() over every process
 *      registered with KSM: the workload's, and whatever else runs here,
 *      since ksmd scans it all) predicts pages_sharing, and the prediction
 *      goes to the controller (after every arrival too), as samepaged's
 *      background model does.  boot-storm's prediction moves while the
 *      guests boot: it is made again every 30 s until they are all up
 *      (SAMEPAGE-GUEST-READY on their consoles), once they are, and
 *      whenever the registered pages moved by more than 5% since the last
 *      one (checked every 5 s, at most once in 10 s), and the controller
 *      is told of the start (sp_controller_guest_started()) and of the
 *      guests' memory (sp_controller_set_committed());
 *   4. the controller runs (the same SpController samepaged hosts, on this
 *      program's main loop) until pages_sharing reaches 90% of the
 *      prediction, then until it converges (98% of the prediction; a row
 *      that settles below that is taken as converged --steady seconds
 *      after 90%, and says so), then for a steady window (--steady seconds
 *      for boot-storm, --steady-short for the others); the baseline row sets
 *      pages_to_scan=1000 sleep_millisecs=20 run=1 itself instead.
 *      boot-storm makes a final prediction at the row's end and judges
 *      90% against it, from the pages_sharing recorded every second: the
 *      first second from which it stayed at or above 90% of it;
 *   5. the controller stops (knobs as found), the workload is killed and
 *      the guests' overlays deleted.
 * Columns: seconds until 90% of the prediction, ksmd CPU-seconds until
 * then, the second it converged (in brackets when it did not reach 98%),
 * ksmd CPU-seconds over the steady window (and its mean % of one
 * CPU), the final pages_sharing (and its share of the prediction), the
 * peak ksmd CPU % over 5-second windows, the 1-minute load average at the
 * row's start and end, and a note (why a row stopped; boot-storm: when
 * the guests were up and how many predictions were made; pressure: what
 * the hog held).  A mode that turns KSM off (ksmtuned and kubevirt
 * without memory pressure) or that does not reach 90% within --timeout
 * says so.  Each table comes with the command line and the machine
 * (nproc, MemTotal, kernel).
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
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "samepage/spcontroller.h"
#include "samepage/spestimate.h"
#include "samepage/spksm.h"
#include "samepage/spmaps.h"
#include "samepage/spproc.h"

#include "bench-workload.h"

#define PEAK_WINDOW_S 5.0

typedef enum { WL_BOOT_STORM, WL_HELD_OUT, WL_ARRIVAL, WL_PRESSURE, WL_N } Workload;
static const char *const wl_names[WL_N] = { "boot-storm", "held-out", "arrival", "pressure" };

typedef struct {
    char *label;
    gboolean baseline;          /* static 1000/20 set by the bench, no controller */
    SpControlMode mode;
} Row;

typedef struct {
    gboolean ran;
    char *note;
    guint64 predicted;          /* boot-storm: the final prediction, made at the row's end */
    guint64 registered;
    guint64 others;             /* of those, pages of processes not the workload's */
    double t90;                 /* < 0: not reached */
    double cpu90;
    double t98;                 /* converged: the steady window's start; < 0: not reached */
    gboolean t98_timed_out;     /* 98% not reached: the window started --steady s after 90% */
    double steady_s;            /* length of the steady window measured */
    double steady_cpu;          /* < 0: not measured */
    guint64 final_sharing;
    double peak_pct;
    double load_start, load_end; /* 1-minute load average */
    guint n_predictions;        /* made during the row */
    double boot_s;              /* boot-storm: until every guest was ready; < 0: not */
    guint64 hog_kib;            /* pressure: what the hog held */
    double avail_pct;           /* pressure: MemAvailable, % of MemTotal, once it held it */
    double avail_min_pct;       /* pressure: the lowest during the row */
} Result;

typedef struct {
    double t;
    double cpu;
    guint64 sharing;
} Sample;

typedef struct {
    /* options */
    guint processes;
    guint mib;
    guint steady;               /* boot-storm */
    guint steady_short;         /* held-out, arrival, pressure */
    guint timeout;
    guint arrival_interval;
    guint guests;
    guint guest_mib;
    double max_cpu;
    char *dupmem;
    char *cmdline;
    /* state */
    SpHost *host;
    SpKsmState found;
    gboolean have_found;
    BenchWorkload wl;
    char *tmpdir;
    char *image_dir;            /* NULL: boot-storm is skipped, for image_why */
    char *image_why;
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
    GCancellable *cancel;
} EstWait;

static void
est_wait_free(EstWait *w)
{
    if (!w)
        return;
    g_clear_object(&w->cancel);
    g_clear_pointer(&w->est, sp_estimate_free);
    g_clear_error(&w->error);
    g_free(w);
}

static void
on_estimated(GObject *source, GAsyncResult *result, gpointer data)
{
    EstWait *w = data;

    (void)source;
    w->est = sp_estimate_targets_finish(result, &w->error);
    w->done = TRUE;
}

/* The model's estimate for every process registered with KSM (the
 * workload's, and whatever else runs here: ksmd scans them all, and so
 * does samepaged's model), started in its own thread
 * (sp_estimate_targets_async(), as samepaged runs it): the controller
 * keeps ticking meanwhile.  NULL with @error set when it cannot start. */
static EstWait *
predict_start(Bench *b, GError **error)
{
    g_autoptr(GArray) targets = g_array_new(FALSE, TRUE, sizeof(SpEstimateTarget));
    g_autoptr(GArray) pids = NULL;
    SpEstimateOptions eopt;
    SpScanOptions sopt;
    EstWait *w;

    if (!sp_estimate_options_from_host(&eopt, b->host, error))
        return NULL;
    sp_scan_options_init(&sopt);
    sopt.interval_ms = 500;
    for (guint i = 0; i < b->wl.children->len; i++) {
        SpEstimateTarget t = { .pid = g_array_index(b->wl.children, pid_t, i) };
        g_array_append_val(targets, t);
    }
    sp_maps_mergeable_present(b->host, &pids);
    for (guint i = 0; i < pids->len; i++) {
        /* someone else's: it may exit meanwhile */
        SpEstimateTarget t = { .pid = g_array_index(pids, pid_t, i), .optional = TRUE };
        if (!bench_workload_is_child(&b->wl, t.pid))
            g_array_append_val(targets, t);
    }
    w = g_new0(EstWait, 1);
    w->cancel = g_cancellable_new();
    sp_estimate_targets_async(b->host, (const SpEstimateTarget *)targets->data, targets->len,
                              &sopt, &eopt, w->cancel, on_estimated, w);
    return w;
}

/* The estimate's pages_sharing and the present pages it covered; @others
 * gets the pages of processes that are not the workload's.  @w done. */
static gboolean
predict_finish(Bench *b, EstWait *w, guint64 *sharing, guint64 *registered, guint64 *others,
               GError **error)
{
    if (!w->est) {
        g_propagate_error(error, g_steal_pointer(&w->error));
        return FALSE;
    }
    *sharing = sp_estimate_get_counters(w->est)->pages_sharing;
    *registered = sp_estimate_get_present_pages(w->est);
    *others = 0;
    for (guint i = 0; i < sp_estimate_get_n_processes(w->est); i++) {
        const SpEstimateProcess *p = sp_estimate_get_process(w->est, i);
        if (!bench_workload_is_child(&b->wl, p->pid))
            *others += p->present_pages;
    }
    return TRUE;
}

/* Until @w is done (cancelled when interrupted). */
static void
predict_wait(Bench *b, EstWait *w)
{
    while (!w->done) {
        if (b->interrupted)
            g_cancellable_cancel(w->cancel);
        g_main_context_iteration(NULL, TRUE);
    }
}

/* predict_start(), predict_wait() and predict_finish(). */
static gboolean
predict(Bench *b, guint64 *sharing, guint64 *registered, guint64 *others, GError **error)
{
    EstWait *w = predict_start(b, error);
    gboolean ok;

    if (!w)
        return FALSE;
    predict_wait(b, w);
    ok = predict_finish(b, w, sharing, registered, others, error);
    est_wait_free(w);
    return ok;
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

/* MemTotal and MemAvailable, KiB. */
static gboolean
meminfo(guint64 *total, guint64 *avail)
{
    g_autofree char *text = NULL;
    gboolean have_total = FALSE, have_avail = FALSE;

    if (!g_file_get_contents("/proc/meminfo", &text, NULL, NULL))
        return FALSE;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (g_str_has_prefix(l, "MemTotal:"))
            have_total = (*total = g_ascii_strtoull(l + 9, NULL, 10)) > 0;
        else if (g_str_has_prefix(l, "MemAvailable:"))
            have_avail = (*avail = g_ascii_strtoull(l + 13, NULL, 10), TRUE);
    }
    return have_total && have_avail;
}

static double
loadavg(void)
{
    g_autofree char *text = NULL;

    if (!g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
        return -1;
    return g_ascii_strtod(text, NULL);
}

#define PRESSURE_TARGET_PCT 15
#define PRESSURE_FLOOR_PCT 10

/* pressure: a hog of unique memory, never registered with KSM, sized from
 * /proc/meminfo now so that MemAvailable is about 15% of MemTotal once the
 * held-out processes run too; none if it is already lower. */
static gboolean
pressure_start(Bench *b, Result *r, GError **error)
{
    guint64 total = 0, avail = 0, work = (guint64)b->processes * b->mib * 1024, target;

    if (!meminfo(&total, &avail)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "/proc/meminfo: no MemTotal or MemAvailable");
        return FALSE;
    }
    target = total * PRESSURE_TARGET_PCT / 100;
    r->hog_kib = avail > target + work ? avail - target - work : 0;
    r->hog_kib -= r->hog_kib % 4;
    fprintf(stderr, "bench: pressure: MemAvailable %.1f%% of MemTotal: a hog of %" G_GUINT64_FORMAT
            " MiB\n", 100.0 * avail / total, r->hog_kib / 1024);
    if (r->hog_kib && !bench_workload_start_hog(&b->wl, r->hog_kib / 4, error))
        return FALSE;
    if (meminfo(&total, &avail) && 100.0 * avail / total < PRESSURE_FLOOR_PCT) {
        bench_workload_kill_hog(&b->wl);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "the hog brought MemAvailable to %.1f%% of MemTotal, under %d%%: released",
                    100.0 * avail / total, PRESSURE_FLOOR_PCT);
        return FALSE;
    }
    return TRUE;
}

/* Every sample: MemAvailable's lowest; the hog released should it fall
 * under 10% of MemTotal. */
static void
pressure_check(Bench *b, Result *r, double t)
{
    guint64 total = 0, avail = 0;
    double pct;

    if (!meminfo(&total, &avail))
        return;
    pct = 100.0 * avail / total;
    if (r->avail_pct < 0)
        r->avail_pct = pct;
    r->avail_min_pct = r->avail_min_pct < 0 ? pct : MIN(r->avail_min_pct, pct);
    if (pct < PRESSURE_FLOOR_PCT && b->wl.hog > 0) {
        bench_workload_kill_hog(&b->wl);
        fprintf(stderr, "bench: pressure: MemAvailable %.1f%% < %d%% at %.0f s: the hog released\n",
                pct, PRESSURE_FLOOR_PCT, t);
        if (!r->note)
            r->note = g_strdup_printf("hog released at %.0f s (MemAvailable %.1f%%)", t, pct);
    }
}

/* boot-storm, at the row's end: 90% judged against the final prediction,
 * from the first sample after which pages_sharing never fell below it.
 * The steady window stays the one measured from convergence to the
 * prediction of the time. */
static void
judge_against_final(Result *r, const GArray *samples)
{
    double thr = 0.9 * (double)r->predicted;
    guint k;

    r->t90 = -1;
    if (samples->len == 0 || r->predicted == 0)
        return;
    for (k = samples->len; k > 0; k--) {
        if ((double)g_array_index(samples, Sample, k - 1).sharing < thr)
            break;
    }
    if (k == samples->len) {
        if (!r->note)
            r->note = g_strdup("below 90% of the final prediction at the end");
        return;
    }
    r->t90 = g_array_index(samples, Sample, k).t;
    r->cpu90 = g_array_index(samples, Sample, k).cpu;
}

static void
run_row(Bench *b, Workload wl, const Row *row, Result *r)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpController) c = NULL;
    g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(Sample));
    EstWait *pending = NULL;
    gboolean pending_booted = FALSE, booted = FALSE, pred_booted = FALSE;
    double t0, cpu0, next_arrival = 0, steady_end = 0, off_since = -1;
    double last_pred_start = 0, last_pred_end = -1e9, next_reg_check = 5;
    double cpu98 = 0, next_knob_log = 0;
    guint steady = wl == WL_BOOT_STORM ? b->steady : b->steady_short;
    guint started = 0, n_ready = 0;

    memset(r, 0, sizeof(*r));
    r->t90 = -1;
    r->t98 = -1;
    r->steady_cpu = -1;
    r->peak_pct = -1;
    r->boot_s = -1;
    r->avail_pct = r->avail_min_pct = -1;
    r->load_start = loadavg();
    fprintf(stderr, "bench: %s: %s\n", wl_names[wl], row->label);
    if (wl == WL_BOOT_STORM && !b->image_dir) {
        r->note = g_strdup_printf("skipped: %s", b->image_why);
        r->load_end = loadavg();
        return;
    }
    if (!ksm_reset(b, &error)) {
        r->note = g_strdup_printf("reset: %s", error->message);
        r->load_end = loadavg();
        return;
    }
    if (wl == WL_PRESSURE && !pressure_start(b, r, &error))
        goto out;
    if (wl == WL_HELD_OUT || wl == WL_PRESSURE) {
        for (guint i = 0; i < b->processes; i++) {
            g_autofree char *ready = NULL;
            if (bench_workload_spawn_dupmem(&b->wl, i, &ready, &error) <= 0)
                goto out;
        }
        for (guint i = 0; i < b->processes; i++) {
            g_autofree char *ready = g_strdup_printf("%s/ready-%u", b->tmpdir, i);
            if (!bench_workload_wait_ready(&b->wl, g_array_index(b->wl.children, pid_t, i),
                                           ready, &error))
                goto out;
        }
        started = b->processes;
        if (!predict(b, &r->predicted, &r->registered, &r->others, &error))
            goto out;
        r->n_predictions++;
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
        /* the hog stands for guests whose memory does not merge: ksmtuned
         * counts it as committed */
        if (wl == WL_PRESSURE)
            sp_controller_set_committed(c, (guint64)b->processes * b->mib * 1024 + r->hog_kib);
        if (wl == WL_BOOT_STORM)
            sp_controller_set_committed(c, (guint64)b->guests * b->guest_mib * 1024);
        if (!sp_controller_start(c, NULL, &error))
            goto out;
    }
    if (wl == WL_BOOT_STORM) {
        for (guint i = 0; i < b->guests; i++) {
            if (!bench_workload_start_guest(&b->wl, b->image_dir, i, b->guest_mib, &error))
                goto out;
        }
        if (c)
            sp_controller_guest_started(c);
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
            r->n_predictions++;
            if (c) {
                sp_controller_guest_started(c);
                sp_controller_set_prediction(c, r->predicted, r->registered);
            }
        }
        bench_sleep(b, 1.0);
        s.t = now_s() - t0;
        s.cpu = ksmd_cpu(b) - cpu0;
        sharing = ksm_get(b, SP_KSM_PAGES_SHARING);
        s.sharing = (guint64)MAX(sharing, 0);
        g_array_append_val(samples, s);
        for (guint i = samples->len - 1; i > 0; i--) {
            const Sample *p = &g_array_index(samples, Sample, i - 1);
            if (s.t - p->t >= PEAK_WINDOW_S) {
                r->peak_pct = MAX(r->peak_pct, 100.0 * (s.cpu - p->cpu) / (s.t - p->t));
                break;
            }
        }
        r->final_sharing = s.sharing;
        if (wl == WL_PRESSURE)
            pressure_check(b, r, s.t);
        if (wl == WL_BOOT_STORM) {
            gboolean want = FALSE;

            if (!booted) {
                if (!bench_workload_poll_guests(&b->wl, &n_ready, &error))
                    goto out;
                if (n_ready == b->guests) {
                    booted = TRUE;
                    r->boot_s = s.t;
                    want = TRUE;
                    fprintf(stderr, "bench: %u guests ready after %.0f s\n", b->guests, s.t);
                } else if (s.t - last_pred_start >= 30) {
                    want = TRUE;
                } else if (s.t > b->timeout) {
                    r->note = g_strdup_printf("%u of %u guests ready after %u s", n_ready,
                                              b->guests, b->timeout);
                    break;
                }
            }
            /* the memory registered moved by more than 5% since the last
             * prediction: it is out of date (checked every 5 s, at most
             * one estimate in 10 s) */
            if (!want && !pending && s.t >= next_reg_check) {
                guint64 reg = sp_maps_mergeable_present(b->host, NULL);
                next_reg_check = s.t + 5;
                if (s.t - last_pred_end >= 10 && sp_control_registered_moved(reg, r->registered))
                    want = TRUE;
            }
            if (pending && pending->done) {
                if (!predict_finish(b, pending, &r->predicted, &r->registered, &r->others,
                                    &error))
                    goto out;
                r->n_predictions++;
                pred_booted = pred_booted || pending_booted;
                if (c)
                    sp_controller_set_prediction(c, r->predicted, r->registered);
                g_clear_pointer(&pending, est_wait_free);
                last_pred_end = s.t;
                if (b->log)
                    fprintf(stderr, "bench: %7.1f s: predicted pages_sharing %" G_GUINT64_FORMAT
                            " over %" G_GUINT64_FORMAT " registered pages\n", s.t,
                            r->predicted, r->registered);
            }
            if (want && !pending) {
                if (!(pending = predict_start(b, &error)))
                    goto out;
                pending_booted = booted;
                last_pred_start = s.t;
            }
            /* converged is judged once every guest is up and predicted */
            if (!pred_booted)
                continue;
        } else if (started < b->processes || r->predicted == 0) {
            continue;
        }
        if (r->t90 < 0 && (double)r->final_sharing >= 0.9 * (double)r->predicted) {
            r->t90 = s.t;
            r->cpu90 = s.cpu;
        }
        /* converged: 98% of the prediction, or, for a row that settles
         * below it, --steady seconds after 90%; the steady window follows */
        if (r->t90 >= 0 && r->t98 < 0 &&
            ((double)r->final_sharing >= 0.98 * (double)r->predicted ||
             s.t >= r->t90 + steady)) {
            r->t98 = s.t;
            r->t98_timed_out = (double)r->final_sharing < 0.98 * (double)r->predicted;
            cpu98 = s.cpu;
            steady_end = s.t + steady;
            if (b->log)
                fprintf(stderr, "bench: %7.1f s: %s: steady window from now, %u s\n", s.t,
                        r->t98_timed_out ? "98% not reached" : "converged (98%)", steady);
        }
        if (r->t98 >= 0 && s.t >= steady_end) {
            r->steady_s = s.t - r->t98;
            r->steady_cpu = s.cpu - cpu98;
            break;
        }
        if (b->log && s.t >= next_knob_log) {
            /* what the kernel runs with, whoever set it (the advisor's
             * pages_to_scan is nowhere else) */
            next_knob_log = s.t + 30;
            fprintf(stderr, "bench: %7.1f s: knobs: pages_to_scan %" G_GINT64_FORMAT
                    ", sleep_millisecs %" G_GINT64_FORMAT ", pages_sharing %" G_GUINT64_FORMAT
                    ", ksmd %.2f CPU-s since the start\n", s.t,
                    ksm_get(b, SP_KSM_PAGES_TO_SCAN), ksm_get(b, SP_KSM_SLEEP_MILLISECS),
                    s.sharing, s.cpu);
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
    if (wl == WL_BOOT_STORM && !b->interrupted) {
        /* the final prediction, the guests as they are now */
        if (pending) {
            predict_wait(b, pending);
            g_clear_pointer(&pending, est_wait_free);
        }
        if (!predict(b, &r->predicted, &r->registered, &r->others, &error))
            goto out;
        r->n_predictions++;
        fprintf(stderr, "bench: final prediction: pages_sharing %" G_GUINT64_FORMAT " over %"
                G_GUINT64_FORMAT " registered pages\n", r->predicted, r->registered);
        judge_against_final(r, samples);
    }

out:
    if (error && !r->note)
        r->note = g_strdup(error->message);
    if (pending) {
        g_cancellable_cancel(pending->cancel);
        predict_wait(b, pending);
        est_wait_free(pending);
    }
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
    r->load_end = loadavg();
}

/* ------------------------------------------------------------ the table */

static void
print_machine(Bench *b)
{
    struct utsname u;
    guint64 total = 0, avail = 0;

    printf("command: %s\n", b->cmdline);
    meminfo(&total, &avail);
    printf("machine: nproc %ld, MemTotal %" G_GUINT64_FORMAT " KiB, kernel %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), total, uname(&u) == 0 ? u.release : "?");
}

static void
print_table(Bench *b, Workload wl, const Row *rows, const Result *res, guint n)
{
    guint64 pred = 0, others = 0;
    guint steady = wl == WL_BOOT_STORM ? b->steady : b->steady_short;

    for (guint i = 0; i < n; i++) {
        pred = MAX(pred, res[i].predicted);
        others = MAX(others, res[i].others);
    }
    printf("\n");
    print_machine(b);
    if (wl == WL_BOOT_STORM)
        printf("workload boot-storm: %u guests x %u MiB (cloned Debian, plain QEMU, %s, started "
               "together), steady window %u s, budget %.0f%% of a CPU\n"
               "predictions: every 30 s while the guests boot, when they are all up, and when "
               "the registered pages move by more than 5%%; \"predicted\" is the final one, at "
               "the row's end, against which 90%% is judged (the first second from which "
               "pages_sharing stayed at or above it)\n", b->guests, b->guest_mib,
               g_strcmp0(g_getenv("SP_ACCEL"), "kvm") == 0 ? "KVM" : "TCG", steady, b->max_cpu);
    else
        printf("workload %s: %u dupmem x %u MiB (%s), predicted pages_sharing %" G_GUINT64_FORMAT
               ", steady window %u s, budget %.0f%% of a CPU\n", wl_names[wl], b->processes,
               b->mib, wl == WL_ARRIVAL ? "one every arrival interval" :
               wl == WL_PRESSURE ? "started together, with a hog of unique memory not "
               "registered with KSM, counted as committed" : "started together", pred, steady,
               b->max_cpu);
    if (others)
        printf("other processes registered with KSM here: up to %" G_GUINT64_FORMAT " present "
               "pages (in the prediction and in ksmd's work)\n", others);
    printf("steady window: from convergence (98%% of the prediction of the time, or %u s after "
           "90%% for a row that does not get there) for %u s\n", steady, steady);
    printf("%-16s %9s %11s %9s %11s %8s %10s %10s %7s %9s %11s  %s\n", "mode", "90% at s",
           "CPU-s to 90", "98% at s", "steady CPU-s", "steady %", "predicted", "final",
           "% pred", "peak CPU%", "load1 s/e", "note");
    for (guint i = 0; i < n; i++) {
        const Result *r = &res[i];
        g_autofree char *t90 = r->t90 >= 0 ? g_strdup_printf("%.1f", r->t90) : g_strdup("-");
        g_autofree char *c90 = r->t90 >= 0 ? g_strdup_printf("%.2f", r->cpu90) : g_strdup("-");
        g_autofree char *t98 = r->t98 < 0 ? g_strdup("-") : r->t98_timed_out
            ? g_strdup_printf("(%.1f)", r->t98) : g_strdup_printf("%.1f", r->t98);
        g_autofree char *sc = r->steady_cpu >= 0 ? g_strdup_printf("%.2f", r->steady_cpu)
                                                 : g_strdup("-");
        g_autofree char *sp = r->steady_cpu >= 0 && r->steady_s > 0
            ? g_strdup_printf("%.2f", 100.0 * r->steady_cpu / r->steady_s) : g_strdup("-");
        g_autofree char *pp = r->predicted ? g_strdup_printf("%.1f", 100.0 * r->final_sharing
                                                             / r->predicted) : g_strdup("-");
        g_autofree char *pk = r->peak_pct >= 0 ? g_strdup_printf("%.1f", r->peak_pct)
                                               : g_strdup("-");
        g_autofree char *ld = g_strdup_printf("%.2f/%.2f", r->load_start, r->load_end);
        g_autoptr(GString) note = g_string_new(NULL);

        if (wl == WL_BOOT_STORM && r->ran && r->boot_s >= 0)
            g_string_append_printf(note, "guests up at %.0f s; ", r->boot_s);
        else if (wl == WL_BOOT_STORM && r->ran)
            g_string_append(note, "guests not all up; ");
        if (wl == WL_BOOT_STORM && r->ran)
            g_string_append_printf(note, "%u prediction%s", r->n_predictions,
                                   r->n_predictions == 1 ? "" : "s");
        if (wl == WL_PRESSURE && r->ran)
            g_string_append_printf(note, "hog %" G_GUINT64_FORMAT " MiB, MemAvailable %.1f%% "
                                   "(min %.1f%%)", r->hog_kib / 1024, r->avail_pct,
                                   r->avail_min_pct);
        if (r->note || !r->ran)
            g_string_append_printf(note, "%s%s", note->len ? "; " : "",
                                   r->note ? r->note : "not run");
        if (r->t98_timed_out)
            g_string_append_printf(note, "%s98%% not reached: steady from 90%% + %u s",
                                   note->len ? "; " : "", steady);
        printf("%-16s %9s %11s %9s %11s %8s %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT
               " %7s %9s %11s  %s\n", rows[i].label, t90, c90, t98, sc, sp, r->predicted,
               r->final_sharing, pp, pk, ld, note->str);
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
    Bench b = { .processes = 4, .mib = 256, .steady = 600, .steady_short = 60, .timeout = 900,
                .arrival_interval = 30, .guests = 4, .guest_mib = 512, .max_cpu = 25 };
    g_autofree char *modes = NULL, *workloads = NULL, *dupmem = NULL;
    const char *row_names[SP_CONTROL_N_MODES + 1];
    gboolean want_row[SP_CONTROL_N_MODES + 1], want_wl[WL_N];
    g_autoptr(GError) error = NULL;
    int status = 0;
    const GOptionEntry entries[] = {
        { "processes", 0, 0, G_OPTION_ARG_INT, &b.processes, "dupmem processes (4)", "N" },
        { "mib", 0, 0, G_OPTION_ARG_INT, &b.mib, "MiB per process (256)", "M" },
        { "steady", 0, 0, G_OPTION_ARG_INT, &b.steady,
          "boot-storm: steady window after convergence, seconds (600)", "S" },
        { "steady-short", 0, 0, G_OPTION_ARG_INT, &b.steady_short,
          "held-out, arrival, pressure: steady window after convergence, seconds (60)", "S" },
        { "guests", 0, 0, G_OPTION_ARG_INT, &b.guests, "boot-storm: guests (4)", "N" },
        { "guest-mib", 0, 0, G_OPTION_ARG_INT, &b.guest_mib,
          "boot-storm: MiB of RAM per guest (512)", "M" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &b.timeout,
          "give up on 90% (boot-storm: on the guests' boot too) after this many seconds (900)",
          "S" },
        { "arrival-interval", 0, 0, G_OPTION_ARG_INT, &b.arrival_interval,
          "arrival: seconds between two starts (30)", "S" },
        { "max-ksmd-cpu", 0, 0, G_OPTION_ARG_DOUBLE, &b.max_cpu,
          "samepage mode's budget, % of a CPU (25)", "P" },
        { "modes", 0, 0, G_OPTION_ARG_STRING, &modes,
          "rows, comma-separated (all: static-1000/20,static,ksmtuned,kubevirt,"
          "kernel-advisor,samepage)", "LIST" },
        { "workloads", 0, 0, G_OPTION_ARG_STRING, &workloads,
          "boot-storm,held-out,arrival,pressure, run in that order "
          "(boot-storm,arrival,pressure)", "LIST" },
        { "log", 0, 0, G_OPTION_ARG_NONE, &b.log, "print every decision to stderr", NULL },
        { "dupmem", 0, 0, G_OPTION_ARG_FILENAME, &dupmem,
          "the workload program (the build's tests/integration/dupmem)", "PATH" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- the scan-rate controller's modes, "
                                                         "side by side");
    Row rows[SP_CONTROL_N_MODES + 1];
    guint n_rows = 0;

    {
        g_autoptr(GString) line = g_string_new(NULL);
        for (int i = 0; i < argc; i++) {
            g_autofree char *q = strpbrk(argv[i], " '\"$\\;&|<>*?()") ? g_shell_quote(argv[i])
                                                                    : g_strdup(argv[i]);
            g_string_append_printf(line, "%s%s", i ? " " : "", q);
        }
        b.cmdline = g_string_free(g_steal_pointer(&line), FALSE);
    }
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "bench: %s\n", error->message);
        return 2;
    }
    if (b.processes < 1 || b.processes > 64 || b.mib < 1 || b.mib > 65536 || b.timeout < 1 ||
        b.max_cpu <= 0 || b.max_cpu > 100 || b.guests < 1 || b.guests > 32 ||
        b.guest_mib < 128 || b.guest_mib > 65536) {
        fprintf(stderr, "bench: --processes 1..64, --mib 1..65536, --timeout >= 1, "
                "--max-ksmd-cpu in (0, 100], --guests 1..32, --guest-mib 128..65536\n");
        g_free(b.cmdline);
        return 2;
    }
    row_names[0] = "static-1000/20";
    for (guint i = 0; i < SP_CONTROL_N_MODES; i++)
        row_names[i + 1] = sp_control_mode_name(i);
    if (!parse_list(modes ? modes : "static-1000/20,static,ksmtuned,kubevirt,kernel-advisor,"
                    "samepage", row_names, SP_CONTROL_N_MODES + 1, want_row, "--modes") ||
        !parse_list(workloads ? workloads : "boot-storm,arrival,pressure", wl_names, WL_N,
                    want_wl, "--workloads")) {
        g_free(b.cmdline);
        return 2;
    }
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

    if (want_wl[WL_BOOT_STORM]) {
        b.image_dir = bench_workload_image_dir(SP_TOP_SRCDIR, &b.image_why);
        if (!b.image_dir)
            fprintf(stderr, "bench: boot-storm is skipped: %s\n", b.image_why);
    }
    for (guint w = 0; w < WL_N && !b.interrupted; w++) {
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
    g_free(b.image_dir);
    g_free(b.image_why);
    g_free(b.cmdline);
    return b.interrupted ? 130 : status;
}
