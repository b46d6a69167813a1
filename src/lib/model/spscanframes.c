/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spscanframes.c: which pages ksmd would scan, from pagemap and kpageflags
 *
 * Part of SpScan (see the theory of operation in spscan.c): a pagemap entry
 * says present, swapped, file or anonymous, mapped once or more and the
 * frame; /proc/kpageflags says of a frame whether it is the shared zero
 * page (or the huge zero folio), a KSM page or part of a THP.  Frames
 * mapped more than once are looked up through a small direct-mapped cache.
 * NUMA nodes come from move_pages(2) in query mode.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-scan"

#include <errno.h>
#include <inttypes.h>
#include <numaif.h>
#include <unistd.h>

#include "spscanpriv.h"

void
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
void
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
gboolean
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
guint8
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
