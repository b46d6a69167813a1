/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-guests.c: samepaged's guests: libvirt events and reconnection, the
 * policy decision, marking
 *
 * Theory of operation
 *
 * A guest is seen to start by a libvirt lifecycle event, by the hook
 * ("started"), or when the daemon (re)connects and lists what runs.  Each
 * start queues an INSPECT job: in a worker thread, the domain XML (the
 * policy) and the guest's RAM regions as smaps shows them.  Back on the
 * loop, every inspected guest is decided again (policy or default, then
 * trust groups: sp_policy_decide(), sp_trust_decide()); a guest whose
 * mergeability differs from what smaps shows gets a MARK job: qom-set of
 * its backends' merge property, verified in smaps (sp_guest_set_merge()).
 * Jobs run one at a time; libvirt is reconnected only between jobs.  A
 * guest that stops on the way gets one clear log line and is forgotten.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include <unistd.h>

#include "samepaged.h"
#include "samepage/spguest.h"
#include "samepage/spproc.h"
#include "samepage/spscan.h"

typedef enum { JOB_INSPECT, JOB_MARK } SdJobKind;

/* Reports of one start found gone again within this are not logged twice. */
#define SD_GONE_QUIET_US (10 * G_USEC_PER_SEC)

typedef struct {
    SdJobKind kind;
    char *name;
    gboolean merge;                 /* MARK */
    gboolean dry_run;
    SpGuest *handle;                /* the guest's, lent for the job */
    gboolean regions_fresh;         /* handle's regions were read just before */
    gint64 regions_at_us;
    gint64 begun_us;
    /* shared, read-only while the job runs */
    SpLibvirt *lv;
    SpHost *host;
    /* results */
    char *xml_error;
    SpDomainPolicy *policy;
    char *policy_error;
    pid_t pid;
    GArray *ram;
    int numa_node;
    gboolean mergeable_now;
    gboolean gone;                  /* the guest stopped */
    gboolean changed;               /* MARK: something was written */
} SdJob;

static void
sd_job_free(SdJob *j)
{
    g_free(j->name);
    g_free(j->xml_error);
    sp_domain_policy_free(j->policy);
    g_free(j->policy_error);
    if (j->ram)
        g_array_unref(j->ram);
    sp_guest_free(j->handle);
    g_free(j);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SdJob, sd_job_free)

/* The table's keys or values (glib 2.74 has no _as_ptr_array). */
static GPtrArray *
sd_list(GHashTable *t, gboolean keys)
{
    GPtrArray *a = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(a, keys ? k : v);
    return a;
}

static void
sd_guest_free(SdGuest *g)
{
    g_free(g->name);
    g_free(g->uuid);
    sp_domain_policy_free(g->policy);
    g_free(g->policy_error);
    if (g->ram)
        g_array_unref(g->ram);
    g_free(g->reason);
    g_free(g->last_error);
    sp_guest_free(g->handle);
    g_free(g);
}

void
sd_guests_init(SdDaemon *d)
{
    d->guests = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                      (GDestroyNotify)sd_guest_free);
    d->jobs = g_queue_new();
    d->gone = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    d->trust_plan = g_ptr_array_new_with_free_func((GDestroyNotify)sd_trust_set_free);
    d->set_savings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void
sd_trust_set_free(SdTrustSet *s)
{
    g_free(s->key);
    g_free(s->group);
    g_strfreev(s->names);
    g_free(s);
}

void
sd_guests_finish(SdDaemon *d)
{
    g_queue_free_full(d->jobs, (GDestroyNotify)sd_job_free);
    g_hash_table_unref(d->guests);
    g_hash_table_unref(d->gone);
    g_ptr_array_unref(d->trust_plan);
    g_hash_table_unref(d->set_savings);
    sp_trust_decision_free(d->trust);
}

/* Whether @error says the guest is no longer there. */
static gboolean
error_is_gone(const GError *error)
{
    return g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN) ||
           g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NOT_RUNNING) ||
           g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID) ||
           g_error_matches(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS);
}

/* ------------------------------------------------------------ the jobs */

/* The guest's regions: every RAM region mergeable in smaps?  Its RAM
 * ranges, and its NUMA node when all its pages sit on one. */
