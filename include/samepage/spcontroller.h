/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcontroller.h: the scan-rate controller on a real host
 *
 * SpControl (spcontrol.h) decides; this is what feeds and obeys it:
 *   - the gatherer reads a SpControlSnapshot from the host (KSM sysfs,
 *     ksmd's /proc/<pid>/stat, /proc/meminfo, /proc/pressure/memory, the
 *     present pages of every VM_MERGEABLE VMA) through an SpHost;
 *   - the applier turns a SpControlDecision into the KSM writes that change
 *     something, validated as a whole and applied all or nothing (SpKsm),
 *     never turning KSM off unless the controller turned it on;
 *   - SpController runs gather -> decide -> apply on a GMainContext every
 *     decision.next_s seconds, keeps the last decision for status and
 *     metrics, takes the model's predictions from its owner, and puts the
 *     knobs it wrote back as it found them when it stops.
 */
#pragma once

#include <glib.h>

#include "samepage/spcontrol.h"
#include "samepage/sphost.h"
#include "samepage/spjson.h"
#include "samepage/spksm.h"

G_BEGIN_DECLS

#define SP_CONTROLLER_ERROR (sp_controller_error_quark())
GQuark sp_controller_error_quark(void);

typedef enum {
    SP_CONTROLLER_ERROR_GATHER,    /* the host could not be read (message says what) */
    SP_CONTROLLER_ERROR_INVALID,   /* a decision that cannot be applied as it is */
    SP_CONTROLLER_ERROR_APPLY,     /* the kernel refused a write; nothing left half applied */
    SP_CONTROLLER_ERROR_RESTORE,   /* the knobs found could not all be restored */
    SP_CONTROLLER_ERROR_STATE,     /* started twice, stopped before start */
} SpControllerErrorCode;

/* ------------------------------------------------------------ gatherer */

/* What the gatherer remembers between two snapshots: where ksmd is. */
typedef struct _SpControlGatherer SpControlGatherer;

SpControlGatherer *sp_control_gatherer_new(const SpHost *host);
void sp_control_gatherer_free(SpControlGatherer *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpControlGatherer, sp_control_gatherer_free)

gboolean sp_control_gather(SpControlGatherer *g, double t, SpControlSnapshot *snap,
                           SpKsmState *ksm, GError **error);

/* ------------------------------------------------------------ applier */

#define SP_CONTROL_MAX_SETTINGS 5

typedef struct {
    SpKsmSetting settings[SP_CONTROL_MAX_SETTINGS];
    gsize n_settings;               /* 0: nothing changes */
    gboolean turns_on;              /* writes run=1 over a stopped ksmd */
    gboolean kept_on;               /* the decision said run=0 but KSM was on when
                                     * found: left on (ownership rule) */
} SpControlWrites;

gboolean sp_control_writes(const SpKsmState *now, const SpControlDecision *d,
                           gboolean own_run, SpControlWrites *w, GError **error);
gboolean sp_control_apply(const SpHost *host, const SpControlDecision *d, gboolean *own_run,
                          SpControlWrites *done, GError **error);

/* ------------------------------------------------------------ the loop */

typedef struct _SpController SpController;

/* Called after every decision (applied or not), in the controller's context. */
typedef void (*SpControllerNotify)(SpController *c, gpointer user_data);

SpController *sp_controller_new(const SpHost *host, const SpControlConfig *cfg);
void sp_controller_free(SpController *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpController, sp_controller_free)

void sp_controller_set_notify(SpController *c, SpControllerNotify func, gpointer user_data);
void sp_controller_set_dry_run(SpController *c, gboolean dry_run);

gboolean sp_controller_start(SpController *c, GMainContext *context, GError **error);
gboolean sp_controller_tick(SpController *c, GError **error);
gboolean sp_controller_stop(SpController *c, GError **error);

/* From the owner: the model's pages_sharing for @registered_pages pages
 * (those present in mergeable VMAs when it scanned). */
void sp_controller_set_prediction(SpController *c, guint64 predicted_sharing,
                                  guint64 registered_pages);
void sp_controller_clear_prediction(SpController *c);
void sp_controller_guest_started(SpController *c);
void sp_controller_set_committed(SpController *c, guint64 committed_kib);
void sp_controller_kick(SpController *c);

gboolean sp_controller_is_running(const SpController *c);
SpControlMode sp_controller_get_mode(const SpController *c);
const SpControlConfig *sp_controller_get_config(const SpController *c);
const SpControlDecision *sp_controller_get_decision(const SpController *c);
const SpControlSnapshot *sp_controller_get_snapshot(const SpController *c);
const SpControlWrites *sp_controller_get_writes(const SpController *c);
const SpKsmState *sp_controller_get_found(const SpController *c);
const char *sp_controller_get_error(const SpController *c);
guint64 sp_controller_get_n_decisions(const SpController *c);
guint64 sp_controller_get_n_errors(const SpController *c);
double sp_controller_get_peak_cpu_pct(const SpController *c);
json_object *sp_controller_to_json(const SpController *c);

G_END_DECLS
