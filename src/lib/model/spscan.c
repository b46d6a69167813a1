/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spscan.c: read and hash the pages ksmd would scan, without touching them
 *
 * Theory of operation
 *
 * ksmd visits, for each registered mm, each VM_MERGEABLE VMA in address
 * order, and in it each address whose page is a present anonymous page
 * (mm/ksm.c: scan_get_next_rmap_item()).  A page that is not present is
 * skipped, never faulted in; a PTE mapping the shared zero page is not an
 * anonymous page and is skipped too; each 4 KiB subpage of a THP counts.
 *
 * We do the same from outside: smaps names the VMAs (sp_vma_is_mergeable()
 * and sp_vma_ksm_compatible()), /proc/PID/pagemap says which pages are
 * present (bit 63), swapped (62) or file/shared (61), and gives the page
 * frame (bits 0-54, root only).  Whether a frame is the shared zero page
 * (or part of the huge zero folio) is what /proc/kpageflags says (bit 24,
 * KPF_ZERO_PAGE), never what a probe of our own finds: a read fault does
 * not map the zero page everywhere (mm_forbids_zeropage(), userfaultfd
 * ranges, kernels built not to; docs/kernel-facts.md), while a THP split
 * maps zero-filled subpages to it even there.  A frame mapped once (pagemap
 * bit 56) is an anonymous page of its own and never the zero page, so
 * kpageflags is asked only about frames mapped more than once, through a
 * small cache (KSM pages are mapped many times).  The same word says
 * whether the frame is a KSM page (bit 21).  Without kpageflags (not root,
 * or no such file) a page mapped more than once that reads as zeros is
 * taken for the zero page, and the scan says it guessed
 * (sp_scan_get_zero_method()).  Only present anonymous pages are then read, one call per run of adjacent pages: reading a page
 * that is not present would fault it in, which is exactly what must not
 * happen.  (A page can still be reclaimed
 * between the pagemap read and the memory read; the window is a few
 * microseconds and the cost is one zero page in the target, as a plain read
 * access would cost.)
 *
 * How a page is read depends on pagemap's "exclusively mapped" bit.
 * process_vm_readv() pins the pages it reads (FOLL_PIN), and the kernel
 * does not let a pin hold an anonymous page that is not exclusive to its
 * process (gup_must_unshare()): a KSM page, or a page still shared
 * copy-on-write after fork(), is copied first.  Reading those with it would
 * undo the merges KSM made in the process read.  So only pages pagemap
 * shows mapped once are read with process_vm_readv (the fast way: 2-3x
 * the throughput here); every other page goes through /proc/PID/mem, which
 * takes plain references (FOLL_GET) and leaves sharing alone
 * (docs/kernel-facts.md).  A page whose only other mapping went away (a
 * KSM page left with one user) may still be copied: it saved nothing.
 *
 * Each page is hashed with XXH3 (64 bits; libxxhash picks AVX2/AVX-512 at
 * run time, about 4x faster than XXH64 here).  The kernel's checksum is
 * XXH64 with seed 0 cut to 32 bits (calc_checksum() in mm/ksm.c), but the
 * model only needs to know whether a page changed between two visits, which
 * any good hash tells; the one thing the kernel's value decides on its own
 * is that a page whose checksum is 0 passes the gate one visit early (its
 * rmap_item starts with 0), a 1-in-2^32 event that changes when a page
 * merges, not the figures KSM converges to.  A page whose hash is that of
 * the zero page is compared with zeros while it is still in the cache, so
 * "zero" is a fact, not a hash guess.
 *
 * Contents are grouped during the first pass, while each page is in the
 * read buffer: a hash table (page indices, open addressing) holds the first
 * page seen of each content, its "representative".  A page whose hash
 * matches a representative's is compared with it byte for byte: directly
 * when the representative came in the same 2 MiB read, otherwise after
 * reading it again, all the representatives a chunk needs, one read per
 * page.  So a duplicate costs one
 * more page read, not two, and a unique page none.  Equal bytes make the
 * page a member (reps[page] = representative); different bytes are either
 * a true collision (the representative still hashes the same: the page
 * becomes another representative of that hash) or a representative that
 * changed or vanished since it was read (it is marked volatile and leaves
 * the table).  The hash only finds candidates; only a byte comparison
 * makes two pages equal, and only with the same representative.  (A
 * hash still tells "unchanged", as it does between passes: members compared
 * with a representative at two moments are taken as equal to each other
 * because its hash did not change.)  Zero pages all go to the first zero
 * page, as each was compared with zeros.
 *
 * A later pass re-reads the same pages: one whose hash changed is volatile,
 * one that is no longer present is gone.  Its members and representative
 * links stay: a group minus its volatile pages is still a group of equal
 * pages.
 *
 * Per page we keep 8 bytes of hash, 4 of representative and 1 of flags
 * (plus 1 byte of NUMA node when asked), in arrays sized from smaps Rss
 * before the first pass and cut to size after it, and during the first
 * pass 4 bytes per table slot, at most 3/4 full (5.3 bytes per page);
 * addresses are kept as runs of consecutive pages.  kpageflags is read only
 * for VMAs that smaps says hold THPs.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-scan"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numaif.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "samepage/spmaps.h"
#include "samepage/spscan.h"

G_DEFINE_QUARK(sp-scan-error-quark, sp_scan_error)

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
    gboolean ran;
    gboolean partial;
    gboolean full;              /* SP_MAX_PAGES reached */
};

static void
sp_source_free(SpSource *src)
{
    if (!src)
        return;
    if (src->pagemap_fd >= 0)
        close(src->pagemap_fd);
    if (src->mem_fd >= 0)
        close(src->mem_fd);
    if (src->image_fd >= 0)
        close(src->image_fd);
    g_array_unref(src->regions);
    g_free(src->pub.label);
    g_free(src->pub.partial_reason);
    g_free(src);
}

/*
 * Read buffers are page aligned: the kernel copies into them with rep movsb,
 * which runs at less than half speed (7 against 18 GB/s for THP-backed
 * memory here) when the destination is 16 bytes off, as g_malloc() returns
 * large blocks.
 */
static guint8 *
sp_pages_alloc(gsize n)
{
    return g_aligned_alloc(n, SP_PAGE_SIZE, SP_PAGE_SIZE);
}

void
sp_scan_options_init(SpScanOptions *opt)
{
    opt->mode = SP_SCAN_MERGEABLE;
    opt->passes = 2;
    opt->interval_ms = 1000;
    opt->want_nodes = FALSE;
    opt->hash_bits = 0;
}

enum {
    SP_FRAME_ZERO = 1 << 0,     /* the shared zero page or the huge zero folio */
    SP_FRAME_KSM = 1 << 1,      /* a KSM page */
};

SpScan *
sp_scan_new(const SpHost *host, const SpScanOptions *opt)
{
    SpScan *scan = g_new0(SpScan, 1);
    g_autofree guint8 *zero = g_malloc0(SP_PAGE_SIZE);

    scan->host = host;
    scan->opt = *opt;
    scan->sources = g_ptr_array_new_with_free_func((GDestroyNotify)sp_source_free);
    scan->runs = g_array_new(FALSE, FALSE, sizeof(SpScanRun));
    scan->n_nodes = 1;
    scan->hash_mask = opt->hash_bits > 0 && opt->hash_bits < 64
        ? ~0ULL << (64 - opt->hash_bits) : ~0ULL;
    scan->zero_hash = XXH3_64bits_dispatch(zero, SP_PAGE_SIZE) & scan->hash_mask;
    scan->zero_rep = SP_NONE;
    scan->buf = sp_pages_alloc(SP_CHUNK_PAGES);
    {
        g_autofree char *kpf = sp_host_procfs_path(host, "kpageflags");
        scan->kpageflags_fd = open(kpf, O_RDONLY | O_CLOEXEC);
        if (scan->kpageflags_fd < 0)
            scan->zero_guess_reason = g_strdup_printf("cannot open %s: %s", kpf,
                                                      g_strerror(errno));
    }
    scan->kpf_cache_pfn = g_new0(guint64, SP_KPF_CACHE);
    scan->kpf_cache_bits = g_new0(guint8, SP_KPF_CACHE);
    return scan;
}

