/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcensus.h: what the kernel has merged inside given address ranges
 *
 * The KSM sysfs figures are system-wide and /proc/PID/ksm_stat cannot tell
 * a KSM page shared with another guest from one shared with a host process,
 * nor a zero-filled KSM page from any other.  A census looks at the page
 * frames themselves: pagemap gives the frame behind every present page of
 * the ranges, kpageflags says which frames are KSM pages or the shared zero
 * page, and one read of each KSM frame says whether it is zero-filled.
 * Counting mappings per frame gives pages_shared and pages_sharing within
 * the ranges only.  Read-only, and it leaves merges alone: pages are read
 * through /proc/PID/mem, never with process_vm_readv (whose pin unshares a
 * KSM page).  Nothing is faulted in.  Needs root (CAP_SYS_ADMIN) for frame
 * numbers.
 */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "samepage/sphost.h"

G_BEGIN_DECLS

#define SP_CENSUS_ERROR (sp_census_error_quark())
GQuark sp_census_error_quark(void);

typedef enum {
    SP_CENSUS_ERROR_NO_PROCESS,   /* the process is gone */
    SP_CENSUS_ERROR_ACCESS,       /* no frame numbers: not privileged */
    SP_CENSUS_ERROR_IO,
} SpCensusErrorCode;

/* kpageflags bits (include/uapi/linux/kernel-page-flags.h) */
#define SP_KPF_KSM 21
#define SP_KPF_THP 22
#define SP_KPF_ZERO_PAGE 24

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) */
#define SP_PM_PRESENT (1ULL << 63)
#define SP_PM_SWAPPED (1ULL << 62)
#define SP_PM_PFN_MASK ((1ULL << 55) - 1)

/* The figures of one range (one process). */
typedef struct {
    guint64 pages;                /* size of the range in pages */
    guint64 resident_pages;       /* present, not the zero page: what Rss counts */
    guint64 zero_mapped_pages;    /* present, mapping the shared zero page */
    guint64 swapped_pages;
    guint64 thp_pages;            /* resident pages inside transparent huge pages */
    guint64 ksm_pages;            /* resident pages that map a KSM page */
    guint64 ksm_zero_pages;       /* of those, mapping a zero-filled KSM page */
} SpCensusRange;

/* All ranges together. */
typedef struct {
    SpCensusRange total;          /* sums over the ranges */
    guint64 ksm_frames;           /* distinct KSM pages mapped in the ranges:
                                   * their pages_shared */
    guint64 ksm_zero_frames;      /* of those, zero-filled */
} SpCensusTotals;

/* pages_sharing within the ranges: mappings beyond the first of each KSM page. */
#define SP_CENSUS_SHARING(t) ((t)->total.ksm_pages - (t)->ksm_frames)
#define SP_CENSUS_SHARING_ZERO(t) ((t)->total.ksm_zero_pages - (t)->ksm_zero_frames)

/*
 * The pure part.  @entries are pagemap entries, @kflags the kpageflags of
 * each entry's frame (ignored where the entry is not present), @range_of the
 * range each entry belongs to.  @is_zero is asked once per distinct KSM
 * frame, with the index of the first entry that maps it.
 */
typedef gboolean (*SpCensusZeroFunc)(gsize entry, gpointer user_data);

void sp_census_count(const guint64 *entries, const guint64 *kflags, const guint *range_of,
                     gsize n, guint n_ranges, SpCensusZeroFunc is_zero, gpointer user_data,
                     SpCensusRange *ranges, SpCensusTotals *totals);

typedef struct _SpCensus SpCensus;

SpCensus *sp_census_new(const SpHost *host);
void sp_census_free(SpCensus *census);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpCensus, sp_census_free)

/* Returns the index of the range. */
guint sp_census_add_range(SpCensus *census, pid_t pid, guint64 start, guint64 end);
gboolean sp_census_run(SpCensus *census, SpCensusTotals *totals, GError **error);
const SpCensusRange *sp_census_get_range(const SpCensus *census, guint i);

G_END_DECLS
