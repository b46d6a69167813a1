/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spscan.h: read pages the way ksmd would see them, read-only
 *
 * A scan has sources (live processes, or raw memory image files).  For a
 * process it takes the VMAs KSM would scan (VmFlags "mg"; with what-if, every
 * private anonymous VMA), finds the present anonymous pages in pagemap, and
 * reads and hashes them with process_vm_readv.  Nothing is written, no page
 * is faulted in.  The first pass also groups the pages by contents: a page
 * whose hash matches an earlier page's is compared with it byte for byte
 * (sp_scan_get_reps()).  Several passes, some time apart, tell which pages
 * change.
 *
 * A scan runs in one of three ways: sp_scan_run() blocks until the last
 * pass (command-line tools); sp_scan_step() does a bounded part and says
 * when to call again, for a main loop to drive; sp_scan_run_async() runs it
 * in a worker thread (GTask) and calls back.
 */
#pragma once

#include <sys/types.h>
#include <gio/gio.h>

#include "samepage/sphost.h"

G_BEGIN_DECLS

#define SP_PAGE_SIZE 4096u

#define SP_SCAN_ERROR (sp_scan_error_quark())
GQuark sp_scan_error_quark(void);

typedef enum {
    SP_SCAN_ERROR_NO_PROCESS,   /* pid does not exist */
    SP_SCAN_ERROR_ACCESS,       /* no privilege to read it */
    SP_SCAN_ERROR_IMAGE,        /* image file unusable */
    SP_SCAN_ERROR_INVALID,      /* bad options */
    SP_SCAN_ERROR_IO,
} SpScanErrorCode;

typedef enum {
    SP_SCAN_MERGEABLE,          /* VMAs with VM_MERGEABLE: what KSM scans today */
    SP_SCAN_WHAT_IF,            /* every private anonymous VMA: if all were marked */
} SpScanMode;

/* Per-page flags. */
enum {
    SP_SCAN_PAGE_VOLATILE = 1 << 0,  /* contents changed between two passes */
    SP_SCAN_PAGE_ZERO = 1 << 1,      /* all zero bytes (checked, not just hashed) */
    SP_SCAN_PAGE_GONE = 1 << 2,      /* vanished after the first pass: not a candidate */
    SP_SCAN_PAGE_THP = 1 << 3,       /* part of a transparent huge page (kpageflags) */
    SP_SCAN_PAGE_SHARED = 1 << 4,    /* mapped more than once when first read (pagemap):
                                      * a KSM page, or shared since fork; read without
                                      * pinning */
    SP_SCAN_PAGE_KSM = 1 << 5,       /* a KSM page when last read (kpageflags) */
};

/* How pages mapping the shared zero page were told apart (see spscan.c). */
typedef enum {
    SP_SCAN_ZERO_KPAGEFLAGS,    /* /proc/kpageflags: KPF_ZERO_PAGE, as the kernel states */
    SP_SCAN_ZERO_GUESSED,       /* kpageflags unreadable: a shared page reading as zeros */
} SpScanZeroMethod;

/* How far a scan is, for a progress line (SpScanOptions.progress). */
typedef struct {
    guint pass;                 /* the pass under way, from 1 */
    guint passes;               /* of */
    guint64 bytes_read;         /* memory read so far, every pass and confirmation */
    gboolean waiting;           /* between two passes */
} SpScanProgress;

typedef void (*SpScanProgressFunc)(const SpScanProgress *progress, gpointer user_data);

typedef struct {
    SpScanMode mode;
    guint passes;               /* >= 1; 2 or more detect volatile pages */
    guint interval_ms;          /* pause between passes */
    gboolean want_nodes;        /* record each page's NUMA node (move_pages) */
    guint hash_bits;            /* tests only: keep the top hash_bits bits of each
                                 * page hash (1-63), so that different contents
                                 * often share a hash; 0 (the default): all 64 */
    SpScanProgressFunc progress; /* NULL (the default), or called after each step of
                                 * the blocking and threaded runs, in their thread:
                                 * the library never prints */
    gpointer progress_data;
} SpScanOptions;

/* What a scan did and held (sp_scan_get_stats()). */
typedef struct {
    guint64 pages_read;         /* pages read, all passes and confirmations */
    guint64 confirm_reads;      /* of those, earlier pages read again to confirm a duplicate */
    guint64 confirmed;          /* pages found equal, byte for byte, to an earlier page */
    guint64 confirmed_in_buffer; /* of those, compared with a page still in the read buffer */
    guint64 collisions;         /* equal hashes, different bytes */
    guint64 changed;            /* earlier pages found changed or gone when read again to
                                 * confirm: they are volatile */
    guint64 state_bytes;        /* peak bytes of per-page state (arrays and hash table,
                                 * not the fixed read buffers) */
} SpScanStats;