static void
sd_job_read_regions(SdJob *j, SpGuest *g)
{
    GPtrArray *regions = sp_guest_get_regions(g);
    gboolean all = regions->len > 0;
    int node = -1;
    gboolean several = FALSE;

    for (guint i = 0; i < regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(regions, i);
        if (!r->vma || !r->vma_mergeable)
            all = FALSE;
        for (guint n = 0; r->node_pages && n < r->node_pages->len; n++) {
            if (g_array_index(r->node_pages, guint64, n) == 0)
                continue;
            if (node >= 0 && node != (int)n)
                several = TRUE;
            node = (int)n;
        }
    }
    j->mergeable_now = all;
    j->numa_node = several ? -1 : node;
    j->pid = sp_guest_get_pid(g);
    if (j->ram)
        g_array_unref(j->ram);
    j->ram = sp_guest_get_ram_ranges(g);
}

static gboolean
sd_job_inspect(SdJob *j, GError **error)
{
    g_autofree char *xml = sp_libvirt_get_xml(j->lv, j->name, error);
    g_autoptr(GError) perr = NULL;

    if (!xml)
        return FALSE;
    j->policy = sp_domain_policy_from_xml(xml, &perr);
    if (!j->policy)
        j->policy_error = g_strdup(perr->message);
    if (!j->handle)
        j->handle = sp_libvirt_get_guest(j->lv, j->host, j->name, error);
    if (!j->handle || !sp_guest_load_regions(j->handle, j->host, error))
        return FALSE;
    j->regions_at_us = g_get_monotonic_time();
    sd_job_read_regions(j, j->handle);
    return TRUE;
}

static gboolean
sd_job_mark(SdJob *j, GError **error)
{
    SpGuest *g;

    if (!j->handle) {
        j->handle = sp_libvirt_get_guest(j->lv, j->host, j->name, error);
        j->regions_fresh = FALSE;
    }
    g = j->handle;
    /* Right after an inspection the regions just read still hold. */
    if (!g || (!j->regions_fresh && !sp_guest_load_regions(g, j->host, error)))
        return FALSE;
    sd_job_read_regions(j, g);
    if (j->mergeable_now == j->merge || j->dry_run)
        return TRUE;
    /* Unmarking unmerges: the rule `samepage mark --off` follows. */
    if (!j->merge && !sp_guest_unmerge_check(g, j->host, error))
        return FALSE;
    if (!sp_guest_set_merge(g, j->host, NULL, j->merge, error))
        return FALSE;
    j->changed = TRUE;
    j->regions_at_us = g_get_monotonic_time();
    sd_job_read_regions(j, g);
    return TRUE;
}

static void
sd_job_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    SdJob *j = data;
    GError *error = NULL;
    gboolean ok = j->kind == JOB_INSPECT ? sd_job_inspect(j, &error) : sd_job_mark(j, &error);

    if (ok)
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
}

static void sd_jobs_next(SdDaemon *d);

static SdGuest *
sd_guest_get(SdDaemon *d, const char *name, const char *uuid)
{
    SdGuest *g = g_hash_table_lookup(d->guests, name);

    if (!g) {
        g = g_new0(SdGuest, 1);
        g->name = g_strdup(name);
        g->numa_node = -1;
        g->mark_delay_s = -1;
        g->predicted_saving = -1;
        g_hash_table_insert(d->guests, g->name, g);
    }
    if (uuid && *uuid && g_strcmp0(g->uuid, uuid) != 0) {
        g_free(g->uuid);
        g->uuid = g_strdup(uuid);
    }
    return g;
}

