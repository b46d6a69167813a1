/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spreport.c: write an experiment's results
 *
 * Theory of operation
 *
 * A sample's columns are listed once (sp_report_sample_columns()), which
 * appends either the header or the values, so the CSV header and rows
 * cannot drift apart.  The steady state of a run (sp_exp_run_compute_steady())
 * feeds summary.csv, the plots against VM count and the conclusions; the
 * conclusions only state what those numbers show, with the numbers.
 * Plots are one gnuplot script (kept beside the PNGs, so they can be
 * redrawn); without gnuplot the report says so and lists no plots.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-report"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "samepage/spproc.h"
#include "samepage/spreport.h"

G_DEFINE_QUARK(sp-report-error-quark, sp_report_error)

void
sp_report_info_init(SpReportInfo *info)
{
    memset(info, 0, sizeof(*info));
}

void
sp_report_info_from_host(SpReportInfo *info, const SpHost *host)
{
    guint64 bytes;

    /* What cannot be read stays unknown: NULL, 0. */
    info->kernel = sp_proc_read_osrelease(host, NULL);
    info->n_cpus = g_get_num_processors();
    if (sp_proc_read_meminfo(host, "MemTotal", &bytes, NULL))
        info->mem_total_kib = bytes / 1024;
}

void
sp_report_info_clear(SpReportInfo *info)
{
    g_clear_pointer(&info->kernel, g_free);
}

/* ---------------------------------------------------------------- samples */

typedef struct {
    GString *out;
    gboolean header;
    gboolean first;
} SpCsv;

static void
sp_csv_sep(SpCsv *c)
{
    if (!c->first)
        g_string_append_c(c->out, ',');
    c->first = FALSE;
}

static void
sp_csv_u(SpCsv *c, const char *name, guint64 v)
{
    sp_csv_sep(c);
    if (c->header)
        g_string_append(c->out, name);
    else
        g_string_append_printf(c->out, "%" G_GUINT64_FORMAT, v);
}

static void
sp_csv_i(SpCsv *c, const char *name, gint64 v)
{
    sp_csv_sep(c);
    if (c->header)
        g_string_append(c->out, name);
    else
        g_string_append_printf(c->out, "%" G_GINT64_FORMAT, v);
}

static void
sp_csv_f(SpCsv *c, const char *name, double v, int decimals)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    sp_csv_sep(c);
    if (c->header) {
        g_string_append(c->out, name);
        return;
    }
    g_ascii_formatd(buf, sizeof(buf), decimals == 1 ? "%.1f" : decimals == 2 ? "%.2f" : "%.3f", v);
    g_string_append(c->out, buf);
}

/**
 * sp_report_csv_field:
 * @out: the line being written
 * @field: one field's text
 *
 * Appends @field as RFC 4180 says: as it is, or, when it holds a comma, a
 * double quote, CR or LF (a domain name can), between double quotes with
 * each double quote doubled.
 */
void
sp_report_csv_field(GString *out, const char *field)
{
    if (!field[strcspn(field, ",\"\r\n")]) {
        g_string_append(out, field);
        return;
    }
    g_string_append_c(out, '"');
    for (const char *p = field; *p; p++) {
        if (*p == '"')
            g_string_append_c(out, '"');
        g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}

static void
sp_csv_s(SpCsv *c, const char *name, const char *v)
{
    sp_csv_sep(c);
    sp_report_csv_field(c->out, c->header ? name : v);
}

static void
sp_report_sample_columns(SpCsv *c, const SpExpSample *s)
{
    SpExpDerived d;
    g_autofree char *when = sp_exp_format_time(s->wall_us);
    const SpExpPrediction *p = &s->prediction;

    sp_exp_sample_derive(s, &d);
    sp_csv_f(c, "t_s", s->t, 1);
    sp_csv_s(c, "time", when);
    sp_csv_f(c, "host_cpu_pct", s->host_cpu_pct, 1);
    sp_csv_f(c, "ksmd_cpu_pct", s->ksmd_cpu_pct, 1);
    sp_csv_f(c, "guests_cpu_pct", s->guests_cpu_pct, 1);
    sp_csv_f(c, "self_cpu_pct", s->self_cpu_pct, 1);
    /* The guests (census of their RAM) */
    sp_csv_f(c, "denominator_mib", SP_EXP_MIB(d.denominator), 1);
    sp_csv_f(c, "shared_pct", d.shared_pct, 2);
    sp_csv_f(c, "reclaimed_pct", d.reclaimed_pct, 2);
    sp_csv_f(c, "saved_mib", SP_EXP_MIB(d.saved), 1);
    sp_csv_f(c, "saved_zero_mib", SP_EXP_MIB(d.saved_zero), 1);
    sp_csv_f(c, "saved_nonzero_mib", SP_EXP_MIB(d.saved_nonzero), 1);
    sp_csv_f(c, "pred_saved_mib", p->valid ? SP_EXP_MIB(d.pred_saved) : 0, 1);
    sp_csv_f(c, "pred_saved_zero_mib", p->valid ? SP_EXP_MIB(d.pred_saved_zero) : 0, 1);
    sp_csv_u(c, "guest_pages_shared", d.shared);
    sp_csv_u(c, "guest_pages_sharing", d.sharing);
    sp_csv_u(c, "guest_pages_sharing_zero", d.sharing_zero);
    sp_csv_u(c, "guest_ksm_zero_frames", s->census.ksm_zero_frames);
    sp_csv_u(c, "guest_resident_pages", s->census.total.resident_pages);
    sp_csv_u(c, "guest_zero_mapped_pages", s->census.total.zero_mapped_pages);
    sp_csv_u(c, "guest_zero_freed_pages", s->zero_freed_pages);
    sp_csv_u(c, "guest_thp_pages", s->census.total.thp_pages);
    sp_csv_u(c, "guest_swapped_pages", s->census.total.swapped_pages);
    sp_csv_u(c, "stat_ksm_merging_pages", d.stat_merging);
    sp_csv_u(c, "stat_ksm_zero_pages", d.stat_zero);
    sp_csv_i(c, "other_ksm_pages", d.other_ksm_pages);
    /* System-wide sysfs: every figure and knob (unsupported ones empty) */
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(k);
        g_autofree char *name = g_strconcat("sys_", info->name, NULL);
        if (!c->header && !s->ksm.entry[k].supported) {
            sp_csv_s(c, name, "");
            continue;
        }
        if (info->type == SP_KSM_TYPE_ENUM) {
            sp_csv_s(c, name, c->header ? name : info->choices[s->ksm.entry[k].value]);
            continue;
        }
        sp_csv_i(c, name, s->ksm.entry[k].value);
    }
    sp_csv_f(c, "sys_general_profit_mib", s->ksm.entry[SP_KSM_GENERAL_PROFIT].value / 1048576.0, 1);
    /* The model's latest prediction */
    sp_csv_u(c, "pred_fresh", s->fresh_prediction);
    sp_csv_f(c, "pred_t_s", p->valid ? p->t : -1, 1);
    sp_csv_u(c, "pred_pages_shared", p->pages_shared);
    sp_csv_u(c, "pred_pages_sharing", p->pages_sharing);
    sp_csv_u(c, "pred_pages_sharing_zero", p->pages_sharing_zero);
    sp_csv_u(c, "pred_ksm_zero_pages", p->ksm_zero_pages);
    sp_csv_u(c, "pred_thp_zero_remapped", p->thp_zero_remapped);
    sp_csv_u(c, "pred_scanned_pages", p->scanned_pages);
    sp_csv_u(c, "pred_volatile_pages", p->volatile_pages);
    sp_csv_f(c, "pred_seconds", p->seconds, 2);
    g_string_append_c(c->out, '\n');
}

