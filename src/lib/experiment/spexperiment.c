/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spexperiment.c: run an experiment plan with cloned guests under libvirt
 *
 * Theory of operation
 *
 * Everything the runner creates is recorded the moment it exists (the
 * overlay file, the domain definition, the running domain, the KSM knobs
 * it changed), so one teardown path undoes exactly that, after success,
 * failure or an interrupt.  Waiting is done by iterating the default main
 * context, so the caller's g_unix_signal_add() handlers run and may call
 * sp_experiment_interrupt(); nothing waits by sleeping for readiness:
 * guests are ready when their agent answers guest-ping.
 *
 * A run is: KSM reset (run=2 until pages_shared is 0) and the plan's
 * knobs; N overlays + domains defined and started from the template; the
 * agents; the workload (guest-exec); settle; sample 0 (t=0: census,
 * ksm_stat, the model's prediction) while ksmd is still stopped; run=1;
 * a sample every interval.  Each sample reads: every KSM sysfs figure,
 * /proc/stat and the stat of ksmd, of the QEMU processes and of ourselves
 * (CPU), each guest's ksm_stat and VmRSS, and a census of the frames
 * behind every guest's RAM VMA (SpCensus): the guests' own pages_shared
 * and pages_sharing, zero-filled or not, and the zero-page mappings.  The
 * guests' RAM VMA is found with HMP gpa2hva 0 through libvirt, checked
 * against smaps (a private anonymous VMA of exactly the guest's size).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-experiment"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "samepage/spestimate.h"
#include "samepage/spexperiment.h"
#include "samepage/spjournal.h"
#include "samepage/splibvirt.h"
#include "samepage/spmaps.h"
#include "samepage/spnuma.h"
#include "samepage/spproc.h"
#include "samepage/spqmp.h"
#include "samepage/spreport.h"
#include "samepage/spscan.h"
#include "spexperimentpriv.h"

G_DEFINE_QUARK(sp-experiment-error-quark, sp_experiment_error)

#define SP_MIB(pages) ((double)(pages) * 4096.0 / (1024.0 * 1024.0))
#define SP_EXP_KSM_RESET_TIMEOUT_S 300
#define SP_EXP_AGENT_TIMEOUT_S 3

typedef struct {
    guint64 busy, total;             /* /proc/stat */
    guint64 ksmd, guests, self;      /* ticks */
    gint64 when;                     /* monotonic us */
    gboolean valid;
} SpExpCpu;

typedef struct {
    SpLibvirtDomain *dom;
    gboolean defined;
    gboolean started;
    SpProcess *qemu;                 /* its QEMU, held by a pidfd */
} SpExpDomain;

static void
sp_exp_domain_clear(gpointer data)
{
    g_clear_pointer(&((SpExpDomain *)data)->qemu, sp_process_free);
    g_clear_pointer(&((SpExpDomain *)data)->dom, sp_libvirt_domain_free);
}

struct _SpExperiment {
    SpPlan *plan;                    /* a copy's owner: the caller's stays theirs */
    const SpPlan *plan_ref;
    SpHost *host;
    char *uri;
    char *output_dir;
    char *plan_text;
    char *image_dir;
    char *template_path;
    char *overlay_parent;            /* the plan's overlay_dir, or NULL: $TMPDIR */
    char *overlay_dir;               /* made by the run, under overlay_parent */
    gboolean overlay_dir_made;
    char *tag;
    char *state_dir;                 /* journals; NULL: none kept */
    SpJournal *journal;              /* what exists now, for `experiment clean` */
    gboolean force_unmerge;          /* skip the MemAvailable check of run=2 */
    guint64 page_size;
    const char *accelerator;         /* from the template's domain type */

    SpExperimentProgressFunc progress;
    gpointer progress_data;
    gint interrupted;

    SpLibvirt *lv;
    gboolean ksm_touched;
    SpKsmState ksm_orig;
    pid_t ksmd_pid;
    long clk_tck;

    GPtrArray *runs;                 /* SpExpRun */
    GArray *domains;                 /* SpExpDomain of the current run */
    SpExpCpu cpu;

    gint64 t_start;                  /* monotonic, experiment */
    gint64 wall_start;
    gint64 wall_end;
    gboolean complete;
    char *error_message;
    char *teardown_problems;
};

/* ================================================================ pure helpers */

/* VmRSS is a "KEY: N kB" line as meminfo's are: SpProc's parser reads it. */
guint64
sp_exp_parse_vmrss(const char *text)
{
    guint64 bytes;

    return sp_proc_parse_meminfo(text, "VmRSS", &bytes, NULL) ? bytes / 1024 : 0;
}

char *
sp_exp_fill_template(const char *tmpl, GHashTable *vars, GError **error)
{
    g_autoptr(GString) out = g_string_new(NULL);
    const char *p = tmpl;

    while (*p) {
        const char *at = strchr(p, '@');
        const char *close;
        g_autofree char *key = NULL;
        const char *value;

        if (!at) {
            g_string_append(out, p);
            break;
        }
        g_string_append_len(out, p, at - p);
        close = strchr(at + 1, '@');
        if (!close) {
            g_string_append(out, at);
            break;
        }
        key = g_strndup(at + 1, close - at - 1);
        gboolean placeholder = key[0] != '\0';
        for (const char *k = key; *k; k++)
            placeholder &= g_ascii_isupper(*k) || *k == '_' || g_ascii_isdigit(*k);
        if (!placeholder) {
            g_string_append_c(out, '@');
            p = at + 1;
            continue;
        }
        value = g_hash_table_lookup(vars, key);
        if (!value) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                        "the domain template has a placeholder @%s@ that has no value", key);
            return NULL;
        }
        g_autofree char *esc = g_markup_escape_text(value, -1);
        g_string_append(out, esc);
        p = close + 1;
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

gboolean
sp_exp_pick_ram_vma(GPtrArray *vmas, guint64 hva, guint64 size, guint64 *start,
                    guint64 *end, GError **error)
{
    const SpVma *only = NULL;
    guint n = 0;

    for (guint i = 0; i < vmas->len; i++) {
        const SpVma *v = g_ptr_array_index(vmas, i);
        if (hva && hva >= v->start && hva < v->end) {
            if (v->start != hva || v->end - v->start != size) {
                g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                            "guest RAM at 0x%" G_GINT64_MODIFIER "x is inside the VMA 0x%"
                            G_GINT64_MODIFIER "x-0x%" G_GINT64_MODIFIER "x, not a VMA of "
                            "its own of %" G_GUINT64_FORMAT " MiB", hva, v->start, v->end,
                            size >> 20);
                return FALSE;
            }
            *start = v->start;
            *end = v->end;
            return TRUE;
        }
        if (v->end - v->start == size && sp_vma_is_private_anon(v)) {
            only = v;
            n++;
        }
    }
    if (hva) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                    "no VMA holds the guest RAM address 0x%" G_GINT64_MODIFIER "x", hva);
        return FALSE;
    }
    if (n != 1) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                    "%u private anonymous VMAs of %" G_GUINT64_FORMAT " MiB: cannot tell "
                    "which holds guest RAM", n, size >> 20);
        return FALSE;
    }
    *start = only->start;
    *end = only->end;
    return TRUE;
}

static void
sp_exp_add_setting(GArray *a, SpKsmKey key, gint64 value)
{
    SpKsmSetting s = { key, value };
    g_array_append_val(a, s);
}

GArray *
sp_exp_ksm_plan_settings(const SpPlan *plan, const SpKsmState *cur)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(SpKsmSetting));
    const SpKsmEntry *adv = &cur->entry[SP_KSM_ADVISOR_MODE];

    if (sp_plan_find_ksm(plan, SP_KSM_PAGES_TO_SCAN) && !sp_plan_find_ksm(plan, SP_KSM_ADVISOR_MODE) &&
        adv->supported && adv->value != 0)
        sp_exp_add_setting(a, SP_KSM_ADVISOR_MODE, 0);
    for (gsize i = 0; i < plan->n_ksm; i++)
        g_array_append_val(a, plan->ksm[i]);
    return a;
}

/* To be applied after run=2, which unmerges what the experiment merged (the
 * guests are gone, so it is cheap) and lets max_page_sharing and
 * merge_across_nodes change; may be empty. */
GArray *
sp_exp_ksm_restore_settings(const SpKsmState *orig, const SpKsmState *cur)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(SpKsmSetting));
    const SpKsmEntry *oa = &orig->entry[SP_KSM_ADVISOR_MODE];
    const SpKsmEntry *ca = &cur->entry[SP_KSM_ADVISOR_MODE];
    gboolean advisor_differs = oa->supported && ca->supported && oa->value != ca->value;

    if (advisor_differs && ca->value != 0)
        sp_exp_add_setting(a, SP_KSM_ADVISOR_MODE, oa->value);
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(k);
        if (!info->writable || k == SP_KSM_RUN || k == SP_KSM_ADVISOR_MODE)
            continue;
        if (!orig->entry[k].supported || !cur->entry[k].supported)
            continue;
        if (orig->entry[k].value != cur->entry[k].value)
            sp_exp_add_setting(a, k, orig->entry[k].value);
    }
    if (advisor_differs && ca->value == 0)
        sp_exp_add_setting(a, SP_KSM_ADVISOR_MODE, oa->value);
    if (orig->entry[SP_KSM_RUN].value != 2)
        sp_exp_add_setting(a, SP_KSM_RUN, orig->entry[SP_KSM_RUN].value);
    return a;
}

