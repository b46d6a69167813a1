/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spscanread.c: reading the pages of a process or an image
 *
 * Part of SpScan (see the theory of operation in spscan.c): pages mapped
 * once are read with process_vm_readv() (fast, but it pins: never for a
 * page shared with another mapping), every other page through
 * /proc/PID/mem, one call per run of adjacent pages; a page that cannot be
 * read is skipped, a process that is gone says so (ESRCH).  Images are
 * read with pread().
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-scan"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include "spscanpriv.h"

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
gboolean
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

/* Read @n pages of an image at @off into @buf, all or an error. */
gboolean
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

/* The run holding @page: the last one or the next first (pages are read
 * again mostly in order), else a binary search. */
static const SpScanRun *
sp_scan_run_of(SpScan *scan, gsize page)
{
    const SpScanRun *runs = (const SpScanRun *)(const void *)scan->runs->data;
    gsize n = scan->runs->len, h = scan->run_hint;
    const SpScanRun *r;

    for (gsize k = h; k < n && k <= h + 1; k++) {
        if (runs[k].first <= page && page < runs[k].first + runs[k].n) {
            scan->run_hint = k;
            return &runs[k];
        }
    }
    r = sp_scan_find_run(scan, page);
    scan->run_hint = (gsize)(r - runs);
    return r;
}

/*
 * Read known pages again: @pages sorted and distinct, page i to @buf + i *
 * 4096, ok[i] says which were read.  One read per run of adjacent pages
 * of a source.  A page that cannot be read is just not ok;
 * a process found gone is marked so.
 */
void
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
