/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spresults.c: the results model of an experiment's runs
 *
 * Theory of operation
 *
 * A sample keeps what was measured; everything else is derived when asked
 * (sp_exp_sample_derive()), so a figure cannot disagree with the one it
 * comes from.  Guest RAM without KSM (the denominator) is what the census
 * found resident plus the zero-page mappings gained since t=0 (a THP split
 * or KSM's use_zero_pages made them, and before 6.12 they were KSM pages).
 * The steady state of a run is the mean over the last third of its sampled
 * time, at least one sample after run=1; a run with fewer than two samples
 * has none (valid FALSE), and the JSON says null then.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-results"

#include <string.h>

#include "samepage/spresults.h"

/* ================================================================ samples */
void
sp_exp_sample_clear(SpExpSample *s)
{
    g_clear_pointer(&s->guests, g_array_unref);
}

void
sp_exp_sample_derive(const SpExpSample *s, SpExpDerived *d)
{
    const SpCensusTotals *c = &s->census;
    gint64 sys;

    memset(d, 0, sizeof(*d));
    d->denominator = c->total.resident_pages + s->zero_freed_pages;
    d->shared = c->ksm_frames;
    d->sharing = SP_CENSUS_SHARING(c);
    d->sharing_zero = SP_CENSUS_SHARING_ZERO(c);
    d->saved = d->sharing + s->zero_freed_pages;
    d->saved_zero = d->sharing_zero + s->zero_freed_pages;
    d->saved_nonzero = d->saved - d->saved_zero;
    if (d->denominator) {
        /* Deduplicated memory: mapping a KSM page, or remapped to the zero
         * page by a THP split since t=0 (before 6.12 KSM merged those into
         * a zero-filled KSM page, and they counted here). */
        d->shared_pct = 100.0 * (double)(c->total.ksm_pages + s->zero_freed_pages) /
            (double)d->denominator;
        d->reclaimed_pct = 100.0 * (double)d->saved / (double)d->denominator;
    }
    if (s->prediction.valid) {
        d->pred_saved = s->prediction.saved_zero + s->prediction.saved_nonzero +
            s->prediction.zero_freed_at;
        d->pred_saved_zero = s->prediction.saved_zero + s->prediction.zero_freed_at;
    }
    sys = s->ksm.entry[SP_KSM_PAGES_SHARED].value + s->ksm.entry[SP_KSM_PAGES_SHARING].value;
    d->other_ksm_pages = sys - (gint64)c->total.ksm_pages;
    for (guint i = 0; s->guests && i < s->guests->len; i++) {
        const SpExpGuestSample *g = &g_array_index(s->guests, SpExpGuestSample, i);
        d->stat_merging += MAX(g->ksm_merging_pages, 0);
        d->stat_zero += MAX(g->ksm_zero_pages, 0);
    }
}

static void
sp_exp_guest_info_clear(gpointer p)
{
    SpExpGuestInfo *g = p;

    g_free(g->name);
    g_free(g->uuid);
    g_free(g->mac);
    g_free(g->overlay);
    g_free(g->serial_log);
}

static void
sp_exp_sample_clear_func(gpointer p)
{
    sp_exp_sample_clear(p);
}

SpExpRun *
sp_exp_run_new(guint index, guint n_vms)
{
    SpExpRun *r = g_new0(SpExpRun, 1);

    r->index = index;
    r->n_vms = n_vms;
    r->guests = g_array_new(FALSE, TRUE, sizeof(SpExpGuestInfo));
    g_array_set_clear_func(r->guests, sp_exp_guest_info_clear);
    r->samples = g_array_new(FALSE, TRUE, sizeof(SpExpSample));
    g_array_set_clear_func(r->samples, sp_exp_sample_clear_func);
    return r;
}

void
sp_exp_run_free(SpExpRun *run)
{
    if (!run)
        return;
    g_free(run->dir);
    g_array_unref(run->guests);
    g_array_unref(run->samples);
    g_free(run->incomplete_reason);
    g_free(run->disturbed);
    g_free(run);
}

/**
 * sp_exp_run_compute_steady:
 *
 * The steady state of a run: the mean of its samples after run=1 in the
 * last third of the sampled time (at least one sample), whether the saving
 * stayed within 2% (or 1 MiB) of that mean over the window, and from when.
 */
void
sp_exp_run_compute_steady(SpExpRun *run)
{
    SpExpSteady *st = &run->steady;
    guint n = run->samples->len, first;
    double t_last, from;

    memset(st, 0, sizeof(*st));
    st->converged_at = -1;
    if (n < 2)
        return;
    t_last = g_array_index(run->samples, SpExpSample, n - 1).t;
    from = t_last * 2.0 / 3.0;
    for (first = 1; first < n - 1; first++) {
        if (g_array_index(run->samples, SpExpSample, first).t >= from)
            break;
    }
    st->valid = TRUE;
    st->from_t = g_array_index(run->samples, SpExpSample, first).t;
    st->to_t = t_last;
    for (guint i = first; i < n; i++) {
        const SpExpSample *s = &g_array_index(run->samples, SpExpSample, i);
        SpExpDerived d;

        sp_exp_sample_derive(s, &d);
        st->n_samples++;
        st->denominator_mib += SP_EXP_MIB(d.denominator);
        st->shared_pct += d.shared_pct;
        st->reclaimed_pct += d.reclaimed_pct;
        st->saved_mib += SP_EXP_MIB(d.saved);
        st->saved_zero_mib += SP_EXP_MIB(d.saved_zero);
        st->saved_nonzero_mib += SP_EXP_MIB(d.saved_nonzero);
        st->shared_pages += d.shared;
        st->sharing_pages += d.sharing;
        st->sys_pages_shared += s->ksm.entry[SP_KSM_PAGES_SHARED].value;
        st->sys_pages_sharing += s->ksm.entry[SP_KSM_PAGES_SHARING].value;
        st->sys_pages_unshared += s->ksm.entry[SP_KSM_PAGES_UNSHARED].value;
        st->sys_pages_volatile += s->ksm.entry[SP_KSM_PAGES_VOLATILE].value;
        st->sys_general_profit_mib += s->ksm.entry[SP_KSM_GENERAL_PROFIT].value / 1048576.0;
        st->host_cpu_pct += s->host_cpu_pct;
        st->ksmd_cpu_pct += s->ksmd_cpu_pct;
        st->guests_cpu_pct += s->guests_cpu_pct;
        st->other_ksm_pages += d.other_ksm_pages;
    }
#define SP_MEAN(f) st->f /= st->n_samples
    SP_MEAN(denominator_mib); SP_MEAN(shared_pct); SP_MEAN(reclaimed_pct); SP_MEAN(saved_mib);
    SP_MEAN(saved_zero_mib); SP_MEAN(saved_nonzero_mib); SP_MEAN(shared_pages);
    SP_MEAN(sharing_pages); SP_MEAN(sys_pages_shared); SP_MEAN(sys_pages_sharing);
    SP_MEAN(sys_pages_unshared); SP_MEAN(sys_pages_volatile); SP_MEAN(sys_general_profit_mib);
    SP_MEAN(host_cpu_pct); SP_MEAN(ksmd_cpu_pct); SP_MEAN(guests_cpu_pct); SP_MEAN(other_ksm_pages);
#undef SP_MEAN

    /* Convergence: the saving within max(2%, 1 MiB) of the mean, from some
     * sample on to the end; converged if that holds over the whole window. */
    double tol = MAX(0.02 * st->saved_mib, 1.0);
    st->converged = TRUE;
    for (guint i = n; i-- > 1;) {
        const SpExpSample *s = &g_array_index(run->samples, SpExpSample, i);
        SpExpDerived d;
        sp_exp_sample_derive(s, &d);
        if (ABS(SP_EXP_MIB(d.saved) - st->saved_mib) > tol) {
            if (i >= first)
                st->converged = FALSE;
            break;
        }
        st->converged_at = s->t;
    }
    if (!st->converged)
        st->converged_at = -1;
    for (guint i = 1; i < n; i++) {
        const SpExpSample *s = &g_array_index(run->samples, SpExpSample, i);
        st->ksmd_cpu_peak_pct = MAX(st->ksmd_cpu_peak_pct, s->ksmd_cpu_pct);
    }

    const SpExpSample *last = &g_array_index(run->samples, SpExpSample, n - 1);
    const SpExpSample *t0 = &g_array_index(run->samples, SpExpSample, 0);
    SpExpDerived dl, d0;
    sp_exp_sample_derive(last, &dl);
    sp_exp_sample_derive(t0, &d0);
    st->full_scans = last->ksm.entry[SP_KSM_FULL_SCANS].value;
    if (t0->prediction.valid)
        st->pred_t0_saved_mib = SP_EXP_MIB(d0.pred_saved);
    if (last->prediction.valid) {
        st->pred_saved_mib = SP_EXP_MIB(dl.pred_saved);
        st->pred_sharing = last->prediction.pages_sharing;
        if (last->prediction.pages_sharing)
            st->pred_error_pct = 100.0 * (st->sharing_pages - (double)last->prediction.pages_sharing) /
                (double)last->prediction.pages_sharing;
        if (last->prediction.scanned_pages)
            st->volatile_pct = 100.0 * (double)last->prediction.volatile_pages /
                (double)last->prediction.scanned_pages;
        st->pred_unmerged_pages = last->prediction.unmerged_pages;
    }
    /* Every prediction made once the run had settled, against the kernel at
     * the same sample: the model must agree all along, not only at the end. */
    for (guint i = 1; st->converged && i < n; i++) {
        const SpExpSample *s = &g_array_index(run->samples, SpExpSample, i);
        SpExpDerived d;
        double e;
        if (!s->fresh_prediction || !s->prediction.valid || !s->prediction.pages_sharing ||
            s->t < st->converged_at)
            continue;
        sp_exp_sample_derive(s, &d);
        e = 100.0 * ((double)d.sharing - (double)s->prediction.pages_sharing) /
            (double)s->prediction.pages_sharing;
        if (st->n_pred_checked++ == 0 || ABS(e) > ABS(st->pred_error_max_pct))
            st->pred_error_max_pct = e;
    }
    /* While a workload runs, pages change: the most the model saw. */
    for (guint i = 0; i < n; i++) {
        const SpExpSample *s = &g_array_index(run->samples, SpExpSample, i);
        if (!s->fresh_prediction || !s->prediction.valid || !s->prediction.scanned_pages)
            continue;
        double v = 100.0 * (double)s->prediction.volatile_pages /
            (double)s->prediction.scanned_pages;
        if (v > st->volatile_peak_pct) {
            st->volatile_peak_pct = v;
            st->volatile_peak_t = s->t;
        }
    }
}

/* ================================================================ JSON */

char *
sp_exp_format_time(gint64 wall_us)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(wall_us / G_USEC_PER_SEC);

    return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

static void
sp_json_set(json_object *o, const char *key, json_object *v)
{
    json_object_object_add(o, key, v);
}

json_object *
sp_exp_json_number(double v)
{
    /* Two decimals are plenty and keep the files readable. */
    /* (no libm: the library does not link it) */
    double r = v * 100.0;
    r = (double)(gint64)(r >= 0 ? r + 0.5 : r - 0.5);
    return json_object_new_double(r / 100.0);
}

static json_object *
sp_exp_prediction_json(const SpExpPrediction *p)
{
    json_object *o;

    if (!p->valid)
        return NULL;
    o = json_object_new_object();
    sp_json_set(o, "t", sp_exp_json_number(p->t));
    sp_json_set(o, "seconds", sp_exp_json_number(p->seconds));
    sp_json_set(o, "scanned_pages", json_object_new_int64(p->scanned_pages));
    sp_json_set(o, "volatile_pages", json_object_new_int64(p->volatile_pages));
    sp_json_set(o, "pages_shared", json_object_new_int64(p->pages_shared));
    sp_json_set(o, "pages_sharing", json_object_new_int64(p->pages_sharing));
    sp_json_set(o, "pages_shared_zero", json_object_new_int64(p->pages_shared_zero));
    sp_json_set(o, "pages_sharing_zero", json_object_new_int64(p->pages_sharing_zero));
    sp_json_set(o, "ksm_zero_pages", json_object_new_int64(p->ksm_zero_pages));
    sp_json_set(o, "thp_zero_remapped", json_object_new_int64(p->thp_zero_remapped));
    sp_json_set(o, "saved_zero", json_object_new_int64(p->saved_zero));
    sp_json_set(o, "saved_nonzero", json_object_new_int64(p->saved_nonzero));
    sp_json_set(o, "general_profit", json_object_new_int64(p->general_profit));
    sp_json_set(o, "converged", json_object_new_boolean(p->converged));
    sp_json_set(o, "partial", json_object_new_boolean(p->partial));
    sp_json_set(o, "zero_freed_at", json_object_new_int64(p->zero_freed_at));
    sp_json_set(o, "unmerged_pages", json_object_new_int64(p->unmerged_pages));
    sp_json_set(o, "zero_page_from", json_object_new_string(p->zero_guessed ? "guessed"
                                                                            : "kpageflags"));
    return o;
}

static json_object *
sp_exp_census_json(const SpCensusRange *r)
{
    json_object *o = json_object_new_object();

    sp_json_set(o, "resident_pages", json_object_new_int64(r->resident_pages));
    sp_json_set(o, "zero_mapped_pages", json_object_new_int64(r->zero_mapped_pages));
    sp_json_set(o, "swapped_pages", json_object_new_int64(r->swapped_pages));
    sp_json_set(o, "thp_pages", json_object_new_int64(r->thp_pages));
    sp_json_set(o, "ksm_pages", json_object_new_int64(r->ksm_pages));
    sp_json_set(o, "ksm_zero_filled_pages", json_object_new_int64(r->ksm_zero_pages));
    return o;
}

static json_object *
sp_exp_sample_json(const SpExpSample *s)
{
    json_object *o = json_object_new_object();
    json_object *sys = json_object_new_object();
    json_object *guests = json_object_new_array();
    json_object *census = sp_exp_census_json(&s->census.total);
    SpExpDerived d;
    g_autofree char *when = sp_exp_format_time(s->wall_us);

    sp_exp_sample_derive(s, &d);
    sp_json_set(o, "t", sp_exp_json_number(s->t));
    sp_json_set(o, "time", json_object_new_string(when));
    sp_json_set(o, "host_cpu_pct", sp_exp_json_number(s->host_cpu_pct));
    sp_json_set(o, "ksmd_cpu_pct", sp_exp_json_number(s->ksmd_cpu_pct));
    sp_json_set(o, "guests_cpu_pct", sp_exp_json_number(s->guests_cpu_pct));
    sp_json_set(o, "self_cpu_pct", sp_exp_json_number(s->self_cpu_pct));
    sp_json_set(o, "denominator_pages", json_object_new_int64(d.denominator));
    sp_json_set(o, "shared_pct", sp_exp_json_number(d.shared_pct));
    sp_json_set(o, "reclaimed_pct", sp_exp_json_number(d.reclaimed_pct));
    sp_json_set(o, "guest_pages_shared", json_object_new_int64(d.shared));
    sp_json_set(o, "guest_pages_sharing", json_object_new_int64(d.sharing));
    sp_json_set(o, "guest_pages_sharing_zero", json_object_new_int64(d.sharing_zero));
    sp_json_set(o, "zero_freed_pages", json_object_new_int64(s->zero_freed_pages));
    sp_json_set(o, "saved_pages", json_object_new_int64(d.saved));
    sp_json_set(o, "saved_zero_pages", json_object_new_int64(d.saved_zero));
    sp_json_set(o, "saved_nonzero_pages", json_object_new_int64(d.saved_nonzero));
    sp_json_set(o, "other_ksm_pages", json_object_new_int64(d.other_ksm_pages));
    sp_json_set(o, "stat_ksm_merging_pages", json_object_new_int64(d.stat_merging));
    sp_json_set(o, "stat_ksm_zero_pages", json_object_new_int64(d.stat_zero));
    sp_json_set(census, "ksm_frames", json_object_new_int64(s->census.ksm_frames));
    sp_json_set(census, "ksm_zero_frames", json_object_new_int64(s->census.ksm_zero_frames));
    sp_json_set(o, "census", census);
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(k);
        if (!s->ksm.entry[k].supported)
            sp_json_set(sys, info->name, NULL);
        else if (info->type == SP_KSM_TYPE_ENUM)
            sp_json_set(sys, info->name, json_object_new_string(info->choices[s->ksm.entry[k].value]));
        else
            sp_json_set(sys, info->name, json_object_new_int64(s->ksm.entry[k].value));
    }
    sp_json_set(o, "sysfs", sys);
    for (guint i = 0; s->guests && i < s->guests->len; i++) {
        const SpExpGuestSample *g = &g_array_index(s->guests, SpExpGuestSample, i);
        json_object *go = json_object_new_object();
        sp_json_set(go, "pid", json_object_new_int(g->pid));
        sp_json_set(go, "census", sp_exp_census_json(&g->census));
        sp_json_set(go, "ksm_rmap_items", json_object_new_int64(g->ksm_rmap_items));
        sp_json_set(go, "ksm_merging_pages", json_object_new_int64(g->ksm_merging_pages));
        sp_json_set(go, "ksm_zero_pages", json_object_new_int64(g->ksm_zero_pages));
        sp_json_set(go, "ksm_process_profit", json_object_new_int64(g->ksm_process_profit));
        sp_json_set(go, "vm_rss_kib", json_object_new_int64(g->vm_rss_kib));
        json_object_array_add(guests, go);
    }
    sp_json_set(o, "guests", guests);
    sp_json_set(o, "prediction", sp_exp_prediction_json(&s->prediction));
    sp_json_set(o, "prediction_fresh", json_object_new_boolean(s->fresh_prediction));
    return o;
}