char *
sp_exp_domain_name(const char *plan_name, const char *tag, guint run, guint guest)
{
    g_autoptr(GString) s = g_string_new("sp-");

    for (const char *p = plan_name; *p && s->len < 23; p++) {
        char c = g_ascii_tolower(*p);
        if (g_ascii_isalnum(c))
            g_string_append_c(s, c);
        else if (s->str[s->len - 1] != '-')
            g_string_append_c(s, '-');
    }
    if (s->str[s->len - 1] != '-')
        g_string_append_c(s, '-');
    g_string_append_printf(s, "%s-%u-%u", tag, run, guest);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/**
 * sp_exp_ksm_disturbed:
 * @running: whether run should be 1 (after t=0) or 2 (before)
 *
 * Returns: (nullable): what differs from the plan's knobs in @st: someone
 * else changed KSM under the experiment.
 */
char *
sp_exp_ksm_disturbed(const SpPlan *plan, const SpKsmState *st, gboolean running, double t)
{
    g_autoptr(GString) s = g_string_new(NULL);
    gint64 want_run = running ? 1 : 2;

    if (st->entry[SP_KSM_RUN].value != want_run)
        g_string_append_printf(s, "run=%" G_GINT64_FORMAT " (the runner set %" G_GINT64_FORMAT ")",
                               st->entry[SP_KSM_RUN].value, want_run);
    for (gsize i = 0; i < plan->n_ksm; i++) {
        const SpKsmSetting *k = &plan->ksm[i];
        if (!st->entry[k->key].supported || st->entry[k->key].value == k->value)
            continue;
        g_autofree char *have = sp_ksm_format_value(k->key, st->entry[k->key].value);
        g_autofree char *want = sp_ksm_format_value(k->key, k->value);
        g_string_append_printf(s, "%s%s=%s (the plan says %s)", s->len ? ", " : "",
                               sp_ksm_key_info(k->key)->name, have, want);
    }
    if (!s->len)
        return NULL;
    return g_strdup_printf("at t=%.0f s KSM was changed by someone else: %s", t, s->str);
}

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
        st->denominator_mib += SP_MIB(d.denominator);
        st->shared_pct += d.shared_pct;
        st->reclaimed_pct += d.reclaimed_pct;
        st->saved_mib += SP_MIB(d.saved);
        st->saved_zero_mib += SP_MIB(d.saved_zero);
        st->saved_nonzero_mib += SP_MIB(d.saved_nonzero);
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
        if (ABS(SP_MIB(d.saved) - st->saved_mib) > tol) {
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
        st->pred_t0_saved_mib = SP_MIB(d0.pred_saved);
    if (last->prediction.valid) {
        st->pred_saved_mib = SP_MIB(dl.pred_saved);
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

/* ================================================================ the runner */

SpExperiment *
sp_experiment_new(const SpPlan *plan, const SpHost *host, const SpExperimentOptions *opt)
{
    SpExperiment *exp = g_new0(SpExperiment, 1);
    g_autofree char *plan_dir = g_path_get_dirname(plan->source);
    g_autofree char *plan_abs = g_canonicalize_filename(plan_dir, NULL);

    exp->plan_ref = plan;
    exp->host = sp_host_new_with_roots(sp_host_get_sysfs_root(host), sp_host_get_procfs_root(host));
    exp->uri = g_strdup(opt->uri ? opt->uri : "qemu:///system");
    /* Absolute and normalized: the journal names them, and takes no other. */
    exp->output_dir = g_canonicalize_filename(opt->output_dir, NULL);
    exp->plan_text = g_strdup(opt->plan_text);
    /* Paths in the plan are relative to the plan file. */
    if (plan->image_dir)
        exp->image_dir = g_path_is_absolute(plan->image_dir) ? g_strdup(plan->image_dir)
            : g_build_filename(plan_dir, plan->image_dir, NULL);
    else
        exp->image_dir = g_strdup(opt->default_image_dir);
    if (plan->template_path)
        exp->template_path = g_path_is_absolute(plan->template_path)
            ? g_strdup(plan->template_path) : g_build_filename(plan_dir, plan->template_path, NULL);
    else
        exp->template_path = g_strdup(opt->default_template);
    /* The overlays go into a new directory of the run's own under it. */
    if (plan->overlay_dir)
        exp->overlay_parent = g_path_is_absolute(plan->overlay_dir)
            ? g_canonicalize_filename(plan->overlay_dir, NULL)
            : g_canonicalize_filename(plan->overlay_dir, plan_abs);
    exp->state_dir = g_strdup(opt->state_dir);
    exp->force_unmerge = opt->force_unmerge;
    exp->page_size = sysconf(_SC_PAGESIZE) > 0 ? (guint64)sysconf(_SC_PAGESIZE) : 4096;
    exp->tag = g_strdup_printf("%06x", g_random_int_range(0, 0xffffff));
    exp->runs = g_ptr_array_new_with_free_func((GDestroyNotify)sp_exp_run_free);
    exp->domains = g_array_new(FALSE, TRUE, sizeof(SpExpDomain));
    g_array_set_clear_func(exp->domains, sp_exp_domain_clear);
    exp->clk_tck = sysconf(_SC_CLK_TCK);
    if (exp->clk_tck <= 0)
        exp->clk_tck = 100;
    return exp;
}

void
sp_experiment_free(SpExperiment *exp)
{
    if (!exp)
        return;
    sp_host_free(exp->host);
    g_free(exp->uri);
    g_free(exp->output_dir);
    g_free(exp->plan_text);
    g_free(exp->image_dir);
    g_free(exp->template_path);
    g_free(exp->overlay_parent);
    g_free(exp->overlay_dir);
    g_free(exp->tag);
    g_free(exp->state_dir);
    sp_journal_free(exp->journal);
    g_ptr_array_unref(exp->runs);
    g_array_unref(exp->domains);
    sp_libvirt_free(exp->lv);
    g_free(exp->error_message);
    g_free(exp->teardown_problems);
    g_free(exp);
}

void
sp_experiment_set_progress_func(SpExperiment *exp, SpExperimentProgressFunc func,
                                gpointer user_data)
{
    exp->progress = func;
    exp->progress_data = user_data;
}

/* Safe from a signal source (same thread) or another thread. */
void
sp_experiment_interrupt(SpExperiment *exp)
{
    g_atomic_int_set(&exp->interrupted, 1);
}

static gboolean
sp_exp_interrupted(SpExperiment *exp)
{
    return g_atomic_int_get(&exp->interrupted) != 0;
}

GPtrArray *
sp_experiment_get_runs(const SpExperiment *exp)
{
    return exp->runs;
}

const char *
sp_experiment_get_output_dir(const SpExperiment *exp)
{
    return exp->output_dir;
}

double
sp_experiment_get_elapsed(const SpExperiment *exp)
{
    gint64 end = exp->wall_end ? exp->wall_end : g_get_real_time();
    return exp->wall_start ? (end - exp->wall_start) / 1e6 : 0.0;
}

static double
sp_exp_elapsed(const SpExperiment *exp)
{
    return (g_get_monotonic_time() - exp->t_start) / 1e6;
}

static void
sp_exp_progress(SpExperiment *exp, SpExpRun *run, const char *stage, guint ready, double t,
                const SpExpSample *s)
{
    SpExperimentProgress p = { 0 };

    if (!exp->progress)
        return;
    p.run = run ? run->index : 0;
    p.n_runs = exp->plan_ref->vm_counts->len;
    p.n_vms = run ? run->n_vms : 0;
    p.stage = stage;
    p.ready = ready;
    p.t = t;
    p.duration = exp->plan_ref->duration_s;
    p.elapsed_s = sp_exp_elapsed(exp);
    if (s) {
        SpExpDerived d;
        sp_exp_sample_derive(s, &d);
        p.have_figures = TRUE;
        p.saved_mib = SP_MIB(d.saved);
        p.reclaimed_pct = d.reclaimed_pct;
        p.pred_saved_mib = SP_MIB(d.pred_saved);
    }
    exp->progress(&p, exp->progress_data);
}

static gboolean
sp_exp_timeout_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Wait until @deadline (monotonic us) while dispatching the main context;
 * FALSE if interrupted. */
static gboolean
sp_exp_wait_until(SpExperiment *exp, gint64 deadline)
{
    /* Even when the deadline has passed: a signal's source gets its turn. */
    g_main_context_iteration(NULL, FALSE);
    while (!sp_exp_interrupted(exp)) {
        gint64 now = g_get_monotonic_time();
        gboolean fired = FALSE;
        guint id;

        if (now >= deadline)
            return TRUE;
        id = g_timeout_add(MAX((deadline - now) / 1000, 1), sp_exp_timeout_cb, &fired);
        while (!fired && !sp_exp_interrupted(exp))
            g_main_context_iteration(NULL, TRUE);
        if (!fired)
            g_source_remove(id);
    }
    return FALSE;
}

static gboolean
sp_exp_check_interrupt(SpExperiment *exp, GError **error)
{
    if (!sp_exp_interrupted(exp))
        return TRUE;
    g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_INTERRUPTED, "interrupted");
    return FALSE;
}

/* ---------------------------------------------------------------- journal */

/* Called before each change is made, so a kill in between leaves the
 * journal naming something that may not exist (cleanup takes that), never
 * something that exists unnamed.  A journal that cannot be written stops
 * the experiment before that change: what it would make could not be
 * undone after a kill. */
static gboolean
sp_exp_journal_save(SpExperiment *exp, GError **error)
{
    g_autoptr(GError) local = NULL;

    if (exp->journal && !sp_journal_save(exp->journal, &local)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "%s: stopping before changing anything more", local->message);
        return FALSE;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- KSM */

static gboolean
sp_exp_ksm_apply(SpExperiment *exp, GArray *settings, const char *what, GError **error)
{
    if (settings->len == 0)
        return TRUE;
    g_autoptr(GError) local = NULL;

    if (exp->journal && !exp->journal->ksm_changed) {
        exp->journal->ksm_changed = TRUE;
        exp->journal->ksm_before = exp->ksm_orig;
        if (!sp_exp_journal_save(exp, error)) {
            exp->journal->ksm_changed = FALSE;
            g_prefix_error(error, "%s: ", what);
            return FALSE;
        }
    }
    exp->ksm_touched = TRUE;
    if (!sp_ksm_apply(exp->host, (const SpKsmSetting *)settings->data, settings->len, &local)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_KSM, "%s: %s", what,
                    local->message);
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_exp_ksm_reset(SpExperiment *exp, SpExpRun *run, GError **error)
{
    g_autoptr(GArray) reset = g_array_new(FALSE, FALSE, sizeof(SpKsmSetting));
    g_autoptr(GArray) settings = NULL;
    gint64 deadline = g_get_monotonic_time() + SP_EXP_KSM_RESET_TIMEOUT_S * G_USEC_PER_SEC;
    SpKsmState st;

    sp_exp_progress(exp, run, "KSM reset (run=2)", 0, 0, NULL);
    /* run=2 unmerges every merged page on the host (between runs our
     * guests are gone: what is merged is other processes'). */
    if (!exp->force_unmerge) {
        g_autoptr(GError) local = NULL;
        if (!sp_ksm_read(exp->host, &st, error))
            return FALSE;
        if (!sp_ksm_unmerge_check(st.entry[SP_KSM_PAGES_SHARING].value, exp->page_size,
                                  sp_host_mem_available(exp->host), NULL, &local)) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_KSM,
                        "KSM reset (run=2), nothing changed yet: %s", local->message);
            return FALSE;
        }
    }
    sp_exp_add_setting(reset, SP_KSM_RUN, 2);
    if (!sp_exp_ksm_apply(exp, reset, "KSM reset (run=2)", error))
        return FALSE;
    for (;;) {
        if (!sp_ksm_read(exp->host, &st, error))
            return FALSE;
        if (st.entry[SP_KSM_PAGES_SHARED].value == 0 && st.entry[SP_KSM_PAGES_SHARING].value == 0)
            break;
        if (g_get_monotonic_time() > deadline) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_KSM,
                        "KSM reset: pages_shared is still %" G_GINT64_FORMAT " %d s after run=2",
                        st.entry[SP_KSM_PAGES_SHARED].value, SP_EXP_KSM_RESET_TIMEOUT_S);
            return FALSE;
        }
        if (!sp_exp_wait_until(exp, g_get_monotonic_time() + 100 * 1000))
            return sp_exp_check_interrupt(exp, error);
    }
    settings = sp_exp_ksm_plan_settings(exp->plan_ref, &st);
    return sp_exp_ksm_apply(exp, settings, "the plan's KSM settings", error);
}