void
sp_scan_free(SpScan *scan)
{
    if (!scan)
        return;
    g_ptr_array_unref(scan->sources);
    g_array_unref(scan->runs);
    g_free(scan->hash);
    g_free(scan->rep);
    g_free(scan->flags);
    g_free(scan->nodes);
    g_free(scan->table.slot);
    g_free(scan->chunk);
    g_aligned_free(scan->rbuf);
    g_aligned_free(scan->one);
    g_aligned_free(scan->buf);
    if (scan->kpageflags_fd >= 0)
        close(scan->kpageflags_fd);
    g_free(scan->kpf_cache_pfn);
    g_free(scan->kpf_cache_bits);
    g_free(scan->zero_guess_reason);
    g_free(scan);
}

void
sp_scan_set_node_func(SpScan *scan, SpScanNodeFunc func, gpointer user_data)
{
    scan->node_func = func;
    scan->node_data = user_data;
}

void
sp_scan_set_thp_func(SpScan *scan, SpScanThpFunc func, gpointer user_data)
{
    scan->thp_func = func;
    scan->thp_data = user_data;
}

static SpSource *
sp_source_new(void)
{
    SpSource *src = g_new0(SpSource, 1);

    src->regions = g_array_new(FALSE, FALSE, sizeof(SpRegion));
    src->pagemap_fd = -1;
    src->mem_fd = -1;
    src->image_fd = -1;
    return src;
}

static char *
sp_scan_comm(const SpHost *host, pid_t pid)
{
    g_autofree char *path = sp_host_procfs_path(host, "%d/comm", (int)pid);
    g_autofree char *comm = NULL;

    if (!g_file_get_contents(path, &comm, NULL, NULL))
        return g_strdup("?");
    return g_strdup(g_strstrip(comm));
}

/* /proc/PID/@file, opened for reading; -1 with an error naming it. */
static int
sp_scan_open_proc(SpScan *scan, pid_t pid, const char *file, GError **error)
{
    g_autofree char *path = sp_host_procfs_path(scan->host, "%d/%s", (int)pid, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int err = errno;
        gboolean denied = err == EACCES || err == EPERM;
        g_set_error(error, SP_SCAN_ERROR, denied ? SP_SCAN_ERROR_ACCESS : SP_SCAN_ERROR_NO_PROCESS,
                    "pid %d: cannot open %s: %s%s", (int)pid, path, g_strerror(err),
                    denied ? " (reading another process's memory needs root)" : "");
    }
    return fd;
}

/**
 * sp_scan_add_pid:
 * @pid: a live process
 *
 * Picks the VMAs to scan from its smaps and opens its pagemap.  Errors name
 * the pid: it does not exist, or we may not read its memory.
 */
gboolean
sp_scan_add_pid(SpScan *scan, pid_t pid, GError **error)
{
    return sp_scan_add_pid_range(scan, pid, 0, G_MAXUINT64, error);
}

/**
 * sp_scan_add_pid_range:
 * @pid: a live process
 * @start: first address of interest
 * @end: one past the last address of interest
 *
 * Like sp_scan_add_pid(), but only the parts of the eligible VMAs inside
 * [@start, @end) are scanned (a guest's RAM backend, say).
 */
gboolean
sp_scan_add_pid_range(SpScan *scan, pid_t pid, guint64 start, guint64 end, GError **error)
{
    SpScanRange r = { start, end };

    return sp_scan_add_pid_ranges(scan, pid, &r, 1, error);
}

static gint
sp_scan_range_cmp(gconstpointer a, gconstpointer b)
{
    const SpScanRange *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/**
 * sp_scan_add_pid_ranges:
 * @ranges: (array length=n): address ranges of interest, in any order;
 *   overlapping ones are joined
 *
 * Like sp_scan_add_pid_range() over several ranges (a guest with several
 * RAM backends): only the parts of the eligible VMAs inside one of them are
 * scanned, once each.
 */
gboolean
sp_scan_add_pid_ranges(SpScan *scan, pid_t pid, const SpScanRange *ranges, gsize n,
                       GError **error)
{
    g_autoptr(GArray) want = g_array_sized_new(FALSE, FALSE, sizeof(SpScanRange), n);
    g_autoptr(GError) local = NULL;
    g_autoptr(GPtrArray) vmas = NULL;
    g_autofree char *comm = NULL;
    SpSource *src;

    g_return_val_if_fail(!scan->ran, FALSE);
    /* Sorted, empty ones dropped, overlapping or touching ones joined. */
    for (gsize i = 0; i < n; i++) {
        if (ranges[i].end > ranges[i].start)
            g_array_append_val(want, ranges[i]);
    }
    g_array_sort(want, sp_scan_range_cmp);
    for (guint i = 1; i < want->len;) {
        SpScanRange *prev = &g_array_index(want, SpScanRange, i - 1);
        const SpScanRange *cur = &g_array_index(want, SpScanRange, i);
        if (cur->start <= prev->end) {
            prev->end = MAX(prev->end, cur->end);
            g_array_remove_index(want, i);
        } else {
            i++;
        }
    }
    if (want->len == 0) {
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID,
                    "pid %d: no address range to scan", (int)pid);
        return FALSE;
    }
    if (pid <= 0) {
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID, "pid %d is not a process id",
                    (int)pid);
        return FALSE;
    }
    for (guint i = 0; i < scan->sources->len; i++) {
        SpSource *other = g_ptr_array_index(scan->sources, i);
        if (other->pub.pid == pid) {
            g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID, "pid %d is given twice",
                        (int)pid);
            return FALSE;
        }
    }
    vmas = sp_maps_read(scan->host, pid, &local);
    if (!vmas) {
        g_set_error(error, SP_SCAN_ERROR,
                    g_error_matches(local, SP_MAPS_ERROR, SP_MAPS_ERROR_ACCESS)
                        ? SP_SCAN_ERROR_ACCESS : SP_SCAN_ERROR_NO_PROCESS,
                    "%s", local->message);
        return FALSE;
    }
    if (vmas->len == 0) {
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_NO_PROCESS,
                    "pid %d has no memory mappings (a kernel thread or a zombie)", (int)pid);
        return FALSE;
    }

    src = sp_source_new();
    g_ptr_array_add(scan->sources, src);
    src->pub.pid = pid;
    comm = sp_scan_comm(scan->host, pid);
    src->pub.label = g_strdup_printf("pid %d (%s)", (int)pid, comm);

    src->pagemap_fd = sp_scan_open_proc(scan, pid, "pagemap", error);
    src->mem_fd = src->pagemap_fd >= 0 ? sp_scan_open_proc(scan, pid, "mem", error) : -1;
    if (src->mem_fd < 0) {
        g_ptr_array_remove_index(scan->sources, scan->sources->len - 1);
        return FALSE;
    }

    for (guint i = 0; i < vmas->len; i++) {
        const SpVma *vma = g_ptr_array_index(vmas, i);
        gboolean take;

        if (!sp_vma_ksm_compatible(vma, NULL))
            continue;
        take = scan->opt.mode == SP_SCAN_WHAT_IF
            ? (sp_vma_is_private_anon(vma) || sp_vma_is_mergeable(vma))
            : sp_vma_is_mergeable(vma);
        if (!take)
            continue;
        gboolean counted = FALSE;
        for (guint w = 0; w < want->len; w++) {
            const SpScanRange *in = &g_array_index(want, SpScanRange, w);
            if (vma->end <= in->start || vma->start >= in->end)
                continue;
            SpRegion r = { MAX(vma->start, in->start), MIN(vma->end, in->end),
                           vma->anon_huge_kb > 0 };
            g_array_append_val(src->regions, r);
            src->pub.eligible_bytes += r.end - r.start;
            src->rss_pages += MIN(vma->rss_kb / (SP_PAGE_SIZE / 1024),
                                  (r.end - r.start) / SP_PAGE_SIZE);
            if (!counted)
                src->pub.n_vmas++;
            counted = TRUE;
        }
    }
    return TRUE;
}

