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

#include <glib.h>
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

void sp_estimate_options_init(SpEstimateOptions *opt);
gboolean sp_estimate_options_from_host(SpEstimateOptions *opt, const SpHost *host,
                                       GError **error);
SpEstimate *sp_estimate_run(SpScan *scan, const SpEstimateOptions *opt, GError **error);
void sp_estimate_free(SpEstimate *est);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpEstimate, sp_estimate_free)

const SpModelCounters *sp_estimate_get_counters(const SpEstimate *est);
guint sp_estimate_get_n_processes(const SpEstimate *est);
const SpEstimateProcess *sp_estimate_get_process(const SpEstimate *est, guint i);
const guint64 *sp_estimate_get_matrix(const SpEstimate *est);
guint sp_estimate_get_n_nodes(const SpEstimate *est);
const SpEstimateNode *sp_estimate_get_node(const SpEstimate *est, guint i);
guint64 sp_estimate_get_saved_zero(const SpEstimate *est);
guint64 sp_estimate_get_saved_nonzero(const SpEstimate *est);
guint64 sp_estimate_get_thp_zero_remapped(const SpEstimate *est);
guint64 sp_estimate_get_present_pages(const SpEstimate *est);
guint64 sp_estimate_get_unmerged_pages(const SpEstimate *est);
SpScanZeroMethod sp_estimate_get_zero_method(const SpEstimate *est, const char **reason);
guint sp_estimate_get_passes(const SpEstimate *est, gboolean *converged);
gboolean sp_estimate_is_partial(const SpEstimate *est);
guint64 sp_estimate_get_state_bytes(const SpEstimate *est);
json_object *sp_estimate_to_json(const SpEstimate *est);

G_END_DECLS
