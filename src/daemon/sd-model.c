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
 *
 * The host prediction covers every process registered with KSM (a
 * VM_MERGEABLE VMA), guests or not, as ksmd scans them all: SP_SCAN_MERGEABLE
 * over them, a process that exits meanwhile left out.  It is redone when
 * the set of registered pids changes or their present pages move by more
 * than 5% (a guest that boots fills its RAM long after it started), both
 * listed in a worker every SD_HOST_CHECK_S seconds (less often if listing
 * costs more than the budget), or a guest starts or stops, under the same
 * budget.
 *
 * What the trust groups' isolation costs: when the willing guests belong
 * to two groups or more, each group's guests estimated together, then all
 * of them together (sp_trust_plan_estimates()), one estimate after another
 * after the guests' and the host's, under the same budget.  A per-guest
 * estimate does not give them: the pages two guests share count only in
 * an estimate over both.  The results are void when a guest comes or goes.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "samepaged.h"
#include "samepage/spestimate.h"
#include "samepage/spmaps.h"
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

/* The end of every estimate: its result (NULL: @error), and the CPU-seconds
 * its worker took, accounted: the next estimate waits until they are the
 * budget's share of the time since.  *@cost says so, for the log line
 * ("(C CPU-s; next estimate in W s at most B% of a CPU)"). */
static SpEstimate *
sd_model_estimated(SdDaemon *d, GAsyncResult *res, char **cost, GError **error)
{
    SpEstimate *est = sp_estimate_targets_finish(res, error);
    double cpu_s = est ? sp_estimate_get_cpu_seconds(est) : 0;
    double budget = d->cfg->model_max_cpu / 100.0;

    d->estimate_running = FALSE;
    d->model_cpu_s += cpu_s;
    d->n_estimates++;
    /* C CPU-seconds are budget x (C / budget) seconds of wall time. */
    d->estimate_not_before_us = g_get_monotonic_time() + (gint64)(cpu_s / budget * 1e6);
    *cost = g_strdup_printf("(%.2f CPU-s; next estimate in %.0f s at most %.1f%% of a CPU)",
                            cpu_s, cpu_s / budget, d->cfg->model_max_cpu);
    return est;
}


/* The host prediction changed: the controller steers towards it. */
static void
sd_model_host_updated(SdDaemon *d)
{
    if (d->controller)
        sp_controller_set_prediction(d->controller, d->hm.pages_sharing, d->hm.registered_pages);
    sd_metrics_write_textfile(d);
}

static void
sd_estimate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdEstimate *e = user_data;
    SdDaemon *d = e->d;
    g_autoptr(GError) error = NULL;
    g_autofree char *cost = NULL;
    g_autoptr(SpEstimate) est = sd_model_estimated(d, res, &cost, &error);
    SdGuest *g = g_hash_table_lookup(d->guests, e->name);

    if (!est) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_debug("guest %s: estimate cancelled", e->name);
        else if (g) {
            g_warning("guest %s: estimate failed: %s", e->name, error->message);
            g->estimate_stale = FALSE;
        }
    } else if (g && g->pid == e->pid) {
        g->predicted_saving = (gint64)sp_estimate_get_saved_bytes(est);
        g->predicted_pages = sp_estimate_get_process(est, 0)->ksm.ksm_merging_pages;
        g->predicted_at = g_get_real_time() / G_USEC_PER_SEC;
        g->estimate_stale = FALSE;
        g_message("guest %s: model: %.1f MiB to save if mergeable %s", e->name,
                  g->predicted_saving / 1048576.0, cost);
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

/* ------------------------------------------------------- trust groups */

typedef struct {
    SdDaemon *d;
    char *key;
    char *label;                    /* "group NAME" or "mixed", for the log */
    guint generation;
    guint n_guests;
} SdSetEstimate;

static void
sd_set_estimate_free(SdSetEstimate *e)
{
    g_free(e->key);
    g_free(e->label);
    g_free(e);
}

static void
sd_set_estimate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdSetEstimate *e = user_data;
    SdDaemon *d = e->d;
    g_autoptr(GError) error = NULL;
    g_autofree char *cost = NULL;
    g_autoptr(SpEstimate) est = sd_model_estimated(d, res, &cost, &error);
    gint64 saving = -1;

    if (!est && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_debug("trust groups: estimate of %s cancelled", e->label);
    } else if (e->generation != d->set_generation) {
        g_debug("trust groups: estimate of %s outdated (a guest came or went)", e->label);
    } else {
        if (est) {
            saving = (gint64)sp_estimate_get_saved_bytes(est);
            g_message("trust groups: model: %.1f MiB to save with the %u guests of %s "
                      "together %s", saving / 1048576.0, e->n_guests, e->label, cost);
        } else {
            /* Not again until a guest comes or goes. */
            g_warning("trust groups: estimate of %s failed: %s", e->label, error->message);
        }
        g_hash_table_replace(d->set_savings, g_strdup(e->key), g_memdup2(&saving, sizeof saving));
        if (est) {
            sd_guests_redecide(d);
            sd_metrics_write_textfile(d);
        }
    }
    sd_set_estimate_free(e);
    sd_model_kick(d);
}

