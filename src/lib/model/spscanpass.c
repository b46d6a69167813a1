/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spscanpass.c: one chunk of a scan pass: read, hash, group by contents
 *
 * Part of SpScan (see the theory of operation in spscan.c, "Contents are
 * grouped"): the first pass adds each candidate page of a 2 MiB chunk to
 * the per-page arrays and looks its hash up in a table of representatives;
 * equal hashes are compared byte for byte, in the read buffer or after
 * reading the representatives again, one batch per chunk.  A later pass
 * reads the same pages again and notes which changed or went.  The driver
 * in spscan.c decides which chunk comes next.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-scan"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "spscanpriv.h"

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

void
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

/*
 * One chunk of the first pass over a process: @n pages of region @reg from
 * @a.  Finds the candidate pages in pagemap, reads them, hashes them and
 * groups them.  A process found gone is marked so (src->exited), a full
 * scan too (scan->full); FALSE only for an error that ends the scan.
 */
gboolean
sp_scan_pid_chunk(SpScan *scan, guint32 si, const SpRegion *reg, guint64 a, gsize n,
                  GError **error)
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
    gsize m = 0;

    if (!sp_scan_pagemap(src, a, n, entries)) {
        sp_source_mark_partial(scan, src, "pid %d exited during the scan", (int)src->pub.pid);
        src->exited = TRUE;
        return TRUE;
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
                return TRUE;
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
    return TRUE;
}

/*
 * One chunk of the first pass over an image: @n pages from @off, all
 * present.  Stops early when the scan is full (scan->full).
 */
gboolean
sp_scan_image_chunk(SpScan *scan, guint32 si, guint64 off, gsize n, GError **error)
{
    SpSource *src = g_ptr_array_index(scan->sources, si);
    guint64 addrs[SP_CHUNK_PAGES];
    guint8 nodes[SP_CHUNK_PAGES];

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
    return TRUE;
}

/*
 * One chunk of a later pass: read the @n pages of @run from its page @off
 * again; a page whose hash changed is volatile, one no longer present gone.
 */
gboolean
sp_scan_later_chunk(SpScan *scan, const SpScanRun *run, gsize off, gsize n, GError **error)
{
    SpSource *src = g_ptr_array_index(scan->sources, run->source);
    guint64 *hash = scan->hash;
    guint8 *flags = scan->flags;
    guint64 entries[SP_CHUNK_PAGES];
    guint64 addrs[SP_CHUNK_PAGES];
    gsize idx[SP_CHUNK_PAGES];
    gboolean ok[SP_CHUNK_PAGES];
    gboolean excl[SP_CHUNK_PAGES];
    guint8 ksm[SP_CHUNK_PAGES];
    gsize m = 0;

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
    return TRUE;
}
