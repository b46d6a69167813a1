/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spestimatetargets.c: "estimate these processes, guests or images"
 *
 * The one entry of SpEstimate (declared in spestimate.h) that scans a set
 * of targets and runs the estimate over them: the CLI's estimate, doctor
 * and ksm numa call it blocking (sp_estimate_targets()), the agent in a
 * worker thread (sp_estimate_targets_async()), with a GCancellable that
 * stops the scan at its next chunk or during the wait between passes.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-estimate"

#include <time.h>

#include "samepage/spestimate.h"
#include "spestimatepriv.h"
#include "spscanpriv.h"

/* CPU seconds of the calling thread (a worker's own, for the agent's budget). */
static double
sp_thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Adds @t to @scan; errors of a guest name it. */
static gboolean
sp_estimate_add_target(SpScan *scan, const SpEstimateTarget *t, GError **error)
{
    GError *local = NULL;
    gboolean ok;

    if (t->image) {
        ok = sp_scan_add_image(scan, t->image, &local);
    } else if (t->guest && t->n_ranges == 0) {
        /* A guest is scanned over its RAM only, never its whole QEMU. */
        g_set_error_literal(&local, SP_ESTIMATE_ERROR, SP_ESTIMATE_ERROR_INVALID,
                            "no RAM backend was found in its memory map");
        ok = FALSE;
    } else if (t->n_ranges > 0) {
        ok = sp_scan_add_pid_ranges(scan, t->pid, t->ranges, t->n_ranges, &local);
    } else {
        ok = sp_scan_add_pid(scan, t->pid, &local);
    }
    if (!ok) {
        if (t->guest)
            g_prefix_error(&local, "guest %s: ", t->guest);
        g_propagate_error(error, local);
        return FALSE;
    }
    if (t->label)
        sp_scan_set_label(scan, sp_scan_get_n_sources(scan) - 1, t->label);
    return TRUE;
}

static SpEstimate *
sp_estimate_targets_do(const SpHost *host, const SpEstimateTarget *targets, guint n_targets,
                       const SpScanOptions *scan_opt, const SpEstimateOptions *opt,
                       GCancellable *cancellable, GError **error)
{
    g_autoptr(SpScan) scan = sp_scan_new(host, scan_opt);
    double t0 = sp_thread_cpu_s();
    SpEstimate *est;

    for (guint i = 0; i < n_targets; i++) {
        const SpEstimateTarget *t = &targets[i];
        g_autoptr(GError) local = NULL;

        if (!sp_estimate_add_target(scan, t, &local)) {
            if (t->optional && !t->image && local->domain == SP_SCAN_ERROR) {
                g_debug("left out of the estimate: %s", local->message);
                continue;
            }
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
    }
    if (!sp_scan_drive(scan, cancellable, error) ||
        (cancellable && g_cancellable_set_error_if_cancelled(cancellable, error)))
        return NULL;
    est = sp_estimate_run(scan, opt, error);
    if (est)
        sp_estimate_set_cpu_seconds(est, sp_thread_cpu_s() - t0);
    return est;
}

/**
 * sp_estimate_targets:
 * @host: where the processes are
 * @targets: (array length=n_targets): what to scan, in this order (the
 *   order of the estimate's processes)
 * @scan_opt: how to scan (mode, passes, interval, nodes)
 * @opt: the KSM settings to predict for
 * @cancellable: (nullable): stops the scan (G_IO_ERROR_CANCELLED)
 *
 * Scans the targets and runs the estimate.  It blocks, waiting
 * @scan_opt->interval_ms between passes: for command-line tools; a main
 * loop calls sp_estimate_targets_async().  A target that cannot be added
 * fails the whole (a guest's error names it), unless it is optional: then
 * it is left out.
 *
 * Returns: (transfer full): the estimate, or NULL with @error set.
 */
SpEstimate *
sp_estimate_targets(const SpHost *host, const SpEstimateTarget *targets, guint n_targets,
                    const SpScanOptions *scan_opt, const SpEstimateOptions *opt,
                    GCancellable *cancellable, GError **error)
{
    return sp_estimate_targets_do(host, targets, n_targets, scan_opt, opt, cancellable, error);
}

/* The async variant's own copy of its arguments. */
typedef struct {
    const SpHost *host;
    SpEstimateTarget *targets;
    guint n_targets;
    SpScanOptions scan_opt;
    SpEstimateOptions opt;
} SpEstimateJob;

static void
sp_estimate_job_free(gpointer data)
{
    SpEstimateJob *job = data;

    for (guint i = 0; i < job->n_targets; i++) {
        SpEstimateTarget *t = &job->targets[i];
        g_free((char *)t->image);
        g_free((char *)t->guest);
        g_free((char *)t->label);
        g_free((SpScanRange *)t->ranges);
    }
    g_free(job->targets);
    g_free(job);
}

static void
sp_estimate_targets_thread(GTask *task, gpointer source, gpointer data,
                           GCancellable *cancellable)
{
    SpEstimateJob *job = data;
    GError *error = NULL;
    SpEstimate *est = sp_estimate_targets_do(job->host, job->targets, job->n_targets,
                                             &job->scan_opt, &job->opt, cancellable, &error);

    if (est)
        g_task_return_pointer(task, est, (GDestroyNotify)sp_estimate_free);
    else
        g_task_return_error(task, error);
}

/**
 * sp_estimate_targets_async:
 * @callback: called in the caller's thread-default main context
 *
 * sp_estimate_targets() in a worker thread (GTask): the caller's main loop
 * runs on while the targets are scanned and modelled.  The targets and
 * options are copied; @host must live until @callback has run.
 */
void
sp_estimate_targets_async(const SpHost *host, const SpEstimateTarget *targets, guint n_targets,
                          const SpScanOptions *scan_opt, const SpEstimateOptions *opt,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
    SpEstimateJob *job = g_new0(SpEstimateJob, 1);

    job->host = host;
    job->n_targets = n_targets;
    job->targets = g_new0(SpEstimateTarget, MAX(n_targets, 1));
    for (guint i = 0; i < n_targets; i++) {
        const SpEstimateTarget *t = &targets[i];
        SpEstimateTarget *c = &job->targets[i];
        *c = *t;
        c->image = g_strdup(t->image);
        c->guest = g_strdup(t->guest);
        c->label = g_strdup(t->label);
        c->ranges = t->n_ranges ? g_memdup2(t->ranges, t->n_ranges * sizeof(SpScanRange)) : NULL;
    }
    job->scan_opt = *scan_opt;
    job->opt = *opt;
    g_task_set_source_tag(task, sp_estimate_targets_async);
    g_task_set_task_data(task, job, sp_estimate_job_free);
    g_task_run_in_thread(task, sp_estimate_targets_thread);
}

/**
 * sp_estimate_targets_finish:
 *
 * Returns: (transfer full): the estimate, or NULL with @error set.
 */
SpEstimate *
sp_estimate_targets_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == sp_estimate_targets_async,
                         NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