/* The first set of the plan without an estimate whose guests all have
 * their RAM ranges, or NULL. */
static SdTrustSet *
sd_model_next_set(SdDaemon *d)
{
    for (guint p = 0; p < d->trust_plan->len; p++) {
        SdTrustSet *ts = d->trust_plan->pdata[p];
        gboolean ready = TRUE;

        if (g_hash_table_contains(d->set_savings, ts->key))
            continue;
        for (guint i = 0; ts->names[i] && ready; i++) {
            SdGuest *g = g_hash_table_lookup(d->guests, ts->names[i]);
            ready = g && g->pid && g->ram && g->ram->len;
        }
        if (ready)
            return ts;
    }
    return NULL;
}

/* The set's guests together, as if marked (what-if over their RAM), in a
 * worker: the sharing across them counts. */
static void
sd_model_estimate_set(SdDaemon *d, SdTrustSet *ts)
{
    guint n = g_strv_length(ts->names);
    g_autofree SpEstimateTarget *t = g_new0(SpEstimateTarget, n);
    SdSetEstimate *e = g_new0(SdSetEstimate, 1);
    SpScanOptions sopt;
    SpEstimateOptions eopt;

    sp_scan_options_init(&sopt);
    sopt.mode = SP_SCAN_WHAT_IF;
    sopt.passes = 2;
    sopt.interval_ms = 500;
    if (!sp_estimate_options_from_host(&eopt, d->host, NULL))
        sp_estimate_options_init(&eopt);
    for (guint i = 0; i < n; i++) {
        SdGuest *g = g_hash_table_lookup(d->guests, ts->names[i]);
        t[i].pid = g->pid;
        t[i].guest = g->name;
        t[i].ranges = (const SpScanRange *)g->ram->data;
        t[i].n_ranges = g->ram->len;
    }
    e->d = d;
    e->key = g_strdup(ts->key);
    e->label = ts->group ? g_strdup_printf("group %s", ts->group) : g_strdup("all groups mixed");
    e->generation = d->set_generation;
    e->n_guests = n;
    d->estimate_running = TRUE;
    sp_estimate_targets_async(d->host, t, n, &sopt, &eopt, d->model_cancel,
                              sd_set_estimate_done, e);
}

/* ------------------------------------------------------------ the host */

#define SD_HOST_CHECK_S 10

static double
sd_thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct {
    GArray *pids;
    guint64 registered_pages;       /* present in their mergeable VMAs */
    double cpu_s;
} SdListing;

static void
sd_listing_free(SdListing *l)
{
    if (l->pids)
        g_array_unref(l->pids);
    g_free(l);
}

/* Reads every /proc/PID/smaps: the page-table walks are not free on a big
 * host, hence a worker, and its CPU time counts in the model's budget. */