typedef struct {
    char *label;                /* "pid 1234 (qemu-system-x86)" or the file name */
    pid_t pid;                  /* 0 for an image */
    guint64 eligible_bytes;     /* size of the VMAs scanned */
    guint n_vmas;               /* VMAs scanned */
    guint64 present_pages;      /* present anonymous pages found (first pass) */
    guint64 zero_mapped_pages;  /* present but mapped to the shared zero page: not candidates */
    guint64 gone_pages;         /* vanished in a later pass */
    gboolean partial;           /* the result for this source is incomplete */
    char *partial_reason;
} SpScanSource;

typedef struct {
    guint32 source;
    guint64 addr;               /* address of the first page (offset for an image) */
    gsize first;                /* index of its first page */
    gsize n;
} SpScanRun;

typedef struct _SpScan SpScan;

typedef guint8 (*SpScanNodeFunc)(guint32 source, guint64 addr, gpointer user_data);
typedef gboolean (*SpScanThpFunc)(guint32 source, guint64 addr, gpointer user_data);

void sp_scan_options_init(SpScanOptions *opt);
SpScan *sp_scan_new(const SpHost *host, const SpScanOptions *opt);
void sp_scan_free(SpScan *scan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpScan, sp_scan_free)

void sp_scan_set_node_func(SpScan *scan, SpScanNodeFunc func, gpointer user_data);
void sp_scan_set_thp_func(SpScan *scan, SpScanThpFunc func, gpointer user_data);
gboolean sp_scan_add_pid(SpScan *scan, pid_t pid, GError **error);
gboolean sp_scan_add_pid_range(SpScan *scan, pid_t pid, guint64 start, guint64 end,
                               GError **error);

typedef struct {
    guint64 start;             /* first address */
    guint64 end;               /* one past the last */
} SpScanRange;

gboolean sp_scan_add_pid_ranges(SpScan *scan, pid_t pid, const SpScanRange *ranges, gsize n,
                                GError **error);
gboolean sp_scan_add_image(SpScan *scan, const char *path, GError **error);
void sp_scan_set_label(SpScan *scan, guint i, const char *label);
gboolean sp_scan_run(SpScan *scan, GError **error);
gboolean sp_scan_step(SpScan *scan, gboolean *done, gint64 *ready_time, GError **error);
void sp_scan_run_async(SpScan *scan, GCancellable *cancellable, GAsyncReadyCallback callback,
                       gpointer user_data);
gboolean sp_scan_run_finish(SpScan *scan, GAsyncResult *result, GError **error);

guint sp_scan_get_n_sources(const SpScan *scan);
const SpScanSource *sp_scan_get_source(const SpScan *scan, guint i);
gsize sp_scan_get_n_pages(const SpScan *scan);
const guint64 *sp_scan_get_hashes(const SpScan *scan);
const guint32 *sp_scan_get_reps(const SpScan *scan);
const guint8 *sp_scan_get_flags(const SpScan *scan);
const guint8 *sp_scan_get_nodes(const SpScan *scan);   /* NULL unless want_nodes */
guint sp_scan_get_n_nodes(const SpScan *scan);
const SpScanRun *sp_scan_get_runs(const SpScan *scan, gsize *n_runs);
guint32 sp_scan_page_source(const SpScan *scan, gsize page);
guint64 sp_scan_page_addr(const SpScan *scan, gsize page);
gboolean sp_scan_is_partial(const SpScan *scan);
SpScanZeroMethod sp_scan_get_zero_method(const SpScan *scan, const char **reason);
void sp_scan_get_stats(const SpScan *scan, SpScanStats *out);
gsize sp_scan_get_state_bytes(const SpScan *scan);

gsize sp_scan_read_pages(SpScan *scan, const gsize *pages, gsize n, guint8 *buf,
                         gboolean *ok);
void sp_scan_release_hashes(SpScan *scan);
void sp_scan_release_reps(SpScan *scan);
guint64 sp_scan_page_hash(const guint8 *page);
guint8 *sp_scan_get_buffer(SpScan *scan, gsize *n_pages);

G_END_DECLS
