/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcontrolhost.c: the scan-rate controller's host side: gather a
 * snapshot, apply a decision
 *
 * Theory of operation
 *
 * Gathering reads, through the SpHost, everything SpControl looks at: the
 * KSM knobs and figures (SpKsm), ksmd's CPU time (SpProc: ksmd is found
 * once and checked on every read, since a kernel thread that exits and
 * comes back gets a new pid), /proc/meminfo in one read, the "some" line of
 * /proc/pressure/memory (absent on kernels without PSI: unknown, not an
 * error) and the present pages of every KSM-scannable VM_MERGEABLE VMA of
 * every process (SpMaps), which is what ksmd walks and what the model's
 * prediction must cover.
 *
 * Applying first works out the writes that change something (pure:
 * sp_control_writes()), checks the decision as a whole, then hands them to
 * sp_ksm_apply(), which validates them against the state just read and,
 * should a write still fail, restores what was there: nothing is left half
 * applied.  Two rules on top of the knobs:
 *   - ownership: a decision to stop ksmd (run=0) is carried out only when
 *     the controller itself turned it on; KSM found running stays running.
 *   - the rate belongs to whoever sets it: a decision with a pages_to_scan
 *     over a kernel whose advisor is on (advisor_mode=scan-time, set by
 *     someone else) turns the advisor off first, since the kernel refuses
 *     pages_to_scan while it is on; a change of advisor_mode resets
 *     pages_to_scan, so it is written after, changed or not.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-controller"

#include <string.h>
#include <unistd.h>

#include "samepage/spcontroller.h"
#include "samepage/spmaps.h"
#include "samepage/spproc.h"
#include "samepage/spscan.h"

G_DEFINE_QUARK(sp-controller-error-quark, sp_controller_error)

#define SP_KTHREADD_PID 2

struct _SpControlGatherer {
    SpHost *host;                  /* a reference: a gather may outlive its owner's */
    pid_t ksmd;                    /* last seen; 0: look for it */
    double clk_tck;
};

/**
 * sp_control_gatherer_new:
 * @host: (transfer none): where sysfs and procfs are; the gatherer holds a
 *   reference
 */
SpControlGatherer *
sp_control_gatherer_new(const SpHost *host)
{
    SpControlGatherer *g = g_new0(SpControlGatherer, 1);
    long tck = sysconf(_SC_CLK_TCK);

    g->host = sp_host_ref(host);
    g->clk_tck = tck > 0 ? (double)tck : 100.0;
    return g;
}

void
sp_control_gatherer_free(SpControlGatherer *g)
{
    if (!g)
        return;
    sp_host_free(g->host);
    g_free(g);
}

/* ksmd's CPU seconds; its pid in *pid (0 when there is no ksmd). */
static double
sp_control_ksmd_cpu(SpControlGatherer *g, pid_t *pid)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        g_auto(SpProcStat) st = { 0 };

        if (g->ksmd > 0 && sp_proc_read_stat(g->host, g->ksmd, &st, NULL) &&
            g_str_equal(st.comm, "ksmd") && st.ppid == SP_KTHREADD_PID) {
            *pid = g->ksmd;
            return (double)(st.utime + st.stime) / g->clk_tck;
        }
        /* gone, or its pid now belongs to someone else: look again */
        g->ksmd = attempt == 0 ? sp_proc_find_ksmd(g->host) : 0;
        if (!g->ksmd)
            break;
    }
    *pid = 0;
    return 0;
}

/**
 * sp_control_gather:
 * @t: now, in seconds on the caller's monotonic clock
 * @snap: (out caller-allocates): the host now; the prediction, guest
 *   starts and committed memory are the caller's to fill (committed_kib
 *   is set to the registered memory, last_guest_start_t to -1)
 * @ksm: (out caller-allocates) (optional): the KSM state it was made from
 *
 * Fails (SP_CONTROLLER_ERROR_GATHER, the message naming the file) when KSM
 * or /proc/meminfo cannot be read or parsed; ksmd or PSI missing is not a
 * failure (ksmd_pid 0, psi_some_avg10 -1).
 */
