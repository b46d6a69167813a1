/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-model.c: the model in the background
 *
 * When a guest comes, its sharing is estimated (SpScan what-if over its RAM
 * backends, then SpEstimate: what marking it gives) in a worker thread, one
 * guest at a time, never on the loop.  The CPU budget ([model] max_cpu, %
 * of one CPU) holds on average: after an estimate that took C CPU-seconds,
 * the next waits until C is that share of the time since this one began.
 * The latest prediction per guest feeds status and the trust decision.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "samepaged.h"
#include "samepage/spestimate.h"
#include "samepage/spscan.h"

typedef struct {
    char *name;
    pid_t pid;
    GArray *ram;
    SpHost *host;
    double cpu_s;
    guint64 saved_pages;
    guint64 merging_pages;
} SdEstimate;

static void
sd_estimate_free(SdEstimate *e)
{
    g_free(e->name);
    g_array_unref(e->ram);
    g_free(e);
}

static double
thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sd_estimate_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    SdEstimate *e = data;
    double t0 = thread_cpu_s();
    GError *error = NULL;
    SpScanOptions sopt;
    SpEstimateOptions eopt;
    g_autoptr(SpScan) scan = NULL;
    g_autoptr(SpEstimate) est = NULL;

    sp_scan_options_init(&sopt);
    sopt.mode = SP_SCAN_WHAT_IF;       /* as if marked: what marking gives */
    sopt.passes = 2;
    sopt.interval_ms = 500;
    scan = sp_scan_new(e->host, &sopt);
    if (!sp_scan_add_pid_ranges(scan, e->pid, (const SpScanRange *)e->ram->data, e->ram->len,
                                &error) ||
        !sp_scan_run(scan, &error))
        goto fail;
    if (!sp_estimate_options_from_host(&eopt, e->host, NULL))
        sp_estimate_options_init(&eopt);
    est = sp_estimate_run(scan, &eopt, &error);
    if (!est)
        goto fail;
    e->saved_pages = sp_estimate_get_saved_zero(est) + sp_estimate_get_saved_nonzero(est);
    e->merging_pages = sp_estimate_get_process(est, 0)->ksm.ksm_merging_pages;
    e->cpu_s = thread_cpu_s() - t0;
    g_task_return_boolean(task, TRUE);
    return;
fail:
    e->cpu_s = thread_cpu_s() - t0;
    g_task_return_error(task, error);
}

static void sd_model_kick(SdDaemon *d);

static void
sd_estimate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdDaemon *d = user_data;
    SdEstimate *e = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) error = NULL;
    SdGuest *g = g_hash_table_lookup(d->guests, e->name);
    double budget = d->cfg->model_max_cpu / 100.0;

    d->estimate_running = FALSE;
    d->model_cpu_s += e->cpu_s;
    d->n_estimates++;
    /* C CPU-seconds are budget x (C / budget) seconds of wall time. */
    d->estimate_not_before_us = g_get_monotonic_time() + (gint64)(e->cpu_s / budget * 1e6);
    if (!g_task_propagate_boolean(G_TASK(res), &error)) {
        if (g) {
            g_warning("guest %s: estimate failed: %s", e->name, error->message);
            g->estimate_stale = FALSE;
        }
    } else if (g && g->pid == e->pid) {
        long page = sysconf(_SC_PAGESIZE);
        g->predicted_saving = (gint64)(e->saved_pages * (guint64)page);
        g->predicted_pages = e->merging_pages;
        g->predicted_at = g_get_real_time() / G_USEC_PER_SEC;
        g->estimate_stale = FALSE;
        g_message("guest %s: model: %.1f MiB to save if mergeable (%.2f CPU-s; next estimate "
                  "in %.0f s at most %.1f%% of a CPU)", e->name,
                  g->predicted_saving / 1048576.0, e->cpu_s, e->cpu_s / budget,
                  d->cfg->model_max_cpu);
        sd_guests_redecide(d);
    }
    sd_model_kick(d);
}

static gboolean
sd_model_start(gpointer user_data)
{
    SdDaemon *d = user_data;
    GHashTableIter it;
    gpointer k, v;
    SdGuest *pick = NULL;
    SdEstimate *e;
    GTask *task;

    d->estimate_timer = 0;
    g_hash_table_iter_init(&it, d->guests);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        SdGuest *g = v;
        if (g->estimate_stale && g->pid && g->ram && g->ram->len &&
            (!pick || strcmp(g->name, pick->name) < 0))
            pick = g;
    }
    if (!pick)
        return G_SOURCE_REMOVE;
    e = g_new0(SdEstimate, 1);
    e->name = g_strdup(pick->name);
    e->pid = pick->pid;
    e->ram = g_array_ref(pick->ram);
    e->host = d->host;
    d->estimate_running = TRUE;
    task = g_task_new(NULL, NULL, sd_estimate_done, d);
    g_task_set_task_data(task, e, (GDestroyNotify)sd_estimate_free);
    g_task_run_in_thread(task, sd_estimate_thread);
    g_object_unref(task);
    return G_SOURCE_REMOVE;
}

static void
sd_model_kick(SdDaemon *d)
{
    gint64 wait_us;

    if (d->estimate_running || d->estimate_timer || d->oneshot)
        return;
    wait_us = d->estimate_not_before_us - g_get_monotonic_time();
    /* A few seconds after a start at least: the guest is still booting. */
    d->estimate_timer = g_timeout_add(MAX(wait_us / 1000, 3000), sd_model_start, d);
}

void
sd_model_schedule(SdDaemon *d)
{
    sd_model_kick(d);
}

json_object *
sd_model_to_json(SdDaemon *d)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "max_cpu_percent", json_object_new_double(d->cfg->model_max_cpu));
    json_object_object_add(o, "estimates", json_object_new_int(d->n_estimates));
    json_object_object_add(o, "cpu_seconds", json_object_new_double(d->model_cpu_s));
    json_object_object_add(o, "running", json_object_new_boolean(d->estimate_running));
    return o;
}