char *
sp_report_samples_csv(const SpExpRun *run)
{
    SpCsv c = { g_string_new(NULL), TRUE, TRUE };
    SpExpSample empty = { 0 };

    sp_report_sample_columns(&c, run->samples->len ? &g_array_index(run->samples, SpExpSample, 0)
                                                   : &empty);
    c.header = FALSE;
    for (guint i = 0; i < run->samples->len; i++) {
        c.first = TRUE;
        sp_report_sample_columns(&c, &g_array_index(run->samples, SpExpSample, i));
    }
    return g_string_free(c.out, FALSE);
}

char *
sp_report_guests_csv(const SpExpRun *run)
{
    GString *s = g_string_new("t_s,guest,pid,resident_pages,zero_mapped_pages,thp_pages,"
                              "ksm_pages,ksm_zero_filled_pages,ksm_rmap_items,"
                              "ksm_merging_pages,ksm_zero_pages,ksm_process_profit,vm_rss_kib\n");

    for (guint i = 0; i < run->samples->len; i++) {
        const SpExpSample *sm = &g_array_index(run->samples, SpExpSample, i);
        char t[G_ASCII_DTOSTR_BUF_SIZE];

        g_ascii_formatd(t, sizeof(t), "%.1f", sm->t);
        for (guint g = 0; sm->guests && g < sm->guests->len; g++) {
            const SpExpGuestSample *gs = &g_array_index(sm->guests, SpExpGuestSample, g);
            const char *name = g < run->guests->len
                ? g_array_index(run->guests, SpExpGuestInfo, g).name : "?";
            g_string_append_printf(s, "%s,", t);
            sp_report_csv_field(s, name);
            g_string_append_printf(s, ",%d,%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",%"
                                   G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
                                   ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                                   ",%" G_GINT64_FORMAT ",%" G_GUINT64_FORMAT "\n",
                                   (int)gs->pid, gs->census.resident_pages,
                                   gs->census.zero_mapped_pages, gs->census.thp_pages,
                                   gs->census.ksm_pages, gs->census.ksm_zero_pages,
                                   gs->ksm_rmap_items, gs->ksm_merging_pages, gs->ksm_zero_pages,
                                   gs->ksm_process_profit, gs->vm_rss_kib);
        }
    }
    return g_string_free(s, FALSE);
}

/* ---------------------------------------------------------------- summary */

static void
sp_json_set(json_object *o, const char *key, json_object *v)
{
    json_object_object_add(o, key, v);
}

static GPtrArray *sp_report_valid_runs(GPtrArray *runs);

static void
sp_report_summary_columns(SpCsv *c, const SpExpRun *r)
{
    const SpExpSteady *st = &r->steady;

    sp_csv_u(c, "vm_count", r->n_vms);
    sp_csv_u(c, "complete", r->complete);
    sp_csv_u(c, "disturbed", r->disturbed != NULL);
    sp_csv_f(c, "denominator_mib", st->denominator_mib, 1);
    sp_csv_f(c, "shared_pct", st->shared_pct, 2);
    sp_csv_f(c, "reclaimed_pct", st->reclaimed_pct, 2);
    sp_csv_f(c, "saved_mib", st->saved_mib, 1);
    sp_csv_f(c, "saved_zero_mib", st->saved_zero_mib, 1);
    sp_csv_f(c, "saved_nonzero_mib", st->saved_nonzero_mib, 1);
    sp_csv_f(c, "pred_t0_saved_mib", st->pred_t0_saved_mib, 1);
    sp_csv_f(c, "pred_saved_mib", st->pred_saved_mib, 1);
    sp_csv_f(c, "pred_error_pct", st->pred_error_pct, 2);
    sp_csv_f(c, "guest_pages_shared", st->shared_pages, 1);
    sp_csv_f(c, "guest_pages_sharing", st->sharing_pages, 1);
    sp_csv_f(c, "sys_pages_shared", st->sys_pages_shared, 1);
    sp_csv_f(c, "sys_pages_sharing", st->sys_pages_sharing, 1);
    sp_csv_f(c, "sys_pages_unshared", st->sys_pages_unshared, 1);
    sp_csv_f(c, "sys_pages_volatile", st->sys_pages_volatile, 1);
    sp_csv_f(c, "sys_general_profit_mib", st->sys_general_profit_mib, 1);
    sp_csv_u(c, "full_scans", st->full_scans);
    sp_csv_u(c, "converged", st->converged);
    sp_csv_f(c, "converged_at_s", st->converged_at, 1);
    sp_csv_f(c, "ksmd_cpu_pct", st->ksmd_cpu_pct, 1);
    sp_csv_f(c, "ksmd_cpu_peak_pct", st->ksmd_cpu_peak_pct, 1);
    sp_csv_f(c, "host_cpu_pct", st->host_cpu_pct, 1);
    sp_csv_f(c, "guests_cpu_pct", st->guests_cpu_pct, 1);
    sp_csv_f(c, "boot_s", r->boot_s, 1);
    sp_csv_u(c, "steady_samples", st->n_samples);
    g_string_append_c(c->out, '\n');
}

