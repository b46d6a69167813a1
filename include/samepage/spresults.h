/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spresults.h: the results of an experiment's runs
 *
 * A run (SpExpRun) is N guests sampled over time: each sample (SpExpSample)
 * holds the KSM sysfs figures, the CPU, a census of the frames behind the
 * guests' RAM, each guest's ksm_stat and VmRSS, and the model's latest
 * prediction.  What is derived from a sample (SpExpDerived) and the steady
 * state of a run (SpExpSteady) are pure functions of those, and so is the
 * JSON of a run (run.json).  SpExperiment fills these in; SpReport
 * presents them.
 */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "samepage/spcensus.h"
#include "samepage/spjson.h"
#include "samepage/spksm.h"

G_BEGIN_DECLS

/* Pages to MiB (4 KiB pages, as every figure of a run counts them). */
#define SP_EXP_MIB(pages) ((double)(pages) * 4096.0 / (1024.0 * 1024.0))

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

/* The JSON of a run: its head (index, VM count, completeness, steady state)
 * as results.json lists it, and the whole run as run.json holds it (the
 * head, the guests and every sample under "data"). */
json_object *sp_exp_run_head_json(const SpExpRun *run);
json_object *sp_exp_run_json(const SpExpRun *run);

/* The results' formats: a number with two decimals; a wall-clock time
 * (g_get_real_time()) as UTC ISO 8601, "?" if out of range. */
json_object *sp_exp_json_number(double v);
char *sp_exp_format_time(gint64 wall_us);

G_END_DECLS
