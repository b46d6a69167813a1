/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-metrics.c: samepaged's Prometheus metrics
 *
 * The daemon's state as an SpMetricsSnapshot (KSM sysfs, ksmd's CPU, each
 * guest's marking, ksm_stat and prediction, the controller), rendered by
 * SpMetrics for GET /metrics on [metrics] listen and written into
 * [metrics] textfile every SD_METRICS_TEXTFILE_S seconds and when a guest
 * comes or goes.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include <unistd.h>

#include "samepaged.h"
#include "samepage/spmetrics.h"
#include "samepage/spmetricsfile.h"
#include "samepage/spmetricsserver.h"
#include "samepage/spproc.h"

#define SD_METRICS_TEXTFILE_S 15

static SpMetricsSnapshot *
sd_metrics_snapshot(SdDaemon *d)
{
    g_autoptr(SpMetricsSnapshot) snap = sp_metrics_snapshot_new();
    GHashTableIter it;
    gpointer k, v;
    pid_t ksmd;
    gint64 now = g_get_real_time() / G_USEC_PER_SEC, oldest = 0;
    guint64 saving = 0, pages = 0;
    gboolean any = FALSE;

    snap->page_size = sysconf(_SC_PAGESIZE);
    snap->have_ksm = sp_ksm_read(d->host, &snap->ksm, NULL);
    ksmd = sp_proc_find_ksmd(d->host);
    if (ksmd > 0) {
        g_auto(SpProcStat) st = { 0 };
        if (sp_proc_read_stat(d->host, ksmd, &st, NULL)) {
            snap->have_ksmd_cpu = TRUE;
            snap->ksmd_cpu_seconds = (double)(st.utime + st.stime) / sysconf(_SC_CLK_TCK);
        }
    }
    g_hash_table_iter_init(&it, d->guests);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        SdGuest *g = v;
        SpMetricsGuest *mg = sp_metrics_snapshot_add_guest(snap, g->name, g->uuid ? g->uuid : "");
        SpKsmStat ks = { 0 };

        mg->mergeable = g->mergeable_now;
        sp_metrics_set_string(&mg->group, g->policy && g->policy->group ? g->policy->group
                                                                       : d->cfg->default_group);
        if (g->pid && sp_ksm_stat_read(d->host, g->pid, &ks, NULL) && ks.present) {
            mg->have_ksm_stat = TRUE;
            mg->merging_pages = ks.ksm_merging_pages;
            mg->have_profit = TRUE;
            mg->profit_bytes = ks.ksm_process_profit;
        }
        if (g->predicted_saving >= 0) {
            mg->have_prediction = TRUE;
            mg->predicted_saving_bytes = g->predicted_saving;
            saving += g->predicted_saving;
            pages += g->predicted_saving / snap->page_size;
            if (!any || g->predicted_at < oldest)
                oldest = g->predicted_at;
            any = TRUE;
        }
    }
    /* Trust groups: each group's predicted saving, and all mixed. */
    for (guint i = 0; d->trust && d->trust->group_savings && i < d->trust->group_savings->len; i++) {
        const SpTrustGroupSaving *gs = &g_array_index(d->trust->group_savings,
                                                      SpTrustGroupSaving, i);
        SpMetricsTrustGroup *t = sp_metrics_snapshot_add_trust_group(snap, gs->group);
        t->mergeable = gs->mergeable;
        t->have_saving = gs->saving >= 0;
        t->predicted_saving_bytes = gs->saving >= 0 ? (guint64)gs->saving : 0;
    }
    if (d->trust && d->trust->group_savings && d->trust->group_savings->len > 0) {
        snap->have_trust_mixed = d->trust->saving_mixed >= 0;
        snap->trust_mixed_saving_bytes = MAX(d->trust->saving_mixed, 0);
        snap->have_trust_chosen = d->trust->saving_chosen >= 0;
        snap->trust_chosen_saving_bytes = MAX(d->trust->saving_chosen, 0);
    }
    /* The whole host: every process registered with KSM, guests or not;
     * until the host model has run, the guests' predictions. */
    if (d->hm.have) {
        snap->have_prediction = TRUE;
        snap->predicted_pages_sharing = d->hm.pages_sharing;
        snap->predicted_saving_bytes = d->hm.saved_pages * snap->page_size;
        snap->prediction_age_seconds = now - d->hm.at;
    } else if (any) {
        snap->have_prediction = TRUE;
        snap->predicted_saving_bytes = saving;
        snap->predicted_pages_sharing = pages;
        snap->prediction_age_seconds = now - oldest;
    }
    snap->have_controller = TRUE;
    sp_metrics_set_string(&snap->controller_mode, sp_control_mode_name(d->cfg->mode));
    if (d->controller && sp_controller_get_decision(d->controller)) {
        const SpControlDecision *dec = sp_controller_get_decision(d->controller);
        sp_metrics_set_string(&snap->controller_reason, dec->reason);
        if (snap->have_ksm) {
            /* 0 in a decision: left as it is (the advisor owns it) */
            snap->controller_pages_to_scan = dec->pages_to_scan
                ? dec->pages_to_scan : snap->ksm.entry[SP_KSM_PAGES_TO_SCAN].value;
            snap->controller_sleep_ms = dec->sleep_ms
                ? dec->sleep_ms : snap->ksm.entry[SP_KSM_SLEEP_MILLISECS].value;
        }
        return g_steal_pointer(&snap);
    }
    sp_metrics_set_string(&snap->controller_reason,
                          d->controller ? "no decision yet"
                          : d->ksm_applied ? "static: the [ksm] knobs applied at start"
                                           : "static: no [ksm] knobs configured");
    if (snap->have_ksm) {
        snap->controller_pages_to_scan = snap->ksm.entry[SP_KSM_PAGES_TO_SCAN].value;
        snap->controller_sleep_ms = snap->ksm.entry[SP_KSM_SLEEP_MILLISECS].value;
    }
    return g_steal_pointer(&snap);
}