static void
sd_job_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdDaemon *d = user_data;
    GTask *task = G_TASK(res);
    SdJob *j = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    SdGuest *g;

    d->job_running = FALSE;
    g_task_propagate_boolean(task, &error);
    g_debug("guest %s: %s job took %.3f s%s", j->name, j->kind == JOB_INSPECT ? "inspect" : "mark",
            (g_get_monotonic_time() - j->begun_us) / 1e6,
            j->regions_fresh ? " (regions of the inspection reused)" : "");
    g = g_hash_table_lookup(d->guests, j->name);
    if (!g) {
        /* Stopped while the job ran; sd_guest_stopped() said so. */
        sd_jobs_next(d);
        return;
    }
    g->job_queued = FALSE;
    if (error && error_is_gone(error)) {
        /* One start is reported by the hook ("started"), the lifecycle
         * event and a reconnection's listing: once the guest is found
         * gone and forgotten, a later report of the same start makes a
         * new guest whose job fails too.  One line per start: the same
         * name found gone again within SD_GONE_QUIET_US, with no
         * successful inspection since, is a debug line. */
        gint64 now = g_get_monotonic_time();
        const gint64 *at = g_hash_table_lookup(d->gone, j->name);
        if (at && now - *at < SD_GONE_QUIET_US) {
            g_debug("guest %s: stopped before its policy could be applied (again: %s)", j->name,
                    error->message);
        } else {
            g_message("guest %s: stopped before its policy could be applied (%s)", j->name,
                      error->message);
            g_hash_table_replace(d->gone, g_strdup(j->name), g_memdup2(&now, sizeof now));
        }
        g_hash_table_remove(d->guests, j->name);
        sd_guests_redecide(d);
        sd_model_schedule(d);
        sd_jobs_next(d);
        return;
    }
    if (error) {
        g_warning("guest %s: %s: %s", j->name,
                  j->kind == JOB_INSPECT ? "cannot inspect" : "cannot change marking",
                  error->message);
        g_free(g->last_error);
        g->last_error = g_strdup(error->message);
        if (!d->connected || !sp_libvirt_is_alive(d->lv)) {
            /* The reconnection re-inspects it. */
            g->inspected = FALSE;
        }
        sd_jobs_next(d);
        return;
    }
    g_clear_pointer(&g->last_error, g_free);
    sp_guest_free(g->handle);
    g->handle = g_steal_pointer(&j->handle);
    if (j->regions_at_us)
        g->regions_at_us = j->regions_at_us;
    g->pid = j->pid;
    if (g->ram)
        g_array_unref(g->ram);
    g->ram = g_steal_pointer(&j->ram);
    g->numa_node = j->numa_node;
    g->mergeable_now = j->mergeable_now;
    if (j->kind == JOB_INSPECT) {
        gboolean first = !g->inspected;
        g_hash_table_remove(d->gone, g->name);     /* it runs: a new start */
        g->inspected = TRUE;
        sp_domain_policy_free(g->policy);
        g->policy = g_steal_pointer(&j->policy);
        g_free(g->policy_error);
        g->policy_error = g_steal_pointer(&j->policy_error);
        if (g->policy && g->policy->uuid && !g->uuid)
            g->uuid = g_strdup(g->policy->uuid);
        if (g->policy_error)
            g_warning("guest %s: invalid samepage metadata, its marking is left as it is "
                      "(%s)", g->name, g->policy_error);
        if (first) {
            g->estimate_stale = TRUE;
            sd_model_schedule(d);
        }
        sd_guests_redecide(d);
    } else {
        double delay = g->started_us ? (g_get_monotonic_time() - g->started_us) / 1e6 : -1;
        if (j->dry_run && j->mergeable_now != j->merge) {
            g_message("guest %s: dry run: would %s its RAM (%s)", g->name,
                      j->merge ? "mark" : "unmark", g->reason);
        } else if (j->changed) {
            g->mark_delay_s = delay;
            if (delay >= 0)
                g_message("guest %s: %s, verified in smaps, %.3f s after its start (%s)",
                          g->name, j->merge ? "marked mergeable" : "unmarked", delay,
                          g->reason);
            else
                g_message("guest %s: %s, verified in smaps (%s)", g->name,
                          j->merge ? "marked mergeable" : "unmarked", g->reason);
        } else {
            if (g->started_us)
                g->mark_delay_s = delay;
            g_message("guest %s: already %s in smaps (%s)", g->name,
                      j->merge ? "mergeable" : "not mergeable", g->reason);
        }
        g->started_us = 0;
        sd_metrics_write_textfile(d);
    }
    sd_jobs_next(d);
}