/* One row per run that has a steady state, by VM count. */
char *
sp_report_summary_csv(GPtrArray *runs)
{
    SpCsv c = { g_string_new(NULL), TRUE, TRUE };
    SpExpRun empty = { 0 };

    g_autoptr(GPtrArray) v = sp_report_valid_runs(runs);

    sp_report_summary_columns(&c, &empty);
    c.header = FALSE;
    for (guint i = 0; i < v->len; i++) {
        const SpExpRun *r = g_ptr_array_index(v, i);
        c.first = TRUE;
        sp_report_summary_columns(&c, r);
    }
    return g_string_free(c.out, FALSE);
}

/* ---------------------------------------------------------------- conclusions */

static gint
sp_report_cmp_vms(gconstpointer a, gconstpointer b)
{
    const SpExpRun *x = *(SpExpRun *const *)a, *y = *(SpExpRun *const *)b;
    return (gint)x->n_vms - (gint)y->n_vms;
}

/* The runs with a steady state, by VM count. */
static GPtrArray *
sp_report_valid_runs(GPtrArray *runs)
{
    GPtrArray *v = g_ptr_array_new();

    for (guint i = 0; i < runs->len; i++) {
        SpExpRun *r = g_ptr_array_index(runs, i);
        if (r->steady.valid)
            g_ptr_array_add(v, r);
    }
    g_ptr_array_sort(v, sp_report_cmp_vms);
    return v;
}

/**
 * sp_report_conclusions:
 *
 * Returns: (element-type utf8): one sentence each, stating what the
 * steady-state numbers show, with the numbers.
 */
