/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spnuma.c: the safe merge_across_nodes switch
 *
 * mm/ksm.c: merge_across_nodes_store() returns EBUSY while ksm_pages_shared
 * is not 0, so the documented procedure is run=2 (unmerge everything), write
 * the knob, run=1.  The unmerge breaks COW on every KSM page:
 * pages_sharing pages come back as copies, so MemAvailable must cover
 * pages_sharing * 4 KiB (plus a 10% margin) unless forced.  Progress is
 * pages_shared going down to 0.  Failure at any point, or an abort (the
 * CLI aborts on SIGINT, SIGTERM and SIGHUP), restores the snapshot taken
 * at the start (sp_ksm_restore()): run as it was (a run=2 as 0, never a
 * second unmerge) and every other knob.
 *
 * The switch is steps the caller drives (SpNumaSwitch): nothing here
 * sleeps or runs a main context.  The CLI waits between them in its own
 * loop; the agent steps it from a timer of its main loop.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-numa"

#include <string.h>

#include "samepage/spnuma.h"

G_DEFINE_QUARK(sp-numa-error-quark, sp_numa_error)

/**
 * sp_numa_plan:
 * @state: the KSM state now
 * @mem_available: MemAvailable in bytes
 * @want: the merge_across_nodes wanted
 *
 * Decides, without touching anything, what the switch will do, or why it
 * must not.
 */