static void
sd_jobs_next(SdDaemon *d)
{
    SdJob *j;
    GTask *task;

    if (d->job_running || !d->connected || d->quitting)
        goto idle;
    j = g_queue_pop_head(d->jobs);
    if (!j)
        goto idle;
    if (!g_hash_table_contains(d->guests, j->name)) {
        sd_job_free(j);
        sd_jobs_next(d);
        return;
    }
    j->lv = d->lv;
    j->host = d->host;
    j->dry_run = d->dry_run;
    {
        SdGuest *g = g_hash_table_lookup(d->guests, j->name);
        j->handle = g_steal_pointer(&g->handle);
        j->regions_fresh = j->handle &&
                           g_get_monotonic_time() - g->regions_at_us < 2 * G_USEC_PER_SEC;
    }
    d->job_running = TRUE;
    j->begun_us = g_get_monotonic_time();
    task = g_task_new(NULL, NULL, sd_job_done, d);
    g_task_set_task_data(task, j, (GDestroyNotify)sd_job_free);
    g_task_run_in_thread(task, sd_job_thread);
    g_object_unref(task);
    return;

idle:
    if (d->oneshot && sd_guests_idle(d))
        g_main_loop_quit(d->loop);
}

gboolean
sd_guests_idle(SdDaemon *d)
{
    return !d->job_running && g_queue_is_empty(d->jobs);
}

static void
sd_job_queue(SdDaemon *d, SdGuest *g, SdJobKind kind, gboolean merge)
{
    SdJob *j = g_new0(SdJob, 1);

    j->kind = kind;
    j->name = g_strdup(g->name);
    j->merge = merge;
    j->numa_node = -1;
    g->job_queued = TRUE;
    g_queue_push_tail(d->jobs, j);
    sd_jobs_next(d);
}

/* --------------------------------------------------------- decisions */

void
sd_guests_redecide(SdDaemon *d)
{
    g_autoptr(GPtrArray) list = sd_list(d->guests, FALSE);
    g_autoptr(GArray) tg = g_array_new(FALSE, TRUE, sizeof(SpTrustGuest));
    g_autoptr(GPtrArray) reasons = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) decided = g_ptr_array_new();
    g_autoptr(GArray) estimates = g_array_new(FALSE, TRUE, sizeof(SpTrustEstimate));
    SpTrustHost th = { .allow_mixing = d->cfg->allow_mixing, .n_numa_nodes = 1,
                       .merge_across_nodes = TRUE };
    SpKsmState ks;
    g_autofree char *old_reason = d->trust ? g_strdup(d->trust->reason) : NULL;

    sd_controller_update_committed(d);     /* the guests came or went */
    if (sp_ksm_read(d->host, &ks, NULL) && ks.entry[SP_KSM_MERGE_ACROSS_NODES].supported)
        th.merge_across_nodes = ks.entry[SP_KSM_MERGE_ACROSS_NODES].value != 0;
    th.n_numa_nodes = 0;
    for (guint n = 0; n < 64; n++) {
        g_autofree char *p = sp_host_sysfs_path(d->host, "devices/system/node/node%u", n);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            th.n_numa_nodes++;
    }
    th.n_numa_nodes = MAX(th.n_numa_nodes, 1);

    for (guint i = 0; i < list->len; i++) {
        SdGuest *g = list->pdata[i];
        SpTrustGuest t = { 0 };
        char *reason = NULL;

        if (!g->inspected || !g->policy)
            continue;
        t.name = g->name;
        t.group = g->policy->group ? g->policy->group : d->cfg->default_group;
        t.wants_merge = sp_policy_decide(g->policy, d->cfg->merge_default, &reason);
        t.required = g->policy->merge == SP_POLICY_MERGE_REQUIRED;
        t.numa_node = g->numa_node;
        t.predicted_saving = g->predicted_saving;
        g_array_append_val(tg, t);
        g_ptr_array_add(reasons, reason);
        g_ptr_array_add(decided, g);
    }
    /* What the isolation costs: the sets of guests to estimate together,
     * and the estimates the model has made of them. */
    {
        g_autoptr(GPtrArray) plan = sp_trust_plan_estimates((const SpTrustGuest *)tg->data,
                                                            tg->len);
        g_ptr_array_set_size(d->trust_plan, 0);
        for (guint p = 0; p < plan->len; p++) {
            const SpTrustEstimateSet *set = plan->pdata[p];
            SdTrustSet *ts = g_new0(SdTrustSet, 1);
            const gint64 *saving = g_hash_table_lookup(d->set_savings, set->key);

            ts->key = g_strdup(set->key);
            ts->group = g_strdup(set->group);
            ts->names = g_new0(char *, set->guests->len + 1);
            for (guint i = 0; i < set->guests->len; i++)
                ts->names[i] = g_strdup(((SdGuest *)decided->pdata[
                    g_array_index(set->guests, guint, i)])->name);
            g_ptr_array_add(d->trust_plan, ts);
            if (saving && *saving >= 0) {
                SpTrustEstimate e = { .group = ts->group, .saving = *saving };
                g_array_append_val(estimates, e);
            }
        }
        th.estimates = (const SpTrustEstimate *)estimates->data;
        th.n_estimates = estimates->len;
    }
    sp_trust_decision_free(d->trust);
    d->trust = sp_trust_decide((const SpTrustGuest *)tg->data, tg->len, &th);
    if (g_strcmp0(old_reason, d->trust->reason) != 0 && tg->len > 0)
        g_message("trust groups: %s", d->trust->reason);

    for (guint i = 0; i < decided->len; i++) {
        SdGuest *g = decided->pdata[i];
        const SpTrustVerdict *v = &g_array_index(d->trust->verdicts, SpTrustVerdict, i);
        const char *policy_reason = reasons->pdata[i];
        g_autofree char *reason = v->reason ? g_strdup_printf("%s; %s", policy_reason, v->reason)
                                            : g_strdup(policy_reason);
        gboolean changed = !g->decided || g->target != v->mergeable ||
                           g_strcmp0(g->reason, reason) != 0;

        g->decided = TRUE;
        g->target = v->mergeable;
        g_free(g->reason);
        g->reason = g_steal_pointer(&reason);
        if (changed)
            g_message("guest %s: decision: %s (%s)", g->name,
                      g->target ? "mergeable" : "not mergeable", g->reason);
        if ((changed || g->mergeable_now != g->target) && !g->job_queued)
            sd_job_queue(d, g, JOB_MARK, g->target);
    }
    if (d->trust_plan->len > 0)
        sd_model_kick(d);     /* sets not estimated yet */
}

