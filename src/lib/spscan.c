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
 * frame (bits 0-54, root only).  The frame of the shared zero page is
 * learnt once by read-faulting a page of our own.  Only present anonymous
 * pages are then read, with process_vm_readv() over runs of them: reading a
 * page that is not present would fault it in, which is exactly what must not
 * happen.  (A page can still be reclaimed between the pagemap read and the
 * memory read; the window is a few microseconds and the cost is one zero page
 * in the target, as a plain read access would cost.)
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
 * "zero" is a fact, not a hash guess.  A later pass re-reads the same pages: one whose hash changed is
 * volatile, one that is no longer present is gone.
 *
 * Per page we keep 8 bytes of hash and 1 byte of flags (plus 1 byte of NUMA
 * node when asked), in arrays sized from smaps Rss before the first pass and
 * cut to size after it; addresses are kept as runs of consecutive pages.
 * kpageflags is read only for VMAs that smaps says hold THPs.
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
#define SP_IOV_MAX 1024u

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define KPF_THP (1ULL << 22)

typedef struct {
    guint64 start;
    guint64 end;
    gboolean thp;               /* smaps shows AnonHugePages in its VMA */
} SpRegion;

typedef struct {
    SpScanSource pub;
    GArray *regions;            /* SpRegion */
    int pagemap_fd;
    int image_fd;
    guint64 image_size;
    gboolean exited;
    guint64 rss_pages;          /* smaps Rss of the scanned VMAs: sizes the arrays */
} SpSource;

struct _SpScan {
    const SpHost *host;
    SpScanOptions opt;
    GPtrArray *sources;         /* SpSource */
    GArray *runs;               /* SpScanRun */
    /* Per page, exactly sized (a GArray would round up to a power of two). */
    gsize n_pages;
    gsize cap;
    guint64 *hash;
    guint8 *flags;
    guint8 *nodes;              /* or NULL */
    guint n_nodes;
    guint64 zero_hash;
    guint64 zero_pfn;
    gboolean have_pfns;
    SpScanNodeFunc node_func;
    gpointer node_data;
    SpScanThpFunc thp_func;
    gpointer thp_data;
    int kpageflags_fd;          /* /proc/kpageflags, or -1 */
    guint8 *buf;                /* SP_CHUNK_PAGES pages */
    gboolean ran;
    gboolean partial;
};

static void
sp_source_free(SpSource *src)
{
    if (!src)
        return;
    if (src->pagemap_fd >= 0)
        close(src->pagemap_fd);
    if (src->image_fd >= 0)
        close(src->image_fd);
    g_array_unref(src->regions);
    g_free(src->pub.label);
    g_free(src->pub.partial_reason);
    g_free(src);
}

void
sp_scan_options_init(SpScanOptions *opt)
{
    opt->mode = SP_SCAN_MERGEABLE;
    opt->passes = 2;
    opt->interval_ms = 1000;
    opt->want_nodes = FALSE;
}

/*
 * The shared zero page's frame: map a page of our own, read it (a read fault
 * on untouched anonymous memory maps the zero page), look it up in our own
 * pagemap.  Frames read as 0 without CAP_SYS_ADMIN; then we cannot tell a
 * zero-page mapping by its frame and fall back on the exclusive bit.
 */
