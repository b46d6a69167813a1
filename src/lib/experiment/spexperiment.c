/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spexperiment.c: run an experiment plan with cloned guests under libvirt
 *
 * Theory of operation
 *
 * Everything the runner creates is recorded the moment it exists (the
 * overlay file, the domain definition, the running domain, the KSM knobs
 * it changed), so one teardown path undoes exactly that, after success,
 * failure or an interrupt.  Waiting is done by iterating the runner's own
 * main context (thread-default while sp_experiment_run() runs), never the
 * caller's: a caller's sources that must run meanwhile (a signal handler
 * calling sp_experiment_interrupt()) are attached to
 * sp_experiment_get_context(), and sp_experiment_interrupt() from another
 * thread wakes the wait up.  Nothing waits by sleeping for readiness:
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
 * and pages_sharing, zero-filled or not, and the zero-page mappings.
 * The clones themselves (overlays, domains, agents, their RAM, the
 * workload, teardown) are spclones.c's; the results model is SpExpRun
 * (spresults.h), written out by SpReport.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-experiment"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "samepage/spestimate.h"
#include "samepage/spexperiment.h"
#include "samepage/spjournal.h"
#include "samepage/splibvirt.h"
#include "samepage/spproc.h"
#include "samepage/spreport.h"
#include "samepage/spscan.h"
#include "spexperimentint.h"
#include "spexperimentpriv.h"

G_DEFINE_QUARK(sp-experiment-error-quark, sp_experiment_error)

#define SP_EXP_KSM_RESET_TIMEOUT_S 300

/* ================================================================ pure helpers */

/* VmRSS is a "KEY: N kB" line as meminfo's are: SpProc's parser reads it. */
guint64
sp_exp_parse_vmrss(const char *text)
{
    guint64 bytes;

    return sp_proc_parse_meminfo(text, "VmRSS", &bytes, NULL) ? bytes / 1024 : 0;
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
    exp->context = g_main_context_new();
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
    g_main_context_unref(exp->context);
    g_free(exp);
}

void
sp_experiment_set_progress_func(SpExperiment *exp, SpExperimentProgressFunc func,
                                gpointer user_data)
{
    exp->progress = func;
    exp->progress_data = user_data;
}

/* Safe from a source of the runner's context (a signal's) or another
 * thread: the wait wakes up at once. */
void
sp_experiment_interrupt(SpExperiment *exp)
{
    g_atomic_int_set(&exp->interrupted, 1);
    g_main_context_wakeup(exp->context);
}

/**
 * sp_experiment_get_context:
 *
 * The main context sp_experiment_run() iterates while it waits (its own,
 * never the caller's, and thread-default meanwhile).  A caller that wants
 * a source dispatched during the run (a g_unix_signal_source_new() whose
 * callback calls sp_experiment_interrupt()) attaches it here.
 *
 * Returns: (transfer none): the runner's context.
 */
GMainContext *
sp_experiment_get_context(SpExperiment *exp)
{
    return exp->context;
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

void
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
        p.saved_mib = SP_EXP_MIB(d.saved);
        p.reclaimed_pct = d.reclaimed_pct;
        p.pred_saved_mib = SP_EXP_MIB(d.pred_saved);
    }
    exp->progress(&p, exp->progress_data);
}

static gboolean
sp_exp_timeout_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Wait until @deadline (monotonic us) while dispatching the runner's own
 * main context; FALSE if interrupted. */
gboolean
sp_exp_wait_until(SpExperiment *exp, gint64 deadline)
{
    /* Even when the deadline has passed: a signal's source gets its turn. */
    g_main_context_iteration(exp->context, FALSE);
    while (!sp_exp_interrupted(exp)) {
        gint64 now = g_get_monotonic_time();
        gboolean fired = FALSE;
        g_autoptr(GSource) timeout = NULL;

        if (now >= deadline)
            return TRUE;
        timeout = g_timeout_source_new(MAX((deadline - now) / 1000, 1));
        g_source_set_callback(timeout, sp_exp_timeout_cb, &fired, NULL);
        g_source_attach(timeout, exp->context);
        while (!fired && !sp_exp_interrupted(exp))
            g_main_context_iteration(exp->context, TRUE);
        g_source_destroy(timeout);
    }
    return FALSE;
}

gboolean
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
gboolean
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

static gboolean
sp_exp_ksm_restore(SpExperiment *exp, GError **error)
{
    if (!exp->ksm_touched)
        return TRUE;
    if (!sp_ksm_unmerge_and_restore(exp->host, &exp->ksm_orig, NULL, error))
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

/* ---------------------------------------------------------------- sampling */

static gboolean
sp_exp_predict(SpExperiment *exp, SpExpRun *run, double t, SpExpPrediction *p, GError **error)
{
    SpScanOptions sopt;
    SpEstimateOptions eopt;
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
    g_autofree SpScanRange *ram = g_new0(SpScanRange, run->n_vms);
    g_autofree SpEstimateTarget *targets = g_new0(SpEstimateTarget, run->n_vms);
    for (guint i = 0; i < run->n_vms; i++) {
        const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        ram[i] = (SpScanRange){ .start = g->ram_start, .end = g->ram_end };
        targets[i] = (SpEstimateTarget){ .pid = g->pid, .guest = g->name,
                                         .ranges = &ram[i], .n_ranges = 1 };
    }
    est = sp_estimate_targets(exp->host, targets, run->n_vms, &sopt, &eopt, NULL, error);
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
                        "the guest image is missing: no %s (build it with build-image, in vm-images/ "
                        "or, installed, samepage's data directory (samepage(1), FILES), "
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

static gboolean
sp_exp_run(SpExperiment *exp, GError **error)
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
        /* SpReport's error, as the experiment's: the results were not written. */
        if (!failure)
            g_set_error(&failure, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT, "%s",
                        local->message);
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
    gboolean ok;

    /* Anything that attaches to the thread-default context meanwhile
     * attaches to the runner's, which is what it iterates. */
    g_main_context_push_thread_default(exp->context);
    ok = sp_exp_run(exp, error);
    g_main_context_pop_thread_default(exp->context);
    return ok;
}