/* ------------------------------------------------- starts and stops */

void
sd_guest_started(SdDaemon *d, const char *name, const char *uuid, const char *how)
{
    SdGuest *g = sd_guest_get(d, name, uuid);

    g_debug("guest %s: started (%s)", name, how);
    if (!g->started_us) {
        g->started_us = g_get_monotonic_time();
        if (d->controller)
            sp_controller_guest_started(d->controller);
    }
    if (!g->job_queued)
        sd_job_queue(d, g, JOB_INSPECT, FALSE);
}

void
sd_guest_stopped(SdDaemon *d, const char *name, const char *how)
{
    if (!g_hash_table_remove(d->guests, name))
        return;
    g_message("guest %s: stopped (%s)", name, how);
    sd_metrics_write_textfile(d);
    sd_guests_redecide(d);
    sd_model_schedule(d);
}

/* Every running guest inspected again (start-up, reconnection, reload);
 * guests that no longer run are forgotten. */
void
sd_guests_refresh_all(SdDaemon *d, const char *why)
{
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) names = sp_libvirt_list_running(d->lv, &error);
    g_autoptr(GPtrArray) known = NULL;

    if (!names) {
        g_warning("cannot list the running guests: %s", error->message);
        return;
    }
    known = sd_list(d->guests, TRUE);
    for (guint i = 0; i < known->len; i++) {
        const char *name = known->pdata[i];
        if (!g_strv_contains((const char *const *)names, name)) {
            g_message("guest %s: no longer running", name);
            g_hash_table_remove(d->guests, name);
        }
    }
    g_message("%s: applying the policy to %u running guest%s", why, g_strv_length(names),
              g_strv_length(names) == 1 ? "" : "s");
    for (guint i = 0; names[i]; i++) {
        SdGuest *g = sd_guest_get(d, names[i], NULL);
        g->decided = FALSE;
        /* A handle of the previous connection (or QEMU) is no use. */
        g_clear_pointer(&g->handle, sp_guest_free);
        if (!g->job_queued)
            sd_job_queue(d, g, JOB_INSPECT, FALSE);
    }
    sd_guests_redecide(d);
}

/* ----------------------------------------------------------- libvirt */

static void sd_on_closed(const char *reason, gpointer user_data);

