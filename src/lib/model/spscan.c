/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spscan.c: read and hash the pages ksmd would scan, without touching them
 *
 * This file holds the scan object, its sources, the driver that runs the
 * passes as bounded steps (sp_scan_step(), sp_scan_run_async()) and the
 * results; spscanframes.c, spscanread.c and spscanpass.c do the work of
 * one chunk (see spscanpriv.h).
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
#include <sys/stat.h>
#include <unistd.h>

#include "samepage/spmaps.h"
#include "spscanpriv.h"

G_DEFINE_QUARK(sp-scan-error-quark, sp_scan_error)

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
    opt->progress = NULL;
    opt->progress_data = NULL;
}

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

/* The source's result is incomplete: the first reason given is kept. */
void
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

void
sp_scan_note_state(SpScan *scan)
{
    scan->stats.state_bytes = MAX(scan->stats.state_bytes, sp_scan_get_state_bytes(scan));
}

void
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

/* ------------------------------------------------------------ the driver */

/*
 * The passes are cut into chunks of 2 MiB of address space (SP_CHUNK_PAGES
 * pages of a region, an image or a run of known pages); a step does at most
 * SP_SCAN_STEP_CHUNKS of them (a few milliseconds of reading), so that a
 * main loop driving sp_scan_step() stays responsive.  Between passes the
 * scan waits interval_ms: a step then only says when the next pass is due.
 */

/* Checks that the scan can run; nothing changes. */
static gboolean
sp_scan_check(const SpScan *scan, GError **error)
{
    if (scan->opt.passes < 1) {
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID, "passes must be at least 1");
        return FALSE;
    }
    if (scan->sources->len == 0) {
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID, "nothing to scan");
        return FALSE;
    }
    return TRUE;
}

/* The first pass begins: arrays sized from smaps, the table and its buffers. */
static void
sp_scan_start(SpScan *scan)
{
    gsize expected = MIN(sp_scan_expected_pages(scan), (gsize)SP_MAX_PAGES);

    scan->ran = TRUE;
    sp_scan_reserve(scan, expected);
    sp_table_init(&scan->table, expected);
    scan->chunk = g_new(SpChunk, 1);
    scan->rbuf = sp_pages_alloc(SP_REREAD_PAGES);
    scan->one = sp_pages_alloc(1);
    sp_scan_note_state(scan);
    scan->phase = SP_SCAN_PHASE_FIRST;
    scan->cur_source = 0;
    scan->cur_region = 0;
    scan->cur_addr = 0;
}

/* A pass is over: the next is due interval_ms from now, or the scan is done. */
static void
sp_scan_pass_end(SpScan *scan)
{
    scan->pass++;
    if (scan->pass >= scan->opt.passes) {
        scan->phase = SP_SCAN_PHASE_DONE;
        return;
    }
    scan->due = g_get_monotonic_time() + (gint64)scan->opt.interval_ms * 1000;
    scan->phase = SP_SCAN_PHASE_WAIT;
}

/* Grouping is done: the table and its buffers go, the arrays are cut to size. */
static void
sp_scan_first_pass_end(SpScan *scan)
{
    g_clear_pointer(&scan->table.slot, g_free);
    scan->table.cap = 0;
    g_clear_pointer(&scan->rbuf, g_aligned_free);
    g_clear_pointer(&scan->one, g_aligned_free);
    g_clear_pointer(&scan->chunk, g_free);
    if (scan->n_pages < scan->cap)
        sp_scan_reserve(scan, scan->n_pages);
    sp_scan_pass_end(scan);
}

