/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spscanpriv.h: what the files of SpScan share (not installed)
 *
 * SpScan is four files: spscan.c (the object, its sources, the driver that
 * runs the passes as steps, the results), spscanframes.c (pagemap and
 * kpageflags: which pages ksmd would scan, the zero page and its cache,
 * THPs, NUMA nodes), spscanread.c (reading pages of a process or an image)
 * and spscanpass.c (one chunk of a pass: read, hash, group by contents).
 * The theory of operation is at the top of spscan.c.
 */
#pragma once

#include <string.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "samepage/spscan.h"

G_BEGIN_DECLS

#define SP_CHUNK_PAGES 512u            /* 2 MiB per read */
#define SP_REREAD_PAGES 256u           /* 1 MiB: earlier pages read again to compare */
#define SP_NONE G_MAXUINT32            /* no page: an empty table slot */
#define SP_TOMB (G_MAXUINT32 - 1)      /* a table slot whose page left */
#define SP_MAX_PAGES (G_MAXUINT32 - 2) /* page indices are guint32 */

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define KPF_COMPOUND_HEAD (1ULL << 15)
#define KPF_COMPOUND_TAIL (1ULL << 16)
#define KPF_KSM (1ULL << 21)
#define KPF_THP (1ULL << 22)
#define KPF_ZERO_PAGE (1ULL << 24)
#define SP_KPF_CACHE 4096u             /* frames whose kpageflags are remembered */
#define SP_SCAN_PAGE_ZERO_UNKNOWN (1u << 7) /* first pass only: kpageflags could not say */
#define SP_HUGE_FRAMES 512u            /* frames in a 2 MiB THP */
#define SP_SCAN_STEP_CHUNKS 16u        /* chunks a step does at most (sp_scan_step()) */

/* What kpageflags says of a frame (the cache's bits). */
enum {
    SP_FRAME_ZERO = 1 << 0,     /* the shared zero page or the huge zero folio */
    SP_FRAME_KSM = 1 << 1,      /* a KSM page */
};

/* What the driver does next. */
typedef enum {
    SP_SCAN_PHASE_NEW,          /* nothing done */
    SP_SCAN_PHASE_FIRST,        /* the first pass: read, hash, group */
    SP_SCAN_PHASE_WAIT,         /* between passes: the next is due at scan->due */
    SP_SCAN_PHASE_LATER,        /* a later pass: read again, note changes */
    SP_SCAN_PHASE_DONE,
    SP_SCAN_PHASE_FAILED,
} SpScanPhase;

typedef struct {
    guint64 start;
    guint64 end;
    gboolean thp;               /* smaps shows AnonHugePages in its VMA */
} SpRegion;

typedef struct {
    SpScanSource pub;
    GArray *regions;            /* SpRegion */
    int pagemap_fd;
    int mem_fd;                 /* /proc/PID/mem */
    int image_fd;
    guint64 image_size;
    gboolean exited;
    guint64 rss_pages;          /* smaps Rss of the scanned VMAs: sizes the arrays */
} SpSource;

/* Representatives by hash: page indices, linear probing, at most 3/4 full. */
typedef struct {
    guint32 *slot;              /* a page index, SP_NONE or SP_TOMB */
    gsize cap;
    gsize used;                 /* slots not SP_NONE */
} SpTable;

/* The pages of the chunk being read, and their pending comparisons. */
typedef struct {
    guint32 first;              /* index of the first page added from this chunk */
    guint32 n;                  /* pages added */
    guint32 bpos[SP_CHUNK_PAGES];       /* each page's place in the read buffer */
    guint32 pend_page[SP_CHUNK_PAGES];  /* a page waiting for its candidate... */
    guint32 pend_rep[SP_CHUNK_PAGES];   /* ...an earlier page to read again */
    guint n_pend;
    guint32 reps[SP_CHUNK_PAGES];       /* the pages to read, sorted, distinct */
    gboolean rep_ok[SP_CHUNK_PAGES];
    guint64 addrs[SP_CHUNK_PAGES];
} SpChunk;

struct _SpScan {
    const SpHost *host;
    SpScanOptions opt;
    GPtrArray *sources;         /* SpSource */
    GArray *runs;               /* SpScanRun */
    /* Per page, exactly sized (a GArray would round up to a power of two). */
    gsize n_pages;
    gsize cap;
    guint64 *hash;
    guint32 *rep;               /* the representative of its contents (itself for one) */
    guint8 *flags;
    guint8 *nodes;              /* or NULL */
    guint n_nodes;
    SpTable table;              /* first pass only */
    guint32 zero_rep;           /* the first zero page, or SP_NONE */
    guint64 hash_mask;
    guint64 zero_hash;
    SpScanStats stats;
    SpChunk *chunk;
    guint8 *rbuf;               /* SP_REREAD_PAGES pages: representatives read again */
    guint8 *one;                /* one page */
    gsize run_hint;
    /* kpageflags of frames mapped more than once: direct-mapped by frame. */
    guint64 *kpf_cache_pfn;     /* frame + 1; 0: empty */
    guint8 *kpf_cache_bits;     /* SP_FRAME_ZERO, SP_FRAME_KSM */
    char *zero_guess_reason;    /* why kpageflags cannot say, or NULL */
    SpScanNodeFunc node_func;
    gpointer node_data;
    SpScanThpFunc thp_func;
    gpointer thp_data;
    int kpageflags_fd;          /* /proc/kpageflags, or -1 */
    guint8 *buf;                /* SP_CHUNK_PAGES pages */
    /* Where the driver is (sp_scan_step()). */
    SpScanPhase phase;
    guint pass;                 /* passes finished */
    guint cur_source;           /* first pass: the source, region and address next */
    guint cur_region;
    guint64 cur_addr;
    guint cur_run;              /* later passes: the run and page in it next */
    gsize cur_off;
    gint64 due;                 /* g_get_monotonic_time() when the next pass may start */
    gboolean ran;
    gboolean partial;
    gboolean full;              /* SP_MAX_PAGES reached */
};