static void
sd_on_lifecycle(const char *name, const char *uuid, SpLibvirtEvent event, gpointer user_data)
{
    SdDaemon *d = user_data;

    if (event == SP_LIBVIRT_EVENT_STARTED)
        sd_guest_started(d, name, uuid, "libvirt event");
    else if (event == SP_LIBVIRT_EVENT_STOPPED)
        sd_guest_stopped(d, name, "libvirt event");
}

static gboolean sd_reconnect_tick(gpointer user_data);

gboolean
sd_libvirt_connect(SdDaemon *d, GError **error)
{
    if (d->lv && g_strcmp0(sp_libvirt_get_uri(d->lv), d->cfg->libvirt_uri) != 0)
        g_clear_pointer(&d->lv, sp_libvirt_free);      /* the URI changed on reload */
    if (!d->lv) {
        d->lv = sp_libvirt_open(d->cfg->libvirt_uri, error);
        if (!d->lv)
            return FALSE;
    } else if (!sp_libvirt_reconnect(d->lv, error)) {
        return FALSE;
    }
    if (!d->oneshot && !sp_libvirt_watch(d->lv, sd_on_lifecycle, sd_on_closed, d, error))
        return FALSE;
    d->connected = TRUE;
    return TRUE;
}

static gboolean
sd_reconnect_tick(gpointer user_data)
{
    SdDaemon *d = user_data;
    g_autoptr(GError) error = NULL;

    if (d->job_running)
        return G_SOURCE_CONTINUE;     /* the worker still holds the old connection */
    if (!sd_libvirt_connect(d, &error)) {
        g_debug("reconnect: %s", error->message);
        return G_SOURCE_CONTINUE;
    }
    d->reconnect_id = 0;
    d->n_reconnects++;
    g_message("reconnected to %s after %.1f s", d->cfg->libvirt_uri,
              (g_get_monotonic_time() - d->disconnected_us) / 1e6);
    sd_guests_refresh_all(d, "reconnected");
    return G_SOURCE_REMOVE;
}

void
sd_libvirt_retry(SdDaemon *d)
{
    if (!d->reconnect_id)
        d->reconnect_id = g_timeout_add(1000, sd_reconnect_tick, d);
}

static gboolean
sd_closed_idle(gpointer user_data)
{
    SdDaemon *d = user_data;

    if (!d->reconnect_id)
        d->reconnect_id = g_timeout_add(1000, sd_reconnect_tick, d);
    return G_SOURCE_REMOVE;
}

static void
sd_on_closed(const char *reason, gpointer user_data)
{
    SdDaemon *d = user_data;

    if (!d->connected)
        return;
    d->connected = FALSE;
    d->disconnected_us = g_get_monotonic_time();
    g_warning("libvirt connection to %s closed (%s): reconnecting every second",
              d->cfg->libvirt_uri, reason);
    /* Not from inside libvirt's callback: the reconnect closes this
     * connection. */
    g_idle_add(sd_closed_idle, d);
}

/* ------------------------------------------------------------- JSON */