gboolean
sp_control_gather(SpControlGatherer *g, double t, SpControlSnapshot *snap, SpKsmState *ksm,
                  GError **error)
{
    static const char *const keys[] = { "MemTotal", "MemAvailable", "MemFree", "Buffers",
                                        "Cached", NULL };
    guint64 mem[G_N_ELEMENTS(keys) - 1];
    g_autoptr(GError) local = NULL;
    SpProcPressure psi;
    SpKsmState state;
    pid_t ksmd;
    const SpKsmEntry *e = state.entry;

    memset(snap, 0, sizeof(*snap));
    if (!sp_ksm_read(g->host, &state, &local) ||
        !sp_proc_read_meminfo_keys(g->host, keys, mem, &local)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_GATHER,
                    "cannot read the host's state: %s", local->message);
        return FALSE;
    }
    snap->t = t;
    snap->run = e[SP_KSM_RUN].value == 1;
    snap->pages_to_scan = (guint)MIN(e[SP_KSM_PAGES_TO_SCAN].value, (gint64)G_MAXUINT);
    snap->sleep_ms = (guint)MIN(e[SP_KSM_SLEEP_MILLISECS].value, (gint64)G_MAXUINT);
    snap->has_smart_scan = e[SP_KSM_SMART_SCAN].supported;
    snap->smart_scan = snap->has_smart_scan && e[SP_KSM_SMART_SCAN].value == 1;
    snap->has_advisor = e[SP_KSM_ADVISOR_MODE].supported;
    snap->pages_shared = (guint64)MAX(e[SP_KSM_PAGES_SHARED].value, 0);
    snap->pages_sharing = (guint64)MAX(e[SP_KSM_PAGES_SHARING].value, 0);
    snap->full_scans = (guint64)MAX(e[SP_KSM_FULL_SCANS].value, 0);
    snap->has_pages_scanned = e[SP_KSM_PAGES_SCANNED].supported;
    snap->pages_scanned = (guint64)MAX(e[SP_KSM_PAGES_SCANNED].value, 0);

    snap->ksmd_cpu_s = sp_control_ksmd_cpu(g, &ksmd);
    snap->ksmd_pid = ksmd;

    snap->mem_total_kib = mem[0] / 1024;
    snap->mem_available_kib = mem[1] / 1024;
    snap->mem_free_kib = (mem[2] + mem[3] + mem[4]) / 1024;
    snap->psi_some_avg10 = -1;
    if (sp_proc_read_memory_pressure(g->host, &psi, NULL))
        snap->psi_some_avg10 = psi.avg10;

    snap->registered_pages = sp_maps_mergeable_present(g->host, NULL);
    snap->committed_kib = snap->registered_pages * (SP_PAGE_SIZE / 1024);
    snap->last_guest_start_t = -1;
    if (ksm)
        *ksm = state;
    return TRUE;
}

/* ------------------------------------------------------------ applier */

static void
sp_control_add(SpControlWrites *w, SpKsmKey key, gint64 value)
{
    g_assert(w->n_settings < SP_CONTROL_MAX_SETTINGS);
    w->settings[w->n_settings].key = key;
    w->settings[w->n_settings].value = value;
    w->n_settings++;
}

/**
 * sp_control_writes:
 * @now: the KSM state the decision is applied to
 * @d: the decision (0 or -1 fields: leave that knob)
 * @own_run: the controller turned ksmd on (so it may turn it off)
 * @w: (out caller-allocates): the writes, in order
 *
 * Pure.  The writes that change something, in the order the kernel needs:
 * advisor_mode (whose change resets pages_to_scan), pages_to_scan (also
 * when equal, after an advisor_mode write), sleep_millisecs, smart_scan;
 * run=1 last, once the rate is in place; run=0 first.  A decision to stop
 * is only the run write, and only with @own_run (else w->kept_on).
 *
 * Returns: FALSE (SP_CONTROLLER_ERROR_INVALID) for a decision that cannot
 * be applied as a whole: a value out of its range, a knob this kernel
 * lacks, a pages_to_scan together with advisor_mode=scan-time.
 */