gboolean
sp_numa_plan(const SpKsmState *state, guint64 mem_available, gboolean want, gboolean force,
             SpNumaPlan *plan, GError **error)
{
    const SpKsmEntry *man = &state->entry[SP_KSM_MERGE_ACROSS_NODES];
    gint64 shared = state->entry[SP_KSM_PAGES_SHARED].value;
    gint64 sharing = state->entry[SP_KSM_PAGES_SHARING].value;

    memset(plan, 0, sizeof(*plan));
    plan->restore_run = state->entry[SP_KSM_RUN].value == 2 ? 0 : state->entry[SP_KSM_RUN].value;
    if (!man->supported) {
        g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_UNSUPPORTED,
                    "this kernel has no merge_across_nodes (built without NUMA)");
        return FALSE;
    }
    if ((man->value != 0) == want) {
        plan->nothing_to_do = TRUE;
        return TRUE;
    }
    plan->unmerge = shared > 0;
    if (sharing <= 0 || !g_uint64_checked_mul(&plan->unmerge_bytes, (guint64)sharing, 4096))
        plan->unmerge_bytes = sharing <= 0 ? 0 : G_MAXUINT64;
    if (plan->unmerge && !force) {
        g_autoptr(GError) local = NULL;
        if (!sp_ksm_unmerge_check(sharing, 4096, mem_available, NULL, &local)) {
            g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_MEMORY, "%s", local->message);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
sp_numa_write(const SpHost *host, SpKsmKey key, gint64 value, GError **error)
{
    SpKsmSetting s = { key, value };
    return sp_ksm_apply(host, &s, 1, error);
}

/* ------------------------------------------------------------ the steps */

typedef enum {
    SP_NUMA_SW_START,           /* nothing written yet */
    SP_NUMA_SW_UNMERGING,       /* run=2 written (or run was off): waiting for pages_shared 0 */
    SP_NUMA_SW_READY,           /* pages_shared is 0: the knob is next */
    SP_NUMA_SW_DONE,
    SP_NUMA_SW_FAILED,          /* failed or aborted; the snapshot was put back */
} SpNumaSwState;

struct _SpNumaSwitch {
    const SpHost *host;
    gboolean want;
    guint timeout_s;
    SpKsmState snapshot;
    SpNumaPlan plan;
    SpNumaSwState state;
    gint64 t0_us;
};

/**
 * sp_numa_switch_new:
 * @timeout_s: how long the unmerge may take before the switch gives up
 *
 * Takes the snapshot the switch restores on failure and plans it
 * (sp_numa_plan()); nothing is written yet.  The caller then calls
 * sp_numa_switch_step() until it says done, SP_NUMA_STEP_MS apart, from a
 * timer of its own main loop: no step blocks for more than a sysfs write
 * (the run=2 write returns once the kernel has unmerged).
 *
 * Returns: (transfer full): the switch, or NULL with the planning error.
 */
SpNumaSwitch *
sp_numa_switch_new(const SpHost *host, gboolean want, gboolean force, guint timeout_s,
                   GError **error)
{
    g_autoptr(SpNumaSwitch) sw = g_new0(SpNumaSwitch, 1);

    sw->host = host;
    sw->want = want;
    sw->timeout_s = timeout_s;
    if (!sp_ksm_snapshot(host, &sw->snapshot, error) ||
        !sp_numa_plan(&sw->snapshot, sp_host_mem_available(host), want, force, &sw->plan, error))
        return NULL;
    sw->state = sw->plan.nothing_to_do ? SP_NUMA_SW_DONE : SP_NUMA_SW_START;
    return g_steal_pointer(&sw);
}

void
sp_numa_switch_free(SpNumaSwitch *sw)
{
    g_free(sw);
}

const SpNumaPlan *
sp_numa_switch_get_plan(const SpNumaSwitch *sw)
{
    return &sw->plan;
}

/* Puts the snapshot back and says so in @error; the switch has failed. */
static gboolean
sp_numa_switch_restore(SpNumaSwitch *sw, GError **error)
{
    g_autoptr(GError) undo = NULL;

    sw->state = SP_NUMA_SW_FAILED;
    if (!sp_ksm_restore(sw->host, &sw->snapshot, NULL, &undo))
        g_prefix_error(error, "(KSM not fully restored: %s) ", undo->message);
    else
        g_prefix_error(error, "merge_across_nodes, run and every other knob restored "
                       "(pages already unmerged merge again as KSM rescans): ");
    return FALSE;
}

/**
 * sp_numa_switch_step:
 * @done: (out): TRUE once merge_across_nodes has its new value and run is
 *   back (or there was nothing to do)
 * @pages_shared: (out) (optional): pages_shared as last read, -1 if not read
 * @elapsed_s: (out) (optional): seconds since the unmerge began
 *
 * One step: write run=2 (the first), read pages_shared (while unmerging),
 * or write the knob and run back (once pages_shared is 0).  A failure, or
 * a timeout, restores the snapshot and returns FALSE.
 */
gboolean
sp_numa_switch_step(SpNumaSwitch *sw, gboolean *done, gint64 *pages_shared, double *elapsed_s,
                    GError **error)
{
    SpKsmState now;
    double el;

    *done = FALSE;
    if (pages_shared)
        *pages_shared = -1;
    if (elapsed_s)
        *elapsed_s = 0;
    switch (sw->state) {
    case SP_NUMA_SW_DONE:
        *done = TRUE;
        return TRUE;
    case SP_NUMA_SW_FAILED:
        g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_FAILED, "the switch has already failed");
        return FALSE;
    case SP_NUMA_SW_START:
        if (sw->plan.unmerge || sw->snapshot.entry[SP_KSM_RUN].value == 1) {
            /* Stop and unmerge; new merges could otherwise refill pages_shared. */
            if (!sp_numa_write(sw->host, SP_KSM_RUN, 2, error))
                return sp_numa_switch_restore(sw, error);
        }
        sw->t0_us = g_get_monotonic_time();
        sw->state = SP_NUMA_SW_UNMERGING;
        G_GNUC_FALLTHROUGH;
    case SP_NUMA_SW_UNMERGING:
        el = (g_get_monotonic_time() - sw->t0_us) / 1e6;
        if (elapsed_s)
            *elapsed_s = el;
        if (!sp_ksm_read(sw->host, &now, error))
            return sp_numa_switch_restore(sw, error);
        if (pages_shared)
            *pages_shared = now.entry[SP_KSM_PAGES_SHARED].value;
        if (now.entry[SP_KSM_PAGES_SHARED].value == 0) {
            sw->state = SP_NUMA_SW_READY;
            return TRUE;
        }
        if (el > sw->timeout_s) {
            g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_TIMEOUT,
                        "pages_shared is still %" G_GINT64_FORMAT " after %u s of unmerging",
                        now.entry[SP_KSM_PAGES_SHARED].value, sw->timeout_s);
            return sp_numa_switch_restore(sw, error);
        }
        return TRUE;
    case SP_NUMA_SW_READY:
        if (!sp_numa_write(sw->host, SP_KSM_MERGE_ACROSS_NODES, sw->want, error))
            return sp_numa_switch_restore(sw, error);
        if (!sp_numa_write(sw->host, SP_KSM_RUN, sw->plan.restore_run, error)) {
            sw->state = SP_NUMA_SW_FAILED;
            g_prefix_error(error, "merge_across_nodes is now %d, but run could not be put back: ",
                           sw->want);
            return FALSE;
        }
        sw->state = SP_NUMA_SW_DONE;
        *done = TRUE;
        return TRUE;
    }
    g_assert_not_reached();
}

/**
 * sp_numa_switch_abort:
 *
 * Stops the switch (a signal, say): puts the snapshot back if anything was
 * written, and sets SP_NUMA_ERROR_INTERRUPTED saying at which point.  Once
 * merge_across_nodes is written there is nothing to abort: returns TRUE.
 */
gboolean
sp_numa_switch_abort(SpNumaSwitch *sw, GError **error)
{
    static const char *const when[] = {
        [SP_NUMA_SW_START] = "before anything was changed",
        [SP_NUMA_SW_UNMERGING] = "while unmerging",
        [SP_NUMA_SW_READY] = "after the unmerge",
    };

    if (sw->state == SP_NUMA_SW_DONE)
        return TRUE;
    if (sw->state == SP_NUMA_SW_FAILED) {
        g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_INTERRUPTED, "interrupted after a failure");
        return FALSE;
    }
    g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_INTERRUPTED, "interrupted %s",
                when[sw->state]);
    if (sw->state == SP_NUMA_SW_START) {
        sw->state = SP_NUMA_SW_FAILED;
        return FALSE;
    }
    return sp_numa_switch_restore(sw, error);
}
