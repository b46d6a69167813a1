/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-model.c: the model in the background
 *
 * When a guest comes, its sharing is estimated (what-if over its RAM
 * backends: what marking it gives) through sp_estimate_targets_async(),
 * one estimate at a time, never on the loop; d->model_cancel, cancelled
 * at exit, stops a scan in flight at its next chunk.  The CPU budget ([model] max_cpu, %
 * of one CPU) holds on average: after an estimate that took C CPU-seconds,
 * the next waits until C is that share of the time since this one began.
 * The latest prediction per guest feeds status and the trust decision.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include <string.h>
#include <unistd.h>

#include "samepaged.h"
#include "samepage/spestimate.h"
#include "samepage/spscan.h"

typedef struct {
    SdDaemon *d;
    char *name;
    pid_t pid;
} SdEstimate;

static void
sd_estimate_free(SdEstimate *e)
{
    g_free(e->name);
    g_free(e);
}

/* An estimate took @cpu_s CPU-seconds of its worker: the next one waits
 * until that is the budget's share of the time since. */
static void
sd_model_account(SdDaemon *d, double cpu_s)
{
    double budget = d->cfg->model_max_cpu / 100.0;

    d->estimate_running = FALSE;
    d->model_cpu_s += cpu_s;
    d->n_estimates++;
    /* C CPU-seconds are budget x (C / budget) seconds of wall time. */
    d->estimate_not_before_us = g_get_monotonic_time() + (gint64)(cpu_s / budget * 1e6);
}

static void sd_model_kick(SdDaemon *d);

static void
sd_estimate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdEstimate *e = user_data;
    SdDaemon *d = e->d;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpEstimate) est = sp_estimate_targets_finish(res, &error);
    SdGuest *g = g_hash_table_lookup(d->guests, e->name);
    double cpu_s = est ? sp_estimate_get_cpu_seconds(est) : 0;
    double budget = d->cfg->model_max_cpu / 100.0;

    sd_model_account(d, cpu_s);
    if (!est) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_debug("guest %s: estimate cancelled", e->name);
        else if (g) {
            g_warning("guest %s: estimate failed: %s", e->name, error->message);
            g->estimate_stale = FALSE;
        }
    } else if (g && g->pid == e->pid) {
        long page = sysconf(_SC_PAGESIZE);
        guint64 saved = sp_estimate_get_saved_zero(est) + sp_estimate_get_saved_nonzero(est);
        g->predicted_saving = (gint64)(saved * (guint64)page);
        g->predicted_pages = sp_estimate_get_process(est, 0)->ksm.ksm_merging_pages;
        g->predicted_at = g_get_real_time() / G_USEC_PER_SEC;
        g->estimate_stale = FALSE;
        g_message("guest %s: model: %.1f MiB to save if mergeable (%.2f CPU-s; next estimate "
                  "in %.0f s at most %.1f%% of a CPU)", e->name,
                  g->predicted_saving / 1048576.0, cpu_s, cpu_s / budget,
                  d->cfg->model_max_cpu);
        sd_guests_redecide(d);
    }
    sd_estimate_free(e);
    sd_model_kick(d);
}

/* The guest's RAM as if marked (what marking gives), through the one
 * estimate entry, in its worker thread; cancelled at exit. */
static void
sd_model_estimate_guest(SdDaemon *d, SdGuest *g)
{
    SdEstimate *e = g_new0(SdEstimate, 1);
    SpScanOptions sopt;
    SpEstimateOptions eopt;
    SpEstimateTarget t = { 0 };

    sp_scan_options_init(&sopt);
    sopt.mode = SP_SCAN_WHAT_IF;
    sopt.passes = 2;
    sopt.interval_ms = 500;
    if (!sp_estimate_options_from_host(&eopt, d->host, NULL))
        sp_estimate_options_init(&eopt);
    t.pid = g->pid;
    t.guest = g->name;
    t.ranges = (const SpScanRange *)g->ram->data;
    t.n_ranges = g->ram->len;
    e->d = d;
    e->name = g_strdup(g->name);
    e->pid = g->pid;
    d->estimate_running = TRUE;
    sp_estimate_targets_async(d->host, &t, 1, &sopt, &eopt, d->model_cancel, sd_estimate_done, e);
}

static gboolean
sd_model_start(gpointer user_data)
{
    SdDaemon *d = user_data;
    GHashTableIter it;
    gpointer k, v;
    SdGuest *pick = NULL;

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
    sd_model_estimate_guest(d, pick);
    return G_SOURCE_REMOVE;
}

static void
sd_model_kick(SdDaemon *d)
{
    gint64 wait_us;

    if (d->estimate_running || d->estimate_timer || d->oneshot || d->quitting)
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