static void
sd_host_list_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    SdDaemon *d = data;
    SdListing *l = g_new0(SdListing, 1);
    double t0 = sd_thread_cpu_s();

    l->registered_pages = sp_maps_mergeable_present(d->host, &l->pids);
    l->cpu_s = sd_thread_cpu_s() - t0;
    g_task_return_pointer(task, l, (GDestroyNotify)sd_listing_free);
}

static gboolean
sd_pids_equal(GArray *a, GArray *b)
{
    /* Two empty arrays may have no data at all: memcmp() must not see NULL. */
    return a && b && a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len * sizeof(pid_t)) == 0);
}

static void sd_host_check_arm(SdDaemon *d);

static void
sd_host_listed(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdDaemon *d = user_data;
    SdListing *l = g_task_propagate_pointer(G_TASK(res), NULL);
    double budget = d->cfg->model_max_cpu / 100.0;
    gint64 wait_us;

    d->hm.listing = FALSE;
    d->hm.list_cpu_s += l->cpu_s;
    /* Every SD_HOST_CHECK_S seconds, or less often if a listing costs
     * more than the budget allows. */
    wait_us = MAX((gint64)SD_HOST_CHECK_S * G_USEC_PER_SEC, (gint64)(l->cpu_s / budget * 1e6));
    d->hm.next_check_us = g_get_monotonic_time() + wait_us;
    if (!sd_pids_equal(d->hm.pids, l->pids)) {
        if (d->hm.pids)
            g_message("KSM registrations: %u process%s with a mergeable VMA (were %u): the "
                      "host prediction is made again", l->pids->len,
                      l->pids->len == 1 ? "" : "es", d->hm.pids->len);
        else
            g_message("KSM registrations: %u process%s with a mergeable VMA: the host "
                      "prediction is made", l->pids->len, l->pids->len == 1 ? "" : "es");
        if (d->hm.pids)
            g_array_unref(d->hm.pids);
        d->hm.pids = g_array_ref(l->pids);
        d->hm.stale = TRUE;
    } else if (d->hm.have && !d->hm.stale &&
               sp_control_registered_moved(l->registered_pages, d->hm.registered_pages)) {
        /* The same processes, but a booting guest filled its RAM (or one
         * gave memory back): the prediction no longer covers it. */
        g_message("KSM registrations: %" G_GUINT64_FORMAT " pages present in mergeable VMAs, "
                  "the prediction covered %" G_GUINT64_FORMAT ": the host prediction is made "
                  "again", l->registered_pages, d->hm.registered_pages);
        d->hm.stale = TRUE;
    }
    sd_listing_free(l);
    if (d->quitting)
        return;
    sd_host_check_arm(d);
    sd_model_kick(d);
}

static void
sd_host_list(SdDaemon *d)
{
    g_autoptr(GTask) task = NULL;

    if (d->hm.listing || d->quitting)
        return;
    d->hm.listing = TRUE;
    task = g_task_new(NULL, NULL, sd_host_listed, d);
    g_task_set_task_data(task, d, NULL);
    g_task_run_in_thread(task, sd_host_list_thread);
}

static gboolean
sd_host_check(gpointer user_data)
{
    SdDaemon *d = user_data;

    d->hm.check_timer = 0;
    sd_host_list(d);
    return G_SOURCE_REMOVE;
}

static void
sd_host_check_arm(SdDaemon *d)
{
    gint64 wait_us = d->hm.next_check_us - g_get_monotonic_time();

    if (d->hm.check_timer)
        g_source_remove(d->hm.check_timer);
    d->hm.check_timer = g_timeout_add(MAX(wait_us / 1000, 100), sd_host_check, d);
}