/* spscan.c */
/* Steps until done, waiting between passes in this thread (the blocking
 * sp_scan_run(), worker threads); cancelled: G_IO_ERROR_CANCELLED. */
gboolean sp_scan_drive(SpScan *scan, GCancellable *cancellable, GError **error);
void sp_source_mark_partial(SpScan *scan, SpSource *src, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void sp_scan_note_state(SpScan *scan);
void sp_scan_reserve(SpScan *scan, gsize cap);

/* spscanframes.c: pagemap and kpageflags */
gboolean sp_scan_pagemap(SpSource *src, guint64 addr, gsize n, guint64 *entries);
guint8 sp_scan_frame_bits(SpScan *scan, guint64 pfn, gboolean *known);
void sp_scan_thp(SpScan *scan, guint32 source, gboolean region_thp, const guint64 *addrs,
                 const guint64 *pfns, gsize n, gboolean *thp);
void sp_scan_nodes(SpScan *scan, guint32 source, const SpSource *src, const guint64 *addrs,
                   gsize n, guint8 *out);

/*
 * Whether pagemap entry @e is a page ksmd would scan: present, not swapped,
 * anonymous, not the zero page.  *zero_mapped: it maps the zero page (or the
 * huge zero folio), as kpageflags says.  *bits: SP_SCAN_PAGE_SHARED (mapped
 * more than once), SP_SCAN_PAGE_KSM (kpageflags says KSM) and
 * SP_SCAN_PAGE_ZERO_UNKNOWN (mapped more than once and kpageflags could not
 * say whether it is the zero page).  Inline: it is asked of every page.
 */
static inline gboolean
sp_entry_candidate(SpScan *scan, guint64 e, gboolean *zero_mapped, guint8 *bits)
{
    *zero_mapped = FALSE;
    *bits = 0;
    if (!(e & PM_PRESENT) || (e & PM_SWAPPED))
        return FALSE;
    if (!(e & PM_EXCLUSIVE)) {
        gboolean known;
        guint8 fb = sp_scan_frame_bits(scan, e & PM_PFN_MASK, &known);
        if (fb & SP_FRAME_ZERO) {
            *zero_mapped = TRUE;
            return FALSE;
        }
        *bits = SP_SCAN_PAGE_SHARED | ((fb & SP_FRAME_KSM) ? SP_SCAN_PAGE_KSM : 0) |
            (known ? 0 : SP_SCAN_PAGE_ZERO_UNKNOWN);
    }
    return !(e & PM_FILE);
}

/* spscanread.c: reading pages */
gboolean sp_read_remote(SpSource *src, const guint64 *addrs, gsize n, guint8 *buf, gboolean *ok,
                        const gboolean *pin_ok);
gboolean sp_scan_read_image(SpSource *src, guint64 off, gsize n, guint8 *buf, GError **error);
void sp_scan_reread(SpScan *scan, const guint32 *pages, gsize n, guint8 *buf, gboolean *ok);

/* spscanpass.c: one chunk of a pass */
void sp_table_init(SpTable *t, gsize entries);
gboolean sp_scan_pid_chunk(SpScan *scan, guint32 si, const SpRegion *reg, guint64 a, gsize n,
                           GError **error);
gboolean sp_scan_image_chunk(SpScan *scan, guint32 si, guint64 off, gsize n, GError **error);
gboolean sp_scan_later_chunk(SpScan *scan, const SpScanRun *run, gsize off, gsize n,
                             GError **error);

/* The scan's hash of a page (XXH3, cut to hash_bits). */
static inline guint64
sp_scan_hash(const SpScan *scan, const guint8 *page)
{
    return XXH3_64bits_dispatch(page, SP_PAGE_SIZE) & scan->hash_mask;
}

/* Hash a page read; SP_SCAN_PAGE_ZERO when it is all zeros (compared, not
 * guessed from the hash). */
static inline guint8
sp_scan_classify_buf(SpScan *scan, const guint8 *page, guint64 *hash)
{
    static const guint8 zeros[64] = { 0 };

    *hash = sp_scan_hash(scan, page);
    if (*hash == scan->zero_hash) {
        for (guint off = 0; off < SP_PAGE_SIZE; off += sizeof(zeros)) {
            if (memcmp(page + off, zeros, sizeof(zeros)) != 0)
                return 0;
        }
        return SP_SCAN_PAGE_ZERO;
    }
    return 0;
}

/* The run holding @page, by binary search over scan->runs (spscan.c). */
const SpScanRun *sp_scan_find_run(const SpScan *scan, gsize page);

G_END_DECLS