/**
 * sp_exp_ksm_put_back:
 *
 * Unmerges everything (run=2: the kernel does it before the write returns)
 * and restores @orig with sp_ksm_restore(): every knob that differs, in an
 * order that respects the kernel's side effects, @orig's run last (a run=2
 * there stays "stopped", never a second unmerge).  The writes made are
 * returned in @done (may be NULL).
 */
gboolean
sp_exp_ksm_put_back(const SpHost *host, const SpKsmState *orig, GArray **done, GError **error)
{
    SpKsmSetting unmerge = { SP_KSM_RUN, 2 };

    if (!sp_ksm_apply(host, &unmerge, 1, error)) {
        g_prefix_error(error, "restoring the host's KSM settings: run=2: ");
        return FALSE;
    }
    if (!sp_ksm_restore(host, orig, done, error)) {
        g_prefix_error(error, "restoring the host's KSM settings: ");
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_exp_ksm_restore(SpExperiment *exp, GError **error)
{
    if (!exp->ksm_touched)
        return TRUE;
    if (!sp_exp_ksm_put_back(exp->host, &exp->ksm_orig, NULL, error))
        return FALSE;
    exp->ksm_touched = FALSE;
    if (exp->journal)
        exp->journal->ksm_changed = FALSE;
    return TRUE;
}

/* ---------------------------------------------------------------- /proc */

static char *
sp_exp_read_proc(SpExperiment *exp, pid_t pid, const char *file)
{
    g_autofree char *path = sp_host_procfs_path(exp->host, "%d/%s", (int)pid, file);
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    return text;
}

/* @pid's ksm_stat figures into @gs; all -1 if it cannot be read. */
static void
sp_exp_guest_ksm_stat(SpExperiment *exp, pid_t pid, SpExpGuestSample *gs)
{
    SpKsmStat k;

    if (!sp_proc_read_ksm_stat(exp->host, pid, &k, NULL)) {
        gs->ksm_rmap_items = gs->ksm_zero_pages = gs->ksm_merging_pages =
            gs->ksm_process_profit = -1;
        return;
    }
    gs->ksm_rmap_items = k.ksm_rmap_items;
    gs->ksm_zero_pages = k.ksm_zero_pages;
    gs->ksm_merging_pages = k.ksm_merging_pages;
    gs->ksm_process_profit = k.ksm_process_profit;
}

/* utime + stime of @pid in clock ticks, 0 if unknown. */
static guint64
sp_exp_pid_ticks(SpExperiment *exp, pid_t pid)
{
    g_auto(SpProcStat) st = { 0 };

    if (!pid || !sp_proc_read_stat(exp->host, pid, &st, NULL))
        return 0;
    return st.utime + st.stime;
}

static void
sp_exp_cpu_read(SpExperiment *exp, SpExpRun *run, SpExpCpu *c)
{
    memset(c, 0, sizeof(*c));
    c->when = g_get_monotonic_time();
    c->valid = sp_proc_read_cpu_stat(exp->host, &c->busy, &c->total, NULL);
    c->ksmd = sp_exp_pid_ticks(exp, exp->ksmd_pid);
    c->self = sp_exp_pid_ticks(exp, getpid());
    for (guint i = 0; run && i < run->guests->len; i++)
        c->guests += sp_exp_pid_ticks(exp, g_array_index(run->guests, SpExpGuestInfo, i).pid);
}

/* CPU since the previous reading. */
static void
sp_exp_cpu_sample(SpExperiment *exp, SpExpRun *run, SpExpSample *s)
{
    SpExpCpu now;
    double dt, tick_pct;

    sp_exp_cpu_read(exp, run, &now);
    if (exp->cpu.valid && now.valid && now.total > exp->cpu.total) {
        s->host_cpu_pct = 100.0 * (double)(now.busy - exp->cpu.busy) /
            (double)(now.total - exp->cpu.total);
    }
    dt = (now.when - exp->cpu.when) / 1e6;
    if (exp->cpu.when && dt > 0) {
        tick_pct = 100.0 / (dt * (double)exp->clk_tck);
        s->ksmd_cpu_pct = now.ksmd >= exp->cpu.ksmd ? (now.ksmd - exp->cpu.ksmd) * tick_pct : 0;
        s->self_cpu_pct = now.self >= exp->cpu.self ? (now.self - exp->cpu.self) * tick_pct : 0;
        s->guests_cpu_pct = now.guests >= exp->cpu.guests
            ? (now.guests - exp->cpu.guests) * tick_pct : 0;
    }
    exp->cpu = now;
}

/* ---------------------------------------------------------------- libvirt */

static SpLibvirtDomain *
sp_exp_dom(SpExperiment *exp, guint i)
{
    return g_array_index(exp->domains, SpExpDomain, i).dom;
}

/* After a libvirt call failed with @cause: TRUE, with @error set, when
 * libvirtd is gone. */
static gboolean
sp_exp_libvirt_lost(SpExperiment *exp, const char *doing, const GError *cause, GError **error)
{
    if (sp_libvirt_is_alive(exp->lv))
        return FALSE;
    g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_LIBVIRT,
                "libvirtd (%s) stopped answering while %s: %s", exp->uri, doing,
                cause->message);
    return TRUE;
}

/* The guest agent: a command and its "return" member. */
static json_object *
sp_exp_agent(SpExperiment *exp, guint i, const char *cmd, json_object *args, GError **error)
{
    g_autoptr(json_object) req = json_object_new_object();
    g_autoptr(json_object) reply = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    json_object *ret;

    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args)
        json_object_object_add(req, "arguments", args);
    text = sp_libvirt_agent_command(sp_exp_dom(exp, i), json_object_to_json_string(req),
                                    SP_EXP_AGENT_TIMEOUT_S, &local);
    if (!text) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST, "%s: %s", cmd,
                    local->message);
        return NULL;
    }
    reply = json_tokener_parse(text);
    if (!reply || !json_object_object_get_ex(reply, "return", &ret)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                    "%s: unexpected agent reply %.200s", cmd, text);
        return NULL;
    }
    return json_object_get(ret);
}