static json_object *
sp_exp_steady_json(const SpExpSteady *st)
{
    json_object *o;

    if (!st->valid)
        return NULL;
    o = json_object_new_object();
    sp_json_set(o, "samples", json_object_new_int(st->n_samples));
    sp_json_set(o, "from_t", sp_exp_json_number(st->from_t));
    sp_json_set(o, "to_t", sp_exp_json_number(st->to_t));
    sp_json_set(o, "denominator_mib", sp_exp_json_number(st->denominator_mib));
    sp_json_set(o, "shared_pct", sp_exp_json_number(st->shared_pct));
    sp_json_set(o, "reclaimed_pct", sp_exp_json_number(st->reclaimed_pct));
    sp_json_set(o, "saved_mib", sp_exp_json_number(st->saved_mib));
    sp_json_set(o, "saved_zero_mib", sp_exp_json_number(st->saved_zero_mib));
    sp_json_set(o, "saved_nonzero_mib", sp_exp_json_number(st->saved_nonzero_mib));
    sp_json_set(o, "guest_pages_shared", sp_exp_json_number(st->shared_pages));
    sp_json_set(o, "guest_pages_sharing", sp_exp_json_number(st->sharing_pages));
    sp_json_set(o, "sys_pages_shared", sp_exp_json_number(st->sys_pages_shared));
    sp_json_set(o, "sys_pages_sharing", sp_exp_json_number(st->sys_pages_sharing));
    sp_json_set(o, "sys_pages_unshared", sp_exp_json_number(st->sys_pages_unshared));
    sp_json_set(o, "sys_pages_volatile", sp_exp_json_number(st->sys_pages_volatile));
    sp_json_set(o, "sys_general_profit_mib", sp_exp_json_number(st->sys_general_profit_mib));
    sp_json_set(o, "other_ksm_pages", sp_exp_json_number(st->other_ksm_pages));
    sp_json_set(o, "host_cpu_pct", sp_exp_json_number(st->host_cpu_pct));
    sp_json_set(o, "ksmd_cpu_pct", sp_exp_json_number(st->ksmd_cpu_pct));
    sp_json_set(o, "ksmd_cpu_peak_pct", sp_exp_json_number(st->ksmd_cpu_peak_pct));
    sp_json_set(o, "guests_cpu_pct", sp_exp_json_number(st->guests_cpu_pct));
    sp_json_set(o, "full_scans", json_object_new_int64(st->full_scans));
    sp_json_set(o, "converged", json_object_new_boolean(st->converged));
    sp_json_set(o, "converged_at", st->converged_at >= 0 ? sp_exp_json_number(st->converged_at) : NULL);
    sp_json_set(o, "pred_t0_saved_mib", sp_exp_json_number(st->pred_t0_saved_mib));
    sp_json_set(o, "pred_saved_mib", sp_exp_json_number(st->pred_saved_mib));
    sp_json_set(o, "pred_pages_sharing", sp_exp_json_number(st->pred_sharing));
    sp_json_set(o, "pred_error_pct", sp_exp_json_number(st->pred_error_pct));
    sp_json_set(o, "pred_error_max_pct", st->n_pred_checked ? sp_exp_json_number(st->pred_error_max_pct)
                                                            : NULL);
    sp_json_set(o, "pred_checked", json_object_new_int(st->n_pred_checked));
    sp_json_set(o, "pred_unmerged_pages", sp_exp_json_number(st->pred_unmerged_pages));
    sp_json_set(o, "volatile_pct", sp_exp_json_number(st->volatile_pct));
    sp_json_set(o, "volatile_peak_pct", sp_exp_json_number(st->volatile_peak_pct));
    sp_json_set(o, "volatile_peak_t", sp_exp_json_number(st->volatile_peak_t));
    return o;
}