/**
 * sp_scan_set_label:
 * @i: a source, in the order added
 * @label: what to call it in results ("domain web1 (pid 1234)", say)
 */
void
sp_scan_set_label(SpScan *scan, guint i, const char *label)
{
    SpSource *src;

    g_return_if_fail(i < scan->sources->len);
    src = g_ptr_array_index(scan->sources, i);
    g_free(src->pub.label);
    src->pub.label = g_strdup(label);
}

/**
 * sp_scan_add_image:
 * @path: a raw memory image (a dump of guest RAM, say)
 *
 * Every page of the file counts as present.  The size must be a multiple of
 * the page size.
 */
gboolean
sp_scan_add_image(SpScan *scan, const char *path, GError **error)
{
    struct stat st;
    SpSource *src;
    int fd;

    g_return_val_if_fail(!scan->ran, FALSE);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_IMAGE, "cannot open image %s: %s",
                    path, g_strerror(err));
        return FALSE;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_IMAGE,
                    "image %s is not a regular file", path);
        return FALSE;
    }
    if (st.st_size == 0 || st.st_size % SP_PAGE_SIZE != 0) {
        close(fd);
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_IMAGE,
                    "image %s: size %" G_GINT64_FORMAT " bytes is not a whole number of "
                    "%u-byte pages (%" G_GINT64_FORMAT " bytes left over)", path,
                    (gint64)st.st_size, SP_PAGE_SIZE, (gint64)(st.st_size % SP_PAGE_SIZE));
        return FALSE;
    }
    src = sp_source_new();
    src->image_fd = fd;
    src->image_size = st.st_size;
    src->pub.label = g_path_get_basename(path);
    src->pub.eligible_bytes = st.st_size;
    src->pub.n_vmas = 1;
    SpRegion r = { 0, (guint64)st.st_size };
    g_array_append_val(src->regions, r);
    g_ptr_array_add(scan->sources, src);
    return TRUE;
}