/* The next chunk of the first pass: 1 done, 0 the pass is over, -1 an error. */
static int
sp_scan_first_next(SpScan *scan, GError **error)
{
    while (scan->cur_source < scan->sources->len && !scan->full) {
        guint32 si = scan->cur_source;
        SpSource *src = g_ptr_array_index(scan->sources, si);

        if (src->image_fd >= 0) {
            guint64 off = scan->cur_addr;
            if (off < src->image_size) {
                gsize n = MIN(SP_CHUNK_PAGES, (src->image_size - off) / SP_PAGE_SIZE);
                if (!sp_scan_image_chunk(scan, si, off, n, error))
                    return -1;
                scan->cur_addr = off + n * SP_PAGE_SIZE;
                return 1;
            }
        } else {
            while (!src->exited && scan->cur_region < src->regions->len) {
                const SpRegion *reg = &g_array_index(src->regions, SpRegion, scan->cur_region);
                guint64 a = MAX(scan->cur_addr, reg->start);
                gsize n = a < reg->end ? MIN(SP_CHUNK_PAGES, (reg->end - a) / SP_PAGE_SIZE) : 0;

                if (n > 0) {
                    if (!sp_scan_pid_chunk(scan, si, reg, a, n, error))
                        return -1;
                    scan->cur_addr = a + n * SP_PAGE_SIZE;
                    return 1;
                }
                scan->cur_region++;
                scan->cur_addr = 0;
            }
        }
        scan->cur_source++;
        scan->cur_region = 0;
        scan->cur_addr = 0;
    }
    return 0;
}

/* The next chunk of a later pass: 1 done, 0 the pass is over, -1 an error. */
static int
sp_scan_later_next(SpScan *scan, GError **error)
{
    while (scan->cur_run < scan->runs->len) {
        const SpScanRun *run = &g_array_index(scan->runs, SpScanRun, scan->cur_run);

        if (scan->cur_off < run->n) {
            gsize n = MIN(SP_CHUNK_PAGES, run->n - scan->cur_off);
            if (!sp_scan_later_chunk(scan, run, scan->cur_off, n, error))
                return -1;
            scan->cur_off += n;
            return 1;
        }
        scan->cur_run++;
        scan->cur_off = 0;
    }
    return 0;
}

/**
 * sp_scan_step:
 * @done: (out): TRUE once every pass has run
 * @ready_time: (out) (optional): between passes, the g_get_monotonic_time()
 *   at which the next pass is due (a step before then does nothing); 0 when
 *   the next step has work at once
 *
 * Does a bounded part of the scan (at most SP_SCAN_STEP_CHUNKS chunks of
 * 2 MiB) and returns: it never sleeps and never runs a main context, so a
 * main loop can drive a scan from an idle or timer source.  The first step
 * checks the scan as sp_scan_run() does.  A process that exits makes the
 * result partial, not an error; an error ends the scan, and later steps
 * fail too.
 *
 * Returns: FALSE with @error set on an error.
 */
gboolean
sp_scan_step(SpScan *scan, gboolean *done, gint64 *ready_time, GError **error)
{
    *done = FALSE;
    if (ready_time)
        *ready_time = 0;
    switch (scan->phase) {
    case SP_SCAN_PHASE_NEW:
        if (!sp_scan_check(scan, error))
            return FALSE;
        sp_scan_start(scan);
        break;
    case SP_SCAN_PHASE_DONE:
        *done = TRUE;
        return TRUE;
    case SP_SCAN_PHASE_FAILED:
        g_set_error(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID, "the scan has already failed");
        return FALSE;
    case SP_SCAN_PHASE_WAIT:
        if (g_get_monotonic_time() < scan->due) {
            if (ready_time)
                *ready_time = scan->due;
            return TRUE;
        }
        scan->phase = SP_SCAN_PHASE_LATER;
        scan->cur_run = 0;
        scan->cur_off = 0;
        break;
    case SP_SCAN_PHASE_FIRST:
    case SP_SCAN_PHASE_LATER:
        break;
    }
    for (guint k = 0; k < SP_SCAN_STEP_CHUNKS; k++) {
        gboolean first = scan->phase == SP_SCAN_PHASE_FIRST;
        int r = first ? sp_scan_first_next(scan, error) : sp_scan_later_next(scan, error);

        if (r < 0) {
            scan->phase = SP_SCAN_PHASE_FAILED;
            return FALSE;
        }
        if (r == 0) {
            if (first)
                sp_scan_first_pass_end(scan);
            else
                sp_scan_pass_end(scan);
            break;
        }
    }
    *done = scan->phase == SP_SCAN_PHASE_DONE;
    if (scan->phase == SP_SCAN_PHASE_WAIT && ready_time)
        *ready_time = scan->due;
    return TRUE;
}

/*
 * Waits in this thread until @ready_time or until @cancellable is
 * cancelled.  Only for the blocking sp_scan_run() and the worker thread of
 * sp_scan_run_async(): a main loop's thread never gets here.
 */