static int
sd_cmp_names(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

json_object *
sd_guests_to_json(SdDaemon *d)
{
    g_autoptr(GPtrArray) names = sd_list(d->guests, TRUE);
    json_object *arr = json_object_new_array();

    g_ptr_array_sort(names, sd_cmp_names);
    for (guint i = 0; i < names->len; i++) {
        SdGuest *g = g_hash_table_lookup(d->guests, names->pdata[i]);
        json_object *o = json_object_new_object();
        SpKsmStat k = { 0 };

        json_object_object_add(o, "domain", json_object_new_string(g->name));
        json_object_object_add(o, "uuid", g->uuid ? json_object_new_string(g->uuid) : NULL);
        json_object_object_add(o, "pid", g->pid ? json_object_new_int(g->pid) : NULL);
        json_object_object_add(o, "inspected", json_object_new_boolean(g->inspected));
        json_object_object_add(o, "policy", json_object_new_string(
            g->policy ? sp_policy_merge_to_string(g->policy->merge) : "invalid"));
        json_object_object_add(o, "group", json_object_new_string(
            g->policy && g->policy->group ? g->policy->group : d->cfg->default_group));
        json_object_object_add(o, "nosharepages",
                               json_object_new_boolean(g->policy && g->policy->nosharepages));
        json_object_object_add(o, "mergeable", json_object_new_boolean(g->decided && g->target));
        json_object_object_add(o, "marked", json_object_new_boolean(g->mergeable_now));
        json_object_object_add(o, "reason", json_object_new_string(
            g->policy_error ? g->policy_error : g->reason ? g->reason : "not decided yet"));
        json_object_object_add(o, "mark_delay_s",
                               g->mark_delay_s >= 0 ? json_object_new_double(g->mark_delay_s)
                                                    : NULL);
        json_object_object_add(o, "numa_node",
                               g->numa_node >= 0 ? json_object_new_int(g->numa_node) : NULL);
        if (g->pid && sp_ksm_stat_read(d->host, g->pid, &k, NULL)) {
            json_object_object_add(o, "ksm_merging_pages",
                                   json_object_new_int64(k.ksm_merging_pages));
            json_object_object_add(o, "ksm_process_profit",
                                   json_object_new_int64(k.ksm_process_profit));
        }
        if (g->predicted_saving >= 0) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "saved_bytes", json_object_new_int64(g->predicted_saving));
            json_object_object_add(p, "merging_pages",
                                   json_object_new_int64((gint64)g->predicted_pages));
            json_object_object_add(p, "at", json_object_new_int64(g->predicted_at));
            json_object_object_add(o, "prediction", p);
        } else {
            json_object_object_add(o, "prediction", NULL);
        }
        json_object_object_add(o, "error",
                               g->last_error ? json_object_new_string(g->last_error) : NULL);
        json_object_array_add(arr, o);
    }
    return arr;
}

json_object *
sd_trust_to_json(SdDaemon *d)
{
    json_object *o = json_object_new_object();
    json_object *groups = json_object_new_array();

    json_object_object_add(o, "allow_mixing", json_object_new_boolean(d->cfg->allow_mixing));
    for (guint i = 0; d->trust && d->trust->groups[i]; i++)
        json_object_array_add(groups, json_object_new_string(d->trust->groups[i]));
    json_object_object_add(o, "mergeable_groups", groups);
    json_object_object_add(o, "reason",
                           json_object_new_string(d->trust ? d->trust->reason : "no guests"));
    json_object_object_add(o, "predicted_saving_bytes",
                           d->trust && d->trust->saving_chosen >= 0
                               ? json_object_new_int64(d->trust->saving_chosen) : NULL);
    json_object_object_add(o, "predicted_saving_mixed_bytes",
                           d->trust && d->trust->saving_mixed >= 0
                               ? json_object_new_int64(d->trust->saving_mixed) : NULL);
    /* What the isolation costs: each group's guests together, all mixed. */
    json_object_object_add(o, "mixed_estimated_together",
                           json_object_new_boolean(d->trust && d->trust->mixed_together));
    json_object_object_add(o, "isolation_cost_bytes",
                           d->trust && d->trust->saving_mixed >= 0 && d->trust->saving_chosen >= 0
                               ? json_object_new_int64(d->trust->saving_mixed -
                                                       d->trust->saving_chosen)
                               : NULL);
    {
        json_object *per = json_object_new_array();
        guint pending = 0;

        for (guint i = 0; d->trust && d->trust->group_savings && i < d->trust->group_savings->len;
             i++) {
            const SpTrustGroupSaving *gs =
                &g_array_index(d->trust->group_savings, SpTrustGroupSaving, i);
            json_object *go = json_object_new_object();
            json_object_object_add(go, "group", json_object_new_string(gs->group));
            json_object_object_add(go, "guests", json_object_new_int(gs->n_guests));
            json_object_object_add(go, "mergeable", json_object_new_boolean(gs->mergeable));
            json_object_object_add(go, "predicted_saving_bytes",
                                   gs->saving >= 0 ? json_object_new_int64(gs->saving) : NULL);
            json_object_object_add(go, "estimated_together", json_object_new_boolean(gs->together));
            json_object_array_add(per, go);
        }
        json_object_object_add(o, "groups", per);
        for (guint p = 0; p < d->trust_plan->len; p++) {
            const SdTrustSet *ts = d->trust_plan->pdata[p];
            if (!g_hash_table_contains(d->set_savings, ts->key))
                pending++;
        }
        json_object_object_add(o, "estimates_pending", json_object_new_int(pending));
    }
    return o;
}