static char *
sp_exp_serial_tail(const char *path, guint lines)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) all = NULL;
    guint n;

    if (!path || !g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("(no serial log)");
    all = g_strsplit(text, "\n", -1);
    n = g_strv_length(all);
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = n > lines ? n - lines : 0; i < n; i++) {
        g_autofree char *l = g_strdup(all[i]);
        /* Terminal escapes and carriage returns out. */
        for (char *c = l; *c; c++) {
            if (*c == '\r' || *c == '\x1b')
                *c = ' ';
        }
        g_strstrip(l);
        if (*l)
            g_string_append_printf(s, "\n    %s", l);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static gboolean
sp_exp_make_overlay(SpExperiment *exp, const char *overlay, GError **error)
{
    g_autofree char *base = g_build_filename(exp->image_dir, "base.qcow2", NULL);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                           overlay, NULL };
    g_autofree char *err = NULL;
    g_autoptr(GError) local = NULL;
    struct stat st;
    int status, fd;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, &local) ||
        !g_spawn_check_wait_status(status, &local)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "qemu-img create %s: %s%s%s", overlay, local->message,
                    err && *err ? ": " : "", err ? g_strstrip(err) : "");
        return FALSE;
    }
    /* QEMU runs as libvirt-qemu: it must read the overlay; never through a
     * symlink (the directory is ours, but be exact). */
    fd = open(overlay, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fchmod(fd, 0644) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "qemu-img create %s: the new overlay is %s", overlay,
                    fd >= 0 && !S_ISREG(st.st_mode) ? "not a regular file" : g_strerror(e));
        return FALSE;
    }
    close(fd);
    return TRUE;
}

static gboolean
sp_exp_create_guests(SpExperiment *exp, SpExpRun *run, const char *tmpl, GError **error)
{
    const SpPlan *plan = exp->plan_ref;
    g_autofree char *kernel = g_build_filename(exp->image_dir, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(exp->image_dir, "initrd.img", NULL);
    g_autofree char *mem = g_strdup_printf("%u", plan->memory_mib);
    g_autofree char *vcpus = g_strdup_printf("%u", plan->vcpus);

    for (guint i = 1; i <= run->n_vms; i++) {
        SpExpGuestInfo gi = { 0 };
        SpExpDomain d = { 0 };
        g_autoptr(GHashTable) vars = g_hash_table_new(g_str_hash, g_str_equal);
        g_autofree char *xml = NULL;
        SpExpGuestInfo *g;

        if (!sp_exp_check_interrupt(exp, error))
            return FALSE;
        gi.name = sp_exp_domain_name(plan->name, exp->tag, run->index, i);
        gi.uuid = g_uuid_string_random();
        gi.mac = g_strdup_printf("52:54:00:%02x:%02x:%02x", g_random_int_range(0, 256),
                                 g_random_int_range(0, 256), g_random_int_range(0, 256));
        gi.overlay = g_strdup_printf("%s/%s.qcow2", exp->overlay_dir, gi.name);
        gi.serial_log = g_strdup_printf("%s/%s.serial.log", run->dir, gi.name);
        gi.workload_pid = -1;
        g_array_append_val(run->guests, gi);
        g_array_append_val(exp->domains, d);
        g = &g_array_index(run->guests, SpExpGuestInfo, i - 1);
        if (exp->journal) {
            sp_journal_add_domain(exp->journal, g->name, g->uuid, g->overlay);
            if (!sp_exp_journal_save(exp, error)) {
                g_prefix_error(error, "guest %s: ", g->name);
                return FALSE;
            }
        }

        sp_exp_progress(exp, run, "creating guests", i - 1, 0, NULL);
        if (!sp_exp_make_overlay(exp, g->overlay, error)) {
            g_prefix_error(error, "guest %s: ", g->name);
            return FALSE;
        }
        g_hash_table_insert(vars, (char *)"NAME", g->name);
        g_hash_table_insert(vars, (char *)"UUID", g->uuid);
        g_hash_table_insert(vars, (char *)"MAC", g->mac);
        g_hash_table_insert(vars, (char *)"DISK", g->overlay);
        g_hash_table_insert(vars, (char *)"KERNEL", kernel);
        g_hash_table_insert(vars, (char *)"INITRD", initrd);
        g_hash_table_insert(vars, (char *)"MEMORY_MIB", mem);
        g_hash_table_insert(vars, (char *)"VCPUS", vcpus);
        g_hash_table_insert(vars, (char *)"SERIAL_LOG", g->serial_log);
        xml = sp_exp_fill_template(tmpl, vars, error);
        if (!xml) {
            g_prefix_error(error, "%s: ", exp->template_path);
            return FALSE;
        }
        g_autoptr(GError) refused = NULL;
        SpLibvirtDomain *dom = sp_libvirt_define_xml(exp->lv, xml, &refused);
        if (!dom) {
            if (!sp_exp_libvirt_lost(exp, "defining a guest", refused, error))
                g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                            "guest %s: libvirt refused the domain (template %s): %s", g->name,
                            exp->template_path, refused->message);
            return FALSE;
        }
        g_array_index(exp->domains, SpExpDomain, i - 1).dom = dom;
        g_array_index(exp->domains, SpExpDomain, i - 1).defined = TRUE;
        if (exp->journal) {
            sp_journal_find_domain(exp->journal, g->uuid)->defined = TRUE;
            if (!sp_exp_journal_save(exp, error)) {
                g_prefix_error(error, "guest %s: ", g->name);
                return FALSE;
            }
        }
    }
    /* Start them all, then wait for all: boots overlap. */
    for (guint i = 0; i < run->n_vms; i++) {
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        if (!sp_exp_check_interrupt(exp, error))
            return FALSE;
        sp_exp_progress(exp, run, "starting guests", i, 0, NULL);
        g_autoptr(GError) local = NULL;
        if (!sp_libvirt_start(sp_exp_dom(exp, i), &local)) {
            if (!sp_exp_libvirt_lost(exp, "starting a guest", local, error))
                g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                            "guest %s did not start: %s", g->name, local->message);
            return FALSE;
        }
        SpExpDomain *d = &g_array_index(exp->domains, SpExpDomain, i);
        d->started = TRUE;
        d->qemu = sp_libvirt_open_qemu(exp->host, g->name, g->uuid, NULL, &local);
        g->pid = d->qemu ? sp_process_get_pid(d->qemu) : 0;
        if (g->pid && exp->journal) {
            sp_journal_find_domain(exp->journal, g->uuid)->qemu_pid = g->pid;
            if (!sp_exp_journal_save(exp, error)) {
                g_prefix_error(error, "guest %s: ", g->name);
                return FALSE;
            }
        }
        if (!g->pid) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                        "guest %s runs, but its QEMU process: %s", g->name, local->message);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