static void
sp_scan_wait_until(gint64 ready_time, GCancellable *cancellable)
{
    GPollFD pfd;
    guint n = cancellable && g_cancellable_make_pollfd(cancellable, &pfd) ? 1 : 0;

    for (;;) {
        gint64 left = ready_time - g_get_monotonic_time();
        if (left <= 0 || (cancellable && g_cancellable_is_cancelled(cancellable)))
            break;
        g_poll(n ? &pfd : NULL, n, (gint)MIN((left + 999) / 1000, G_MAXINT));
    }
    if (n)
        g_cancellable_release_fd(cancellable);
}

/* Tells the caller's progress function where the scan is. */
static void
sp_scan_report_progress(const SpScan *scan, gboolean waiting)
{
    SpScanProgress p = {
        .pass = MIN(scan->pass + 1, scan->opt.passes),
        .passes = scan->opt.passes,
        .bytes_read = scan->stats.pages_read * (guint64)SP_PAGE_SIZE,
        .waiting = waiting,
    };

    scan->opt.progress(&p, scan->opt.progress_data);
}

/* Steps until done, waiting between passes; a cancelled @cancellable ends
 * the scan with G_IO_ERROR_CANCELLED. */
gboolean
sp_scan_drive(SpScan *scan, GCancellable *cancellable, GError **error)
{
    gboolean done = FALSE;

    while (!done) {
        gint64 ready = 0;

        if (cancellable && g_cancellable_set_error_if_cancelled(cancellable, error)) {
            scan->phase = SP_SCAN_PHASE_FAILED;
            return FALSE;
        }
        if (!sp_scan_step(scan, &done, &ready, error))
            return FALSE;
        if (scan->opt.progress)
            sp_scan_report_progress(scan, !done && ready > 0);
        if (!done && ready > 0)
            sp_scan_wait_until(ready, cancellable);
    }
    return TRUE;
}

/**
 * sp_scan_run:
 *
 * Runs all passes, waiting interval_ms between them: it blocks, so it is
 * for command-line tools and worker threads; a main loop drives
 * sp_scan_step() or calls sp_scan_run_async() instead.  A process that
 * exits, or memory that vanishes, makes the result partial
 * (sp_scan_is_partial()), not an error; no privilege, or an unreadable
 * image, is an error.
 */
gboolean
sp_scan_run(SpScan *scan, GError **error)
{
    g_return_val_if_fail(!scan->ran, FALSE);
    return sp_scan_drive(scan, NULL, error);
}

static void
sp_scan_run_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    GError *error = NULL;

    if (sp_scan_drive(data, cancellable, &error))
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
}

/**
 * sp_scan_run_async:
 * @cancellable: (nullable): stops the scan at its next chunk or during the
 *   wait between passes (G_IO_ERROR_CANCELLED)
 * @callback: called in the thread-default main context of the caller
 *
 * Runs all passes in a worker thread (GTask): the caller's main loop goes
 * on meanwhile.  Until @callback runs, the scan belongs to the worker: the
 * caller must not touch it, nor free it or its SpHost; the node and THP
 * functions, if set, are called in the worker thread.
 */
void
sp_scan_run_async(SpScan *scan, GCancellable *cancellable, GAsyncReadyCallback callback,
                  gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
    GError *error = NULL;

    g_task_set_source_tag(task, sp_scan_run_async);
    g_task_set_task_data(task, scan, NULL);
    if (scan->ran) {
        g_task_return_new_error(task, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID,
                                "the scan has already run");
        return;
    }
    if (!sp_scan_check(scan, &error)) {
        g_task_return_error(task, error);
        return;
    }
    scan->ran = TRUE;           /* from here on, the worker's */
    g_task_run_in_thread(task, sp_scan_run_thread);
}

/**
 * sp_scan_run_finish:
 *
 * Returns: what sp_scan_run() would have returned.
 */
gboolean
sp_scan_run_finish(SpScan *scan, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
    g_return_val_if_fail(g_task_get_task_data(G_TASK(result)) == scan, FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
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

/* The run holding @page, by binary search (spscanpriv.h). */
const SpScanRun *
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