static void
sd_host_estimate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdDaemon *d = user_data;
    g_autoptr(GError) error = NULL;
    g_autofree char *cost = NULL;
    g_autoptr(SpEstimate) est = sd_model_estimated(d, res, &cost, &error);
    long page = sysconf(_SC_PAGESIZE);

    if (!est) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_debug("host model: estimate cancelled");
        } else {
            g_warning("host model: estimate failed: %s", error->message);
            g_free(d->hm.error);
            d->hm.error = g_strdup(error->message);
            d->hm.stale = FALSE;    /* again when the registrations change */
        }
        sd_model_kick(d);
        return;
    }
    d->hm.have = TRUE;
    d->hm.pages_sharing = sp_estimate_get_counters(est)->pages_sharing;
    d->hm.registered_pages = sp_estimate_get_present_pages(est);
    d->hm.saved_pages = sp_estimate_get_saved_zero(est) + sp_estimate_get_saved_nonzero(est);
    d->hm.processes = sp_estimate_get_n_processes(est);
    d->hm.at = g_get_real_time() / G_USEC_PER_SEC;
    d->hm.cpu_s = sp_estimate_get_cpu_seconds(est);
    g_clear_pointer(&d->hm.error, g_free);
    g_message("host model: %u process%s registered with KSM, %" G_GUINT64_FORMAT " pages "
              "present: pages_sharing %" G_GUINT64_FORMAT " predicted, %.1f MiB saved %s",
              d->hm.processes, d->hm.processes == 1 ? "" : "es", d->hm.registered_pages,
              d->hm.pages_sharing, d->hm.saved_pages * (double)page / 1048576.0, cost);
    sd_model_host_updated(d);
    sd_model_kick(d);
}

/* Every registered process as KSM scans it (its VM_MERGEABLE VMAs); one
 * that exits meanwhile is left out. */
static void
sd_model_estimate_host(SdDaemon *d)
{
    g_autofree SpEstimateTarget *t = NULL;
    SpScanOptions sopt;
    SpEstimateOptions eopt;
    guint n = d->hm.pids->len;

    d->hm.stale = FALSE;
    if (n == 0) {
        /* Nothing registered: nothing to share, no scan needed. */
        d->hm.have = TRUE;
        d->hm.pages_sharing = d->hm.registered_pages = d->hm.saved_pages = 0;
        d->hm.processes = 0;
        d->hm.at = g_get_real_time() / G_USEC_PER_SEC;
        d->hm.cpu_s = 0;
        g_clear_pointer(&d->hm.error, g_free);
        g_message("host model: no process is registered with KSM: nothing to share");
        sd_model_host_updated(d);
        return;
    }
    sp_scan_options_init(&sopt);
    sopt.mode = SP_SCAN_MERGEABLE;
    sopt.passes = 2;
    sopt.interval_ms = 500;
    if (!sp_estimate_options_from_host(&eopt, d->host, NULL))
        sp_estimate_options_init(&eopt);
    t = g_new0(SpEstimateTarget, n);
    for (guint i = 0; i < n; i++) {
        t[i].pid = g_array_index(d->hm.pids, pid_t, i);
        t[i].optional = TRUE;
    }
    d->estimate_running = TRUE;
    sp_estimate_targets_async(d->host, t, n, &sopt, &eopt, d->model_cancel,
                              sd_host_estimate_done, d);
}

static gboolean
sd_model_start(gpointer user_data)
{
    SdDaemon *d = user_data;
    GHashTableIter it;
    gpointer k, v;
    SdGuest *pick = NULL;
    SdTrustSet *set;

    d->estimate_timer = 0;
    g_hash_table_iter_init(&it, d->guests);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        SdGuest *g = v;
        if (g->estimate_stale && g->pid && g->ram && g->ram->len &&
            (!pick || strcmp(g->name, pick->name) < 0))
            pick = g;
    }
    /* Guests first (their decisions wait on it), then the host; the
     * host's waits for a listing in flight, which kicks again. */
    if (pick)
        sd_model_estimate_guest(d, pick);
    else if (d->hm.stale && d->hm.pids && !d->hm.listing)
        sd_model_estimate_host(d);
    else if ((set = sd_model_next_set(d)))
        sd_model_estimate_set(d, set);
    return G_SOURCE_REMOVE;
}

