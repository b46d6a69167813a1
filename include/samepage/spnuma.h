/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spnuma.h: switching merge_across_nodes safely
 *
 * The kernel refuses the change while pages are shared (EBUSY).  The safe
 * switch unmerges first (run=2), waits until pages_shared is 0, writes the
 * knob and puts run back; every failure restores the previous state.  The
 * unmerge copies every shared page, so free memory is checked first.
 */
#pragma once

#include <gio/gio.h>

#include "samepage/sphost.h"
#include "samepage/spksm.h"

G_BEGIN_DECLS

#define SP_NUMA_ERROR (sp_numa_error_quark())
GQuark sp_numa_error_quark(void);

typedef enum {
    SP_NUMA_ERROR_UNSUPPORTED,     /* no merge_across_nodes (kernel without NUMA) */
    SP_NUMA_ERROR_MEMORY,          /* not enough free memory for the unmerge */
    SP_NUMA_ERROR_TIMEOUT,         /* pages_shared did not reach 0 */
    SP_NUMA_ERROR_INTERRUPTED,     /* aborted (sp_numa_switch_abort(): a signal, say) */
    SP_NUMA_ERROR_FAILED,
} SpNumaErrorCode;

typedef struct {
    gboolean nothing_to_do;        /* the knob already has the value */
    gboolean unmerge;              /* run=2 is needed (pages are shared) */
    guint64 unmerge_bytes;         /* memory the unmerge will take */
    gint64 restore_run;            /* run to put back at the end */
} SpNumaPlan;

gboolean sp_numa_plan(const SpKsmState *state, guint64 mem_available, gboolean want,
                      gboolean force, SpNumaPlan *plan, GError **error);

/* The switch as steps the caller drives, SP_NUMA_STEP_MS apart while
 * unmerging (see spnuma.c); none of them sleeps. */
#define SP_NUMA_STEP_MS 500
typedef struct _SpNumaSwitch SpNumaSwitch;

SpNumaSwitch *sp_numa_switch_new(const SpHost *host, gboolean want, gboolean force,
                                 guint timeout_s, GError **error);
void sp_numa_switch_free(SpNumaSwitch *sw);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpNumaSwitch, sp_numa_switch_free)
const SpNumaPlan *sp_numa_switch_get_plan(const SpNumaSwitch *sw);
gboolean sp_numa_switch_step(SpNumaSwitch *sw, gboolean *done, gint64 *pages_shared,
                             double *elapsed_s, GError **error);
gboolean sp_numa_switch_abort(SpNumaSwitch *sw, GError **error);

G_END_DECLS