static void
sp_source_mark_partial(SpScan *scan, SpSource *src, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
sp_source_mark_partial(SpScan *scan, SpSource *src, const char *fmt, ...)
{
    va_list ap;

    scan->partial = TRUE;
    src->pub.partial = TRUE;
    if (src->pub.partial_reason)
        return;     /* the first reason is the one that matters */
    va_start(ap, fmt);
    src->pub.partial_reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

/*
 * Read @len bytes at @addr of a process through its /proc/PID/mem into
 * @buf.  Returns the bytes read (a short count stops at a page that could
 * not be read), -1 with errno EFAULT when the first page cannot be read,
 * ESRCH when the process has exited (its mm is gone: the read returns 0),
 * or another errno.
 */
static ssize_t
sp_read_mem(int fd, guint64 addr, void *buf, gsize len)
{
    for (;;) {
        ssize_t r = pread(fd, buf, len, (off_t)addr);
        if (r > 0)
            return r;
        if (r == 0) {
            errno = ESRCH;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EIO)
            errno = EFAULT;     /* nothing at all could be read at addr */
        return -1;
    }
}

/* The same with process_vm_readv(): only for pages mapped once (see the
 * top of this file). */
static ssize_t
sp_read_pinned(pid_t pid, guint64 addr, void *buf, gsize len)
{
    struct iovec local = { buf, len };
    struct iovec remote = { (void *)(guintptr)addr, len };

    for (;;) {
        ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (r >= 0 || errno != EINTR)
            return r;
    }
}

/*
 * Read @n pages at @addrs of a process into @buf (page i at i*4096).  ok[i]
 * says which pages were read.  Consecutive addresses are read in one call,
 * with process_vm_readv where @pin_ok[i] (NULL: nowhere), else through
 * /proc/PID/mem.  A short read stops at a page that could not be read: it
 * is marked bad and the read resumes after it.  Returns FALSE with errno =
 * ESRCH when the process is gone.
 */
static gboolean
sp_read_remote(SpSource *src, const guint64 *addrs, gsize n, guint8 *buf, gboolean *ok,
               const gboolean *pin_ok)
{
    gsize i = 0;

    while (i < n) {
        gsize j = i + 1;
        gboolean pin = pin_ok && pin_ok[i];
        ssize_t r;

        while (j < n && addrs[j] == addrs[j - 1] + SP_PAGE_SIZE && (pin_ok && pin_ok[j]) == pin)
            j++;
        r = pin ? sp_read_pinned(src->pub.pid, addrs[i], buf + i * SP_PAGE_SIZE,
                                 (j - i) * SP_PAGE_SIZE)
                : sp_read_mem(src->mem_fd, addrs[i], buf + i * SP_PAGE_SIZE,
                              (j - i) * SP_PAGE_SIZE);
        if (r < 0) {
            if (errno != EFAULT)
                return FALSE;
            ok[i++] = FALSE;    /* the first page itself is unreadable: skip it */
            continue;
        }
        gsize done = (gsize)r / SP_PAGE_SIZE;
        for (gsize k = 0; k < done; k++)
            ok[i + k] = TRUE;
        i += done;
        if (i < j)
            ok[i++] = FALSE;    /* the page where the read stopped */
    }
    return TRUE;
}

static inline guint64
sp_scan_hash(const SpScan *scan, const guint8 *page)
{
    return XXH3_64bits_dispatch(page, SP_PAGE_SIZE) & scan->hash_mask;
}

static guint8
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

/**
 * sp_scan_get_state_bytes:
 *
 * The bytes of per-page state the scan holds now (its arrays, and the hash
 * table during the first pass), from their sizes; the peak is in
 * SpScanStats.state_bytes.
 */
gsize
sp_scan_get_state_bytes(const SpScan *scan)
{
    gsize per_page = (scan->hash ? sizeof(guint64) : 0) + (scan->rep ? sizeof(guint32) : 0) +
        (scan->flags ? 1 : 0) + (scan->nodes ? 1 : 0);
    gsize runs = scan->runs->len;

    /* A GArray's room is a power of two. */
    if (runs > 1)
        runs = (gsize)1 << g_bit_storage(runs - 1);

    return scan->cap * per_page + scan->table.cap * sizeof(guint32) + runs * sizeof(SpScanRun);
}

static void
sp_scan_note_state(SpScan *scan)
{
    scan->stats.state_bytes = MAX(scan->stats.state_bytes, sp_scan_get_state_bytes(scan));
}

static void
sp_scan_reserve(SpScan *scan, gsize cap)
{
    scan->cap = MAX(cap, 1);
    scan->hash = g_renew(guint64, scan->hash, scan->cap);
    scan->rep = g_renew(guint32, scan->rep, scan->cap);
    scan->flags = g_renew(guint8, scan->flags, scan->cap);
    if (scan->opt.want_nodes)
        scan->nodes = g_renew(guint8, scan->nodes, scan->cap);
    sp_scan_note_state(scan);
}

/* ------------------------------------------------------------ the table */

static inline gsize
sp_table_home(const SpTable *t, guint64 hash)
{
    /* The top 32 bits scaled to the table: any size, no modulo. */
    return (gsize)(((hash >> 32) * (guint64)t->cap) >> 32);
}

static inline gsize
sp_table_next(const SpTable *t, gsize i)
{
    return i + 1 == t->cap ? 0 : i + 1;
}

static void
sp_table_init(SpTable *t, gsize entries)
{
    t->cap = MIN(MAX(entries + entries / 3, (gsize)64), (gsize)SP_MAX_PAGES);
    t->used = 0;
    t->slot = g_new(guint32, t->cap);
    memset(t->slot, 0xff, t->cap * sizeof(guint32));
}

static void
sp_table_put(SpTable *t, const guint64 *hash, guint32 page)
{
    gsize i = sp_table_home(t, hash[page]);

    while (t->slot[i] != SP_NONE)
        i = sp_table_next(t, i);
    t->slot[i] = page;
    t->used++;
}

/* Room for one more: past 3/4 (tombstones included), rebuild it larger. */
static void
sp_scan_table_room(SpScan *scan)
{
    SpTable *t = &scan->table, bigger;

    if (t->used + 1 <= t->cap / 4 * 3)
        return;
    sp_table_init(&bigger, t->cap + t->cap / 2);
    for (gsize i = 0; i < t->cap; i++) {
        if (t->slot[i] < SP_TOMB)
            sp_table_put(&bigger, scan->hash, t->slot[i]);
    }
    g_free(t->slot);
    *t = bigger;
    sp_scan_note_state(scan);
}

/* A new representative: the first free slot of its probe sequence. */
static void
sp_scan_table_insert(SpScan *scan, guint32 page)
{
    SpTable *t;
    gsize i;

    sp_scan_table_room(scan);
    t = &scan->table;
    i = sp_table_home(t, scan->hash[page]);
    while (t->slot[i] < SP_TOMB)
        i = sp_table_next(t, i);
    if (t->slot[i] == SP_NONE)
        t->used++;
    t->slot[i] = page;
    scan->rep[page] = page;
}

/* ------------------------------------------------------------ pages */

static gboolean
sp_scan_add_page(SpScan *scan, guint32 source, guint64 addr, guint64 hash, guint8 flags,
                 guint8 node, guint32 bpos)
{
    gsize idx = scan->n_pages;
    SpScanRun *last;

    if (idx >= SP_MAX_PAGES)
        return FALSE;
    if (idx == scan->cap) {
        /* More pages than counted before the pass (the process grew). */
        sp_scan_reserve(scan, MIN(scan->cap + scan->cap / 8 + 512, (gsize)SP_MAX_PAGES));
    }
    last = scan->runs->len ? &g_array_index(scan->runs, SpScanRun, scan->runs->len - 1) : NULL;
    scan->hash[idx] = hash;
    scan->rep[idx] = (guint32)idx;
    scan->flags[idx] = flags;
    scan->n_pages++;
    if (scan->nodes) {
        scan->nodes[idx] = node;
        if ((guint)node + 1 > scan->n_nodes)
            scan->n_nodes = node + 1;
    }
    if (last && last->source == source && last->addr + last->n * SP_PAGE_SIZE == addr &&
        last->first + last->n == idx) {
        last->n++;
    } else {
        SpScanRun run = { source, addr, idx, 1 };
        g_array_append_val(scan->runs, run);
        if ((scan->runs->len & (scan->runs->len - 1)) == 0)
            sp_scan_note_state(scan);
    }
    scan->chunk->bpos[scan->chunk->n++] = bpos;
    return TRUE;
}

static void
sp_scan_nodes(SpScan *scan, guint32 source, const SpSource *src, const guint64 *addrs,
              gsize n, guint8 *out)
{
    if (scan->node_func) {
        for (gsize i = 0; i < n; i++)
            out[i] = scan->node_func(source, addrs[i], scan->node_data);
        return;
    }
    memset(out, 0, n);
    if (src->pub.pid <= 0)
        return;
    void *pages[SP_CHUNK_PAGES];
    int status[SP_CHUNK_PAGES];
    for (gsize i = 0; i < n; i++)
        pages[i] = (void *)(guintptr)addrs[i];
    if (move_pages(src->pub.pid, n, pages, NULL, status, 0) != 0)
        return;
    for (gsize i = 0; i < n; i++)
        out[i] = status[i] >= 0 && status[i] < 255 ? status[i] : 0;
}

static guint64
sp_kpageflags(int fd, guint64 pfn)
{
    guint64 f;

    return pread(fd, &f, sizeof(f), pfn * sizeof(guint64)) == sizeof(f) ? f : 0;
}

/*
 * Whether the 512 frames from @head (512-aligned) are one THP: @head is a
 * THP head and head + 2^b is a THP tail for b = 0..8.  A folio is aligned to
 * its size, so were @head's folio of order k < 9, frame head + 2^k would
 * start a folio or be a small page, not a tail.  Ten reads of 8 bytes
 * instead of 4 KiB, every word of which the kernel computes (a tenth of the
 * scan of THP-backed memory when read whole).
 */
static gboolean
sp_scan_whole_thp(int fd, guint64 head)
{
    const guint64 head_bits = KPF_THP | KPF_COMPOUND_HEAD, tail_bits = KPF_THP | KPF_COMPOUND_TAIL;

    if ((sp_kpageflags(fd, head) & head_bits) != head_bits)
        return FALSE;
    for (guint b = 0; b < 9; b++) {
        if ((sp_kpageflags(fd, head + (1u << b)) & tail_bits) != tail_bits)
            return FALSE;
    }
    return TRUE;
}

/*
 * Which pages are parts of a transparent huge page: /proc/kpageflags bit 22,
 * read by page frame: for 512 consecutive frames from an aligned one, probed
 * as one THP first (sp_scan_whole_thp()); otherwise one pread per run of
 * consecutive frames.  Without frames (not root) nothing is marked.
 */
static void
sp_scan_thp(SpScan *scan, guint32 source, gboolean region_thp, const guint64 *addrs,
            const guint64 *pfns, gsize n, gboolean *thp)
{
    guint64 kpf[SP_CHUNK_PAGES];

    for (gsize i = 0; i < n; i++)
        thp[i] = scan->thp_func ? scan->thp_func(source, addrs[i], scan->thp_data) : FALSE;
    /* A VMA without AnonHugePages has no THP: no need to ask per frame. */
    if (scan->thp_func || scan->kpageflags_fd < 0 || !region_thp)
        return;
    for (gsize i = 0; i < n;) {
        gsize j = i + 1;
        while (j < n && pfns[j] == pfns[j - 1] + 1)
            j++;
        for (gsize k = i; k < j;) {
            /* up to the next 512-aligned frame */
            gsize e = MIN(j, k + (SP_HUGE_FRAMES - pfns[k] % SP_HUGE_FRAMES));
            if (pfns[k] % SP_HUGE_FRAMES == 0 && e - k == SP_HUGE_FRAMES &&
                sp_scan_whole_thp(scan->kpageflags_fd, pfns[k])) {
                for (; k < e; k++)
                    thp[k] = TRUE;
                continue;
            }
            ssize_t want = (e - k) * sizeof(guint64);
            if (pread(scan->kpageflags_fd, kpf, want, pfns[k] * sizeof(guint64)) == want) {
                for (gsize q = k; q < e; q++)
                    thp[q] = (kpf[q - k] & KPF_THP) != 0;
            }
            k = e;
        }
        i = j;
    }
}

/* Read pagemap entries for [addr, addr + n pages). */
static gboolean
sp_scan_pagemap(SpSource *src, guint64 addr, gsize n, guint64 *entries)
{
    ssize_t want = n * sizeof(guint64);
    ssize_t r = pread(src->pagemap_fd, entries, want, (addr / SP_PAGE_SIZE) * sizeof(guint64));

    /* A short read means the mm is gone: the process exited. */
    return r == want;
}

/*
 * What kpageflags says of a frame mapped more than once: SP_FRAME_ZERO,
 * SP_FRAME_KSM.  A frame that cannot be looked up (frames hidden, no
 * kpageflags, a failed read) is neither: the caller falls back on guessing
 * from the contents (see the top of this file).  *known says whether
 * kpageflags answered.
 */
static guint8
sp_scan_frame_bits(SpScan *scan, guint64 pfn, gboolean *known)
{
    gsize slot = pfn % SP_KPF_CACHE;
    guint64 f;

    *known = FALSE;
    if (scan->kpageflags_fd < 0)
        return 0;
    if (pfn == 0) {
        if (!scan->zero_guess_reason)
            scan->zero_guess_reason = g_strdup("pagemap hides page frames (reading them "
                                               "needs CAP_SYS_ADMIN)");
        return 0;
    }
    if (scan->kpf_cache_pfn[slot] == pfn + 1) {
        *known = TRUE;
        return scan->kpf_cache_bits[slot];
    }
    if (pread(scan->kpageflags_fd, &f, sizeof(f), pfn * sizeof(guint64)) != sizeof(f)) {
        if (!scan->zero_guess_reason)
            scan->zero_guess_reason = g_strdup_printf("cannot read kpageflags of frame 0x%"
                                                      PRIx64 ": %s", pfn, g_strerror(errno));
        return 0;
    }
    *known = TRUE;
    scan->kpf_cache_pfn[slot] = pfn + 1;
    scan->kpf_cache_bits[slot] = ((f & KPF_ZERO_PAGE) ? SP_FRAME_ZERO : 0) |
        ((f & KPF_KSM) ? SP_FRAME_KSM : 0);
    return scan->kpf_cache_bits[slot];
}

/*
 * Whether pagemap entry @e is a page ksmd would scan: present, not swapped,
 * anonymous, not the zero page.  *zero_mapped: it maps the zero page (or the
 * huge zero folio), as kpageflags says.  *bits: SP_SCAN_PAGE_SHARED (mapped
 * more than once), SP_SCAN_PAGE_KSM (kpageflags says KSM) and
 * SP_SCAN_PAGE_ZERO_UNKNOWN (mapped more than once and kpageflags could not
 * say whether it is the zero page).
 */
static gboolean
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

/**
 * sp_scan_get_zero_method:
 * @reason: (out) (optional): why the zero page was guessed, or NULL
 *
 * How the scan told pages mapping the shared zero page from others: from
 * /proc/kpageflags (what the kernel states), or, where kpageflags could not
 * be read, by taking a page mapped more than once that reads as zeros for
 * the zero page (a KSM page holding zeros is then taken for it too).
 */
SpScanZeroMethod
sp_scan_get_zero_method(const SpScan *scan, const char **reason)
{
    if (reason)
        *reason = scan->zero_guess_reason;
    return scan->zero_guess_reason ? SP_SCAN_ZERO_GUESSED : SP_SCAN_ZERO_KPAGEFLAGS;
}

/* ------------------------------------------------------------ grouping */

static const SpScanRun *
sp_scan_run_of(SpScan *scan, gsize page)
{
    const SpScanRun *runs = (const SpScanRun *)(const void *)scan->runs->data;
    gsize n = scan->runs->len, h = scan->run_hint, lo = 0, hi = n;

    for (gsize k = h; k < n && k <= h + 1; k++) {
        if (runs[k].first <= page && page < runs[k].first + runs[k].n) {
            scan->run_hint = k;
            return &runs[k];
        }
    }
    while (hi - lo > 1) {
        gsize mid = (lo + hi) / 2;
        if (runs[mid].first <= page)
            lo = mid;
        else
            hi = mid;
    }
    scan->run_hint = lo;
    return &runs[lo];
}

static gboolean sp_scan_read_image(SpSource *src, guint64 off, gsize n, guint8 *buf,
                                   GError **error);

/*
 * Read known pages again: @pages sorted and distinct, page i to @buf + i *
 * 4096, ok[i] says which were read.  One read per run of adjacent pages
 * of a source.  A page that cannot be read is just not ok;
 * a process found gone is marked so.
 */
static void
sp_scan_reread(SpScan *scan, const guint32 *pages, gsize n, guint8 *buf, gboolean *ok)
{
    guint64 *addrs = scan->chunk->addrs;
    gboolean pin_ok[SP_CHUNK_PAGES];

    for (gsize i = 0; i < n;) {
        const SpScanRun *run = sp_scan_run_of(scan, pages[i]);
        guint32 si = run->source;
        SpSource *src = g_ptr_array_index(scan->sources, si);
        gsize j = i;

        while (j < n && (run = sp_scan_run_of(scan, pages[j]))->source == si) {
            addrs[j - i] = run->addr + (pages[j] - run->first) * SP_PAGE_SIZE;
            pin_ok[j - i] = !(scan->flags[pages[j]] & SP_SCAN_PAGE_SHARED);
            j++;
        }
        if (src->image_fd >= 0) {
            for (gsize k = i; k < j;) {
                gsize e = k + 1;
                while (e < j && addrs[e - i] == addrs[e - 1 - i] + SP_PAGE_SIZE)
                    e++;
                gboolean read = sp_scan_read_image(src, addrs[k - i], e - k,
                                                   buf + k * SP_PAGE_SIZE, NULL);
                for (; k < e; k++)
                    ok[k] = read;
            }
        } else if (src->exited || !sp_read_remote(src, addrs, j - i,
                                                  buf + i * SP_PAGE_SIZE, ok + i, pin_ok)) {
            if (!src->exited && errno == ESRCH) {
                src->exited = TRUE;
                sp_source_mark_partial(scan, src, "pid %d exited during the scan",
                                       (int)src->pub.pid);
            }
            for (gsize k = i; k < j; k++)
                ok[k] = FALSE;
        }
        i = j;
    }
    scan->stats.pages_read += n;
    scan->stats.confirm_reads += n;
}

/* A page of the chunk just read, in the read buffer. */
static inline const guint8 *
sp_chunk_bytes(const SpScan *scan, guint32 page)
{
    return scan->buf + (gsize)scan->chunk->bpos[page - scan->chunk->first] * SP_PAGE_SIZE;
}

/*
 * The general case, for a page whose first candidate was not equal or
 * could not be read: compare it with every representative of its hash
 * until one is equal; if none is, it becomes one.  A representative read
 * again that no longer hashes the same (or cannot be read) changed since
 * the scan read it: it is volatile and leaves the table.
 */
static void
sp_scan_resolve(SpScan *scan, guint32 page)
{
    SpTable *t = &scan->table;
    const guint8 *bytes = sp_chunk_bytes(scan, page);
    guint64 h = scan->hash[page];

    for (gsize i = sp_table_home(t, h); t->slot[i] != SP_NONE; i = sp_table_next(t, i)) {
        guint32 r = t->slot[i];
        gboolean in_buffer = r >= scan->chunk->first, ok = TRUE;
        const guint8 *rb;

        if (r == SP_TOMB || scan->hash[r] != h)
            continue;
        if (in_buffer) {
            rb = sp_chunk_bytes(scan, r);
        } else {
            sp_scan_reread(scan, &r, 1, scan->one, &ok);
            rb = scan->one;
        }
        if (ok && memcmp(rb, bytes, SP_PAGE_SIZE) == 0) {
            scan->rep[page] = r;
            scan->stats.confirmed++;
            scan->stats.confirmed_in_buffer += in_buffer;
            return;
        }
        if (ok && (in_buffer || sp_scan_hash(scan, rb) == h)) {
            scan->stats.collisions++;
        } else {
            scan->flags[r] |= SP_SCAN_PAGE_VOLATILE;
            t->slot[i] = SP_TOMB;
            scan->stats.changed++;
        }
    }
    sp_scan_table_insert(scan, page);
}

static int
sp_cmp_u32(gconstpointer a, gconstpointer b)
{
    guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

    return x < y ? -1 : x > y;
}

static gsize
sp_find_u32(const guint32 *v, gsize n, guint32 x)
{
    gsize lo = 0, hi = n;

    while (hi - lo > 1) {
        gsize mid = (lo + hi) / 2;
        if (v[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Group the pages of the chunk just read (see "Contents are grouped" at the
 * top): look each up by hash; compare with a candidate in the buffer at
 * once; read the other candidates again, all at once, then compare.
 */
static void
sp_scan_group_chunk(SpScan *scan)
{
    SpChunk *c = scan->chunk;
    SpTable *t = &scan->table;
    guint32 home[SP_CHUNK_PAGES];
    gsize nr = 0;

    c->n_pend = 0;
    for (guint j = 0; j < c->n; j++) {
        home[j] = (guint32)sp_table_home(t, scan->hash[c->first + j]);
        __builtin_prefetch(&t->slot[home[j]]);
    }
    for (guint j = 0; j < c->n; j++) {
        guint32 p = c->first + j, r = SP_NONE;
        guint64 h = scan->hash[p];

        if (j + 8 < c->n && home[j + 8] < t->cap) {
            guint32 q = t->slot[home[j + 8]];
            if (q < SP_TOMB)
                __builtin_prefetch(&scan->hash[q]);
        }
        if (scan->flags[p] & SP_SCAN_PAGE_ZERO) {
            /* Compared with zeros: equal to every other zero page. */
            if (scan->zero_rep == SP_NONE) {
                scan->zero_rep = p;
            } else {
                scan->stats.confirmed++;
                scan->stats.confirmed_in_buffer++;
            }
            scan->rep[p] = scan->zero_rep;
            continue;
        }
        for (gsize i = sp_table_home(t, h); t->slot[i] != SP_NONE; i = sp_table_next(t, i)) {
            guint32 q = t->slot[i];
            if (q != SP_TOMB && scan->hash[q] == h) {
                r = q;
                break;
            }
        }
        if (r == SP_NONE) {
            sp_scan_table_insert(scan, p);
        } else if (r >= c->first) {
            if (memcmp(sp_chunk_bytes(scan, r), sp_chunk_bytes(scan, p), SP_PAGE_SIZE) == 0) {
                scan->rep[p] = r;
                scan->stats.confirmed++;
                scan->stats.confirmed_in_buffer++;
            } else {
                sp_scan_resolve(scan, p);
            }
        } else {
            c->pend_page[c->n_pend] = p;
            c->pend_rep[c->n_pend++] = r;
        }
    }
    if (c->n_pend == 0)
        return;

    /* The earlier pages to read, in address order, each once. */
    memcpy(c->reps, c->pend_rep, c->n_pend * sizeof(guint32));
    for (guint k = 1; k < c->n_pend; k++) {
        if (c->reps[k] < c->reps[k - 1]) {
            qsort(c->reps, c->n_pend, sizeof(guint32), sp_cmp_u32);
            break;
        }
    }
    for (guint k = 0; k < c->n_pend; k++) {
        if (nr == 0 || c->reps[nr - 1] != c->reps[k])
            c->reps[nr++] = c->reps[k];
    }
    for (gsize s = 0; s < nr; s += SP_REREAD_PAGES) {
        gsize e = MIN(nr, s + SP_REREAD_PAGES);

        sp_scan_reread(scan, c->reps + s, e - s, scan->rbuf, c->rep_ok);
        for (guint k = 0; k < c->n_pend; k++) {
            guint32 p = c->pend_page[k], r = c->pend_rep[k];
            gsize pos;

            if (r < c->reps[s] || r > c->reps[e - 1])
                continue;
            pos = sp_find_u32(c->reps + s, e - s, r);
            if (c->rep_ok[pos] && !(scan->flags[r] & SP_SCAN_PAGE_VOLATILE) &&
                memcmp(scan->rbuf + pos * SP_PAGE_SIZE, sp_chunk_bytes(scan, p),
                       SP_PAGE_SIZE) == 0) {
                scan->rep[p] = r;
                scan->stats.confirmed++;
            } else {
                sp_scan_resolve(scan, p);
            }
        }
    }
}

static void
sp_scan_chunk_begin(SpScan *scan)
{
    scan->chunk->first = (guint32)scan->n_pages;
    scan->chunk->n = 0;
}

/* First pass over a process: find the candidate pages, read, hash. */
static gboolean
sp_scan_first_pass_pid(SpScan *scan, guint32 si, GError **error)
{
    SpSource *src = g_ptr_array_index(scan->sources, si);
    guint64 entries[SP_CHUNK_PAGES];
    guint64 addrs[SP_CHUNK_PAGES];
    guint64 pfns[SP_CHUNK_PAGES];
    gboolean thp[SP_CHUNK_PAGES];
    gboolean excl[SP_CHUNK_PAGES];
    guint8 ebits[SP_CHUNK_PAGES];
    gboolean ok[SP_CHUNK_PAGES];
    guint8 nodes[SP_CHUNK_PAGES];

    for (guint ri = 0; ri < src->regions->len && !src->exited && !scan->full; ri++) {
        const SpRegion *reg = &g_array_index(src->regions, SpRegion, ri);

        for (guint64 a = reg->start; a < reg->end && !src->exited && !scan->full;) {
            gsize n = MIN(SP_CHUNK_PAGES, (reg->end - a) / SP_PAGE_SIZE), m = 0;

            if (!sp_scan_pagemap(src, a, n, entries)) {
                sp_source_mark_partial(scan, src, "pid %d exited during the scan", (int)src->pub.pid);
                src->exited = TRUE;
                break;
            }
            for (gsize i = 0; i < n; i++) {
                gboolean zm;
                guint8 bits;
                if (sp_entry_candidate(scan, entries[i], &zm, &bits)) {
                    excl[m] = (entries[i] & PM_EXCLUSIVE) != 0;
                    ebits[m] = bits;
                    pfns[m] = entries[i] & PM_PFN_MASK;
                    addrs[m++] = a + i * SP_PAGE_SIZE;
                } else if (zm) {
                    src->pub.zero_mapped_pages++;
                }
            }
            if (m > 0) {
                sp_scan_chunk_begin(scan);
                scan->stats.pages_read += m;
                if (!sp_read_remote(src, addrs, m, scan->buf, ok, excl)) {
                    int err = errno;
                    if (err == ESRCH) {
                        sp_source_mark_partial(scan, src, "pid %d exited during the scan",
                                               (int)src->pub.pid);
                        src->exited = TRUE;
                        break;
                    }
                    g_set_error(error, SP_SCAN_ERROR,
                                err == EPERM || err == EACCES ? SP_SCAN_ERROR_ACCESS : SP_SCAN_ERROR_IO,
                                "pid %d: cannot read memory at 0x%" PRIx64 ": %s%s",
                                (int)src->pub.pid, addrs[0], g_strerror(err),
                                err == EPERM || err == EACCES ? " (needs root)" : "");
                    return FALSE;
                }
                if (scan->nodes)
                    sp_scan_nodes(scan, si, src, addrs, m, nodes);
                sp_scan_thp(scan, si, reg->thp, addrs, pfns, m, thp);
                for (gsize k = 0; k < m; k++) {
                    guint64 h;
                    guint8 f;
                    if (!ok[k]) {
                        sp_source_mark_partial(scan, src,
                                               "pid %d: memory at 0x%" PRIx64 " vanished during the scan",
                                               (int)src->pub.pid, addrs[k]);
                        continue;
                    }
                    f = sp_scan_classify_buf(scan, scan->buf + k * SP_PAGE_SIZE, &h);
                    /* kpageflags could not say: a page mapped more than
                     * once that reads as zeros is taken for the zero page. */
                    if ((ebits[k] & SP_SCAN_PAGE_ZERO_UNKNOWN) && (f & SP_SCAN_PAGE_ZERO)) {
                        src->pub.zero_mapped_pages++;
                        continue;
                    }
                    src->pub.present_pages++;
                    if (thp[k])
                        f |= SP_SCAN_PAGE_THP;
                    f |= ebits[k] & (SP_SCAN_PAGE_SHARED | SP_SCAN_PAGE_KSM);
                    if (!sp_scan_add_page(scan, si, addrs[k], h, f, scan->nodes ? nodes[k] : 0,
                                          (guint32)k)) {
                        sp_source_mark_partial(scan, src,
                                               "more than %u pages: the rest is not scanned",
                                               SP_MAX_PAGES);
                        scan->full = TRUE;
                        break;
                    }
                }
                sp_scan_group_chunk(scan);
            }
            a += n * SP_PAGE_SIZE;
        }
    }
    return TRUE;
}

static gboolean
sp_scan_read_image(SpSource *src, guint64 off, gsize n, guint8 *buf, GError **error)
{
    gsize want = n * SP_PAGE_SIZE, got = 0;

    while (got < want) {
        ssize_t r = pread(src->image_fd, buf + got, want - got, off + got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_IMAGE,
                        "image %s: cannot read at offset %" G_GUINT64_FORMAT ": %s",
                        src->pub.label, off + got, r < 0 ? g_strerror(errno) : "file shrank");
            return FALSE;
        }
        got += r;
    }
    return TRUE;
}

static gboolean
sp_scan_first_pass_image(SpScan *scan, guint32 si, GError **error)
{
    SpSource *src = g_ptr_array_index(scan->sources, si);
    guint64 addrs[SP_CHUNK_PAGES];
    guint8 nodes[SP_CHUNK_PAGES];

    for (guint64 off = 0; off < src->image_size;) {
        gsize n = MIN(SP_CHUNK_PAGES, (src->image_size - off) / SP_PAGE_SIZE);

        if (!sp_scan_read_image(src, off, n, scan->buf, error))
            return FALSE;
        scan->stats.pages_read += n;
        for (gsize k = 0; k < n; k++)
            addrs[k] = off + k * SP_PAGE_SIZE;
        if (scan->nodes)
            sp_scan_nodes(scan, si, src, addrs, n, nodes);
        sp_scan_chunk_begin(scan);
        for (gsize k = 0; k < n; k++) {
            guint64 h;
            guint8 f = sp_scan_classify_buf(scan, scan->buf + k * SP_PAGE_SIZE, &h);
            if (scan->thp_func && scan->thp_func(si, addrs[k], scan->thp_data))
                f |= SP_SCAN_PAGE_THP;
            if (!sp_scan_add_page(scan, si, addrs[k], h, f, scan->nodes ? nodes[k] : 0,
                                  (guint32)k)) {
                sp_source_mark_partial(scan, src, "more than %u pages: the rest is not scanned",
                                       SP_MAX_PAGES);
                scan->full = TRUE;
                n = k;
                break;
            }
        }
        sp_scan_group_chunk(scan);
        src->pub.present_pages += n;
        if (scan->full)
            break;
        off += n * SP_PAGE_SIZE;
    }
    return TRUE;
}

/* A later pass: re-read every known page, note changes and disappearances. */
static gboolean
sp_scan_next_pass(SpScan *scan, GError **error)
{
    guint64 *hash = scan->hash;
    guint8 *flags = scan->flags;
    guint64 entries[SP_CHUNK_PAGES];
    guint64 addrs[SP_CHUNK_PAGES];
    gsize idx[SP_CHUNK_PAGES];
    gboolean ok[SP_CHUNK_PAGES];
    gboolean excl[SP_CHUNK_PAGES];
    guint8 ksm[SP_CHUNK_PAGES];

    for (guint r = 0; r < scan->runs->len; r++) {
        const SpScanRun *run = &g_array_index(scan->runs, SpScanRun, r);
        SpSource *src = g_ptr_array_index(scan->sources, run->source);

        for (gsize off = 0; off < run->n;) {
            gsize n = MIN(SP_CHUNK_PAGES, run->n - off), m = 0;
            guint64 a = run->addr + off * SP_PAGE_SIZE;

            if (src->image_fd >= 0) {
                if (!sp_scan_read_image(src, a, n, scan->buf, error))
                    return FALSE;
                scan->stats.pages_read += n;
                for (gsize k = 0; k < n; k++) {
                    idx[k] = run->first + off + k;
                    ok[k] = TRUE;
                    ksm[k] = 0;
                }
                m = n;
            } else {
                gboolean alive = !src->exited && sp_scan_pagemap(src, a, n, entries);
                for (gsize k = 0; k < n; k++) {
                    gboolean zm;
                    guint8 bits;
                    gsize p = run->first + off + k;
                    if (alive && sp_entry_candidate(scan, entries[k], &zm, &bits)) {
                        excl[m] = (entries[k] & PM_EXCLUSIVE) != 0;
                        ksm[m] = bits & SP_SCAN_PAGE_KSM;
                        addrs[m] = a + k * SP_PAGE_SIZE;
                        idx[m++] = p;
                    } else if (!(flags[p] & SP_SCAN_PAGE_GONE)) {
                        flags[p] |= SP_SCAN_PAGE_GONE;
                        src->pub.gone_pages++;
                    }
                }
                if (!alive && !src->exited) {
                    src->exited = TRUE;
                    sp_source_mark_partial(scan, src, "pid %d exited during the scan",
                                           (int)src->pub.pid);
                }
                scan->stats.pages_read += m;
                if (m > 0 && !sp_read_remote(src, addrs, m, scan->buf, ok, excl)) {
                    if (errno != ESRCH) {
                        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_IO,
                                    "pid %d: cannot read memory: %s", (int)src->pub.pid,
                                    g_strerror(errno));
                        return FALSE;
                    }
                    src->exited = TRUE;
                    sp_source_mark_partial(scan, src, "pid %d exited during the scan",
                                           (int)src->pub.pid);
                    for (gsize k = 0; k < m; k++)
                        ok[k] = FALSE;
                }
            }
            for (gsize k = 0; k < m; k++) {
                gsize p = idx[k];
                guint64 h;
                guint8 f;
                if (!ok[k]) {
                    if (!(flags[p] & SP_SCAN_PAGE_GONE)) {
                        flags[p] |= SP_SCAN_PAGE_GONE;
                        src->pub.gone_pages++;
                    }
                    continue;
                }
                f = sp_scan_classify_buf(scan, scan->buf + k * SP_PAGE_SIZE, &h);
                if (h != hash[p])
                    flags[p] |= SP_SCAN_PAGE_VOLATILE;
                hash[p] = h;
                /* KSM: as the kernel has it now */
                flags[p] = (flags[p] & ~(SP_SCAN_PAGE_ZERO | SP_SCAN_PAGE_KSM)) | f | ksm[k];
            }
            off += n;
        }
    }
    return TRUE;
}

/*
 * How many pages the first pass may find: the Rss of the scanned VMAs (the
 * zero page is not in Rss, so this is an upper bound for anonymous VMAs),
 * and the size of an image.  The arrays are cut to size after the pass.
 */
static gsize
sp_scan_expected_pages(SpScan *scan)
{
    gsize total = 0;

    for (guint si = 0; si < scan->sources->len; si++) {
        SpSource *src = g_ptr_array_index(scan->sources, si);
        total += src->image_fd >= 0 ? src->image_size / SP_PAGE_SIZE : src->rss_pages;
    }
    return total;
}

/**
 * sp_scan_run:
 *
 * Runs all passes.  A process that exits, or memory that vanishes, makes
 * the result partial (sp_scan_is_partial()), not an error; no privilege,
 * or an unreadable image, is an error.
 */
gboolean
sp_scan_run(SpScan *scan, GError **error)
{
    gsize expected;

    g_return_val_if_fail(!scan->ran, FALSE);
    if (scan->opt.passes < 1) {
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID, "passes must be at least 1");
        return FALSE;
    }
    if (scan->sources->len == 0) {
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID, "nothing to scan");
        return FALSE;
    }
    scan->ran = TRUE;
    expected = MIN(sp_scan_expected_pages(scan), (gsize)SP_MAX_PAGES);
    sp_scan_reserve(scan, expected);
    sp_table_init(&scan->table, expected);
    scan->chunk = g_new(SpChunk, 1);
    scan->rbuf = sp_pages_alloc(SP_REREAD_PAGES);
    scan->one = sp_pages_alloc(1);
    sp_scan_note_state(scan);
    for (guint si = 0; si < scan->sources->len && !scan->full; si++) {
        SpSource *src = g_ptr_array_index(scan->sources, si);
        gboolean ok = src->image_fd >= 0 ? sp_scan_first_pass_image(scan, si, error)
                                         : sp_scan_first_pass_pid(scan, si, error);
        if (!ok)
            return FALSE;
    }
    /* Grouping is done: the table and its buffers go. */
    g_clear_pointer(&scan->table.slot, g_free);
    scan->table.cap = 0;
    g_clear_pointer(&scan->rbuf, g_aligned_free);
    g_clear_pointer(&scan->one, g_aligned_free);
    g_clear_pointer(&scan->chunk, g_free);
    if (scan->n_pages < scan->cap)
        sp_scan_reserve(scan, scan->n_pages);
    for (guint pass = 1; pass < scan->opt.passes; pass++) {
        if (scan->opt.interval_ms)
            g_usleep((gulong)scan->opt.interval_ms * 1000);
        if (!sp_scan_next_pass(scan, error))
            return FALSE;
    }
    return TRUE;
}

guint
sp_scan_get_n_sources(const SpScan *scan)
{
    return scan->sources->len;
}

const SpScanSource *
sp_scan_get_source(const SpScan *scan, guint i)
{
    g_return_val_if_fail(i < scan->sources->len, NULL);
    return &((SpSource *)g_ptr_array_index(scan->sources, i))->pub;
}

gsize
sp_scan_get_n_pages(const SpScan *scan)
{
    return scan->n_pages;
}

const guint64 *
sp_scan_get_hashes(const SpScan *scan)
{
    return scan->hash;
}

/**
 * sp_scan_get_reps:
 *
 * Per page, the index of the page whose contents it was found equal to, byte
 * for byte, during the first pass (its representative), or its own index
 * when it was the first with its contents.  A representative can be volatile
 * or gone after a later pass; the pages that point to it stay equal to each
 * other.  %NULL once released (sp_scan_release_reps()).
 */
const guint32 *
sp_scan_get_reps(const SpScan *scan)
{
    return scan->rep;
}

/**
 * sp_scan_get_stats:
 *
 * What the scan read and compared, and the peak of its per-page state.
 */
void
sp_scan_get_stats(const SpScan *scan, SpScanStats *out)
{
    *out = scan->stats;
}

const guint8 *
sp_scan_get_flags(const SpScan *scan)
{
    return scan->flags;
}

const guint8 *
sp_scan_get_nodes(const SpScan *scan)
{
    return scan->nodes;
}

guint
sp_scan_get_n_nodes(const SpScan *scan)
{
    return scan->n_nodes;
}

const SpScanRun *
sp_scan_get_runs(const SpScan *scan, gsize *n_runs)
{
    *n_runs = scan->runs->len;
    return (const SpScanRun *)(const void *)scan->runs->data;
}

gboolean
sp_scan_is_partial(const SpScan *scan)
{
    return scan->partial;
}

static const SpScanRun *
sp_scan_find_run(const SpScan *scan, gsize page)
{
    const SpScanRun *runs = (const SpScanRun *)(const void *)scan->runs->data;
    gsize lo = 0, hi = scan->runs->len;

    while (hi - lo > 1) {
        gsize mid = (lo + hi) / 2;
        if (runs[mid].first <= page)
            lo = mid;
        else
            hi = mid;
    }
    return &runs[lo];
}

guint32
sp_scan_page_source(const SpScan *scan, gsize page)
{
    return sp_scan_find_run(scan, page)->source;
}

guint64
sp_scan_page_addr(const SpScan *scan, gsize page)
{
    const SpScanRun *run = sp_scan_find_run(scan, page);

    return run->addr + (page - run->first) * SP_PAGE_SIZE;
}

/*
 * Read pages at scattered addresses of one process into scattered local
 * pages, one call each (adjacent ones too: their destinations differ).
 */
static gboolean
sp_read_remote_scatter(SpSource *src, const guint64 *addrs, guint8 *const *dst, gsize n,
                       gboolean *ok)
{
    for (gsize i = 0; i < n; i++) {
        ssize_t r = sp_read_mem(src->mem_fd, addrs[i], dst[i], SP_PAGE_SIZE);
        if (r < 0 && errno != EFAULT)
            return FALSE;
        ok[i] = r == SP_PAGE_SIZE;
    }
    return TRUE;
}

/**
 * sp_scan_read_pages:
 * @pages: (array length=n): page indices, at most 512, in any order
 * @buf: room for @n pages; page @pages[i] goes to @buf + i * 4096
 * @ok: (array length=n) (out): which pages were read
 *
 * Reads pages again (to compare contents), one system call per page.
 * Returns how many were read.
 */
gsize
sp_scan_read_pages(SpScan *scan, const gsize *pages, gsize n, guint8 *buf, gboolean *ok)
{
    guint64 addrs[SP_CHUNK_PAGES];
    guint8 *dst[SP_CHUNK_PAGES];
    gsize pos[SP_CHUNK_PAGES];
    gboolean sub_ok[SP_CHUNK_PAGES];
    guint32 src_of[SP_CHUNK_PAGES];
    gsize done = 0;

    g_return_val_if_fail(n <= SP_CHUNK_PAGES, 0);
    for (gsize i = 0; i < n; i++) {
        src_of[i] = sp_scan_page_source(scan, pages[i]);
        ok[i] = FALSE;
    }
    for (guint si = 0; si < scan->sources->len; si++) {
        SpSource *src = g_ptr_array_index(scan->sources, si);
        gsize m = 0;

        for (gsize i = 0; i < n; i++) {
            if (src_of[i] != si)
                continue;
            addrs[m] = sp_scan_page_addr(scan, pages[i]);
            dst[m] = buf + i * SP_PAGE_SIZE;
            pos[m++] = i;
        }
        if (m == 0)
            continue;
        if (src->image_fd >= 0) {
            for (gsize k = 0; k < m; k++)
                sub_ok[k] = pread(src->image_fd, dst[k], SP_PAGE_SIZE, addrs[k]) == SP_PAGE_SIZE;
        } else if (src->exited ||
                   !sp_read_remote_scatter(src, addrs, dst, m, sub_ok)) {
            for (gsize k = 0; k < m; k++)
                sub_ok[k] = FALSE;
        }
        for (gsize k = 0; k < m; k++) {
            ok[pos[k]] = sub_ok[k];
            done += sub_ok[k] ? 1 : 0;
        }
    }
    return done;
}

/**
 * sp_scan_page_hash:
 * @page: the contents of a page
 *
 * The scan's hash of a page (XXH3, 64 bits, whatever hash_bits says), to
 * recognise a page that changed between the scan and a later read.
 */
guint64
sp_scan_page_hash(const guint8 *page)
{
    return XXH3_64bits_dispatch(page, SP_PAGE_SIZE);
}

/**
 * sp_scan_get_buffer:
 * @n_pages: (out): its size in pages
 *
 * The scan's read buffer, free for the caller to use once the scan has run
 * (to confirm contents without a second buffer).
 */
guint8 *
sp_scan_get_buffer(SpScan *scan, gsize *n_pages)
{
    *n_pages = SP_CHUNK_PAGES;
    return scan->buf;
}

/**
 * sp_scan_release_hashes:
 *
 * The hashes are not needed once the scan has run (pages are grouped by
 * sp_scan_get_reps()): give the memory back.
 */
void
sp_scan_release_hashes(SpScan *scan)
{
    g_clear_pointer(&scan->hash, g_free);
}

/**
 * sp_scan_release_reps:
 *
 * Nor the representatives, once the caller has turned them into classes.
 */
void
sp_scan_release_reps(SpScan *scan)
{
    g_clear_pointer(&scan->rep, g_free);
}
