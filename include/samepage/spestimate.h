/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spestimate.h: what KSM will share, predicted from a scan
 *
 * The estimate groups the scanned pages into contents (hash, then a full
 * comparison of the bytes), runs the KSM model (SpModel) over them until it
 * converges, and reports the kernel's figures, per process, per NUMA node,
 * split into zero-filled and other contents, and between processes.
 */
#pragma once

#include <gio/gio.h>
#include "samepage/spjson.h"

#include "samepage/spmodel.h"
#include "samepage/spscan.h"

G_BEGIN_DECLS

#define SP_ESTIMATE_ERROR (sp_estimate_error_quark())
GQuark sp_estimate_error_quark(void);

typedef enum {
    SP_ESTIMATE_ERROR_INVALID,
    SP_ESTIMATE_ERROR_MODEL,
} SpEstimateErrorCode;

typedef struct {
    SpModelConfig model;
    gboolean merge_across_nodes;   /* FALSE: one tree per NUMA node */
    gboolean thp_zero_remap;       /* 6.12+: splitting an anonymous THP maps its
                                    * zero-filled subpages to the shared zero page */
    guint max_passes;              /* model passes before giving up on convergence */
} SpEstimateOptions;

typedef struct {
    pid_t pid;
    char *label;
    guint64 present_pages;         /* present anonymous pages in the scanned VMAs */
    guint64 scanned_pages;         /* of those, pages the model scanned (not gone) */
    guint64 volatile_pages;
    guint64 thp_zero_remapped;     /* zero-filled THP subpages the split frees */
    guint64 zero_mapped_pages;     /* present, mapping the shared zero page (not scanned) */
    guint64 unmerged_pages;        /* pages the model merges (or frees) that were not KSM
                                    * pages when read: equal contents the kernel holds
                                    * apart now */
    SpModelMmCounters ksm;         /* as /proc/PID/ksm_stat will show */
    guint64 saved_pages;           /* stable pages beyond the first copy of each content */
    gboolean partial;
    char *partial_reason;
} SpEstimateProcess;

typedef struct {
    guint64 scanned_pages;
    guint64 stable_pages;          /* pages that end up mapping a KSM page */
    guint64 zero_merged_pages;
} SpEstimateNode;

typedef struct _SpEstimate SpEstimate;

/* A kernel profile: the kernel behaviours the model follows (spestimate.c
 * has the one table of them). */
typedef struct {
    const char *name;              /* "6.6", "6.11", "6.12" */
    guint major, minor;            /* the first release that behaves so */
    gboolean checksum_first;       /* the checksum gate comes before the stable search */
    gboolean thp_zero_remap;       /* a THP split maps zero-filled subpages to the zero page */
    const char *summary;           /* what it changes, for help texts */
} SpEstimateProfile;

const SpEstimateProfile *sp_estimate_get_profiles(guint *n);
const SpEstimateProfile *sp_estimate_profile_find(const char *name);
const SpEstimateProfile *sp_estimate_profile_for_release(const char *release);
char *sp_estimate_profile_names(void);

void sp_estimate_options_init(SpEstimateOptions *opt);
void sp_estimate_options_set_profile(SpEstimateOptions *opt, const SpEstimateProfile *profile);
gboolean sp_estimate_options_from_host(SpEstimateOptions *opt, const SpHost *host,
                                       GError **error);
SpEstimate *sp_estimate_run(SpScan *scan, const SpEstimateOptions *opt, GError **error);
void sp_estimate_free(SpEstimate *est);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpEstimate, sp_estimate_free)

/* What to estimate: a process (all it has KSM would scan, or the parts in
 * @ranges), a guest (its QEMU over its RAM ranges) or an image file. */
typedef struct {
    pid_t pid;                     /* the process; unused for an image */
    const char *image;             /* or a raw memory image file */
    const char *guest;             /* a guest's name: its errors say "guest NAME: " and it
                                    * needs RAM ranges; NULL for a plain process */
    const char *label;             /* its name in the results; NULL: "pid N (comm)" */
    const SpScanRange *ranges;     /* n_ranges of them; none: every VMA the scan takes */
    gsize n_ranges;
    gboolean optional;             /* a process that cannot be read is left out */
} SpEstimateTarget;

SpEstimate *sp_estimate_targets(const SpHost *host, const SpEstimateTarget *targets,
                                guint n_targets, const SpScanOptions *scan_opt,
                                const SpEstimateOptions *opt, GCancellable *cancellable,
                                GError **error);
void sp_estimate_targets_async(const SpHost *host, const SpEstimateTarget *targets,
                               guint n_targets, const SpScanOptions *scan_opt,
                               const SpEstimateOptions *opt, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
SpEstimate *sp_estimate_targets_finish(GAsyncResult *result, GError **error);

const SpModelCounters *sp_estimate_get_counters(const SpEstimate *est);
guint sp_estimate_get_n_processes(const SpEstimate *est);
const SpEstimateProcess *sp_estimate_get_process(const SpEstimate *est, guint i);
const guint64 *sp_estimate_get_matrix(const SpEstimate *est);
guint sp_estimate_get_n_nodes(const SpEstimate *est);
const SpEstimateNode *sp_estimate_get_node(const SpEstimate *est, guint i);
guint64 sp_estimate_get_saved_zero(const SpEstimate *est);
guint64 sp_estimate_get_saved_nonzero(const SpEstimate *est);
guint64 sp_estimate_get_saved_bytes(const SpEstimate *est);
guint64 sp_estimate_get_thp_zero_remapped(const SpEstimate *est);
guint64 sp_estimate_get_present_pages(const SpEstimate *est);
guint64 sp_estimate_get_unmerged_pages(const SpEstimate *est);
SpScanZeroMethod sp_estimate_get_zero_method(const SpEstimate *est, const char **reason);
guint sp_estimate_get_passes(const SpEstimate *est, gboolean *converged);
gboolean sp_estimate_is_partial(const SpEstimate *est);
double sp_estimate_get_cpu_seconds(const SpEstimate *est);
guint64 sp_estimate_get_state_bytes(const SpEstimate *est);
json_object *sp_estimate_to_json(const SpEstimate *est);

G_END_DECLS
