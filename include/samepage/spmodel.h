/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmodel.h: a pure model of ksmd's full scans
 *
 * The caller describes what ksmd would see: the pages that have an
 * rmap_item, in scan order, each with the id of its content class and a few
 * flags.  SpModel simulates full scans over that list and yields the
 * counters the kernel would show in /sys/kernel/mm/ksm and in
 * /proc/PID/ksm_stat.  No I/O: the pages' contents never change, only what
 * the kernel knows about them does.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SP_MODEL_ERROR (sp_model_error_quark())
GQuark sp_model_error_quark(void);

typedef enum {
    SP_MODEL_ERROR_CONFIG,     /* a knob is out of the kernel's range */
    SP_MODEL_ERROR_PAGE,       /* a page's class or flags are not valid */
    SP_MODEL_ERROR_MM,         /* mm_first is not a valid split of the pages */
    SP_MODEL_ERROR_STATE,      /* the request does not fit the model's progress */
} SpModelErrorCode;

/* The ksm sysfs knobs that change what a full scan does. */
typedef struct {
    guint max_page_sharing;   /* >= 2, kernel default 256 */
    gboolean use_zero_pages;  /* default FALSE */
    gboolean smart_scan;      /* default TRUE (6.7+) */
    gboolean checksum_first;  /* TRUE: 6.11+ order (checksum gate before the
                               * stable-tree search); FALSE: 6.6-6.10 order */
} SpModelConfig;

void sp_model_config_init(SpModelConfig *cfg);

enum {
    SP_MODEL_PAGE_VOLATILE = 1 << 0,  /* contents change between every two visits:
                                       * checksum never stable */
    SP_MODEL_PAGE_ZERO     = 1 << 1,  /* contents are all zero bytes (confirmed) */
    SP_MODEL_PAGE_CSUM0    = 1 << 2,  /* its 32-bit checksum happens to be 0, the
                                       * initial oldchecksum */
    SP_MODEL_PAGE_UNIQUE   = 1 << 3,  /* no other page has its contents: it can never
                                       * merge, and its klass is ignored (so unique
                                       * pages need no class of their own) */
};
#define SP_MODEL_PAGE_FLAGS_ALL \
    (SP_MODEL_PAGE_VOLATILE | SP_MODEL_PAGE_ZERO | SP_MODEL_PAGE_CSUM0 | SP_MODEL_PAGE_UNIQUE)

typedef struct {
    guint32 klass;   /* content class, 0..n_classes-1: pages of one class have
                      * identical contents and use the same tree (with
                      * merge_across_nodes=0 the caller gives pages of
                      * different NUMA nodes different classes) */
    guint8 flags;    /* SP_MODEL_PAGE_* */
} SpModelPage;

typedef struct _SpModel SpModel;

SpModel *sp_model_new(const SpModelConfig *cfg, const SpModelPage *pages, gsize n_pages,
                      guint32 n_classes, const gsize *mm_first, guint n_mm,
                      GError **error);
SpModel *sp_model_new_take(const SpModelConfig *cfg, SpModelPage *pages, gsize n_pages,
                           guint32 n_classes, const gsize *mm_first, guint n_mm,
                           GError **error);
guint32 sp_model_page_class(const SpModel *m, gsize page);
guint8 sp_model_page_flags(const SpModel *m, gsize page);
void sp_model_free(SpModel *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpModel, sp_model_free)

gboolean sp_model_set_mm_first_pass(SpModel *m, guint mm, guint64 first_pass,
                                    GError **error);

void sp_model_run_pass(SpModel *m);
guint sp_model_run_until_converged(SpModel *m, guint max_passes, gboolean *converged);

/* The global figures, as /sys/kernel/mm/ksm shows them. */
typedef struct {
    guint64 pages_shared;
    guint64 pages_sharing;
    guint64 pages_unshared;
    guint64 pages_volatile;
    guint64 pages_skipped;
    guint64 pages_scanned;
    guint64 full_scans;
    guint64 stable_node_chains;
    guint64 stable_node_dups;
    guint64 ksm_zero_pages;
    guint64 rmap_items;         /* ksm_rmap_items (not in sysfs; pages_volatile
                                 * and general_profit are made from it) */
    gint64 general_profit;
    guint64 pages_shared_zero;  /* the part of pages_shared whose content is all zero */
    guint64 pages_sharing_zero; /* the part of pages_sharing whose content is all zero */
} SpModelCounters;

void sp_model_get_counters(const SpModel *m, SpModelCounters *out);

/* One process's figures, as /proc/PID/ksm_stat shows them. */
typedef struct {
    guint64 ksm_rmap_items;
    guint64 ksm_merging_pages;
    guint64 ksm_zero_pages;
    gint64 ksm_process_profit;
} SpModelMmCounters;

void sp_model_get_mm_counters(const SpModel *m, guint mm, SpModelMmCounters *out);

typedef enum {
    SP_MODEL_STATE_NONE,         /* no rmap_item yet, or one in neither tree */
    SP_MODEL_STATE_UNSTABLE,     /* its rmap_item carries UNSTABLE_FLAG */
    SP_MODEL_STATE_STABLE,       /* mapped to a KSM page, its rmap_item in that node */
    SP_MODEL_STATE_ZERO_MERGED,  /* mapped to the zero page, rmap_item not yet freed */
    SP_MODEL_STATE_GONE,         /* rmap_item freed (a zero-merged page revisited) */
} SpModelState;

SpModelState sp_model_page_state(const SpModel *m, gsize page);

G_END_DECLS