sp_exp_domain_running(SpExperiment *exp, SpExpRun *run, guint i, const char *doing,
                      GError **error)
{
    SpLibvirtState state = SP_LIBVIRT_STATE_NOSTATE;
    int reason = 0;
    const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
    g_autoptr(GError) local = NULL;

    if (!sp_libvirt_get_state(sp_exp_dom(exp, i), &state, &reason, &local)) {
        if (!sp_exp_libvirt_lost(exp, doing, local, error))
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_LIBVIRT,
                        "guest %s: cannot get its state: %s", g->name, local->message);
        return FALSE;
    }
    if (state != SP_LIBVIRT_STATE_RUNNING) {
        g_autofree char *tail = sp_exp_serial_tail(g->serial_log, 15);
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                    "guest %s stopped while %s (libvirt state %d, reason %d); serial log "
                    "%s ends:%s", g->name, doing, state, reason, g->serial_log, tail);
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_exp_wait_agents(SpExperiment *exp, SpExpRun *run, GError **error)
{
    gint64 start = g_get_monotonic_time();
    gint64 deadline = start + (gint64)(exp->plan_ref->boot_timeout_s * G_USEC_PER_SEC);
    g_autofree gboolean *ready = g_new0(gboolean, run->n_vms);
    guint n_ready = 0;

    while (n_ready < run->n_vms) {
        for (guint i = 0; i < run->n_vms; i++) {
            SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
            g_autoptr(GError) local = NULL;
            g_autoptr(json_object) r = NULL;

            if (ready[i])
                continue;
            if (!sp_exp_domain_running(exp, run, i, "booting", error))
                return FALSE;
            r = sp_exp_agent(exp, i, "guest-ping", NULL, &local);
            if (r) {
                ready[i] = TRUE;
                n_ready++;
                g->ready_s = (g_get_monotonic_time() - start) / 1e6;
                g_debug("guest %s: agent answered after %.1f s", g->name, g->ready_s);
            }
        }
        sp_exp_progress(exp, run, "booting", n_ready, 0, NULL);
        if (n_ready == run->n_vms)
            break;
        if (g_get_monotonic_time() > deadline) {
            g_autoptr(GString) names = g_string_new(NULL);
            guint first = G_MAXUINT, missing = 0;
            for (guint i = 0; i < run->n_vms; i++) {
                if (ready[i])
                    continue;
                const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
                first = MIN(first, i);
                missing++;
                g_string_append_printf(names, "%s%s", names->len ? ", " : "", g->name);
            }
            const char *log = g_array_index(run->guests, SpExpGuestInfo, first).serial_log;
            g_autofree char *tail = sp_exp_serial_tail(log, 10);
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                        "guest%s %s never became ready: %s did not answer guest-ping "
                        "within %g s ([guest] boot_timeout in %s); serial log %s ends:%s",
                        missing == 1 ? "" : "s", names->str,
                        missing == 1 ? "its agent" : "their agents",
                        exp->plan_ref->boot_timeout_s, exp->plan_ref->source, log, tail);
            return FALSE;
        }
        if (!sp_exp_wait_until(exp, g_get_monotonic_time() + G_USEC_PER_SEC))
            return sp_exp_check_interrupt(exp, error);
    }
    run->boot_s = (g_get_monotonic_time() - start) / 1e6;
    return TRUE;
}