GPtrArray *
sp_report_conclusions(const SpPlan *plan, GPtrArray *runs)
{
    GPtrArray *c = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) v = sp_report_valid_runs(runs);
    guint n_disturbed = 0;
    g_autofree char *ksm = sp_plan_describe_ksm(plan);
    const SpExpRun *lo, *hi;

    for (guint i = 0; i < runs->len; i++) {
        const SpExpRun *r = g_ptr_array_index(runs, i);
        if (r->disturbed)
            g_ptr_array_add(c, g_strdup_printf(
                "Run %u (%u VM%s) was DISTURBED: %s. Its figures after that do not describe "
                "the plan's settings.", r->index, r->n_vms, r->n_vms == 1 ? "" : "s",
                r->disturbed));
        if (!r->complete)
            g_ptr_array_add(c, g_strdup_printf(
                "Run %u (%u VM%s) is INCOMPLETE: %s. %s", r->index, r->n_vms,
                r->n_vms == 1 ? "" : "s",
                r->incomplete_reason ? r->incomplete_reason : "it did not finish",
                r->steady.valid ? "Its figures cover the samples taken before that."
                                : "It has no figures."));
    }
    /* A run whose KSM settings someone else changed says nothing about the plan. */
    for (guint i = v->len; i-- > 0;) {
        if (((const SpExpRun *)g_ptr_array_index(v, i))->disturbed) {
            g_ptr_array_remove_index(v, i);
            n_disturbed++;
        }
    }
    if (v->len == 0) {
        g_ptr_array_add(c, g_strdup(n_disturbed
            ? "Every run with samples was disturbed: there is nothing to conclude."
            : "No run produced samples after run=1: there is nothing to conclude."));
        return c;
    }
    if (n_disturbed)
        g_ptr_array_add(c, g_strdup_printf("The conclusions below leave out the %u disturbed "
                                           "run%s.", n_disturbed, n_disturbed == 1 ? "" : "s"));
    lo = g_ptr_array_index(v, 0);
    hi = g_ptr_array_index(v, v->len - 1);

    g_ptr_array_add(c, g_strdup_printf(
        "With %u guest%s, KSM reclaimed %.0f MiB, %.1f%% of the guests' resident memory "
        "(%.0f MiB); %.1f%% of that memory is deduplicated (shared: it maps a KSM page "
        "or the zero page).", hi->n_vms,
        hi->n_vms == 1 ? "" : "s", hi->steady.saved_mib, hi->steady.reclaimed_pct,
        hi->steady.denominator_mib, hi->steady.shared_pct));

    if (v->len >= 2) {
        gboolean rising = TRUE;
        for (guint i = 1; i < v->len; i++) {
            const SpExpRun *a = g_ptr_array_index(v, i - 1), *b = g_ptr_array_index(v, i);
            rising &= b->steady.reclaimed_pct >= a->steady.reclaimed_pct - 0.5;
        }
        double per_guest = (hi->steady.saved_mib - lo->steady.saved_mib) /
            (double)(hi->n_vms - lo->n_vms);
        double per_guest_pct = hi->steady.denominator_mib > 0
            ? 100.0 * per_guest / (hi->steady.denominator_mib / hi->n_vms) : 0;
        g_ptr_array_add(c, g_strdup_printf(
            "The reclaimed share %s with the number of guests: %.1f%% with %u, %.1f%% with %u. "
            "Each guest added from %u to %u saved %.0f MiB on average (%.0f%% of a guest's "
            "resident memory).", rising ? "grows" : "does not grow steadily",
            lo->steady.reclaimed_pct, lo->n_vms, hi->steady.reclaimed_pct, hi->n_vms,
            lo->n_vms, hi->n_vms, per_guest, per_guest_pct));
    }

    if (hi->steady.saved_mib > 0) {
        double zero_share = 100.0 * hi->steady.saved_zero_mib / hi->steady.saved_mib;
        double nonzero_pct = hi->steady.denominator_mib > 0
            ? 100.0 * hi->steady.saved_nonzero_mib / hi->steady.denominator_mib : 0;
        g_ptr_array_add(c, g_strdup_printf(
            "Zero-filled pages are %.0f%% of the saving with %u guest%s (%.0f MiB); other "
            "contents, the pages the guests really have in common, save %.0f MiB, %.1f%% of "
            "resident guest memory.", zero_share, hi->n_vms, hi->n_vms == 1 ? "" : "s",
            hi->steady.saved_zero_mib, hi->steady.saved_nonzero_mib, nonzero_pct));
    } else {
        g_ptr_array_add(c, g_strdup_printf("KSM saved nothing in the guests (%s).", ksm));
    }

    if (hi->steady.pred_saved_mib > 0 || hi->steady.pred_t0_saved_mib > 0) {
        double e = hi->steady.pred_error_pct;
        g_ptr_array_add(c, g_strdup_printf(
            "samepage's model, run over the guests' memory at t=0 before ksmd started, "
            "predicted %.0f MiB saved with %u guest%s; the kernel reached %.0f MiB. Against "
            "the last prediction, the guests' pages_sharing is %s%.1f%% from the model's%s.",
            hi->steady.pred_t0_saved_mib, hi->n_vms, hi->n_vms == 1 ? "" : "s",
            hi->steady.saved_mib, e >= 0 ? "+" : "", e,
            ABS(e) <= 5 ? " (agreement)" :
            hi->steady.converged ? " (a difference: see the run's samples.csv)"
                                 : " (the kernel had not converged)"));
    }
    /* Runs that settled below the model.  A cause is named only when the
     * run's data show it: the last prediction's scan found that many of the
     * pages the model merges were not KSM pages (equal contents the kernel
     * holds apart); otherwise the difference is unexplained, with numbers. */
    {
        const SpKsmSetting *smart = sp_plan_find_ksm(plan, SP_KSM_SMART_SCAN);
        g_autoptr(GString) held = g_string_new(NULL);
        g_autoptr(GString) unexplained = g_string_new(NULL);
        for (guint i = 0; i < v->len; i++) {
            const SpExpRun *r = g_ptr_array_index(v, i);
            double gap = r->steady.pred_sharing - r->steady.sharing_pages;
            if (!r->steady.converged || r->steady.pred_error_pct > -5 || !r->steady.pred_sharing)
                continue;
            if (r->steady.pred_unmerged_pages >= 0.5 * gap)
                g_string_append_printf(held, "%s%u VM%s %.1f%% (%.0f pages short; %.0f pages of "
                                       "duplicated contents were not KSM pages)",
                                       held->len ? ", " : "", r->n_vms, r->n_vms == 1 ? "" : "s",
                                       r->steady.pred_error_pct, gap, r->steady.pred_unmerged_pages);
            else
                g_string_append_printf(unexplained, "%s%u VM%s: the guests' pages_sharing %.0f, "
                                       "the model's %.0f (%.1f%%); only %.0f of the pages the "
                                       "model merges were unmerged when last scanned",
                                       unexplained->len ? "; " : "", r->n_vms,
                                       r->n_vms == 1 ? "" : "s", r->steady.sharing_pages,
                                       r->steady.pred_sharing, r->steady.pred_error_pct,
                                       r->steady.pred_unmerged_pages);
        }
        if (held->len)
            g_ptr_array_add(c, g_strdup_printf(
                "The kernel settled below the model's last prediction, with equal pages it "
                "did not merge: %s.%s", held->str,
                smart && smart->value == 0 ? ""
                : " With smart_scan=1 a page left unmerged for long (during a workload, say) "
                  "is processed once in 9 passes on a schedule of its own, so equal pages whose "
                  "schedules differ may never meet; the model starts from fresh rmap_items, as "
                  "after run=2. A few passes with smart_scan=0 would show whether that is the "
                  "cause here (docs/kernel-facts.md)."));
        if (unexplained->len)
            g_ptr_array_add(c, g_strdup_printf(
                "The kernel settled below the model's last prediction, unexplained: %s.",
                unexplained->str));
    }

    {
        g_autoptr(GString) slow = g_string_new(NULL);
        double worst = 0;
        guint64 worst_scans = 0;
        for (guint i = 0; i < v->len; i++) {
            const SpExpRun *r = g_ptr_array_index(v, i);
            if (!r->steady.converged)
                g_string_append_printf(slow, "%s%u", slow->len ? ", " : "", r->n_vms);
            else if (r->steady.converged_at >= worst) {
                worst = r->steady.converged_at;
                worst_scans = r->steady.full_scans;
            }
        }
        if (slow->len)
            g_ptr_array_add(c, g_strdup_printf(
                "The run%s with %s guests did not settle within %.0f s (the saving still moved "
                "by more than 2%% in the last third): treat those figures as lower bounds, or "
                "lengthen [sampling] duration.", strchr(slow->str, ',') ? "s" : "", slow->str,
                plan->duration_s));
        else
            g_ptr_array_add(c, g_strdup_printf(
                "Every run settled: the saving stayed within 2%% from t=%.0f s at the latest "
                "(%" G_GUINT64_FORMAT " full scans by the end of that run).", worst, worst_scans));
    }

    g_ptr_array_add(c, g_strdup_printf(
        "At %s, ksmd used %.1f%% of one CPU on average with %u guest%s (peak %.1f%%); the host "
        "was %.0f%% busy and the guests' QEMU processes used %.0f%% of a CPU.", ksm,
        hi->steady.ksmd_cpu_pct, hi->n_vms, hi->n_vms == 1 ? "" : "s",
        hi->steady.ksmd_cpu_peak_pct, hi->steady.host_cpu_pct, hi->steady.guests_cpu_pct));

    {
        double other = 0;
        for (guint i = 0; i < v->len; i++)
            other = MAX(other, ((const SpExpRun *)g_ptr_array_index(v, i))->steady.other_ksm_pages);
        if (other >= 1)
            g_ptr_array_add(c, g_strdup_printf(
                "Outside the guests' RAM, KSM held up to %.0f pages (%.1f MiB) in the system-wide "
                "figures (host processes, or guest pages also mapped elsewhere): they are left "
                "out of every guest figure above.", other, SP_EXP_MIB(other)));
        else
            g_ptr_array_add(c, g_strdup("KSM merged nothing outside the guests' RAM: the "
                                        "system-wide figures are the guests' own."));
    }

    if (plan->workload && hi->steady.volatile_peak_pct > 0)
        g_ptr_array_add(c, g_strdup_printf(
            "With the workload '%s', up to %.1f%% of the guests' scanned pages changed between "
            "two reads a second apart (at t=%.0f s; volatile: KSM cannot merge them), %.1f%% "
            "at the end of the run.", plan->workload, hi->steady.volatile_peak_pct,
            hi->steady.volatile_peak_t, hi->steady.volatile_pct));
    return c;
}