json_object *
sp_exp_run_head_json(const SpExpRun *run)
{
    json_object *o = json_object_new_object();

    sp_json_set(o, "index", json_object_new_int(run->index));
    sp_json_set(o, "vm_count", json_object_new_int(run->n_vms));
    sp_json_set(o, "dir", run->dir ? json_object_new_string(run->dir) : NULL);
    sp_json_set(o, "complete", json_object_new_boolean(run->complete));
    sp_json_set(o, "incomplete_reason",
                run->incomplete_reason ? json_object_new_string(run->incomplete_reason) : NULL);
    sp_json_set(o, "disturbed", run->disturbed ? json_object_new_string(run->disturbed) : NULL);
    sp_json_set(o, "boot_seconds", sp_exp_json_number(run->boot_s));
    sp_json_set(o, "samples", json_object_new_int(run->samples->len));
    sp_json_set(o, "steady", sp_exp_steady_json(&run->steady));
    return o;
}

json_object *
sp_exp_run_json(const SpExpRun *run)
{
    json_object *o = sp_exp_run_head_json(run);
    json_object *guests = json_object_new_array();
    json_object *samples = json_object_new_array();

    for (guint i = 0; i < run->guests->len; i++) {
        const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        json_object *go = json_object_new_object();
        g_autofree char *start = g_strdup_printf("0x%" G_GINT64_MODIFIER "x", g->ram_start);
        sp_json_set(go, "name", json_object_new_string(g->name));
        sp_json_set(go, "uuid", json_object_new_string(g->uuid));
        sp_json_set(go, "mac", json_object_new_string(g->mac));
        sp_json_set(go, "qemu_pid", json_object_new_int(g->pid));
        sp_json_set(go, "ram_start", json_object_new_string(start));
        sp_json_set(go, "ram_mib", json_object_new_int64((g->ram_end - g->ram_start) >> 20));
        sp_json_set(go, "ready_seconds", sp_exp_json_number(g->ready_s));
        sp_json_set(go, "serial_log", json_object_new_string(g->serial_log));
        json_object_array_add(guests, go);
    }
    sp_json_set(o, "guests", guests);
    /* "samples" is the count in the head; the data goes under "data". */
    for (guint i = 0; i < run->samples->len; i++)
        json_object_array_add(samples, sp_exp_sample_json(&g_array_index(run->samples, SpExpSample, i)));
    sp_json_set(o, "data", samples);
    return o;
}