static gboolean
sp_exp_find_ram(SpExperiment *exp, SpExpRun *run, GError **error)
{
    guint64 size = (guint64)exp->plan_ref->memory_mib << 20;

    for (guint i = 0; i < run->n_vms; i++) {
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        g_autofree char *reply = NULL;
        g_autofree char *region = NULL;
        g_autoptr(GPtrArray) vmas = NULL;
        g_autoptr(GError) hmp = NULL;
        guint64 gpa = 0, hva = 0;

        reply = sp_libvirt_hmp_command(sp_exp_dom(exp, i), "gpa2hva 0", &hmp);
        if (!reply || !sp_qmp_parse_gpa2hva(reply, &gpa, &region, &hva, NULL)) {
            g_debug("guest %s: gpa2hva failed (%s); looking for the RAM VMA by size",
                    g->name, reply ? reply : hmp->message);
            hva = 0;
        }
        vmas = sp_maps_read(exp->host, g->pid, error);
        if (!vmas) {
            g_prefix_error(error, "guest %s: ", g->name);
            return FALSE;
        }
        if (!sp_exp_pick_ram_vma(vmas, hva, size, &g->ram_start, &g->ram_end, error)) {
            g_prefix_error(error, "guest %s (QEMU pid %d): ", g->name, (int)g->pid);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
sp_exp_start_workload(SpExperiment *exp, SpExpRun *run, GError **error)
{
    const SpPlan *plan = exp->plan_ref;

    if (!plan->workload_argv)
        return TRUE;
    for (guint i = 0; i < run->n_vms; i++) {
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        json_object *args = json_object_new_object();
        json_object *argv = json_object_new_array();
        g_autoptr(json_object) r = NULL;
        json_object *pid;

        for (char **a = plan->workload_argv; *a; a++)
            json_object_array_add(argv, json_object_new_string(*a));
        json_object_object_add(args, "path", json_object_new_string("/usr/bin/stress-ng"));
        json_object_object_add(args, "arg", argv);
        json_object_object_add(args, "capture-output", json_object_new_boolean(FALSE));
        r = sp_exp_agent(exp, i, "guest-exec", args, error);
        if (!r || !json_object_object_get_ex(r, "pid", &pid)) {
            if (r)
                g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                            "guest-exec returned no pid");
            g_prefix_error(error, "guest %s: starting the workload '%s' ([workload] command "
                           "in %s): ", g->name, plan->workload, plan->source);
            return FALSE;
        }
        g->workload_pid = json_object_get_int64(pid);
    }
    return TRUE;
}

/* Whether the workload still runs in guest @i; FALSE with an error when it
 * failed at once. */
static gboolean
sp_exp_check_workload(SpExperiment *exp, SpExpRun *run, guint i, gboolean at_start,
                      GError **error)
{
    SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
    json_object *args, *exited = NULL, *code = NULL;
    g_autoptr(json_object) r = NULL;
    g_autoptr(GError) local = NULL;

    if (g->workload_pid < 0)
        return TRUE;
    args = json_object_new_object();
    json_object_object_add(args, "pid", json_object_new_int64(g->workload_pid));
    r = sp_exp_agent(exp, i, "guest-exec-status", args, &local);
    if (!r)
        return TRUE;    /* a busy agent is not a failed workload */
    if (json_object_object_get_ex(r, "exited", &exited) && json_object_get_boolean(exited)) {
        int c = json_object_object_get_ex(r, "exitcode", &code) ? json_object_get_int(code) : -1;
        if (at_start) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                        "guest %s: the workload '%s' ([workload] command in %s) exited at "
                        "once with status %d", g->name, exp->plan_ref->workload,
                        exp->plan_ref->source, c);
            return FALSE;
        }
        g_debug("guest %s: the workload exited with status %d", g->name, c);
        g->workload_pid = -1;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- sampling */

static gboolean
sp_exp_predict(SpExperiment *exp, SpExpRun *run, double t, SpExpPrediction *p, GError **error)
{
    SpScanOptions sopt;
    SpEstimateOptions eopt;
    g_autoptr(SpScan) scan = NULL;
    g_autoptr(SpEstimate) est = NULL;
    gint64 t0 = g_get_monotonic_time();
    const SpModelCounters *c;

    if (!sp_estimate_options_from_host(&eopt, exp->host, error))
        return FALSE;
    sp_scan_options_init(&sopt);
    sopt.mode = SP_SCAN_MERGEABLE;
    sopt.passes = 2;
    sopt.interval_ms = 1000;
    sopt.want_nodes = !eopt.merge_across_nodes;
    scan = sp_scan_new(exp->host, &sopt);
    for (guint i = 0; i < run->n_vms; i++) {
        const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        if (!sp_scan_add_pid_range(scan, g->pid, g->ram_start, g->ram_end, error)) {
            g_prefix_error(error, "guest %s: ", g->name);
            return FALSE;
        }
    }
    if (!sp_scan_run(scan, error))
        return FALSE;
    est = sp_estimate_run(scan, &eopt, error);
    if (!est)
        return FALSE;
    c = sp_estimate_get_counters(est);
    memset(p, 0, sizeof(*p));
    p->valid = TRUE;
    p->t = t;
    for (guint i = 0; i < sp_estimate_get_n_processes(est); i++) {
        const SpEstimateProcess *ep = sp_estimate_get_process(est, i);
        p->scanned_pages += ep->scanned_pages;
        p->volatile_pages += ep->volatile_pages;
    }
    p->pages_shared = c->pages_shared;
    p->pages_sharing = c->pages_sharing;
    p->pages_shared_zero = c->pages_shared_zero;
    p->pages_sharing_zero = c->pages_sharing_zero;
    p->ksm_zero_pages = c->ksm_zero_pages;
    p->general_profit = c->general_profit;
    p->thp_zero_remapped = sp_estimate_get_thp_zero_remapped(est);
    p->saved_zero = sp_estimate_get_saved_zero(est);
    p->saved_nonzero = sp_estimate_get_saved_nonzero(est);
    sp_estimate_get_passes(est, &p->converged);
    p->partial = sp_estimate_is_partial(est);
    p->unmerged_pages = sp_estimate_get_unmerged_pages(est);
    p->zero_guessed = sp_estimate_get_zero_method(est, NULL) == SP_SCAN_ZERO_GUESSED;
    p->seconds = (g_get_monotonic_time() - t0) / 1e6;
    return TRUE;
}

static gboolean
sp_exp_take_sample(SpExperiment *exp, SpExpRun *run, SpCensus *census, double t,
                   gboolean predict, SpExpSample *s, GError **error)
{
    const SpExpSample *prev = run->samples->len
        ? &g_array_index(run->samples, SpExpSample, run->samples->len - 1) : NULL;

    memset(s, 0, sizeof(*s));
    s->t = t;
    s->wall_us = g_get_real_time();
    s->guests = g_array_sized_new(FALSE, TRUE, sizeof(SpExpGuestSample), run->n_vms);
    for (guint i = 0; i < run->n_vms; i++) {
        if (!sp_exp_domain_running(exp, run, i, "sampling", error))
            return FALSE;
    }
    if (!sp_ksm_read(exp->host, &s->ksm, error))
        return FALSE;
    if (!run->disturbed)
        run->disturbed = sp_exp_ksm_disturbed(exp->plan_ref, &s->ksm, t > 0, t);
    if (!sp_census_run(census, &s->census, error)) {
        g_prefix_error(error, "census of the guests' RAM: ");
        return FALSE;
    }
    for (guint i = 0; i < run->n_vms; i++) {
        const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        SpExpGuestSample gs = { 0 };
        g_autofree char *status = sp_exp_read_proc(exp, g->pid, "status");

        gs.pid = g->pid;
        gs.census = *sp_census_get_range(census, i);
        sp_exp_guest_ksm_stat(exp, g->pid, &gs);
        gs.vm_rss_kib = status ? sp_exp_parse_vmrss(status) : 0;
        g_array_append_val(s->guests, gs);
    }
    if (run->samples->len) {
        const SpExpSample *s0 = &g_array_index(run->samples, SpExpSample, 0);
        guint64 z0 = s0->census.total.zero_mapped_pages;
        guint64 z = s->census.total.zero_mapped_pages;
        s->zero_freed_pages = z > z0 ? z - z0 : 0;
    }
    sp_exp_cpu_sample(exp, run, s);
    if (prev)
        s->prediction = prev->prediction;
    if (predict) {
        g_autoptr(GError) local = NULL;
        SpExpPrediction p;
        if (sp_exp_predict(exp, run, t, &p, &local)) {
            p.zero_freed_at = s->zero_freed_pages;
            s->prediction = p;
            s->fresh_prediction = TRUE;
        } else {
            /* A prediction that fails (a guest exiting mid-scan) is not a
             * failed measurement of the kernel. */
            g_warning("run %u: the model's prediction at t=%.0f s failed: %s", run->index, t,
                      local->message);
        }
    }
    for (guint i = 0; i < run->n_vms; i++) {
        if (!sp_exp_check_workload(exp, run, i, FALSE, error))
            return FALSE;
    }
    return TRUE;
}

guint64
sp_exp_slot_count(gint64 interval_us, gint64 duration_us)
{
    interval_us = MAX(interval_us, 1);
    if (duration_us < 0)
        return 0;
    /* Up to 1 ms of slack (less than half an interval): a duration of 300 s
     * still gets the sample at 300 s. */
    return (guint64)(MIN(duration_us, G_MAXINT64 - 1000) + MIN(1000, interval_us / 2)) /
        (guint64)interval_us;
}

guint64
sp_exp_next_slot(gint64 interval_us, gint64 duration_us, guint64 k, gint64 elapsed_us,
                 gboolean *last)
{
    guint64 n = sp_exp_slot_count(interval_us, duration_us);
    guint64 next, ahead;

    interval_us = MAX(interval_us, 1);
    *last = TRUE;
    if (k >= n)
        return 0;
    /* The first slot not yet due (ceiling of elapsed / interval). */
    ahead = 0;
    if (elapsed_us > 0) {
        ahead = (guint64)elapsed_us / (guint64)interval_us;
        ahead += (guint64)elapsed_us % (guint64)interval_us != 0;
    }
    next = MIN(MAX(k + 1, ahead), n);
    *last = next == n;
    return next;
}

static gboolean
sp_exp_sample_loop(SpExperiment *exp, SpExpRun *run, GError **error)
{
    const SpPlan *plan = exp->plan_ref;
    g_autoptr(SpCensus) census = sp_census_new(exp->host);
    g_autoptr(GArray) run1 = g_array_new(FALSE, FALSE, sizeof(SpKsmSetting));
    SpExpSample s;
    gint64 t_run, interval_us, duration_us;
    double last_pred;
    guint64 k;
    gboolean last;

    for (guint i = 0; i < run->n_vms; i++) {
        const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        sp_census_add_range(census, g->pid, g->ram_start, g->ram_end);
    }
    /* t = 0: before ksmd runs. */
    sp_exp_progress(exp, run, "sample 0 and prediction (KSM off)", run->n_vms, 0, NULL);
    if (!sp_exp_take_sample(exp, run, census, 0, TRUE, &s, error)) {
        sp_exp_sample_clear(&s);
        return FALSE;
    }
    g_array_append_val(run->samples, s);
    last_pred = 0;

    sp_exp_add_setting(run1, SP_KSM_RUN, 1);
    if (!sp_exp_ksm_apply(exp, run1, "run=1", error))
        return FALSE;
    t_run = g_get_monotonic_time();
    exp->cpu.when = 0;      /* CPU figures from run=1 on */
    sp_exp_cpu_read(exp, run, &exp->cpu);

    /* Slots are whole microseconds: a tiny interval cannot make a slot that
     * never moves (the plan bounds it too), and each step goes forward. */
    interval_us = (gint64)MIN(plan->interval_s * G_USEC_PER_SEC, (double)(G_MAXINT64 / 4));
    duration_us = (gint64)MIN(plan->duration_s * G_USEC_PER_SEC, (double)(G_MAXINT64 / 4));
    for (k = sp_exp_next_slot(interval_us, duration_us, 0, 0, &last); k;
         k = sp_exp_next_slot(interval_us, duration_us, k, g_get_monotonic_time() - t_run,
                              &last)) {
        gint64 due = t_run + (gint64)(k * (guint64)MAX(interval_us, 1));
        double t;
        gboolean predict;

        if (!sp_exp_wait_until(exp, due))
            return sp_exp_check_interrupt(exp, error);
        t = (g_get_monotonic_time() - t_run) / 1e6;
        predict = last || (plan->predict_interval_s > 0 &&
                           t - last_pred >= plan->predict_interval_s - plan->interval_s / 2);
        if (predict)
            last_pred = t;
        if (!sp_exp_take_sample(exp, run, census, t, predict, &s, error)) {
            sp_exp_sample_clear(&s);
            return FALSE;
        }
        g_array_append_val(run->samples, s);
        sp_exp_progress(exp, run, "sampling", run->n_vms, t,
                        &g_array_index(run->samples, SpExpSample, run->samples->len - 1));
    }
    return TRUE;
}

/* ---------------------------------------------------------------- teardown */

/* Destroy and undefine the current run's domains, remove their overlays.
 * Problems are collected, not fatal: teardown goes on. */
static void
sp_exp_teardown_guests(SpExperiment *exp, SpExpRun *run, GString *problems)
{
    g_autoptr(GError) local = NULL;
    gboolean alive = exp->lv && sp_libvirt_is_alive(exp->lv);

    if (exp->lv && !alive) {
        /* libvirtd went away; it may be back (restarted).  If not, the
         * old handles stay, to name what is left defined. */
        alive = sp_libvirt_reconnect(exp->lv, NULL);
        for (guint i = 0; alive && i < exp->domains->len; i++) {
            SpExpDomain *d = &g_array_index(exp->domains, SpExpDomain, i);
            const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
            g_clear_pointer(&d->dom, sp_libvirt_domain_free);
            d->dom = d->defined ? sp_libvirt_lookup_uuid(exp->lv, g->uuid, NULL) : NULL;
            if (!d->dom)
                d->defined = d->started = FALSE;
        }
    }
    for (guint i = exp->domains->len; i-- > 0;) {
        SpExpDomain *d = &g_array_index(exp->domains, SpExpDomain, i);
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        g_autofree char *liblog = g_strdup_printf("/var/log/libvirt/qemu/%s.log", g->name);
        gsize problems_before = problems->len;
        g_autoptr(GError) failed = NULL;

        if (alive && d->dom && sp_libvirt_is_active(d->dom, NULL) &&
            !sp_libvirt_destroy(d->dom, &failed))
            g_string_append_printf(problems, "\n  guest %s: destroy failed: %s", g->name,
                                   failed->message);
        /* Without libvirtd, or if destroy failed: the process, through the
         * pidfd held since it started (never whoever has its pid now). */
        g_autoptr(GError) stop = NULL;
        if (d->qemu && !sp_process_stop(d->qemu, 10000, 5000, &stop))
            g_string_append_printf(problems, "\n  guest %s: QEMU pid %d still runs: %s",
                                   g->name, (int)g->pid, stop->message);
        g_clear_error(&failed);
        if (d->dom && d->defined) {
            if (alive && sp_libvirt_undefine(d->dom, &failed))
                d->defined = FALSE;
            else
                g_string_append_printf(problems, "\n  guest %s: still defined in libvirt "
                                       "(virsh undefine %s): %s", g->name, g->name,
                                       alive ? failed->message : "libvirtd is gone");
        }
        g_clear_pointer(&d->dom, sp_libvirt_domain_free);
        if (g->overlay && g_unlink(g->overlay) < 0 && errno != ENOENT) {
            g_string_append_printf(problems, "\n  cannot remove %s: %s", g->overlay,
                                   g_strerror(errno));
        } else if (exp->journal) {
            /* Gone: a domain that stays in the journal names no overlay. */
            SpJournalDomain *jd = sp_journal_find_domain(exp->journal, g->uuid);
            if (jd)
                g_clear_pointer(&jd->overlay, g_free);
        }
        /* libvirt's log of a domain we made: keep it with the results. */
        g_autofree char *text = NULL;
        gsize len;
        if (g_file_get_contents(liblog, &text, &len, NULL)) {
            g_autofree char *copy = g_strdup_printf("%s/%s.qemu.log", run->dir, g->name);
            if (g_file_set_contents(copy, text, len, NULL))
                g_unlink(liblog);
        }
        /* Gone for good: out of the journal.  Otherwise it stays there, for
         * `samepage experiment clean`. */
        if (exp->journal && problems->len == problems_before)
            sp_journal_remove_domain(exp->journal, g->uuid);
    }
    g_array_set_size(exp->domains, 0);
    if (!sp_exp_journal_save(exp, &local))
        g_string_append_printf(problems, "\n  %s", local->message);
}

/* ---------------------------------------------------------------- one run */

static gboolean
sp_exp_one_run(SpExperiment *exp, SpExpRun *run, const char *tmpl, GError **error)
{
    if (!sp_exp_ksm_reset(exp, run, error))
        return FALSE;
    if (!sp_exp_check_interrupt(exp, error))
        return FALSE;
    if (!sp_exp_create_guests(exp, run, tmpl, error))
        return FALSE;
    if (!sp_exp_wait_agents(exp, run, error))
        return FALSE;
    if (!sp_exp_find_ram(exp, run, error))
        return FALSE;
    sp_exp_progress(exp, run, "starting the workload", run->n_vms, 0, NULL);
    if (!sp_exp_start_workload(exp, run, error))
        return FALSE;
    sp_exp_cpu_read(exp, run, &exp->cpu);
    if (exp->plan_ref->settle_s > 0 || exp->plan_ref->workload_argv) {
        sp_exp_progress(exp, run, "settling", run->n_vms, 0, NULL);
        /* At least a second, so that a workload that fails at once shows. */
        double wait = MAX(exp->plan_ref->settle_s, exp->plan_ref->workload_argv ? 1.0 : 0.0);
        if (!sp_exp_wait_until(exp, g_get_monotonic_time() + (gint64)(wait * G_USEC_PER_SEC)))
            return sp_exp_check_interrupt(exp, error);
        for (guint i = 0; i < run->n_vms; i++) {
            if (!sp_exp_check_workload(exp, run, i, TRUE, error))
                return FALSE;
        }
    }
    return sp_exp_sample_loop(exp, run, error);
}

/* ---------------------------------------------------------------- setup */

static gboolean
sp_exp_check_setup(SpExperiment *exp, char **tmpl, GError **error)
{
    static const char *const files[] = { "base.qcow2", "vmlinuz", "initrd.img" };
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    g_autoptr(GError) local = NULL;

    for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *p = g_build_filename(exp->image_dir, files[i], NULL);
        if (!g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                        "the guest image is missing: no %s (build it with vm-images/build-image, "
                        "or set [guest] image_dir in %s)", p, exp->plan_ref->source);
            return FALSE;
        }
    }
    if (!g_file_get_contents(exp->template_path, tmpl, NULL, &local)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "the domain template: %s", local->message);
        return FALSE;
    }
    exp->accelerator = strstr(*tmpl, "<domain type='kvm'") || strstr(*tmpl, "<domain type=\"kvm\"")
        ? "KVM" : "TCG";
    if (!qemu_img) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "qemu-img is not installed (Debian package qemu-utils)");
        return FALSE;
    }
    if (!sp_ksm_read(exp->host, &exp->ksm_orig, &local)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP, "%s", local->message);
        return FALSE;
    }
    if (access(sp_host_get_sysfs_root(exp->host), F_OK) == 0) {
        g_autofree char *run = sp_host_sysfs_path(exp->host, "kernel/mm/ksm/run");
        if (access(run, W_OK) != 0) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                        "cannot write %s: %s (experiments need root)", run, g_strerror(errno));
            return FALSE;
        }
    }
    return TRUE;
}