json_object *
sp_report_results_json(const SpReportInfo *info, const SpPlan *plan, GPtrArray *runs)
{
    json_object *o = json_object_new_object();
    json_object *host = json_object_new_object();
    json_object *ja = json_object_new_array();
    json_object *jc = json_object_new_array();
    g_autoptr(GPtrArray) conc = sp_report_conclusions(plan, runs);
    g_autofree char *start = sp_exp_format_time(info->wall_start);
    g_autofree char *end = sp_exp_format_time(info->wall_end);

    sp_json_set(o, "samepage", json_object_new_string(PACKAGE_VERSION));
    sp_json_set(o, "complete", json_object_new_boolean(info->complete));
    sp_json_set(o, "error", info->error_message ? json_object_new_string(info->error_message) : NULL);
    sp_json_set(o, "teardown_problems",
                info->teardown_problems ? json_object_new_string(info->teardown_problems) : NULL);
    sp_json_set(o, "plan", sp_plan_to_json(plan));
    sp_json_set(host, "kernel", info->kernel ? json_object_new_string(info->kernel) : NULL);
    sp_json_set(host, "cpus", json_object_new_int(info->n_cpus));
    sp_json_set(host, "mem_total_mib", json_object_new_int64(info->mem_total_kib / 1024));
    sp_json_set(o, "host", host);
    sp_json_set(o, "uri", info->uri ? json_object_new_string(info->uri) : NULL);
    sp_json_set(o, "image_dir", info->image_dir ? json_object_new_string(info->image_dir) : NULL);
    sp_json_set(o, "template", info->template_path ? json_object_new_string(info->template_path) : NULL);
    sp_json_set(o, "accelerator", info->accelerator ? json_object_new_string(info->accelerator) : NULL);
    sp_json_set(o, "output_dir", info->output_dir ? json_object_new_string(info->output_dir) : NULL);
    sp_json_set(o, "started", json_object_new_string(start));
    sp_json_set(o, "finished", json_object_new_string(end));
    sp_json_set(o, "elapsed_s", sp_exp_json_number((info->wall_end - info->wall_start) / 1e6));
    for (guint i = 0; i < runs->len; i++)
        json_object_array_add(ja, sp_exp_run_head_json(g_ptr_array_index(runs, i)));
    sp_json_set(o, "runs", ja);
    for (guint i = 0; i < conc->len; i++)
        json_object_array_add(jc, json_object_new_string(g_ptr_array_index(conc, i)));
    sp_json_set(o, "conclusions", jc);
    return o;
}

/* ---------------------------------------------------------------- plots */

typedef struct {
    const char *file;        /* PNG base name */
    const char *title;
    const char *ylabel;
    const char *column;
    const char *column2;     /* a second series per run, dashed; or NULL */
    const char *label2;
} SpPlotSpec;

static const SpPlotSpec sp_time_plots[] = {
    { "reclaimed_pct-vs-time", "Reclaimed guest memory (saved / resident)", "%",
      "reclaimed_pct", NULL, NULL },
    { "shared_pct-vs-time", "Guest memory deduplicated (a KSM page or the zero page)", "%",
      "shared_pct", NULL, NULL },
    { "saved-vs-time", "Saved: kernel (solid) and the model's prediction (dashed)", "MiB",
      "saved_mib", "pred_saved_mib", "predicted" },
    { "saved_zero-vs-time", "Saved: zero-filled pages (solid) and other contents (dashed)",
      "MiB", "saved_zero_mib", "saved_nonzero_mib", "other" },
    { "pages_shared-vs-time", "pages_shared (sysfs, system-wide)", "pages", "sys_pages_shared",
      NULL, NULL },
    { "pages_sharing-vs-time", "pages_sharing (sysfs, system-wide)", "pages",
      "sys_pages_sharing", NULL, NULL },
    { "pages_unshared-vs-time", "pages_unshared (sysfs)", "pages", "sys_pages_unshared", NULL, NULL },
    { "pages_volatile-vs-time", "pages_volatile (sysfs)", "pages", "sys_pages_volatile", NULL, NULL },
    { "full_scans-vs-time", "full_scans (sysfs)", "full scans", "sys_full_scans", NULL, NULL },
    { "general_profit-vs-time", "general_profit (sysfs)", "MiB", "sys_general_profit_mib",
      NULL, NULL },
    { "ksmd_cpu-vs-time", "ksmd CPU", "% of one CPU", "ksmd_cpu_pct", NULL, NULL },
    { "host_cpu-vs-time", "Host CPU busy (solid) and the guests' QEMU (dashed, % of one CPU)",
      "%", "host_cpu_pct", "guests_cpu_pct", "QEMU" },
    { "resident-vs-time", "Resident guest memory (the denominator)", "MiB", "denominator_mib",
      NULL, NULL },
};

typedef struct {
    const char *file;
    const char *title;
    const char *ylabel;
    const char *columns[4];
    const char *labels[4];
} SpVmPlotSpec;