static void
sp_scan_probe_zero_pfn(SpScan *scan)
{
    g_autofree char *path = sp_host_procfs_path(scan->host, "self/pagemap");
    volatile guint8 *p;
    guint64 entry = 0;
    int fd;

    p = mmap(NULL, SP_PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    (void)p[0];
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (pread(fd, &entry, sizeof(entry), ((guintptr)p / SP_PAGE_SIZE) * 8) == sizeof(entry) &&
            (entry & PM_PRESENT) && (entry & PM_PFN_MASK)) {
            scan->zero_pfn = entry & PM_PFN_MASK;
            scan->have_pfns = TRUE;
        }
        close(fd);
    }
    munmap((void *)p, SP_PAGE_SIZE);
    g_debug("zero page frame %s: 0x%" PRIx64, scan->have_pfns ? "known" : "unknown",
            scan->zero_pfn);
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
    scan->zero_hash = XXH3_64bits_dispatch(zero, SP_PAGE_SIZE);
    scan->buf = g_malloc(SP_CHUNK_PAGES * SP_PAGE_SIZE);
    scan->kpageflags_fd = -1;
    sp_scan_probe_zero_pfn(scan);
    if (scan->have_pfns) {
        g_autofree char *kpf = sp_host_procfs_path(host, "kpageflags");
        scan->kpageflags_fd = open(kpf, O_RDONLY | O_CLOEXEC);
    }
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
    g_free(scan->flags);
    g_free(scan->nodes);
    g_free(scan->buf);
    if (scan->kpageflags_fd >= 0)
        close(scan->kpageflags_fd);
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
    g_autoptr(GError) local = NULL;
    g_autoptr(GPtrArray) vmas = NULL;
    g_autofree char *pagemap = NULL;
    g_autofree char *comm = NULL;
    SpSource *src;

    g_return_val_if_fail(!scan->ran, FALSE);
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

    pagemap = sp_host_procfs_path(scan->host, "%d/pagemap", (int)pid);
    src->pagemap_fd = open(pagemap, O_RDONLY | O_CLOEXEC);
    if (src->pagemap_fd < 0) {
        int err = errno;
        g_set_error(error, SP_SCAN_ERROR,
                    err == EACCES || err == EPERM ? SP_SCAN_ERROR_ACCESS : SP_SCAN_ERROR_NO_PROCESS,
                    "pid %d: cannot open %s: %s%s", (int)pid, pagemap, g_strerror(err),
                    err == EACCES || err == EPERM ? " (reading another process's memory needs root)" : "");
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
        if (!take || vma->end <= start || vma->start >= end)
            continue;
        SpRegion r = { MAX(vma->start, start), MIN(vma->end, end), vma->anon_huge_kb > 0 };
        g_array_append_val(src->regions, r);
        src->pub.eligible_bytes += r.end - r.start;
        src->rss_pages += MIN(vma->rss_kb / (SP_PAGE_SIZE / 1024), (r.end - r.start) / SP_PAGE_SIZE);
        src->pub.n_vmas++;
    }
    return TRUE;
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
 * Read @n pages at @addrs of process @pid into @buf (page i at i*4096).
 * ok[i] says which pages were read.  Consecutive addresses share an iovec.
 * A short read stops at a page that could not be read: it is marked bad and
 * the read resumes after it.  Returns FALSE with errno = ESRCH when the
 * process is gone, EPERM/EACCES when reading is not allowed.
 */
static gboolean
sp_read_remote(pid_t pid, const guint64 *addrs, gsize n, guint8 *buf, gboolean *ok)
{
    struct iovec remote[SP_IOV_MAX];
    gsize i = 0;

    while (i < n) {
        struct iovec local;
        gsize niov = 0, j = i;
        ssize_t r;

        while (j < n && niov < SP_IOV_MAX) {
            if (niov > 0 && (guint64)(guintptr)remote[niov - 1].iov_base +
                remote[niov - 1].iov_len == addrs[j]) {
                remote[niov - 1].iov_len += SP_PAGE_SIZE;
            } else {
                remote[niov].iov_base = (void *)(guintptr)addrs[j];
                remote[niov].iov_len = SP_PAGE_SIZE;
                niov++;
            }
            j++;
        }
        local.iov_base = buf + i * SP_PAGE_SIZE;
        local.iov_len = (j - i) * SP_PAGE_SIZE;
        r = process_vm_readv(pid, &local, 1, remote, niov, 0);
        if (r < 0) {
            if (errno == EFAULT) {
                /* The first page itself is unreadable: skip it. */
                ok[i++] = FALSE;
                continue;
            }
            if (errno == EINTR)
                continue;
            return FALSE;
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

static guint8
sp_scan_classify_buf(SpScan *scan, const guint8 *page, guint64 *hash)
{
    static const guint8 zeros[64] = { 0 };

    *hash = XXH3_64bits_dispatch(page, SP_PAGE_SIZE);
    if (*hash == scan->zero_hash) {
        for (guint off = 0; off < SP_PAGE_SIZE; off += sizeof(zeros)) {
            if (memcmp(page + off, zeros, sizeof(zeros)) != 0)
                return 0;
        }
        return SP_SCAN_PAGE_ZERO;
    }
    return 0;
}

static void
sp_scan_reserve(SpScan *scan, gsize cap)
{
    scan->cap = MAX(cap, 1);
    scan->hash = g_renew(guint64, scan->hash, scan->cap);
    scan->flags = g_renew(guint8, scan->flags, scan->cap);
    if (scan->opt.want_nodes)
        scan->nodes = g_renew(guint8, scan->nodes, scan->cap);
}

static void
sp_scan_add_page(SpScan *scan, guint32 source, guint64 addr, guint64 hash, guint8 flags,
                 guint8 node)
{
    gsize idx = scan->n_pages;
    SpScanRun *last;

    if (idx == scan->cap) {
        /* More pages than counted before the pass (the process grew). */
        sp_scan_reserve(scan, scan->cap + scan->cap / 8 + 512);
    }
    last = scan->runs->len ? &g_array_index(scan->runs, SpScanRun, scan->runs->len - 1) : NULL;
    scan->hash[idx] = hash;
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
    }
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

/*
 * Which pages are parts of a transparent huge page: /proc/kpageflags bit 22,
 * read by page frame, one pread per run of consecutive frames (a THP is 512
 * of them).  Without frames (not root) nothing is marked.
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
        ssize_t want = (j - i) * sizeof(guint64);
        if (pread(scan->kpageflags_fd, kpf, want, pfns[i] * sizeof(guint64)) == want) {
            for (gsize k = i; k < j; k++)
                thp[k] = (kpf[k - i] & KPF_THP) != 0;
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

static gboolean
sp_entry_candidate(const SpScan *scan, guint64 e, gboolean *zero_mapped)
{
    *zero_mapped = FALSE;
    if (!(e & PM_PRESENT) || (e & PM_SWAPPED) || (e & PM_FILE))
        return FALSE;
    if (scan->have_pfns && (e & PM_PFN_MASK) == scan->zero_pfn) {
        *zero_mapped = TRUE;
        return FALSE;
    }
    return TRUE;
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
    gboolean ok[SP_CHUNK_PAGES];
    guint8 nodes[SP_CHUNK_PAGES];

    for (guint ri = 0; ri < src->regions->len && !src->exited; ri++) {
        const SpRegion *reg = &g_array_index(src->regions, SpRegion, ri);

        for (guint64 a = reg->start; a < reg->end && !src->exited;) {
            gsize n = MIN(SP_CHUNK_PAGES, (reg->end - a) / SP_PAGE_SIZE), m = 0;

            if (!sp_scan_pagemap(src, a, n, entries)) {
                sp_source_mark_partial(scan, src, "pid %d exited during the scan", (int)src->pub.pid);
                src->exited = TRUE;
                break;
            }
            for (gsize i = 0; i < n; i++) {
                gboolean zm;
                if (sp_entry_candidate(scan, entries[i], &zm)) {
                    excl[m] = (entries[i] & PM_EXCLUSIVE) != 0;
                    pfns[m] = entries[i] & PM_PFN_MASK;
                    addrs[m++] = a + i * SP_PAGE_SIZE;
                } else if (zm) {
                    src->pub.zero_mapped_pages++;
                }
            }
            if (m > 0) {
                if (!sp_read_remote(src->pub.pid, addrs, m, scan->buf, ok)) {
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
                    /* Without page frames, a shared zero-filled page is taken
                     * for the zero page (see sp_scan_probe_zero_pfn()). */
                    if (!scan->have_pfns && (f & SP_SCAN_PAGE_ZERO) && !excl[k]) {
                        src->pub.zero_mapped_pages++;
                        continue;
                    }
                    src->pub.present_pages++;
                    if (thp[k])
                        f |= SP_SCAN_PAGE_THP;
                    sp_scan_add_page(scan, si, addrs[k], h, f, scan->nodes ? nodes[k] : 0);
                }
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
        for (gsize k = 0; k < n; k++)
            addrs[k] = off + k * SP_PAGE_SIZE;
        if (scan->nodes)
            sp_scan_nodes(scan, si, src, addrs, n, nodes);
        for (gsize k = 0; k < n; k++) {
            guint64 h;
            guint8 f = sp_scan_classify_buf(scan, scan->buf + k * SP_PAGE_SIZE, &h);
            if (scan->thp_func && scan->thp_func(si, addrs[k], scan->thp_data))
                f |= SP_SCAN_PAGE_THP;
            sp_scan_add_page(scan, si, addrs[k], h, f, scan->nodes ? nodes[k] : 0);
        }
        src->pub.present_pages += n;
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

    for (guint r = 0; r < scan->runs->len; r++) {
        const SpScanRun *run = &g_array_index(scan->runs, SpScanRun, r);
        SpSource *src = g_ptr_array_index(scan->sources, run->source);

        for (gsize off = 0; off < run->n;) {
            gsize n = MIN(SP_CHUNK_PAGES, run->n - off), m = 0;
            guint64 a = run->addr + off * SP_PAGE_SIZE;

            if (src->image_fd >= 0) {
                if (!sp_scan_read_image(src, a, n, scan->buf, error))
                    return FALSE;
                for (gsize k = 0; k < n; k++) {
                    idx[k] = run->first + off + k;
                    ok[k] = TRUE;
                }
                m = n;
            } else {
                gboolean alive = !src->exited && sp_scan_pagemap(src, a, n, entries);
                for (gsize k = 0; k < n; k++) {
                    gboolean zm;
                    gsize p = run->first + off + k;
                    if (alive && sp_entry_candidate(scan, entries[k], &zm)) {
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
                if (m > 0 && !sp_read_remote(src->pub.pid, addrs, m, scan->buf, ok)) {
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
                flags[p] = (flags[p] & ~SP_SCAN_PAGE_ZERO) | f;
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
    sp_scan_reserve(scan, sp_scan_expected_pages(scan));
    for (guint si = 0; si < scan->sources->len; si++) {
        SpSource *src = g_ptr_array_index(scan->sources, si);
        gboolean ok = src->image_fd >= 0 ? sp_scan_first_pass_image(scan, si, error)
                                         : sp_scan_first_pass_pid(scan, si, error);
        if (!ok)
            return FALSE;
    }
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
 * pages, one iovec each; a short read marks the page where it stopped and
 * resumes after it.
 */
static gboolean
sp_read_remote_scatter(pid_t pid, const guint64 *addrs, guint8 *const *dst, gsize n,
                       gboolean *ok)
{
    struct iovec local[SP_IOV_MAX], remote[SP_IOV_MAX];
    gsize i = 0;

    while (i < n) {
        gsize m = MIN(n - i, (gsize)SP_IOV_MAX);
        ssize_t r;

        for (gsize k = 0; k < m; k++) {
            local[k].iov_base = dst[i + k];
            local[k].iov_len = SP_PAGE_SIZE;
            remote[k].iov_base = (void *)(guintptr)addrs[i + k];
            remote[k].iov_len = SP_PAGE_SIZE;
        }
        r = process_vm_readv(pid, local, m, remote, m, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EFAULT)
                return FALSE;
            ok[i++] = FALSE;
            continue;
        }
        gsize done = (gsize)r / SP_PAGE_SIZE;
        for (gsize k = 0; k < done; k++)
            ok[i + k] = TRUE;
        i += done;
        if (done < m)
            ok[i++] = FALSE;
    }
    return TRUE;
}

/**
 * sp_scan_read_pages:
 * @pages: (array length=n): page indices, at most 512, in any order
 * @buf: room for @n pages; page @pages[i] goes to @buf + i * 4096
 * @ok: (array length=n) (out): which pages were read
 *
 * Reads pages again (to compare contents), one system call per source.
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
                   !sp_read_remote_scatter(src->pub.pid, addrs, dst, m, sub_ok)) {
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
 * The scan's hash of a page (XXH3, 64 bits), to recognise a page that
 * changed between the scan and a later read.
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

/* The hashes are not needed once pages are classified: give the memory back. */
void
sp_scan_release_hashes(SpScan *scan)
{
    g_clear_pointer(&scan->hash, g_free);
}