void
sd_model_kick(SdDaemon *d)
{
    gint64 wait_us;

    if (d->estimate_running || d->estimate_timer || d->oneshot || d->quitting)
        return;
    GHashTableIter it;
    gpointer k, v;
    gint64 min_ms = 0;

    g_hash_table_iter_init(&it, d->guests);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        /* A few seconds after a start at least: the guest is still booting. */
        if (((SdGuest *)v)->estimate_stale)
            min_ms = 3000;
    }
    wait_us = d->estimate_not_before_us - g_get_monotonic_time();
    d->estimate_timer = g_timeout_add(MAX(wait_us / 1000, min_ms), sd_model_start, d);
}

/* A guest came or went: its estimate, the host's on a fresh listing, and
 * the trust groups' (sets of guests estimated together) again. */
void
sd_model_schedule(SdDaemon *d)
{
    d->set_generation++;
    g_hash_table_remove_all(d->set_savings);
    if (!d->oneshot && !d->quitting) {
        d->hm.stale = TRUE;
        sd_host_list(d);
    }
    sd_model_kick(d);
}

/* The host prediction from now on: a listing at once, then every
 * SD_HOST_CHECK_S seconds. */
void
sd_model_start_host(SdDaemon *d)
{
    sd_host_list(d);
}

gboolean
sd_model_busy(SdDaemon *d)
{
    return d->estimate_running || d->hm.listing;
}

void
sd_model_finish(SdDaemon *d)
{
    if (d->estimate_timer)
        g_source_remove(d->estimate_timer);
    d->estimate_timer = 0;
    if (d->hm.check_timer)
        g_source_remove(d->hm.check_timer);
    d->hm.check_timer = 0;
    if (d->hm.pids)
        g_array_unref(d->hm.pids);
    d->hm.pids = NULL;
    g_clear_pointer(&d->hm.error, g_free);
}

/* The host prediction for status: what it covered and when. */
static json_object *
sd_model_host_to_json(SdDaemon *d)
{
    json_object *h = json_object_new_object();
    long page = sysconf(_SC_PAGESIZE);

    json_object_object_add(h, "registered_processes",
                           d->hm.pids ? json_object_new_int(d->hm.pids->len) : NULL);
    json_object_object_add(h, "have_prediction", json_object_new_boolean(d->hm.have));
    json_object_object_add(h, "stale", json_object_new_boolean(d->hm.stale));
    json_object_object_add(h, "listing_cpu_seconds", json_object_new_double(d->hm.list_cpu_s));
    if (d->hm.have) {
        json_object_object_add(h, "processes", json_object_new_int(d->hm.processes));
        json_object_object_add(h, "registered_pages",
                               json_object_new_int64((gint64)d->hm.registered_pages));
        json_object_object_add(h, "predicted_pages_sharing",
                               json_object_new_int64((gint64)d->hm.pages_sharing));
        json_object_object_add(h, "predicted_saving_bytes",
                               json_object_new_int64((gint64)(d->hm.saved_pages * page)));
        json_object_object_add(h, "at", json_object_new_int64(d->hm.at));
        json_object_object_add(h, "age_seconds", json_object_new_int64(
            g_get_real_time() / G_USEC_PER_SEC - d->hm.at));
        json_object_object_add(h, "cpu_seconds", json_object_new_double(d->hm.cpu_s));
    }
    if (d->hm.error)
        json_object_object_add(h, "error", json_object_new_string(d->hm.error));
    return h;
}

json_object *
sd_model_to_json(SdDaemon *d)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "max_cpu_percent", json_object_new_double(d->cfg->model_max_cpu));
    json_object_object_add(o, "estimates", json_object_new_int(d->n_estimates));
    json_object_object_add(o, "cpu_seconds", json_object_new_double(d->model_cpu_s));
    json_object_object_add(o, "running", json_object_new_boolean(d->estimate_running));
    json_object_object_add(o, "host", sd_model_host_to_json(d));
    return o;
}