/* KSM is one per kernel: no second experiment while one runs, and none
 * over what a killed one left (the CLI cleans that up first). */
static gboolean
sp_exp_check_journals(SpExperiment *exp, GError **error)
{
    g_autoptr(GPtrArray) journals = NULL;
    g_autoptr(GPtrArray) bad = NULL;
    g_autoptr(GError) local = NULL;

    if (!exp->state_dir)
        return TRUE;
    /* A file that is no good journal names nothing to wait for or undo
     * (`experiment clean` reports it). */
    journals = sp_journal_list_all(exp->state_dir, &bad, &local);
    if (!journals) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP, "%s", local->message);
        return FALSE;
    }
    for (guint i = 0; i < journals->len; i++) {
        const SpJournal *j = g_ptr_array_index(journals, i);
        g_autoptr(GDateTime) when = g_date_time_new_from_unix_local(j->started / G_USEC_PER_SEC);
        g_autofree char *since = when ? g_date_time_format(when, "%F %T") : g_strdup("?");

        if (sp_journal_owner(j, exp->host) == SP_JOURNAL_OWNER_ALIVE) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                        "another experiment is running (plan \"%s\", pid %d, since %s, "
                        "journal %s): KSM is one per kernel, so its figures and ours would "
                        "mix; wait for it to end", j->plan ? j->plan : "?", (int)j->owner_pid,
                        since, j->path);
        } else {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                        "an experiment that was killed (plan \"%s\", pid %d, started %s) left "
                        "%u guest%s and %s behind (journal %s): run `samepage experiment "
                        "clean` first", j->plan ? j->plan : "?", (int)j->owner_pid, since,
                        j->domains->len, j->domains->len == 1 ? "" : "s",
                        j->ksm_changed ? "its KSM settings" : "no KSM change", j->path);
        }
        return FALSE;
    }
    return TRUE;
}

/* Why @st (of @path, not followed) is no directory of ours that only we
 * may write to; NULL if it is one. */
static const char *
sp_exp_foreign_dir(const struct stat *st)
{
    if (S_ISLNK(st->st_mode))
        return "it is a symbolic link";
    if (!S_ISDIR(st->st_mode))
        return "it is not a directory";
    if (st->st_uid != geteuid())
        return "another user owns it";
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "others may write to it";
    return NULL;
}

/* The output directory: a new one (its parents made as needed), or an
 * existing empty one of ours that only we may write to.  Results, plots
 * and the gnuplot script go there, so nothing of anyone else's may. */
static gboolean
sp_exp_prepare_output(SpExperiment *exp, GError **error)
{
    g_autofree char *parent = g_path_get_dirname(exp->output_dir);
    g_autofree char *results = g_build_filename(exp->output_dir, "results.json", NULL);
    g_autoptr(GDir) dir = NULL;
    const char *why;
    struct stat st;

    if (g_mkdir_with_parents(parent, 0755) < 0) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "cannot create %s: %s", parent, g_strerror(errno));
        return FALSE;
    }
    if (g_mkdir(exp->output_dir, 0755) == 0)
        return TRUE;
    if (errno != EEXIST || lstat(exp->output_dir, &st) < 0) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "cannot create %s: %s", exp->output_dir, g_strerror(errno));
        return FALSE;
    }
    if (g_file_test(results, G_FILE_TEST_EXISTS) && S_ISDIR(st.st_mode)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "%s already holds the results of an experiment: choose another --output",
                    exp->output_dir);
        return FALSE;
    }
    if ((why = sp_exp_foreign_dir(&st))) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "refusing the output directory %s: %s; choose another --output",
                    exp->output_dir, why);
        return FALSE;
    }
    dir = g_dir_open(exp->output_dir, 0, NULL);
    if (!dir || g_dir_read_name(dir)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "refusing the output directory %s: it is not empty (samepage overwrites "
                    "nothing); choose another --output", exp->output_dir);
        return FALSE;
    }
    return TRUE;
}

