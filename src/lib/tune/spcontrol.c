/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcontrol.c: the scan-rate controller
 *
 * Theory of operation
 *
 * ksmd visits pages_to_scan pages, sleeps sleep_millisecs, and so on; how
 * fast it finds sharing and what it costs both follow from the rate.
 * Tuners in use steer blind: ksmtuned and KubeVirt step pages_to_scan on
 * free memory, the kernel's advisor aims at a fixed full-scan time.  None
 * knows how much sharing is left to find.  samepage does: the model's
 * prediction of pages_sharing for every registered page.
 *
 * samepage mode:
 * - BOOST while the kernel is below the prediction (or the prediction is
 *   stale: guests came or went, registrations changed): the rate that
 *   spends the CPU budget, from ksmd's measured cost per page (CPU seconds
 *   over pages_scanned), and no more than one full scan of the registered
 *   pages a second, decided again every second.  A page's cost is not
 *   constant: measured on a 6.18 kernel, the first pass over new pages
 *   (checksums only) costs about 1 us a page, the pass that merges them
 *   (tree searches, compares, merges) 6 to 7 times that, later passes
 *   between the two.  So the cost follows the last second's measurement
 *   upwards at once (a rate set for the cheap pass would run ksmd back to
 *   back in the merging pass) and downwards by halves.  The budget holds
 *   over the last minute (or since the window started, when shorter): the
 *   next second may spend only what the window has left, so a second over
 *   the budget is paid back by the following ones.
 * - MAINTAIN once the kernel is within 2% (or 256 pages) of the prediction:
 *   one full scan in maintenance_scan_s (10 minutes by default, where the
 *   kernel's advisor aims at one in 200 s), at most a quarter of the
 *   budget: the model, not a fast rate, says when there is sharing again.
 *   New sharing (a guest starting, a fresh prediction above the kernel)
 *   goes back to BOOST.
 * - SMART_OFF: when the kernel stops gaining (4 full scans without 0.5%
 *   more pages_sharing) below the prediction, with smart_scan on, a few full
 *   scans with smart_scan=0 (docs/kernel-facts.md: smart scan can keep equal
 *   pages apart for good), then smart_scan=1 again and MAINTAIN, settled:
 *   the remaining gap is reported, not chased.
 * - Counters that go backwards (run=2, an unmerge) start over; a new ksmd
 *   pid restarts the CPU window.
 *
 * ksmtuned and kubevirt modes follow those tools' laws with their
 * defaults, as baselines; static and kernel-advisor set the knobs once.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-control"

#include <stdio.h>
#include <string.h>

#include "samepage/spcontrol.h"

#define SP_CTL_WINDOW_S 60.0
#define SP_CTL_COST_PRIOR 1.0e-6       /* ksmd CPU seconds per page scanned, until measured */
#define SP_CTL_BOOST_SLEEP_MS 20u
#define SP_CTL_MAINTAIN_SLEEP_MS 200u
#define SP_CTL_STALL_SCANS 4u
#define SP_CTL_BOOST_TICK_S 1.0        /* decide again while boosting */
#define SP_CTL_MAINTAIN_TICK_S 15.0

/* ksmtuned's defaults */
#define KSMTUNED_INTERVAL_S 60.0
#define KSMTUNED_BOOST 300
#define KSMTUNED_DECAY 50
#define KSMTUNED_MIN 64u
#define KSMTUNED_MAX 1250u
#define KSMTUNED_SLEEP_MS 10u          /* for 16 GiB */
#define KSMTUNED_THRES_PCT 20u
#define KSMTUNED_THRES_MIN_KIB 2048u
/* KubeVirt's node handler */
#define KUBEVIRT_INTERVAL_S 180.0
#define KUBEVIRT_SLEEP_MS 100u         /* for 16 GiB in use */
#define KUBEVIRT_AVAILABLE_PCT 20u

#define SP_16GIB_KIB (16ULL * 1024 * 1024)

typedef struct {
    double t;
    double cpu_s;
} SpCtlCpu;

struct _SpControl {
    SpControlConfig cfg;
    GArray *cpu;                   /* SpCtlCpu over the window, oldest first */
    gint ksmd_pid;
    double cost;                   /* CPU s per page */
    gboolean cost_known;           /* cost measured (else the prior) */
    double win_cpu_s;              /* ksmd's CPU seconds over the window */
    double win_span_s;             /* the window's length so far, s (0: unknown) */
    gboolean have_prev;
    SpControlSnapshot prev;
    SpControlPhase phase;
    guint law_pages;               /* ksmtuned/kubevirt: the pages_to_scan they set */
    double law_next_t;
    guint64 best_sharing;          /* the most pages_sharing seen in this phase */
    guint64 best_scan;             /* full_scans when it last grew by 0.5% */
    guint64 smart_off_from;        /* full_scans when smart_scan=0 was set */
    double settled_prediction_t;   /* the prediction the kernel settled below */
};

static const char *const sp_mode_names[SP_CONTROL_N_MODES] = {
    [SP_CONTROL_STATIC] = "static",
    [SP_CONTROL_KSMTUNED] = "ksmtuned",
    [SP_CONTROL_KUBEVIRT] = "kubevirt",
    [SP_CONTROL_KERNEL_ADVISOR] = "kernel-advisor",
    [SP_CONTROL_SAMEPAGE] = "samepage",
};

const char *
sp_control_mode_name(SpControlMode mode)
{
    return mode < SP_CONTROL_N_MODES ? sp_mode_names[mode] : "?";
}

gboolean
sp_control_mode_from_name(const char *name, SpControlMode *mode)
{
    for (guint i = 0; i < SP_CONTROL_N_MODES; i++) {
        if (g_strcmp0(name, sp_mode_names[i]) == 0) {
            *mode = i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *
sp_control_phase_name(SpControlPhase phase)
{
    static const char *const names[] = {
        [SP_CONTROL_PHASE_FIXED] = "fixed",
        [SP_CONTROL_PHASE_OFF] = "off",
        [SP_CONTROL_PHASE_LAW] = "law",
        [SP_CONTROL_PHASE_BOOST] = "boost",
        [SP_CONTROL_PHASE_SMART_OFF] = "smart-scan-off",
        [SP_CONTROL_PHASE_MAINTAIN] = "maintain",
    };
    return phase < G_N_ELEMENTS(names) ? names[phase] : "?";
}

void
sp_control_config_init(SpControlConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mode = SP_CONTROL_SAMEPAGE;
    cfg->max_ksmd_cpu_pct = 25.0;
    cfg->static_pages_to_scan = 1000;
    cfg->static_sleep_ms = 20;
    cfg->maintenance_scan_s = 600;
    cfg->stop_above_available_pct = 0;
    cfg->smart_scan_off_scans = 3;
}

SpControl *
sp_control_new(const SpControlConfig *cfg)
{
    SpControl *ctl = g_new0(SpControl, 1);

    ctl->cfg = *cfg;
    ctl->cpu = g_array_new(FALSE, FALSE, sizeof(SpCtlCpu));
    ctl->cost = SP_CTL_COST_PRIOR;
    ctl->phase = SP_CONTROL_PHASE_BOOST;
    ctl->settled_prediction_t = -1;
    return ctl;
}

void
sp_control_free(SpControl *ctl)
{
    if (!ctl)
        return;
    g_array_unref(ctl->cpu);
    g_free(ctl);
}

static void G_GNUC_PRINTF(2, 3)
sp_reason(SpControlDecision *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
}

/* ksmd's CPU over the last minute (% of one CPU), or -1 while unknown.  A
 * new ksmd, or a CPU time that goes backwards, starts the window again. */
static double
sp_control_cpu(SpControl *ctl, const SpControlSnapshot *s)
{
    SpCtlCpu now = { s->t, s->ksmd_cpu_s };
    const SpCtlCpu *first;

    ctl->win_cpu_s = 0;
    ctl->win_span_s = 0;
    if (s->ksmd_pid <= 0)
        return -1;
    if (s->ksmd_pid != ctl->ksmd_pid || (ctl->cpu->len > 0 &&
        (s->ksmd_cpu_s < g_array_index(ctl->cpu, SpCtlCpu, ctl->cpu->len - 1).cpu_s ||
         s->t <= g_array_index(ctl->cpu, SpCtlCpu, ctl->cpu->len - 1).t)))
        g_array_set_size(ctl->cpu, 0);
    ctl->ksmd_pid = s->ksmd_pid;
    g_array_append_val(ctl->cpu, now);
    /* Keep one sample at or before the window's start. */
    while (ctl->cpu->len > 2 &&
           g_array_index(ctl->cpu, SpCtlCpu, 1).t <= s->t - SP_CTL_WINDOW_S)
        g_array_remove_index(ctl->cpu, 0);
    first = &g_array_index(ctl->cpu, SpCtlCpu, 0);
    ctl->win_cpu_s = s->ksmd_cpu_s - first->cpu_s;
    ctl->win_span_s = s->t - first->t;
    if (ctl->cpu->len < 2 || s->t - first->t < 1.0)
        return -1;
    return 100.0 * (s->ksmd_cpu_s - first->cpu_s) / (s->t - first->t);
}

/* The cost of a page, from ksmd's CPU time and the pages it scanned since
 * the last call: the first measurement replaces the prior; a higher one is
 * taken at once (the pass that merges costs several times the first), a
 * lower one halfway. */
static void
sp_control_learn_cost(SpControl *ctl, const SpControlSnapshot *s, guint64 scanned)
{
    const SpControlSnapshot *p = &ctl->prev;
    double cpu;

    if (!ctl->have_prev || p->ksmd_pid != s->ksmd_pid || s->ksmd_cpu_s < p->ksmd_cpu_s ||
        scanned < 10000)
        return;
    cpu = s->ksmd_cpu_s - p->ksmd_cpu_s;
    if (cpu <= 0)
        return;
    if (!ctl->cost_known || cpu / (double)scanned > ctl->cost)
        ctl->cost = cpu / (double)scanned;
    else
        ctl->cost = 0.5 * ctl->cost + 0.5 * (cpu / (double)scanned);
    ctl->cost_known = TRUE;
}

static guint
sp_clamp_u(double v, guint lo, guint hi)
{
    if (!(v >= lo))
        return lo;
    return v > hi ? hi : (guint)(v + 0.5);
}

/* ------------------------------------------------------------ the laws */

static void
sp_control_ksmtuned(SpControl *ctl, const SpControlSnapshot *s, SpControlDecision *out)
{
    guint64 total = s->mem_total_kib;
    guint64 thres = MAX(total * KSMTUNED_THRES_PCT / 100, (guint64)KSMTUNED_THRES_MIN_KIB);
    guint sleep = total ? (guint)(KSMTUNED_SLEEP_MS * SP_16GIB_KIB / total) : KSMTUNED_SLEEP_MS;
    gint64 pages;

    out->next_s = MAX(ctl->law_next_t - s->t, 0.0);
    if (ctl->have_prev && s->t < ctl->law_next_t) {
        /* between two adjustments: what the law set last */
        out->run = ctl->phase != SP_CONTROL_PHASE_OFF;
        out->pages_to_scan = ctl->law_pages;
        out->sleep_ms = MAX(sleep, 10u);
        sp_reason(out, "ksmtuned: next adjustment in %.0f s", out->next_s);
        return;
    }
    ctl->law_next_t = s->t + KSMTUNED_INTERVAL_S;
    out->next_s = KSMTUNED_INTERVAL_S;
    out->sleep_ms = MAX(sleep, 10u);
    if (s->committed_kib + thres < total) {
        ctl->phase = SP_CONTROL_PHASE_OFF;
        out->run = 0;
        out->pages_to_scan = ctl->law_pages ? ctl->law_pages : s->pages_to_scan;
        sp_reason(out, "ksmtuned: committed %" G_GUINT64_FORMAT " KiB is below MemTotal - "
                  "threshold (%" G_GUINT64_FORMAT " - %" G_GUINT64_FORMAT "): KSM off",
                  s->committed_kib, total, thres);
        return;
    }
    pages = ctl->law_pages ? ctl->law_pages : s->pages_to_scan;
    pages += s->mem_free_kib < thres ? KSMTUNED_BOOST : -KSMTUNED_DECAY;
    ctl->law_pages = sp_clamp_u((double)pages, KSMTUNED_MIN, KSMTUNED_MAX);
    ctl->phase = SP_CONTROL_PHASE_LAW;
    out->run = 1;
    out->pages_to_scan = ctl->law_pages;
    sp_reason(out, "ksmtuned: free %" G_GUINT64_FORMAT " KiB %s threshold %" G_GUINT64_FORMAT
              " KiB: pages_to_scan %s to %u", s->mem_free_kib,
              s->mem_free_kib < thres ? "below" : "above", thres,
              s->mem_free_kib < thres ? "raised" : "lowered", ctl->law_pages);
}

static void
sp_control_kubevirt(SpControl *ctl, const SpControlSnapshot *s, SpControlDecision *out)
{
    guint64 total = s->mem_total_kib, avail = MIN(s->mem_available_kib, total);
    guint64 used = total - avail;
    gboolean pressure = avail * 100 <= total * KUBEVIRT_AVAILABLE_PCT;
    guint sleep = used ? (guint)MIN(KUBEVIRT_SLEEP_MS * SP_16GIB_KIB / used, 10000ULL) : 10000u;
    gint64 pages;

    out->sleep_ms = MAX(sleep, 10u);
    if (ctl->have_prev && s->t < ctl->law_next_t) {
        out->next_s = ctl->law_next_t - s->t;
        out->run = ctl->phase != SP_CONTROL_PHASE_OFF;
        out->pages_to_scan = ctl->law_pages ? ctl->law_pages : s->pages_to_scan;
        sp_reason(out, "kubevirt: next adjustment in %.0f s", out->next_s);
        return;
    }
    ctl->law_next_t = s->t + KUBEVIRT_INTERVAL_S;
    out->next_s = KUBEVIRT_INTERVAL_S;
    if (!pressure && ctl->phase != SP_CONTROL_PHASE_LAW) {
        ctl->phase = SP_CONTROL_PHASE_OFF;
        out->run = 0;
        out->pages_to_scan = s->pages_to_scan;
        sp_reason(out, "kubevirt: MemAvailable %" G_GUINT64_FORMAT " KiB is above %u%% of "
                  "MemTotal: KSM off", avail, KUBEVIRT_AVAILABLE_PCT);
        return;
    }
    pages = ctl->law_pages ? ctl->law_pages : s->pages_to_scan;
    pages += pressure ? KSMTUNED_BOOST : -KSMTUNED_DECAY;
    if (!pressure && pages <= KSMTUNED_MIN) {
        /* pressure gone and the rate decayed to the floor: off */
        ctl->phase = SP_CONTROL_PHASE_OFF;
        ctl->law_pages = KSMTUNED_MIN;
        out->run = 0;
        out->pages_to_scan = KSMTUNED_MIN;
        sp_reason(out, "kubevirt: no memory pressure and pages_to_scan at its floor: KSM off");
        return;
    }
    ctl->law_pages = sp_clamp_u((double)pages, KSMTUNED_MIN, KSMTUNED_MAX);
    ctl->phase = SP_CONTROL_PHASE_LAW;
    out->run = 1;
    out->pages_to_scan = ctl->law_pages;
    sp_reason(out, "kubevirt: MemAvailable %" G_GUINT64_FORMAT " KiB %s %u%% of MemTotal: "
              "pages_to_scan %u, sleep %u ms (16 GiB / %" G_GUINT64_FORMAT " KiB in use)",
              avail, pressure ? "at or below" : "above", KUBEVIRT_AVAILABLE_PCT,
              ctl->law_pages, out->sleep_ms, used);
}

/* ------------------------------------------------------------ samepage */

/**
 * sp_control_registered_moved:
 * @registered_pages: the pages present in mergeable VMAs now
 * @predicted_over: the registered pages the prediction covered
 *
 * Whether the registered memory moved enough since the prediction (by more
 * than 5%, and more than 1024 pages) for the prediction to be out of date:
 * a guest that boots fills its RAM long after it started.  The decision
 * treats such a prediction as stale; whoever makes predictions makes one
 * again.
 */
gboolean
sp_control_registered_moved(guint64 registered_pages, guint64 predicted_over)
{
    guint64 a = registered_pages, b = predicted_over;
    guint64 diff = a > b ? a - b : b - a;

    return diff > a / 20 + 1024;
}

static gboolean
sp_control_prediction_stale(const SpControlSnapshot *s)
{
    return !s->have_prediction ||
           sp_control_registered_moved(s->registered_pages, s->prediction_registered_pages) ||
           (s->last_guest_start_t >= 0 && s->last_guest_start_t > s->prediction_t);
}

/* Scanning hard for the next second: the budget's rate, less when the
 * window (the last minute, or since it started) has spent more than its
 * share, capped at @cap pages a second, in batches every 20 ms.  Returns
 * whether the window's spending cut the rate. */
static gboolean
sp_control_set_boost(const SpControl *ctl, double budget, double cap, SpControlDecision *out)
{
    double cpu = budget, rate;

    if (ctl->win_span_s > 0) {
        double left = budget * (ctl->win_span_s + SP_CTL_BOOST_TICK_S) - ctl->win_cpu_s;
        cpu = CLAMP(left / SP_CTL_BOOST_TICK_S, 0.0, budget);
    }
    rate = MIN(cpu / ctl->cost, cap);
    out->sleep_ms = SP_CTL_BOOST_SLEEP_MS;
    out->pages_to_scan = sp_clamp_u(rate * SP_CTL_BOOST_SLEEP_MS / 1000.0, 100, 1000000);
    out->next_s = SP_CTL_BOOST_TICK_S;
    return cpu < budget;
}

/* Maintenance: one full scan of the registered pages in maintenance_scan_s,
 * at most a quarter of the budget, in batches every 200 ms. */
static void
sp_control_set_maintain(const SpControl *ctl, const SpControlSnapshot *s, double budget,
                        double factor, SpControlDecision *out)
{
    double rate = MIN((double)s->registered_pages / MAX(ctl->cfg.maintenance_scan_s, 1u),
                      budget / 4 / ctl->cost) * factor;

    out->sleep_ms = SP_CTL_MAINTAIN_SLEEP_MS;
    out->pages_to_scan = sp_clamp_u(rate * SP_CTL_MAINTAIN_SLEEP_MS / 1000.0, 16, 1000000);
    out->next_s = SP_CTL_MAINTAIN_TICK_S;
}

static void
sp_control_samepage(SpControl *ctl, const SpControlSnapshot *s, double cpu_pct,
                    SpControlDecision *out)
{
    const SpControlConfig *cfg = &ctl->cfg;
    const SpControlSnapshot *p = &ctl->prev;
    double budget = MAX(cfg->max_ksmd_cpu_pct, 0.1) / 100.0;
    gboolean stale = sp_control_prediction_stale(s);
    guint64 pred = s->predicted_sharing;
    guint64 slack = MAX(pred / 50, (guint64)256);
    gboolean reached = !stale && s->pages_sharing + slack >= pred;
    double factor = 1.0;
    gboolean cut;

    if (!ctl->have_prev) {
        ctl->best_sharing = s->pages_sharing;
        ctl->best_scan = s->full_scans;
    }
    /* Figures that go backwards: someone unmerged (run=2): start over. */
    if (ctl->have_prev && (s->full_scans < p->full_scans ||
        (p->pages_sharing > 1000 && s->pages_sharing < p->pages_sharing / 2))) {
        ctl->phase = SP_CONTROL_PHASE_BOOST;
        ctl->best_sharing = s->pages_sharing;
        ctl->best_scan = s->full_scans;
        ctl->settled_prediction_t = -1;
    }
    if (s->pages_sharing > ctl->best_sharing + ctl->best_sharing / 200 ||
        s->full_scans < ctl->best_scan) {
        ctl->best_sharing = s->pages_sharing;
        ctl->best_scan = s->full_scans;
    }
    if (cpu_pct > 100.0 * budget)
        factor = 100.0 * budget / cpu_pct;

    out->run = 1;
    out->smart_scan = -1;
    out->advisor_scan_time = s->has_advisor ? 0 : -1;

    /* Passes with smart_scan=0 under way: count them, then restore. */
    if (ctl->phase == SP_CONTROL_PHASE_SMART_OFF) {
        if (s->full_scans >= ctl->smart_off_from + cfg->smart_scan_off_scans) {
            ctl->phase = SP_CONTROL_PHASE_MAINTAIN;
            ctl->settled_prediction_t = s->prediction_t;
            out->smart_scan = 1;
        } else {
            out->smart_scan = 0;
            sp_control_set_boost(ctl, budget, G_MAXDOUBLE, out);
            sp_reason(out, "smart_scan=0 for %u full scans (%" G_GUINT64_FORMAT " done): the "
                      "kernel stopped at %" G_GUINT64_FORMAT " pages_sharing, the model predicts %"
                      G_GUINT64_FORMAT, cfg->smart_scan_off_scans,
                      s->full_scans - ctl->smart_off_from, s->pages_sharing, pred);
            return;
        }
    }

    /* A settled gap is chased again only with new sharing to find. */
    if (ctl->phase == SP_CONTROL_PHASE_MAINTAIN && !reached && !stale &&
        ctl->settled_prediction_t >= 0 && s->prediction_t <= ctl->settled_prediction_t) {
        sp_control_set_maintain(ctl, s, budget, 1.0, out);
        sp_reason(out, "settled below the prediction: pages_sharing %" G_GUINT64_FORMAT
                  ", the model %" G_GUINT64_FORMAT " (%.1f%%); maintenance rate",
                  s->pages_sharing, pred, pred ? 100.0 * ((double)s->pages_sharing - pred) / pred : 0);
        ctl->phase = SP_CONTROL_PHASE_MAINTAIN;
        return;
    }

    if (reached) {
        double avail_pct = s->mem_total_kib ? 100.0 * s->mem_available_kib / s->mem_total_kib : 0;
        ctl->phase = SP_CONTROL_PHASE_MAINTAIN;
        ctl->settled_prediction_t = -1;
        if (cfg->stop_above_available_pct > 0 && avail_pct > cfg->stop_above_available_pct) {
            ctl->phase = SP_CONTROL_PHASE_OFF;
            out->run = 0;
            out->pages_to_scan = s->pages_to_scan;
            out->sleep_ms = s->sleep_ms;
            out->next_s = 15;
            sp_reason(out, "at the prediction (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                      " pages_sharing) and MemAvailable is %.0f%% of MemTotal (above %.0f%%): "
                      "scanning stopped, merged pages kept", s->pages_sharing, pred, avail_pct,
                      cfg->stop_above_available_pct);
            return;
        }
        sp_control_set_maintain(ctl, s, budget, factor, out);
        sp_reason(out, "at the prediction: pages_sharing %" G_GUINT64_FORMAT " of %"
                  G_GUINT64_FORMAT "; one full scan of %" G_GUINT64_FORMAT " pages in about %u s",
                  s->pages_sharing, pred, s->registered_pages, cfg->maintenance_scan_s);
        return;
    }

    /* Below the prediction and no longer gaining: smart scan may keep
     * equal pages apart; a few passes without it, then settle. */
    if (!stale && s->run && s->full_scans >= ctl->best_scan + SP_CTL_STALL_SCANS &&
        ctl->phase == SP_CONTROL_PHASE_BOOST) {
        if (s->has_smart_scan && s->smart_scan && cfg->smart_scan_off_scans > 0) {
            ctl->phase = SP_CONTROL_PHASE_SMART_OFF;
            ctl->smart_off_from = s->full_scans;
            out->smart_scan = 0;
            sp_control_set_boost(ctl, budget, G_MAXDOUBLE, out);
            sp_reason(out, "no gain for %u full scans at %" G_GUINT64_FORMAT " pages_sharing, "
                      "below the model's %" G_GUINT64_FORMAT ": smart_scan=0 for %u full scans",
                      SP_CTL_STALL_SCANS, s->pages_sharing, pred, cfg->smart_scan_off_scans);
            return;
        }
        ctl->phase = SP_CONTROL_PHASE_MAINTAIN;
        ctl->settled_prediction_t = s->prediction_t;
        sp_control_samepage(ctl, s, cpu_pct, out);
        return;
    }

    /* BOOST: spend the budget, never more than a full scan a second. */
    ctl->phase = SP_CONTROL_PHASE_BOOST;
    cut = sp_control_set_boost(ctl, budget, (double)MAX(s->registered_pages, 1000u), out);
    if (stale)
        sp_reason(out, "the prediction is stale (%s): scanning at the budget's rate, %u pages "
                  "every %u ms", !s->have_prediction ? "none yet"
                  : s->last_guest_start_t > s->prediction_t ? "a guest started since"
                                                            : "registered pages changed",
                  out->pages_to_scan, out->sleep_ms);
    else
        sp_reason(out, "below the prediction: pages_sharing %" G_GUINT64_FORMAT " of %"
                  G_GUINT64_FORMAT "; %u pages every %u ms (%.2f us a page, budget %.0f%% of a "
                  "CPU%s)", s->pages_sharing, pred, out->pages_to_scan, out->sleep_ms,
                  ctl->cost * 1e6, 100.0 * budget,
                  cut ? ", cut: over budget over the last minute" : "");
}

/**
 * sp_control_decide:
 * @snap: the host now
 * @out: (out): the knobs to apply, the phase, and the reason in one sentence
 *
 * Pure: the same sequence of snapshots gives the same decisions.  The
 * caller applies out's knobs (0 / -1 fields: leave them) and calls again
 * after out->next_s seconds, or sooner when guests come or go.
 */
void
sp_control_decide(SpControl *ctl, const SpControlSnapshot *snap, SpControlDecision *out)
{
    guint64 scanned = 0;

    memset(out, 0, sizeof(*out));
    out->smart_scan = -1;
    out->advisor_scan_time = -1;
    out->ksmd_cpu_pct = sp_control_cpu(ctl, snap);
    if (ctl->have_prev && snap->has_pages_scanned && ctl->prev.has_pages_scanned) {
        /* what ksmd counted; a counter that went back (reset) says nothing */
        scanned = snap->pages_scanned >= ctl->prev.pages_scanned
            ? snap->pages_scanned - ctl->prev.pages_scanned : 0;
    } else if (ctl->have_prev && snap->run && ctl->prev.sleep_ms > 0 && snap->t > ctl->prev.t) {
        /* pages ksmd scanned since the last call: at most pages_to_scan a
         * batch, one batch a sleep (less when a batch takes long) */
        scanned = (guint64)(ctl->prev.pages_to_scan * ((snap->t - ctl->prev.t) * 1000.0 /
                                                       ctl->prev.sleep_ms));
    }
    sp_control_learn_cost(ctl, snap, scanned);

    switch (ctl->cfg.mode) {
    case SP_CONTROL_STATIC:
        ctl->phase = SP_CONTROL_PHASE_FIXED;
        out->run = 1;
        out->pages_to_scan = ctl->cfg.static_pages_to_scan;
        out->sleep_ms = ctl->cfg.static_sleep_ms;
        out->advisor_scan_time = snap->has_advisor ? 0 : -1;
        out->next_s = 60;
        sp_reason(out, "static: %u pages every %u ms", out->pages_to_scan, out->sleep_ms);
        break;
    case SP_CONTROL_KERNEL_ADVISOR:
        ctl->phase = SP_CONTROL_PHASE_FIXED;
        out->run = 1;
        out->next_s = 60;
        if (snap->has_advisor) {
            out->advisor_scan_time = 1;
            sp_reason(out, "kernel-advisor: advisor_mode=scan-time steers pages_to_scan");
        } else {
            out->pages_to_scan = ctl->cfg.static_pages_to_scan;
            out->sleep_ms = ctl->cfg.static_sleep_ms;
            sp_reason(out, "kernel-advisor: this kernel has no advisor_mode; static %u pages "
                      "every %u ms instead", out->pages_to_scan, out->sleep_ms);
        }
        break;
    case SP_CONTROL_KSMTUNED:
        sp_control_ksmtuned(ctl, snap, out);
        break;
    case SP_CONTROL_KUBEVIRT:
        sp_control_kubevirt(ctl, snap, out);
        break;
    case SP_CONTROL_SAMEPAGE:
    default:
        sp_control_samepage(ctl, snap, out->ksmd_cpu_pct, out);
        break;
    }
    out->phase = ctl->phase;
    ctl->prev = *snap;
    /* what the next interval runs with */
    if (out->pages_to_scan)
        ctl->prev.pages_to_scan = out->pages_to_scan;
    if (out->sleep_ms)
        ctl->prev.sleep_ms = out->sleep_ms;
    ctl->prev.run = out->run;
    ctl->have_prev = TRUE;
}