static char *
sd_metrics_render(gpointer user_data)
{
    g_autoptr(SpMetricsSnapshot) snap = sd_metrics_snapshot(user_data);
    return sp_metrics_render(snap);
}

static void
sd_metrics_written(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdDaemon *d = user_data;
    g_autoptr(GError) error = NULL;

    d->metrics_writing = FALSE;
    if (!sp_metrics_textfile_write_finish(res, &error)) {
        if (!d->metrics_textfile_failed)
            g_warning("metrics: %s", error->message);
        d->metrics_textfile_failed = TRUE;
    } else {
        d->metrics_textfile_failed = FALSE;
    }
    if (d->metrics_again) {
        d->metrics_again = FALSE;
        sd_metrics_write_textfile(d);
    }
}

/* Rendered on the loop, written (fsync, rename) in a worker; one write at
 * a time, a request meanwhile makes one more. */
void
sd_metrics_write_textfile(SdDaemon *d)
{
    g_autofree char *text = NULL;

    if (!d->cfg->metrics_textfile || d->quitting)
        return;
    if (d->metrics_writing) {
        d->metrics_again = TRUE;
        return;
    }
    text = sd_metrics_render(d);
    d->metrics_writing = TRUE;
    sp_metrics_textfile_write_async(d->cfg->metrics_textfile, text, NULL, sd_metrics_written, d);
}

static gboolean
sd_metrics_tick(gpointer user_data)
{
    sd_metrics_write_textfile(user_data);
    return G_SOURCE_CONTINUE;
}

gboolean
sd_metrics_start(SdDaemon *d, GError **error)
{
    if (d->cfg->metrics_listen) {
        d->metrics_server = sp_metrics_server_new(d->cfg->metrics_listen, sd_metrics_render, d,
                                                  NULL, error);
        if (!d->metrics_server) {
            g_prefix_error(error, "[metrics] listen = %s: ", d->cfg->metrics_listen);
            return FALSE;
        }
        g_message("metrics on http://%s/metrics",
                  sp_metrics_server_get_address(d->metrics_server));
    }
    if (d->cfg->metrics_textfile) {
        sd_metrics_write_textfile(d);
        d->metrics_timer = g_timeout_add_seconds(SD_METRICS_TEXTFILE_S, sd_metrics_tick, d);
        g_message("metrics written to %s every %d s", d->cfg->metrics_textfile,
                  SD_METRICS_TEXTFILE_S);
    }
    return TRUE;
}

/* On reload: [metrics] listen and textfile as @cfg (the new configuration)
 * says.  A new address is bound before the old listener is closed; when
 * it cannot be bound the old listener (and its address in @cfg) stays,
 * with a warning: a reload never leaves the daemon without the metrics it
 * served. */
void
sd_metrics_reload(SdDaemon *d, SpConfig *cfg)
{
    if (g_strcmp0(cfg->metrics_listen, d->cfg->metrics_listen) != 0) {
        g_autoptr(GError) error = NULL;
        struct _SpMetricsServer *server = NULL;

        if (cfg->metrics_listen)
            server = sp_metrics_server_new(cfg->metrics_listen, sd_metrics_render, d, NULL,
                                           &error);
        if (cfg->metrics_listen && !server) {
            g_warning("reload: [metrics] listen = %s: %s; still serving on %s", cfg->metrics_listen,
                      error->message, d->cfg->metrics_listen ? d->cfg->metrics_listen : "nothing");
            g_free(cfg->metrics_listen);
            cfg->metrics_listen = g_strdup(d->cfg->metrics_listen);
        } else {
            g_clear_pointer(&d->metrics_server, sp_metrics_server_free);
            d->metrics_server = server;
            if (server)
                g_message("reload: metrics now on http://%s/metrics",
                          sp_metrics_server_get_address(server));
            else
                g_message("reload: metrics no longer served ([metrics] listen unset)");
        }
    }
    if (g_strcmp0(cfg->metrics_textfile, d->cfg->metrics_textfile) != 0) {
        if (cfg->metrics_textfile && !d->metrics_timer)
            d->metrics_timer = g_timeout_add_seconds(SD_METRICS_TEXTFILE_S, sd_metrics_tick, d);
        if (!cfg->metrics_textfile && d->metrics_timer)
            g_clear_handle_id(&d->metrics_timer, g_source_remove);
        d->metrics_textfile_failed = FALSE;
        g_message("reload: metrics textfile %s", cfg->metrics_textfile ? cfg->metrics_textfile
                                                                        : "no longer written");
    }
}

void
sd_metrics_stop(SdDaemon *d)
{
    if (d->metrics_timer)
        g_source_remove(d->metrics_timer);
    d->metrics_timer = 0;
    g_clear_pointer(&d->metrics_server, sp_metrics_server_free);
}