/*
 * The overlays' directory: always a new one, made with mkdtemp() under the
 * plan's overlay_dir (created if missing) or $TMPDIR.  The parent must be
 * ours or root's, and writable by others only with the sticky bit (as
 * /tmp), so nobody can swap our directory.  0755: QEMU runs as
 * libvirt-qemu and must reach the overlays.
 */
static gboolean
sp_exp_prepare_overlay_dir(SpExperiment *exp, GError **error)
{
    g_autofree char *parent = exp->overlay_parent ? g_strdup(exp->overlay_parent)
                                                  : g_canonicalize_filename(g_get_tmp_dir(), NULL);
    g_autofree char *tmpl = NULL;
    const char *why = NULL;
    struct stat st;
    int fd;

    if (exp->overlay_parent && g_mkdir_with_parents(parent, 0755) < 0) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "cannot create %s: %s", parent, g_strerror(errno));
        return FALSE;
    }
    if (stat(parent, &st) < 0)
        why = g_strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "it is not a directory";
    else if (st.st_uid != geteuid() && st.st_uid != 0)
        why = "another user owns it";
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        why = "others may write to it and it lacks the sticky bit";
    if (why) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "refusing %s for the overlays: %s", parent, why);
        return FALSE;
    }
    tmpl = g_build_filename(parent, "samepage-experiment-XXXXXX", NULL);
    if (!g_mkdtemp_full(tmpl, 0700)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "cannot create a directory for the overlays in %s: %s", parent,
                    g_strerror(errno));
        return FALSE;
    }
    fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0755) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        g_rmdir(tmpl);
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                    "cannot open the new directory %s: %s", tmpl, g_strerror(e));
        return FALSE;
    }
    close(fd);
    g_free(exp->overlay_dir);
    exp->overlay_dir = g_steal_pointer(&tmpl);
    exp->overlay_dir_made = TRUE;
    return TRUE;
}

static gboolean
sp_exp_prepare_dirs(SpExperiment *exp, GError **error)
{
    g_autofree char *plan_copy = g_build_filename(exp->output_dir, "plan.ini", NULL);
    g_autoptr(GError) local = NULL;

    if (!sp_exp_prepare_output(exp, error))
        return FALSE;
    if (exp->plan_text && !g_file_set_contents(plan_copy, exp->plan_text, -1, &local)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT, "%s", local->message);
        return FALSE;
    }
    if (!sp_exp_prepare_overlay_dir(exp, error))
        return FALSE;
    if (exp->state_dir) {
        exp->journal = sp_journal_new(exp->host, exp->state_dir, exp->plan_ref->name, exp->uri,
                                      exp->output_dir, &local);
        if (exp->journal) {
            exp->journal->overlay_dir = g_strdup(exp->overlay_dir);
            sp_journal_save(exp->journal, &local);
        }
        if (local) {
            if (exp->overlay_dir_made)
                g_rmdir(exp->overlay_dir);
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP, "%s",
                        local->message);
            return FALSE;
        }
    }
    return TRUE;
}

/* What the report says about the experiment itself; clear it after use. */
static void
sp_exp_report_info(const SpExperiment *exp, SpReportInfo *info)
{
    sp_report_info_init(info);
    info->uri = exp->uri;
    info->image_dir = exp->image_dir;
    info->template_path = exp->template_path;
    info->wall_start = exp->wall_start;
    info->wall_end = exp->wall_end;
    info->complete = exp->complete;
    info->error_message = exp->error_message;
    info->teardown_problems = exp->teardown_problems;
    info->output_dir = exp->output_dir;
    info->accelerator = exp->accelerator;
    sp_report_info_from_host(info, exp->host);
}

json_object *
sp_experiment_results_json(const SpExperiment *exp)
{
    SpReportInfo info;

    sp_exp_report_info(exp, &info);
    json_object *o = sp_report_results_json(&info, exp->plan_ref, exp->runs);
    sp_report_info_clear(&info);
    return o;
}

static gboolean
sp_exp_write_outputs(SpExperiment *exp, GError **error)
{
    SpReportInfo info;
    gboolean ok;

    sp_exp_report_info(exp, &info);
    ok = sp_report_write_all(&info, exp->plan_ref, exp->runs, error);
    sp_report_info_clear(&info);
    return ok;
}

/**
 * sp_experiment_run:
 *
 * Runs every VM count of the plan and writes the results to the output
 * directory.  Whatever happens, the guests are torn down and the KSM knobs
 * restored before it returns; results collected so far are written and
 * marked incomplete on failure or interrupt.
 */
gboolean
sp_experiment_run(SpExperiment *exp, GError **error)
{
    const SpPlan *plan = exp->plan_ref;
    g_autofree char *tmpl = NULL;
    g_autoptr(GError) failure = NULL;
    g_autoptr(GString) problems = g_string_new(NULL);
    g_autoptr(GError) local = NULL;

    exp->t_start = g_get_monotonic_time();
    exp->wall_start = g_get_real_time();
    if (!sp_exp_check_setup(exp, &tmpl, error))
        return FALSE;
    if (!sp_exp_check_journals(exp, error))
        return FALSE;
    if (!sp_exp_prepare_dirs(exp, error))
        return FALSE;
    exp->ksmd_pid = sp_proc_find_ksmd(exp->host);

    exp->lv = sp_libvirt_open(exp->uri, &local);
    if (!exp->lv) {
        g_set_error(&failure, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_LIBVIRT, "%s",
                    local->message);
        g_clear_error(&local);
    }

    for (guint r = 0; !failure && r < plan->vm_counts->len; r++) {
        guint n = g_array_index(plan->vm_counts, guint, r);
        SpExpRun *run;

        if (!sp_exp_check_interrupt(exp, &failure))
            break;
        run = sp_exp_run_new(r + 1, n);

        g_ptr_array_add(exp->runs, run);
        run->dir = g_strdup_printf("%s/run-%02u-%uvm", exp->output_dir, r + 1, n);
        if (g_mkdir(run->dir, 0755) < 0) {
            g_set_error(&failure, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT,
                        "cannot create %s: %s", run->dir, g_strerror(errno));
            break;
        }
        if (!sp_exp_one_run(exp, run, tmpl, &failure)) {
            g_prefix_error(&failure, "run %u (%u VM%s): ", run->index, n, n == 1 ? "" : "s");
            run->incomplete_reason = g_strdup(failure->message);
        } else {
            run->complete = TRUE;
        }
        sp_exp_progress(exp, run, "tearing down", 0, 0, NULL);
        sp_exp_teardown_guests(exp, run, problems);
        sp_exp_run_compute_steady(run);
        if (!sp_report_write_run(run, &local)) {
            g_string_append_printf(problems, "\n  %s", local->message);
            g_clear_error(&local);
        }
    }
    if (!sp_exp_ksm_restore(exp, &local)) {
        g_string_append_printf(problems, "\n  %s", local->message);
        g_clear_error(&local);
    }
    if (exp->overlay_dir_made && g_rmdir(exp->overlay_dir) < 0 && errno != ENOENT) {
        g_string_append_printf(problems, "\n  cannot remove %s: %s", exp->overlay_dir,
                               g_strerror(errno));
    } else if (exp->journal) {
        /* The directory was empty: no overlay is left either, and the
         * journal must not name one outside an overlay directory. */
        g_clear_pointer(&exp->journal->overlay_dir, g_free);
        for (guint i = 0; i < exp->journal->domains->len; i++)
            g_clear_pointer(&g_array_index(exp->journal->domains, SpJournalDomain, i).overlay,
                            g_free);
    }
    if (exp->journal && !problems->len && !sp_journal_delete(exp->journal, &local)) {
        g_string_append_printf(problems, "\n  %s", local->message);
        g_clear_error(&local);
    } else if (exp->journal && problems->len) {
        if (!sp_journal_save(exp->journal, &local)) {
            g_string_append_printf(problems, "\n  %s", local->message);
            g_clear_error(&local);
        }
        g_string_append_printf(problems, "\n  `samepage experiment clean` undoes the rest once "
                               "that is fixed (journal %s)", exp->journal->path);
    }

    exp->wall_end = g_get_real_time();
    exp->complete = !failure;
    if (failure)
        exp->error_message = g_strdup(failure->message);
    if (problems->len)
        exp->teardown_problems = g_strdup(problems->str + 3);
    if (!sp_exp_write_outputs(exp, &local)) {
        if (!failure)
            failure = g_steal_pointer(&local);
        else
            g_prefix_error(&failure, "(and the report: %s) ", local->message);
    }
    if (failure) {
        if (problems->len)
            g_prefix_error(&failure, "teardown left:%s\n", problems->str);
        g_propagate_error(error, g_steal_pointer(&failure));
        return FALSE;
    }
    if (problems->len) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "the experiment finished, but teardown left:%s", problems->str);
        return FALSE;
    }
    return TRUE;
}
