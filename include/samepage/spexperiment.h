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

#include "samepage/spcensus.h"
#include "samepage/sphost.h"
#include "samepage/spjson.h"
#include "samepage/spksm.h"
#include "samepage/spplan.h"

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

/* ---------------------------------------------------------------- results */

/* One guest at one sample. */
typedef struct {
    pid_t pid;
    SpCensusRange census;            /* its RAM VMA */
    gint64 ksm_rmap_items;           /* /proc/PID/ksm_stat, -1 if absent */
    gint64 ksm_zero_pages;
    gint64 ksm_merging_pages;
    gint64 ksm_process_profit;
    guint64 vm_rss_kib;              /* the whole QEMU process (VmRSS) */
} SpExpGuestSample;

/* The model's prediction (SpScan + SpEstimate over the guests' RAM). */
typedef struct {
    gboolean valid;
    double t;                        /* when it was made (s since run=1) */
    double seconds;                  /* how long it took */
    guint64 scanned_pages;
    guint64 volatile_pages;
    guint64 pages_shared;
    guint64 pages_sharing;
    guint64 pages_shared_zero;
    guint64 pages_sharing_zero;
    guint64 ksm_zero_pages;
    guint64 thp_zero_remapped;
    guint64 saved_zero;              /* SpEstimate's saved, zero-filled */
    guint64 saved_nonzero;
    gint64 general_profit;
    gboolean converged;
    gboolean partial;
    guint64 zero_freed_at;           /* the sample's zero_freed_pages when it was
                                      * made: already freed, so not in its scan */
    guint64 unmerged_pages;          /* pages it merges that were not KSM pages when
                                      * read (sp_estimate_get_unmerged_pages()) */
    gboolean zero_guessed;           /* kpageflags unreadable: zero page guessed */
} SpExpPrediction;

typedef struct {
    double t;                        /* seconds since run=1 (0: just before) */
    gint64 wall_us;                  /* g_get_real_time() */
    SpKsmState ksm;                  /* every sysfs figure (system-wide) */
    double host_cpu_pct;             /* whole host busy, 0..100 */
    double ksmd_cpu_pct;             /* ksmd, 100 = one CPU */
    double guests_cpu_pct;           /* the QEMU processes, 100 = one CPU */
    double self_cpu_pct;             /* samepage itself, 100 = one CPU */
    SpCensusTotals census;           /* the guests' RAM together */
    guint64 zero_freed_pages;        /* zero-page mappings gained since t=0 */
    GArray *guests;                  /* SpExpGuestSample, one per guest */
    SpExpPrediction prediction;      /* the latest prediction so far */
    gboolean fresh_prediction;       /* made at this sample */
} SpExpSample;

/* Figures derived from a sample; pages unless named _pct or _mib. */
typedef struct {
    guint64 denominator;             /* resident + zero_freed: guest RAM without KSM */
    guint64 shared;                  /* KSM pages the guests map (their pages_shared) */
    guint64 sharing;                 /* further mappings (their pages_sharing) */
    guint64 sharing_zero;            /* of those, of zero-filled KSM pages */
    guint64 saved;                   /* sharing + zero_freed */
    guint64 saved_zero;              /* sharing_zero + zero_freed */
    guint64 saved_nonzero;
    double shared_pct;               /* (shared + sharing) / denominator */
    double reclaimed_pct;            /* saved / denominator */
    guint64 pred_saved;              /* prediction's saved + the zero pages freed before
                                      * it was made; 0 without one */
    guint64 pred_saved_zero;
    gint64 other_ksm_pages;          /* system shared+sharing minus the guests' KSM
                                      * mappings: host processes (or guests' KSM pages
                                      * also mapped elsewhere) */
    guint64 stat_merging;            /* sum of ksm_merging_pages */
    guint64 stat_zero;               /* sum of ksm_zero_pages */
} SpExpDerived;

void sp_exp_sample_derive(const SpExpSample *s, SpExpDerived *d);
void sp_exp_sample_clear(SpExpSample *s);

typedef struct {
    char *name;
    char *uuid;
    char *mac;
    char *overlay;
    char *serial_log;
    pid_t pid;
    guint64 ram_start;
    guint64 ram_end;
    double ready_s;                  /* seconds from start to guest-ping */
    gint64 workload_pid;             /* in the guest; -1 none */
} SpExpGuestInfo;

/* Steady state: the mean of the samples in the last third of a run. */
typedef struct {
    gboolean valid;
    guint n_samples;
    double from_t;
    double to_t;
    double denominator_mib;
    double shared_pct;
    double reclaimed_pct;
    double saved_mib;
    double saved_zero_mib;
    double saved_nonzero_mib;
    double shared_pages;             /* guests' pages_shared */
    double sharing_pages;
    double sys_pages_shared;
    double sys_pages_sharing;
    double sys_pages_unshared;
    double sys_pages_volatile;
    double sys_general_profit_mib;
    double host_cpu_pct;
    double ksmd_cpu_pct;
    double ksmd_cpu_peak_pct;
    double guests_cpu_pct;
    double other_ksm_pages;
    guint64 full_scans;              /* at the last sample */
    gboolean converged;              /* saved stayed within 2% over the window */
    double converged_at;             /* first t after which saved stays within 2% of
                                      * the steady value; -1 if not */
    double pred_t0_saved_mib;        /* predicted at t=0, before KSM ran */
    double pred_saved_mib;           /* the latest prediction */
    double pred_sharing;             /* its pages_sharing */
    double pred_error_pct;           /* kernel sharing vs predicted, % of predicted */
    double pred_error_max_pct;       /* the largest such difference (signed) over the
                                      * predictions made once the run had settled */
    guint n_pred_checked;            /* how many predictions that was */
    double pred_unmerged_pages;      /* the last prediction's unmerged_pages */
    double volatile_pct;             /* the model's volatile pages, % of scanned */
    double volatile_peak_pct;        /* the highest of that over the run's predictions */
    double volatile_peak_t;          /* when */
} SpExpSteady;

typedef struct {
    guint index;                     /* 1-based */
    guint n_vms;
    char *dir;                       /* its output directory */
    GArray *guests;                  /* SpExpGuestInfo */
    GArray *samples;                 /* SpExpSample; [0] is t=0 */
    double boot_s;                   /* until every agent answered */
    gboolean complete;
    char *incomplete_reason;
    char *disturbed;                 /* KSM knobs changed under the run, by whom
                                      * and when; NULL if not */
    SpExpSteady steady;
} SpExpRun;

SpExpRun *sp_exp_run_new(guint index, guint n_vms);
void sp_exp_run_free(SpExpRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpExpRun, sp_exp_run_free)
void sp_exp_run_compute_steady(SpExpRun *run);

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
gboolean sp_experiment_run(SpExperiment *exp, GError **error);

GPtrArray *sp_experiment_get_runs(const SpExperiment *exp);   /* SpExpRun */
const char *sp_experiment_get_output_dir(const SpExperiment *exp);
json_object *sp_experiment_results_json(const SpExperiment *exp);
double sp_experiment_get_elapsed(const SpExperiment *exp);

G_END_DECLS