static const SpVmPlotSpec sp_vm_plots[] = {
    { "pct-vs-vms", "Shared and reclaimed guest memory (steady state)", "% of resident guest memory",
      { "shared_pct", "reclaimed_pct" }, { "shared", "reclaimed" } },
    { "saved-vs-vms", "Saved memory (steady state)", "MiB",
      { "saved_mib", "saved_zero_mib", "saved_nonzero_mib", "pred_t0_saved_mib" },
      { "saved", "zero-filled", "other contents", "predicted at t=0" } },
    { "pages-vs-vms", "KSM pages (steady state)", "pages",
      { "guest_pages_shared", "guest_pages_sharing", "sys_pages_shared", "sys_pages_sharing" },
      { "guests' pages_shared", "guests' pages_sharing", "sysfs pages_shared",
        "sysfs pages_sharing" } },
    { "cpu-vs-vms", "CPU (steady state)", "%",
      { "ksmd_cpu_pct", "host_cpu_pct", "guests_cpu_pct" },
      { "ksmd (% of one CPU)", "host busy (% of all CPUs)", "QEMU (% of one CPU)" } },
};

/*
 * A gnuplot single-quoted string: a quote is doubled, and what could end the
 * command or the string early, or be substituted (a line break or another
 * control character, a backquote, a macro's @), becomes '_'.  Every value
 * written into the script goes through here.
 */
static char *
sp_gp_quote(const char *text)
{
    GString *s = g_string_new("'");

    for (const char *p = text; *p; p++) {
        guchar c = (guchar)*p;
        if (c < 0x20 || c == 0x7f || c == '`' || c == '@')
            g_string_append_c(s, '_');
        else if (c == '\'')
            g_string_append(s, "''");
        else
            g_string_append_c(s, (char)c);
    }
    g_string_append_c(s, '\'');
    return g_string_free(s, FALSE);
}

static char *
sp_report_run_label(const SpExpRun *r)
{
    return g_strdup_printf("%u VM%s%s", r->n_vms, r->n_vms == 1 ? "" : "s",
                           r->disturbed ? " (disturbed)" : r->complete ? "" : " (incomplete)");
}

/**
 * sp_report_gnuplot_script:
 * @pngs: (element-type utf8): receives the PNG paths, relative to the
 *   output directory
 *
 * A gnuplot script to run in the output directory.
 */
char *
sp_report_gnuplot_script(const SpPlan *plan, GPtrArray *runs, GPtrArray *pngs)
{
    GString *s = g_string_new(NULL);
    g_autoptr(GPtrArray) v = sp_report_valid_runs(runs);

    g_autofree char *qname = sp_gp_quote(plan->name);

    g_string_append_printf(s, "# gnuplot script written by samepage experiment; run it in the "
                           "output directory.\n# Plan: %s\n", qname);
    g_string_append(s, "set datafile separator comma\n"
                       "set terminal pngcairo size 900,540 noenhanced\n"
                       "set grid\nset key outside right top\nset xlabel 'seconds since run=1'\n"
                       "set yrange [0:*]\n");
    if (v->len == 0)
        return g_string_free(s, FALSE);
    for (gsize p = 0; p < G_N_ELEMENTS(sp_time_plots); p++) {
        const SpPlotSpec *sp = &sp_time_plots[p];
        g_autofree char *png = g_strdup_printf("plots/%s.png", sp->file);
        g_autofree char *title = sp_gp_quote(sp->title);
        g_autofree char *ylabel = sp_gp_quote(sp->ylabel);

        /* general_profit starts negative (rmap_items before merges). */
        g_autofree char *qpng = sp_gp_quote(png);

        g_string_append_printf(s, "\nset output %s\nset title %s\nset ylabel %s\n"
                               "set yrange [%s:*]\nplot ", qpng, title, ylabel,
                               g_str_equal(sp->column, "sys_general_profit_mib") ? "*" : "0");
        for (guint i = 0; i < v->len; i++) {
            const SpExpRun *r = g_ptr_array_index(v, i);
            g_autofree char *base = g_path_get_basename(r->dir);
            g_autofree char *label = sp_report_run_label(r);
            /* Sample 0 is before run=1; the time plots start at run=1. */
            g_autofree char *qlabel = sp_gp_quote(label);
            g_autofree char *csv = g_build_filename(base, "samples.csv", NULL);
            g_autofree char *qcsv = sp_gp_quote(csv);
            g_string_append_printf(s, "%s%s every ::1 using \"t_s\":\"%s\" with "
                                   "linespoints lc %u pt 7 ps 0.5 title %s",
                                   i ? ", \\\n     " : "", qcsv, sp->column, i + 1, qlabel);
            if (sp->column2) {
                g_autofree char *l2 = g_strdup_printf("%s, %s", label, sp->label2);
                g_autofree char *q2 = sp_gp_quote(l2);
                g_string_append_printf(s, ", \\\n     %s every ::1 using \"t_s\":\"%s\" "
                                       "with lines lc %u dt 2 title %s", qcsv, sp->column2,
                                       i + 1, q2);
            }
        }
        g_string_append_c(s, '\n');
        g_ptr_array_add(pngs, g_steal_pointer(&png));
    }
    g_string_append(s, "\nset xlabel 'guests (VMs)'\nset xtics 1\nset yrange [0:*]\n"
                       "set xrange [0:*]\n");
    for (gsize p = 0; p < G_N_ELEMENTS(sp_vm_plots); p++) {
        const SpVmPlotSpec *sp = &sp_vm_plots[p];
        g_autofree char *png = g_strdup_printf("plots/%s.png", sp->file);
        g_autofree char *title = sp_gp_quote(sp->title);
        g_autofree char *ylabel = sp_gp_quote(sp->ylabel);

        g_autofree char *qpng = sp_gp_quote(png);

        g_string_append_printf(s, "\nset output %s\nset title %s\nset ylabel %s\nplot ",
                               qpng, title, ylabel);
        for (guint i = 0; i < G_N_ELEMENTS(sp->columns) && sp->columns[i]; i++) {
            g_autofree char *label = sp_gp_quote(sp->labels[i]);
            g_string_append_printf(s, "%s'summary.csv' using \"vm_count\":\"%s\" with linespoints "
                                   "lc %u pt 7 title %s", i ? ", \\\n     " : "",
                                   sp->columns[i], i + 1, label);
        }
        g_string_append_c(s, '\n');
        g_ptr_array_add(pngs, g_steal_pointer(&png));
    }
    return g_string_free(s, FALSE);
}

/* ---------------------------------------------------------------- Markdown */

