/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spexperiment.h: run a plan: N cloned guests under libvirt, KSM, samples
 *
 * For every VM count of the plan (one "run"): reset KSM (run=2, wait for
 * pages_shared 0), apply the plan's knobs, create N qcow2 overlays on the
 * base image and N libvirt domains from the template, wait for each guest
 * agent to answer guest-ping, start the workload with guest-exec, settle,
 * take the t=0 sample (with the model's prediction, before KSM runs), set
 * run=1 and sample every interval until the duration is over.  Then the
 * guests are destroyed and undefined and their overlays removed.  At the
 * end the host's KSM knobs are put back, whatever happened.
 *
 * Only the guests are accounted: a census of the frames behind each
 * guest's RAM (SpCensus) gives pages_shared and pages_sharing among the
 * guests, zero-filled or not; the system-wide sysfs figures are recorded
 * beside them.  The denominator is the guests' resident RAM (plus the
 * pages KSM or a THP split turned into zero-page mappings since t=0).
 */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spjson.h"
#include "samepage/spksm.h"
#include "samepage/spplan.h"
#include "samepage/spresults.h"

G_BEGIN_DECLS

#define SP_EXPERIMENT_ERROR (sp_experiment_error_quark())
GQuark sp_experiment_error_quark(void);

typedef enum {
    SP_EXPERIMENT_ERROR_SETUP,        /* missing image, template, tool, no KSM */
    SP_EXPERIMENT_ERROR_LIBVIRT,      /* libvirtd refused or died */
    SP_EXPERIMENT_ERROR_GUEST,        /* a guest did not start, get ready, or died */
    SP_EXPERIMENT_ERROR_KSM,          /* a KSM reset or setting failed */
    SP_EXPERIMENT_ERROR_SAMPLE,       /* a measurement failed */
    SP_EXPERIMENT_ERROR_OUTPUT,       /* results could not be written */
    SP_EXPERIMENT_ERROR_INTERRUPTED,  /* SIGINT/SIGTERM */
} SpExperimentErrorCode;

/* ---------------------------------------------------------------- runner */

typedef struct {
    const char *uri;                 /* NULL: qemu:///system */
    const char *output_dir;          /* created; an existing one must be empty,
                                      * ours, no symlink, writable by us only */
    const char *plan_text;           /* copied to the output as plan.ini */
    const char *default_image_dir;   /* when the plan names none */
    const char *default_template;
    const char *state_dir;           /* the journals (SpJournal); NULL: keep none */
    gboolean force_unmerge;          /* run=2 even if MemAvailable does not cover
                                      * unmerging what is merged (--force) */
} SpExperimentOptions;

typedef struct {
    guint run;                       /* 1-based */
    guint n_runs;
    guint n_vms;
    const char *stage;               /* "KSM reset", "booting", "sampling", ... */
    guint ready;                     /* guests ready (booting) */
    double t;                        /* sampling: seconds since run=1 */
    double duration;
    double elapsed_s;                /* since the experiment started */
    gboolean have_figures;
    double saved_mib;
    double reclaimed_pct;
    double pred_saved_mib;
} SpExperimentProgress;

typedef void (*SpExperimentProgressFunc)(const SpExperimentProgress *p, gpointer user_data);

typedef struct _SpExperiment SpExperiment;

SpExperiment *sp_experiment_new(const SpPlan *plan, const SpHost *host,
                                const SpExperimentOptions *opt);
void sp_experiment_free(SpExperiment *exp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpExperiment, sp_experiment_free)

void sp_experiment_set_progress_func(SpExperiment *exp, SpExperimentProgressFunc func,
                                     gpointer user_data);
void sp_experiment_interrupt(SpExperiment *exp);
GMainContext *sp_experiment_get_context(SpExperiment *exp);
gboolean sp_experiment_run(SpExperiment *exp, GError **error);

GPtrArray *sp_experiment_get_runs(const SpExperiment *exp);   /* SpExpRun */
const char *sp_experiment_get_output_dir(const SpExperiment *exp);
json_object *sp_experiment_results_json(const SpExperiment *exp);
double sp_experiment_get_elapsed(const SpExperiment *exp);

G_END_DECLS
