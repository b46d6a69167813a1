/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spnuma.c: the safe merge_across_nodes switch
 *
 * mm/ksm.c: merge_across_nodes_store() returns EBUSY while ksm_pages_shared
 * is not 0, so the documented procedure is run=2 (unmerge everything), write
 * the knob, run=1.  The unmerge breaks COW on every KSM page:
 * pages_sharing pages come back as copies, so MemAvailable must cover
 * pages_sharing * 4 KiB (plus a 10% margin) unless forced.  Progress is
 * pages_shared going down to 0.  Failure at any point, or an interrupt
 * (a cancelled GCancellable: the CLI cancels it on SIGINT, SIGTERM and
 * SIGHUP), restores the snapshot taken at the start (sp_ksm_restore()): run
 * as it was (a run=2 as 0, never a second unmerge) and every other knob.
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

static gboolean
sp_numa_timeout_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Waits @ms, running the default main context meanwhile (so that the
 * caller's g_unix_signal_add() handlers run and may cancel); FALSE at once
 * when @cancellable is cancelled. */
static gboolean
sp_numa_wait(guint ms, GCancellable *cancellable)
{
    gboolean fired = FALSE;
    GSource *timeout = g_timeout_source_new(ms);

    g_source_set_callback(timeout, sp_numa_timeout_cb, &fired, NULL);
    g_source_attach(timeout, NULL);
    while (!fired && !g_cancellable_is_cancelled(cancellable))
        g_main_context_iteration(NULL, TRUE);
    g_source_destroy(timeout);
    g_source_unref(timeout);
    return !g_cancellable_is_cancelled(cancellable);
}

static gboolean
sp_numa_interrupted(GCancellable *cancellable, const char *when, GError **error)
{
    if (!g_cancellable_is_cancelled(cancellable))
        return FALSE;
    g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_INTERRUPTED, "interrupted %s", when);
    return TRUE;
}

/**
 * sp_numa_switch:
 * @timeout_s: how long to wait for pages_shared to reach 0
 * @progress: (nullable): called about twice a second while waiting
 * @cancellable: (nullable): cancelled (by a signal handler, say): the switch
 *   stops at its next step, restores the snapshot and fails with
 *   SP_NUMA_ERROR_INTERRUPTED.  The run=2 write itself is not cut short: the
 *   kernel unmerges before it returns.  Once merge_across_nodes is written
 *   the switch is done and only run is put back.
 * @plan: (out): what was planned (and done)
 *
 * The wait runs the default main context: call it from the thread that
 * owns it.  Any failure restores the snapshot taken at the start
 * (sp_ksm_restore(): run as it was, a run=2 as 0, every other knob).
 */
gboolean
sp_numa_switch(const SpHost *host, gboolean want, gboolean force, guint timeout_s,
               SpNumaProgress progress, gpointer user_data, GCancellable *cancellable,
               SpNumaPlan *plan, GError **error)
{
    SpKsmState st;
    gint64 t0;

    if (!sp_ksm_snapshot(host, &st, error))
        return FALSE;
    if (!sp_numa_plan(&st, sp_host_mem_available(host), want, force, plan, error))
        return FALSE;
    if (plan->nothing_to_do)
        return TRUE;
    if (sp_numa_interrupted(cancellable, "before anything was changed", error))
        return FALSE;

    if (plan->unmerge || st.entry[SP_KSM_RUN].value == 1) {
        /* Stop and unmerge; new merges could otherwise refill pages_shared. */
        if (!sp_numa_write(host, SP_KSM_RUN, 2, error))
            goto restore;
    }
    t0 = g_get_monotonic_time();
    for (;;) {
        SpKsmState now;
        double el = (g_get_monotonic_time() - t0) / 1e6;
        if (sp_numa_interrupted(cancellable, "while unmerging", error))
            goto restore;
        if (!sp_ksm_read(host, &now, error))
            goto restore;
        if (progress)
            progress(now.entry[SP_KSM_PAGES_SHARED].value, el, user_data);
        if (now.entry[SP_KSM_PAGES_SHARED].value == 0)
            break;
        if (el > timeout_s) {
            g_set_error(error, SP_NUMA_ERROR, SP_NUMA_ERROR_TIMEOUT,
                        "pages_shared is still %" G_GINT64_FORMAT " after %u s of unmerging",
                        now.entry[SP_KSM_PAGES_SHARED].value, timeout_s);
            goto restore;
        }
        sp_numa_wait(500, cancellable);
    }
    if (sp_numa_interrupted(cancellable, "after the unmerge", error))
        goto restore;
    if (!sp_numa_write(host, SP_KSM_MERGE_ACROSS_NODES, want, error))
        goto restore;
    if (!sp_numa_write(host, SP_KSM_RUN, plan->restore_run, error)) {
        g_prefix_error(error, "merge_across_nodes is now %d, but run could not be put back: ", want);
        return FALSE;
    }
    return TRUE;

restore:
    {
        g_autoptr(GError) undo = NULL;

        if (!sp_ksm_restore(host, &st, NULL, &undo))
            g_prefix_error(error, "(KSM not fully restored: %s) ", undo->message);
        else
            g_prefix_error(error, "merge_across_nodes, run and every other knob restored "
                           "(pages already unmerged merge again as KSM rescans): ");
    }
    return FALSE;
}