static const char *
sp_report_plural(guint n)
{
    return n == 1 ? "" : "s";
}

char *
sp_report_summary_table(const SpPlan *plan, GPtrArray *runs)
{
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, "%-4s %-10s %9s %8s %10s %9s %9s %10s %10s %8s %7s %7s\n", "VMs",
                           "status", "resident", "saved", "reclaimed", "zero", "other",
                           "predicted", "model-vs", "settled", "ksmd", "host");
    g_string_append_printf(s, "%-4s %-10s %9s %8s %10s %9s %9s %10s %10s %8s %7s %7s\n", "",
                           "", "MiB", "MiB", "%", "MiB", "MiB", "t=0 MiB", "kernel %", "at s",
                           "CPU %", "CPU %");
    for (guint i = 0; i < runs->len; i++) {
        const SpExpRun *r = g_ptr_array_index(runs, i);
        const SpExpSteady *st = &r->steady;
        g_autofree char *settled = st->converged ? g_strdup_printf("%.0f", st->converged_at)
                                                 : g_strdup("no");
        if (!st->valid) {
            g_string_append_printf(s, "%-4u %-10s (no samples)\n", r->n_vms,
                                   r->complete ? "complete" : "INCOMPLETE");
            continue;
        }
        g_string_append_printf(s, "%-4u %-10s %9.0f %8.0f %10.1f %9.0f %9.0f %10.0f %+10.1f %8s "
                               "%7.1f %7.0f\n", r->n_vms,
                               r->disturbed ? "DISTURBED" : r->complete ? "complete" : "INCOMPLETE",
                               st->denominator_mib, st->saved_mib, st->reclaimed_pct,
                               st->saved_zero_mib, st->saved_nonzero_mib, st->pred_t0_saved_mib,
                               st->pred_error_pct, settled, st->ksmd_cpu_pct, st->host_cpu_pct);
    }
    return g_string_free(s, FALSE);
}

char *
sp_report_markdown(const SpReportInfo *info, const SpPlan *plan, GPtrArray *runs, GPtrArray *pngs)
{
    GString *s = g_string_new(NULL);
    g_autofree char *ksm = sp_plan_describe_ksm(plan);
    g_autofree char *workload = sp_plan_describe_workload(plan);
    g_autofree char *start = sp_exp_format_time(info->wall_start);
    g_autofree char *counts = NULL;
    g_autoptr(GPtrArray) conc = sp_report_conclusions(plan, runs);
    g_autoptr(GString) cs = g_string_new(NULL);

    for (guint i = 0; i < plan->vm_counts->len; i++)
        g_string_append_printf(cs, "%s%u", i ? ", " : "", g_array_index(plan->vm_counts, guint, i));
    counts = g_strdup(cs->str);

    g_string_append_printf(s, "# Experiment \"%s\": KSM with cloned Debian guests\n\n", plan->name);
    if (plan->description)
        g_string_append_printf(s, "%s\n\n", plan->description);
    if (info->complete)
        g_string_append(s, "**Status: complete.**\n\n");
    else
        g_string_append_printf(s, "**Status: INCOMPLETE** — %s. The figures below come from the "
                               "samples collected before that.\n\n",
                               info->error_message ? info->error_message : "it did not finish");
    if (info->teardown_problems)
        g_string_append_printf(s, "**Teardown left something behind:** %s\n\n", info->teardown_problems);

    g_string_append(s, "## Configuration\n\n| | |\n|---|---|\n");
    g_string_append_printf(s, "| plan | `%s` |\n", plan->source);
    g_string_append_printf(s, "| VM counts | %s |\n", counts);
    g_string_append_printf(s, "| guest | %u MiB RAM, %u vCPU%s, Debian 12 (qcow2 overlays on "
                           "`%s/base.qcow2`), %s |\n", plan->memory_mib, plan->vcpus,
                           sp_report_plural(plan->vcpus), info->image_dir ? info->image_dir : "?",
                           info->accelerator ? info->accelerator : "?");
    g_string_append_printf(s, "| KSM | %s (reset with run=2 before every run; the host's "
                           "settings restored at the end) |\n", ksm);
    g_string_append_printf(s, "| workload | %s |\n", workload);
    g_autofree char *pred = plan->predict_interval_s > 0
        ? g_strdup_printf("at t=0, every %g s and after the last sample", plan->predict_interval_s)
        : g_strdup("at t=0 and after the last sample");
    g_string_append_printf(s, "| sampling | every %g s for %g s after run=1 (settle %g s; "
                           "the model's prediction %s) |\n", plan->interval_s,
                           plan->duration_s, plan->settle_s, pred);
    g_string_append_printf(s, "| host | Linux %s, %u CPUs, %" G_GUINT64_FORMAT " MiB |\n",
                           info->kernel ? info->kernel : "?", info->n_cpus,
                           info->mem_total_kib / 1024);
    g_string_append_printf(s, "| libvirt | `%s` |\n", info->uri ? info->uri : "?");
    g_string_append_printf(s, "| started | %s, took %.0f s |\n\n", start,
                           (info->wall_end - info->wall_start) / 1e6);

    g_string_append(s, "## Results\n\nSteady state: the mean of the samples in the last third "
                       "of each run. Memory is the guests' only (a census of the page frames "
                       "behind each guest's RAM); the denominator is their resident memory.\n\n");
    g_string_append(s, "| VMs | status | resident MiB | shared % | reclaimed % | saved MiB | "
                       "zero-filled MiB | other MiB | predicted at t=0 MiB | kernel vs model | "
                       "settled at | full scans | ksmd CPU % | host CPU % |\n"
                       "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (guint i = 0; i < runs->len; i++) {
        const SpExpRun *r = g_ptr_array_index(runs, i);
        const SpExpSteady *st = &r->steady;
        if (!st->valid) {
            g_string_append_printf(s, "| %u | %s | | | | | | | | | | | | |\n", r->n_vms,
                                   r->complete ? "complete" : "**incomplete**");
            continue;
        }
        g_autofree char *settled = st->converged ? g_strdup_printf("%.0f s", st->converged_at)
                                                 : g_strdup("not settled");
        g_string_append_printf(s, "| %u | %s | %.0f | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | "
                               "%+.1f%% | %s | %" G_GUINT64_FORMAT " | %.1f | %.0f |\n", r->n_vms,
                               r->disturbed ? "**disturbed**" : r->complete ? "complete"
                                                                : "**incomplete**",
                               st->denominator_mib,
                               st->shared_pct, st->reclaimed_pct, st->saved_mib,
                               st->saved_zero_mib, st->saved_nonzero_mib, st->pred_t0_saved_mib,
                               st->pred_error_pct, settled, st->full_scans, st->ksmd_cpu_pct,
                               st->host_cpu_pct);
    }
    g_string_append(s, "\n## Conclusions\n\n");
    for (guint i = 0; i < conc->len; i++)
        g_string_append_printf(s, "- %s\n", (const char *)g_ptr_array_index(conc, i));

    g_string_append(s, "\n## Definitions\n\n"
        "- **resident**: the guests' RAM pages present in host memory (not the shared zero "
        "page), plus the pages KSM or a THP split turned into zero-page mappings since t=0 — "
        "what the guests would occupy without KSM. Not the configured RAM: memory a guest never "
        "touched costs nothing and cannot be shared.\n"
        "- **shared %**: deduplicated pages: those mapping a KSM page (the guests' "
        "pages_shared + pages_sharing) and the zero-page mappings gained since t=0 (before "
        "Linux 6.12 KSM merged those into a zero-filled KSM page) / resident. **reclaimed %**: "
        "saved / resident.\n"
        "- **saved**: the guests' pages_sharing (mappings beyond the first of each KSM page) "
        "plus the zero-page mappings gained since t=0 (use_zero_pages merges and zero-filled "
        "subpages of split THPs, which since Linux 6.12 count in no KSM figure).\n"
        "- **zero-filled / other**: the saving split by the content of the KSM page (read once "
        "per KSM page).\n"
        "- **predicted at t=0**: samepage's model over the guests' memory before ksmd ran. "
        "**kernel vs model**: the guests' pages_sharing against the last prediction.\n"
        "- **settled at**: the first time after which the saving stayed within 2% of the steady "
        "value.\n"
        "- CPU: ksmd and QEMU in % of one CPU; host busy in % of all CPUs. Each sample's "
        "figures cover the interval before it.\n");

    if (pngs && pngs->len) {
        g_string_append(s, "\n## Plots\n\n");
        for (guint i = 0; i < pngs->len; i++) {
            const char *png = g_ptr_array_index(pngs, i);
            g_autofree char *base = g_path_get_basename(png);
            g_string_append_printf(s, "![%s](%s)\n\n", base, png);
        }
    } else {
        g_string_append(s, "\n(No plots: gnuplot is not installed or failed; the CSV files hold "
                           "every figure.)\n");
    }
    g_string_append(s, "\n## Files\n\n`summary.csv` (one row per run), `results.json`, "
                       "`run-NN-Kvm/samples.csv` (every figure per sample), `guests.csv` (per "
                       "guest), `run.json`, the guests' serial logs, `plots/plots.gp`.\n");
    return g_string_free(s, FALSE);
}