gboolean
sp_control_writes(const SpKsmState *now, const SpControlDecision *d, gboolean own_run,
                  SpControlWrites *w, GError **error)
{
    const SpKsmEntry *e = now->entry;
    gint64 advisor = e[SP_KSM_ADVISOR_MODE].supported ? e[SP_KSM_ADVISOR_MODE].value : 0;
    gboolean advisor_written = FALSE;

    memset(w, 0, sizeof(*w));
    if (d->run != 0 && d->run != 1) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID,
                    "decision: run=%d is neither 0 nor 1", d->run);
        return FALSE;
    }
    if (d->smart_scan < -1 || d->smart_scan > 1 ||
        (d->smart_scan >= 0 && !e[SP_KSM_SMART_SCAN].supported)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID,
                    "decision: smart_scan=%d %s", d->smart_scan,
                    d->smart_scan < -1 || d->smart_scan > 1 ? "is out of range"
                                                            : "but this kernel has no smart_scan");
        return FALSE;
    }
    if (d->advisor_scan_time < -1 || d->advisor_scan_time > 1 ||
        (d->advisor_scan_time >= 0 && !e[SP_KSM_ADVISOR_MODE].supported)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID,
                    "decision: advisor_scan_time=%d %s", d->advisor_scan_time,
                    d->advisor_scan_time < -1 || d->advisor_scan_time > 1
                        ? "is out of range" : "but this kernel has no advisor_mode");
        return FALSE;
    }
    if (d->advisor_scan_time == 1 && d->pages_to_scan > 0) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID,
                    "decision: pages_to_scan=%u with advisor_mode=scan-time, which sets "
                    "pages_to_scan itself", d->pages_to_scan);
        return FALSE;
    }
    if (!e[SP_KSM_RUN].supported || !e[SP_KSM_PAGES_TO_SCAN].supported ||
        !e[SP_KSM_SLEEP_MILLISECS].supported) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_INVALID,
                    "decision: this kernel lacks run, pages_to_scan or sleep_millisecs");
        return FALSE;
    }

    if (d->run == 0) {
        if (e[SP_KSM_RUN].value != 1)
            return TRUE;                /* stopped already (0, or 2: unmerged) */
        if (!own_run) {
            w->kept_on = TRUE;
            return TRUE;
        }
        sp_control_add(w, SP_KSM_RUN, 0);
        return TRUE;
    }

    {
        gint64 want = d->advisor_scan_time >= 0 ? d->advisor_scan_time
                      : d->pages_to_scan > 0 ? 0 : advisor;
        if (want != advisor) {
            sp_control_add(w, SP_KSM_ADVISOR_MODE, want);
            advisor_written = TRUE;
            advisor = want;
        }
    }
    if (d->pages_to_scan > 0 &&
        (advisor_written || e[SP_KSM_PAGES_TO_SCAN].value != (gint64)d->pages_to_scan))
        sp_control_add(w, SP_KSM_PAGES_TO_SCAN, d->pages_to_scan);
    if (d->sleep_ms > 0 && e[SP_KSM_SLEEP_MILLISECS].value != (gint64)d->sleep_ms)
        sp_control_add(w, SP_KSM_SLEEP_MILLISECS, d->sleep_ms);
    if (d->smart_scan >= 0 && e[SP_KSM_SMART_SCAN].value != d->smart_scan)
        sp_control_add(w, SP_KSM_SMART_SCAN, d->smart_scan);
    if (e[SP_KSM_RUN].value != 1) {
        sp_control_add(w, SP_KSM_RUN, 1);
        w->turns_on = TRUE;
    }
    return TRUE;
}

/**
 * sp_control_apply:
 * @d: the decision
 * @own_run: (inout): whether the controller turned ksmd on; set when this
 *   call does, cleared when it stops it
 * @done: (out caller-allocates) (optional): the writes made (n_settings 0
 *   when nothing changed)
 *
 * Reads KSM, works out the writes (sp_control_writes()) and applies them
 * all or none (sp_ksm_apply() validates them first and restores the state
 * it found should a write fail).
 */
gboolean
sp_control_apply(const SpHost *host, const SpControlDecision *d, gboolean *own_run,
                 SpControlWrites *done, GError **error)
{
    g_autoptr(GError) local = NULL;
    SpControlWrites w;
    SpKsmState now;

    if (done)
        memset(done, 0, sizeof(*done));
    if (!sp_ksm_read(host, &now, &local)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_APPLY,
                    "cannot read KSM before applying: %s", local->message);
        return FALSE;
    }
    if (!sp_control_writes(&now, d, *own_run, &w, error))
        return FALSE;
    if (w.n_settings > 0 && !sp_ksm_apply(host, w.settings, w.n_settings, &local)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_APPLY,
                    "cannot apply the decision: %s", local->message);
        return FALSE;
    }
    if (w.turns_on)
        *own_run = TRUE;
    for (gsize i = 0; i < w.n_settings; i++) {
        if (w.settings[i].key == SP_KSM_RUN && w.settings[i].value == 0)
            *own_run = FALSE;
    }
    if (done)
        *done = w;
    return TRUE;
}