/* ---------------------------------------------------------------- writing */

static gboolean
sp_report_write_file(const char *dir, const char *name, const char *text, GError **error)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) local = NULL;

    if (!g_file_set_contents(path, text, -1, &local)) {
        g_set_error(error, SP_REPORT_ERROR, SP_REPORT_ERROR_WRITE, "%s", local->message);
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_report_write_json(const char *dir, const char *name, json_object *o, GError **error)
{
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
    g_autofree char *withnl = g_strconcat(text, "\n", NULL);
    return sp_report_write_file(dir, name, withnl, error);
}

gboolean
sp_report_write_run(const SpExpRun *run, GError **error)
{
    g_autofree char *samples = sp_report_samples_csv(run);
    g_autofree char *guests = sp_report_guests_csv(run);
    g_autoptr(json_object) json = sp_exp_run_json(run);

    return sp_report_write_file(run->dir, "samples.csv", samples, error) &&
        sp_report_write_file(run->dir, "guests.csv", guests, error) &&
        sp_report_write_json(run->dir, "run.json", json, error);
}

gboolean
sp_report_write_all(const SpReportInfo *info, const SpPlan *plan, GPtrArray *runs, GError **error)
{
    g_autofree char *summary = sp_report_summary_csv(runs);
    g_autoptr(json_object) results = sp_report_results_json(info, plan, runs);
    g_autoptr(GPtrArray) pngs = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *plotdir = g_build_filename(info->output_dir, "plots", NULL);
    g_autofree char *script = sp_report_gnuplot_script(plan, runs, pngs);
    g_autofree char *gnuplot = g_find_program_in_path("gnuplot");
    g_autofree char *md = NULL;

    if (!sp_report_write_file(info->output_dir, "summary.csv", summary, error) ||
        !sp_report_write_json(info->output_dir, "results.json", results, error))
        return FALSE;
    if (g_mkdir_with_parents(plotdir, 0755) < 0) {
        g_set_error(error, SP_REPORT_ERROR, SP_REPORT_ERROR_WRITE,
                    "cannot create %s: %s", plotdir, g_strerror(errno));
        return FALSE;
    }
    if (!sp_report_write_file(plotdir, "plots.gp", script, error))
        return FALSE;
    if (pngs->len && gnuplot) {
        const char *argv[] = { gnuplot, "plots/plots.gp", NULL };
        g_autofree char *err = NULL;
        g_autoptr(GError) local = NULL;
        int status;
        if (!g_spawn_sync(info->output_dir, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                          NULL, NULL, &err, &status, &local) ||
            !g_spawn_check_wait_status(status, &local)) {
            g_warning("gnuplot failed: %s%s%s", local ? local->message : "?",
                      err && *err ? ": " : "", err ? err : "");
            g_ptr_array_set_size(pngs, 0);
        }
    } else {
        g_ptr_array_set_size(pngs, 0);
    }
    md = sp_report_markdown(info, plan, runs, pngs);
    return sp_report_write_file(info->output_dir, "report.md", md, error);
}
