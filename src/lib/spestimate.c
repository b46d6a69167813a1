/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spestimate.c: from scanned pages to the figures KSM will converge to
 *
 * Theory of operation
 *
 * 1. Contents.  Pages that did not change between scan passes and did not
 *    vanish are sorted by (tree, hash), the tree being the NUMA node when
 *    merge_across_nodes=0 and 0 otherwise.  Equal hashes are only a
 *    candidate: every page of a group of two or more is read again and
 *    compared byte for byte with the group's first page.  A page that
 *    differs and whose hash changed too was written meanwhile: it is
 *    volatile.  A page that differs with the same hash is a true collision
 *    and gets a content of its own.  Zero pages were compared with zeros
 *    during the scan and need no second read.  So a hash collision can
 *    never make two different pages count as one.
 * 2. THP splits (6.12+).  KSM splits a transparent huge page when it
 *    merges one of its subpages, and since b1f202060afe ("mm: remap unused
 *    subpages to shared zeropage when splitting isolated thp") a split maps
 *    every zero-filled subpage to the shared zero page: those pages stop
 *    being anonymous, lose their rmap_item and count in no KSM figure
 *    (measured on 6.18: 2 x 2,000 zero pages in THPs vanish, and
 *    ksm_zero_pages stays 0).  So before the model runs, every zero page
 *    of a THP that will be split is taken out; a THP will be split when one
 *    of its (non-volatile) subpages has a content held by two or more pages.
 *    The memory is freed all the same; it is reported as thp_zero_remapped.
 * 3. The model.  The pages, in the kernel's scan order (process by process,
 *    address by address), go to SpModel as content classes; it runs ksmd's
 *    passes until nothing merges any more.
 * 4. Figures.  The model's counters are the sysfs figures; its per-mm
 *    counters are /proc/PID/ksm_stat; pages that end up stable are counted
 *    per node, and per pair of processes (the sharing matrix: entry [p][q],
 *    p != q, is the number of p's stable pages whose content is also stable
 *    in q; [p][p] the number of p's stable pages whose content p holds at
 *    least twice).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-estimate"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "samepage/spestimate.h"
#include "samepage/spksm.h"

G_DEFINE_QUARK(sp-estimate-error-quark, sp_estimate_error)

#define SP_BATCH 512u

struct _SpEstimate {
    SpEstimateOptions opt;
    SpScanOptions scan_opt;
    SpModelCounters counters;
    guint n_proc;
    SpEstimateProcess *proc;
    guint64 *matrix;               /* n_proc * n_proc */
    guint n_nodes;
    SpEstimateNode *nodes;
    guint64 saved_zero;
    guint64 saved_nonzero;
    guint passes;
    gboolean converged;
    gboolean partial;
    guint64 collisions;
    guint64 changed;               /* pages found changed while confirming */
    guint64 volatile_pages;
    guint64 gone_pages;
    guint64 classes;
    guint64 dup_classes;           /* contents held by >= 2 pages */
    guint64 thp_zero_remapped;
};


void
sp_estimate_options_init(SpEstimateOptions *opt)
{
    sp_model_config_init(&opt->model);
    opt->merge_across_nodes = TRUE;
    opt->thp_zero_remap = TRUE;
    opt->max_passes = 64;
}

/*
 * The kernel profile from the release: 6.11 moved the checksum gate before
 * the stable-tree search (d58a361b0350); smart_scan exists since 6.7.
 */
static gboolean
sp_release_at_least(const char *release, guint major, guint minor)
{
    guint ma = 0, mi = 0;

    if (sscanf(release, "%u.%u", &ma, &mi) != 2)
        return TRUE;    /* unknown: assume a current kernel */
    return ma > major || (ma == major && mi >= minor);
}

/**
 * sp_estimate_options_from_host:
 *
 * Predict for the host as it is set now: max_page_sharing, use_zero_pages,
 * merge_across_nodes and smart_scan from sysfs, the kernel profile from the
 * running kernel's release.
 */
gboolean
sp_estimate_options_from_host(SpEstimateOptions *opt, const SpHost *host, GError **error)
{
    g_autofree char *rel_path = sp_host_procfs_path(host, "sys/kernel/osrelease");
    g_autofree char *release = NULL;
    SpKsmState st;

    sp_estimate_options_init(opt);
    if (!sp_ksm_read(host, &st, error))
        return FALSE;
    opt->model.max_page_sharing = st.entry[SP_KSM_MAX_PAGE_SHARING].supported
        ? st.entry[SP_KSM_MAX_PAGE_SHARING].value : 256;
    opt->model.use_zero_pages = st.entry[SP_KSM_USE_ZERO_PAGES].supported &&
        st.entry[SP_KSM_USE_ZERO_PAGES].value;
    opt->model.smart_scan = st.entry[SP_KSM_SMART_SCAN].supported &&
        st.entry[SP_KSM_SMART_SCAN].value;
    opt->merge_across_nodes = !st.entry[SP_KSM_MERGE_ACROSS_NODES].supported ||
        st.entry[SP_KSM_MERGE_ACROSS_NODES].value;
    if (g_file_get_contents(rel_path, &release, NULL, NULL)) {
        opt->model.checksum_first = sp_release_at_least(release, 6, 11);
        opt->thp_zero_remap = sp_release_at_least(release, 6, 12);
    }
    return TRUE;
}

void
sp_estimate_free(SpEstimate *est)
{
    if (!est)
        return;
    for (guint i = 0; est->proc && i < est->n_proc; i++) {
        g_free(est->proc[i].label);
        g_free(est->proc[i].partial_reason);
    }
    g_free(est->proc);
    g_free(est->matrix);
    g_free(est->nodes);
    g_free(est);
}

/* ------------------------------------------------------------------ sorting */

/*
 * Page indices are sorted by (node, hash, index) in place: a radix pass on
 * the top 12 bits of the hash (hashes are uniform), then quicksort inside
 * each bucket.  No temporary array the size of the input, unlike qsort().
 */
typedef struct {
    const guint64 *hash;
    const guint8 *node;            /* NULL when merging across nodes */
} SpKeyCtx;

#define SP_RADIX_BITS 12

static inline gboolean
sp_key_less(const SpKeyCtx *c, guint32 a, guint32 b)
{
    if (c->node && c->node[a] != c->node[b])
        return c->node[a] < c->node[b];
    if (c->hash[a] != c->hash[b])
        return c->hash[a] < c->hash[b];
    return a < b;
}

static void
sp_sort_range(const SpKeyCtx *c, guint32 *v, gsize n)
{
    while (n > 16) {
        guint32 a = v[0], b = v[n / 2], d = v[n - 1], p;
        gsize i = 0, j = n - 1;

        /* median of three */
        if (sp_key_less(c, a, b))
            p = sp_key_less(c, b, d) ? b : (sp_key_less(c, a, d) ? d : a);
        else
            p = sp_key_less(c, a, d) ? a : (sp_key_less(c, b, d) ? d : b);
        for (;;) {
            while (sp_key_less(c, v[i], p))
                i++;
            while (sp_key_less(c, p, v[j]))
                j--;
            if (i >= j)
                break;
            guint32 t = v[i];
            v[i++] = v[j];
            v[j--] = t;
        }
        /* [0, j] <= p <= [j + 1, n): recurse into the smaller side. */
        gsize left = j + 1;
        if (left < n - left) {
            sp_sort_range(c, v, left);
            v += left;
            n -= left;
        } else {
            sp_sort_range(c, v + left, n - left);
            n = left;
        }
    }
    for (gsize i = 1; i < n; i++) {
        guint32 x = v[i];
        gsize j = i;
        while (j > 0 && sp_key_less(c, x, v[j - 1])) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static void
sp_sort_pages(const SpKeyCtx *c, guint32 *v, gsize n)
{
    const guint nb = 1u << SP_RADIX_BITS;
    g_autofree guint32 *start = NULL, *next = NULL;

    if (c->node || n < 4 * nb) {
        sp_sort_range(c, v, n);
        return;
    }
    start = g_new0(guint32, nb + 1);
    next = g_new(guint32, nb);
#define SP_BUCKET(x) ((guint)(c->hash[x] >> (64 - SP_RADIX_BITS)))
    for (gsize i = 0; i < n; i++)
        start[SP_BUCKET(v[i]) + 1]++;
    for (guint b = 0; b < nb; b++) {
        start[b + 1] += start[b];
        next[b] = start[b];
    }
    /* American flag sort: move each element into its bucket, in place. */
    for (guint b = 0; b < nb; b++) {
        while (next[b] < start[b + 1]) {
            guint32 x = v[next[b]];
            guint bx = SP_BUCKET(x);
            while (bx != b) {
                guint32 t = v[next[bx]];
                v[next[bx]++] = x;
                x = t;
                bx = SP_BUCKET(x);
            }
            v[next[b]++] = x;
        }
    }
#undef SP_BUCKET
    for (guint b = 0; b < nb; b++)
        sp_sort_range(c, v + start[b], start[b + 1] - start[b]);
}

/* ------------------------------------------------------------------ contents */

typedef struct {
    SpScan *scan;
    SpModelPage *mp;               /* per scan page */
    guint32 next_class;
    SpEstimate *est;
    const guint64 *hash;
    /* the pending batch of groups to confirm */
    gsize batch_pages[SP_BATCH];
    gsize n_batch;
    struct { gsize start, n; } groups[SP_BATCH];
    guint n_groups;
    guint8 *buf;                   /* SP_BATCH pages */
} SpClassify;

static void
sp_make_unique(SpClassify *c, gsize page, guint8 extra)
{
    c->mp[page].klass = 0;
    c->mp[page].flags = (c->mp[page].flags & ~SP_MODEL_PAGE_ZERO) | SP_MODEL_PAGE_UNIQUE | extra;
}

/*
 * Confirm one group: pages[i] is in bufs[i] (ok[i] says it could be read).
 * rep holds the group's reference contents once *rep_class is set.
 */
static void
sp_confirm_group(SpClassify *c, const gsize *pages, guint8 *const *bufs, const gboolean *ok,
                 gsize n, guint8 *rep, guint32 *rep_class)
{
    for (gsize i = 0; i < n; i++) {
        gsize p = pages[i];

        if (!ok[i] || sp_scan_page_hash(bufs[i]) != c->hash[p]) {
            /* Vanished or written since the scan: it changes, it is volatile. */
            sp_make_unique(c, p, SP_MODEL_PAGE_VOLATILE);
            c->est->changed++;
            continue;
        }
        if (*rep_class == G_MAXUINT32) {
            memcpy(rep, bufs[i], SP_PAGE_SIZE);
            *rep_class = c->next_class++;
            c->mp[p].klass = *rep_class;
            continue;
        }
        if (memcmp(rep, bufs[i], SP_PAGE_SIZE) == 0) {
            c->mp[p].klass = *rep_class;
        } else {
            /* Same 64-bit hash, different bytes. */
            sp_make_unique(c, p, 0);
            c->est->collisions++;
        }
    }
}

static void
sp_flush_batch(SpClassify *c)
{
    gboolean ok[SP_BATCH];
    guint8 *bufs[SP_BATCH];
    guint8 rep[SP_PAGE_SIZE];

    if (c->n_batch == 0)
        return;
    sp_scan_read_pages(c->scan, c->batch_pages, c->n_batch, c->buf, ok);
    for (gsize i = 0; i < c->n_batch; i++)
        bufs[i] = c->buf + i * SP_PAGE_SIZE;
    for (guint g = 0; g < c->n_groups; g++) {
        guint32 rep_class = G_MAXUINT32;
        sp_confirm_group(c, c->batch_pages + c->groups[g].start, bufs + c->groups[g].start,
                         ok + c->groups[g].start, c->groups[g].n, rep, &rep_class);
    }
    c->n_batch = 0;
    c->n_groups = 0;
}

/* A group larger than a batch: read it in chunks against one reference. */
static void
sp_confirm_big_group(SpClassify *c, const guint32 *members, gsize n)
{
    gboolean ok[SP_BATCH];
    guint8 *bufs[SP_BATCH];
    gsize pages[SP_BATCH];
    g_autofree guint8 *rep = g_malloc(SP_PAGE_SIZE);
    guint32 rep_class = G_MAXUINT32;

    for (gsize off = 0; off < n; off += SP_BATCH) {
        gsize m = MIN(SP_BATCH, n - off);
        for (gsize i = 0; i < m; i++) {
            pages[i] = members[off + i];
            bufs[i] = c->buf + i * SP_PAGE_SIZE;
        }
        sp_scan_read_pages(c->scan, pages, m, c->buf, ok);
        sp_confirm_group(c, pages, bufs, ok, m, rep, &rep_class);
    }
}

static void
sp_classify_group(SpClassify *c, const guint32 *members, gsize n)
{
    if (n == 1) {
        sp_make_unique(c, members[0], 0);
        return;
    }
    c->est->dup_classes++;
    if (c->mp[members[0]].flags & SP_MODEL_PAGE_ZERO) {
        /* Zero pages were compared with zeros during the scan.  A page in
         * this group that is not zero collides with the zero hash. */
        guint32 zc = c->next_class++;
        for (gsize i = 0; i < n; i++) {
            if (c->mp[members[i]].flags & SP_MODEL_PAGE_ZERO) {
                c->mp[members[i]].klass = zc;
            } else {
                sp_make_unique(c, members[i], 0);
                c->est->collisions++;
            }
        }
        return;
    }
    if (n > SP_BATCH) {
        sp_flush_batch(c);
        sp_confirm_big_group(c, members, n);
        return;
    }
    if (c->n_batch + n > SP_BATCH)
        sp_flush_batch(c);
    c->groups[c->n_groups].start = c->n_batch;
    c->groups[c->n_groups].n = n;
    c->n_groups++;
    for (gsize i = 0; i < n; i++)
        c->batch_pages[c->n_batch++] = members[i];
}

/*
 * Fill mp[] (one entry per scanned page, in scan order) with content
 * classes: pages of two or more with the same bytes share a class; a page
 * no other page equals is SP_MODEL_PAGE_UNIQUE.  Gone pages are left
 * UNIQUE too (the caller drops them).
 */
static void
sp_estimate_classify(SpEstimate *est, SpScan *scan, SpModelPage *mp, guint32 *n_classes)
{
    gsize n = sp_scan_get_n_pages(scan);
    const guint64 *hash = sp_scan_get_hashes(scan);
    const guint8 *sflags = sp_scan_get_flags(scan);
    g_autofree guint32 *order = NULL;
    gsize buf_pages;
    guint8 *buf = sp_scan_get_buffer(scan, &buf_pages);
    SpClassify c = { 0 };
    SpKeyCtx ctx = { hash, est->opt.merge_across_nodes ? NULL : sp_scan_get_nodes(scan) };
    gsize m = 0;

    g_assert(buf_pages >= SP_BATCH);
    c.scan = scan;
    c.mp = mp;
    c.est = est;
    c.buf = buf;
    c.hash = hash;

    for (gsize i = 0; i < n; i++) {
        mp[i].klass = 0;
        mp[i].flags = SP_MODEL_PAGE_UNIQUE;
        if (sflags[i] & SP_SCAN_PAGE_GONE)
            continue;
        if (sflags[i] & SP_SCAN_PAGE_VOLATILE) {
            mp[i].flags |= SP_MODEL_PAGE_VOLATILE;
            est->volatile_pages++;
            continue;
        }
        if (sflags[i] & SP_SCAN_PAGE_ZERO)
            mp[i].flags |= SP_MODEL_PAGE_ZERO;
        m++;
    }
    order = g_new(guint32, MAX(m, 1));
    m = 0;
    for (gsize i = 0; i < n; i++) {
        if (!(sflags[i] & (SP_SCAN_PAGE_GONE | SP_SCAN_PAGE_VOLATILE))) {
            mp[i].flags &= ~SP_MODEL_PAGE_UNIQUE;
            order[m++] = (guint32)i;
        }
    }
    sp_sort_pages(&ctx, order, m);

    for (gsize s = 0; s < m;) {
        gsize e = s + 1;
        while (e < m && hash[order[e]] == hash[order[s]] &&
               (!ctx.node || ctx.node[order[e]] == ctx.node[order[s]]))
            e++;
        sp_classify_group(&c, order + s, e - s);
        s = e;
    }
    sp_flush_batch(&c);
    est->volatile_pages += est->changed;
    *n_classes = c.next_class;
    est->classes = c.next_class;
}

/* See "THP splits" above.  Marks the remapped pages in @removed. */
static void
sp_estimate_thp_zero_remap(SpEstimate *est, SpScan *scan, const SpModelPage *mp,
                           guint32 n_classes, guint8 *removed)
{
    const guint8 *sflags = sp_scan_get_flags(scan);
    gsize n = sp_scan_get_n_pages(scan), n_runs;
    const SpScanRun *runs = sp_scan_get_runs(scan, &n_runs);
    g_autofree guint8 *count = g_new0(guint8, MAX(n_classes, 1));   /* saturates at 2 */

#define SP_MERGES(q) (!(sflags[q] & SP_SCAN_PAGE_GONE) && \
                      !(mp[q].flags & SP_MODEL_PAGE_UNIQUE) && count[mp[q].klass] >= 2)
    for (gsize p = 0; p < n; p++) {
        if (!(sflags[p] & SP_SCAN_PAGE_GONE) && !(mp[p].flags & SP_MODEL_PAGE_UNIQUE) &&
            count[mp[p].klass] < 2)
            count[mp[p].klass]++;
    }
    for (gsize r = 0; r < n_runs; r++) {
        for (gsize k = 0; k < runs[r].n;) {
            gsize e = k;
            guint64 huge = (runs[r].addr + k * SP_PAGE_SIZE) >> 21;
            gboolean split = FALSE;

            if (!(sflags[runs[r].first + k] & SP_SCAN_PAGE_THP)) {
                k++;
                continue;
            }
            /* The THP: consecutive THP pages in the same 2 MiB frame. */
            while (e < runs[r].n && (sflags[runs[r].first + e] & SP_SCAN_PAGE_THP) &&
                   ((runs[r].addr + e * SP_PAGE_SIZE) >> 21) == huge) {
                if (SP_MERGES(runs[r].first + e))
                    split = TRUE;
                e++;
            }
            for (gsize i = k; split && i < e; i++) {
                gsize q = runs[r].first + i;
                if (!(sflags[q] & SP_SCAN_PAGE_GONE) && (mp[q].flags & SP_MODEL_PAGE_ZERO)) {
                    removed[q / 8] |= 1u << (q % 8);
                    est->proc[runs[r].source].thp_zero_remapped++;
                    est->thp_zero_remapped++;
                }
            }
            k = e;
        }
    }
#undef SP_MERGES
}

/* The sharing matrix: stable pages grouped by class with a counting sort. */
static void
sp_estimate_matrix(SpEstimate *est, const SpModel *model, gsize n_model, const gsize *mm_first,
                   guint32 n_classes)
{
    guint np = est->n_proc;
    g_autofree guint32 *start = g_new0(guint32, (gsize)n_classes + 1);
    g_autofree guint32 *mm_of = NULL;
    g_autofree guint64 *count = g_new0(guint64, np);
    gsize n_stable = 0;
    guint mm;

    for (gsize i = 0; i < n_model; i++) {
        if (sp_model_page_state(model, i) == SP_MODEL_STATE_STABLE) {
            start[sp_model_page_class(model, i) + 1]++;
            n_stable++;
        }
    }
    for (guint32 k = 0; k < n_classes; k++)
        start[k + 1] += start[k];
    mm_of = g_new(guint32, MAX(n_stable, 1));
    mm = 0;
    for (gsize i = 0; i < n_model; i++) {
        while (mm + 1 < np && i >= mm_first[mm + 1])
            mm++;
        if (sp_model_page_state(model, i) == SP_MODEL_STATE_STABLE)
            mm_of[start[sp_model_page_class(model, i)]++] = mm;
    }
    /* start[k] is now the end of class k, i.e. the start of class k + 1. */
    for (guint32 k = 0, s = 0; k < n_classes; k++) {
        guint32 e = start[k];
        if (e == s)
            continue;
        memset(count, 0, np * sizeof(guint64));
        for (guint32 i = s; i < e; i++)
            count[mm_of[i]]++;
        for (guint p = 0; p < np; p++) {
            if (!count[p])
                continue;
            for (guint q = 0; q < np; q++) {
                if (p == q) {
                    if (count[p] >= 2)
                        est->matrix[p * np + p] += count[p];
                } else if (count[q]) {
                    est->matrix[p * np + q] += count[p];
                }
            }
        }
        s = e;
    }
}

/**
 * sp_estimate_run:
 * @scan: a scan that has run (sp_scan_run()); its hashes are released
 * @opt: the KSM settings to predict for
 *
 * Returns: (transfer full): the prediction.
 */
SpEstimate *
sp_estimate_run(SpScan *scan, const SpEstimateOptions *opt, GError **error)
{
    g_autoptr(SpEstimate) est = g_new0(SpEstimate, 1);
    gsize n = sp_scan_get_n_pages(scan), n_runs;
    const guint8 *sflags = sp_scan_get_flags(scan);
    const guint8 *nodes = sp_scan_get_nodes(scan);
    const SpScanRun *runs;
    g_autofree SpModelPage *mp = NULL;
    g_autofree guint8 *removed = NULL;
    g_autofree gsize *mm_first = NULL;
    g_autoptr(SpModel) model = NULL;
    guint32 n_classes = 0;
    gsize m = 0, mi;

    est->opt = *opt;
    if (!sp_scan_get_hashes(scan)) {
        g_set_error(error, SP_ESTIMATE_ERROR, SP_ESTIMATE_ERROR_INVALID,
                    "the scan has no page hashes (not run, or already estimated)");
        return NULL;
    }
    est->n_proc = sp_scan_get_n_sources(scan);
    est->proc = g_new0(SpEstimateProcess, est->n_proc);
    est->matrix = g_new0(guint64, (gsize)est->n_proc * est->n_proc);
    est->n_nodes = sp_scan_get_n_nodes(scan);
    est->nodes = g_new0(SpEstimateNode, est->n_nodes);
    est->partial = sp_scan_is_partial(scan);

    mp = g_new(SpModelPage, MAX(n, 1));
    sp_estimate_classify(est, scan, mp, &n_classes);
    sp_scan_release_hashes(scan);

    /* Pages that leave before the model: gone, or freed by a THP split. */
    removed = g_new0(guint8, n / 8 + 1);
    for (gsize p = 0; p < n; p++) {
        if (sflags[p] & SP_SCAN_PAGE_GONE)
            removed[p / 8] |= 1u << (p % 8);
    }
    if (opt->thp_zero_remap)
        sp_estimate_thp_zero_remap(est, scan, mp, n_classes, removed);
#define SP_REMOVED(p) (removed[(p) / 8] & (1u << ((p) % 8)))

    /* Model input: the pages that stay, in scan order, mm by mm; compacted
     * in place, then handed to the model, which keeps the array. */
    runs = sp_scan_get_runs(scan, &n_runs);
    mm_first = g_new0(gsize, est->n_proc + 1);
    {
        guint cur_mm = 0;
        for (gsize r = 0; r < n_runs; r++) {
            while (cur_mm < runs[r].source)
                mm_first[++cur_mm] = m;
            for (gsize k = 0; k < runs[r].n; k++) {
                gsize p = runs[r].first + k;
                if (SP_REMOVED(p))
                    continue;
                est->proc[runs[r].source].scanned_pages++;
                if (mp[p].flags & SP_MODEL_PAGE_VOLATILE)
                    est->proc[runs[r].source].volatile_pages++;
                est->nodes[nodes ? nodes[p] : 0].scanned_pages++;
                mp[m++] = mp[p];
            }
        }
        while (cur_mm < est->n_proc)
            mm_first[++cur_mm] = m;
    }

    model = sp_model_new_take(&opt->model, g_steal_pointer(&mp), m, n_classes, mm_first,
                              est->n_proc, error);
    if (!model)
        return NULL;
    est->passes = sp_model_run_until_converged(model, opt->max_passes, &est->converged);
    sp_model_get_counters(model, &est->counters);

    /* Per node: walk the scan order again, counting model indices. */
    mi = 0;
    for (gsize r = 0; r < n_runs; r++) {
        for (gsize k = 0; k < runs[r].n; k++) {
            gsize p = runs[r].first + k;
            guint node = nodes ? nodes[p] : 0;
            SpModelState st;

            if (SP_REMOVED(p))
                continue;
            st = sp_model_page_state(model, mi++);
            if (st == SP_MODEL_STATE_STABLE)
                est->nodes[node].stable_pages++;
            else if (st == SP_MODEL_STATE_ZERO_MERGED || st == SP_MODEL_STATE_GONE)
                est->nodes[node].zero_merged_pages++;
        }
    }
#undef SP_REMOVED
    sp_estimate_matrix(est, model, m, mm_first, n_classes);

    for (guint i = 0; i < est->n_proc; i++) {
        const SpScanSource *src = sp_scan_get_source(scan, i);
        SpEstimateProcess *pr = &est->proc[i];

        pr->pid = src->pid;
        pr->label = g_strdup(src->label);
        pr->present_pages = src->present_pages;
        pr->partial = src->partial;
        pr->partial_reason = g_strdup(src->partial_reason);
        sp_model_get_mm_counters(model, i, &pr->ksm);
    }
    est->saved_zero = est->counters.pages_sharing_zero + est->counters.ksm_zero_pages +
        est->thp_zero_remapped;
    est->saved_nonzero = est->counters.pages_sharing - est->counters.pages_sharing_zero;
    return g_steal_pointer(&est);
}

const SpModelCounters *
sp_estimate_get_counters(const SpEstimate *est)
{
    return &est->counters;
}

guint
sp_estimate_get_n_processes(const SpEstimate *est)
{
    return est->n_proc;
}

const SpEstimateProcess *
sp_estimate_get_process(const SpEstimate *est, guint i)
{
    g_return_val_if_fail(i < est->n_proc, NULL);
    return &est->proc[i];
}

const guint64 *
sp_estimate_get_matrix(const SpEstimate *est)
{
    return est->matrix;
}

guint
sp_estimate_get_n_nodes(const SpEstimate *est)
{
    return est->n_nodes;
}

const SpEstimateNode *
sp_estimate_get_node(const SpEstimate *est, guint i)
{
    g_return_val_if_fail(i < est->n_nodes, NULL);
    return &est->nodes[i];
}

guint64
sp_estimate_get_saved_zero(const SpEstimate *est)
{
    return est->saved_zero;
}

guint64
sp_estimate_get_thp_zero_remapped(const SpEstimate *est)
{
    return est->thp_zero_remapped;
}

guint64
sp_estimate_get_saved_nonzero(const SpEstimate *est)
{
    return est->saved_nonzero;
}

guint
sp_estimate_get_passes(const SpEstimate *est, gboolean *converged)
{
    if (converged)
        *converged = est->converged;
    return est->passes;
}

gboolean
sp_estimate_is_partial(const SpEstimate *est)
{
    for (guint i = 0; i < est->n_proc; i++) {
        if (est->proc[i].partial)
            return TRUE;
    }
    return est->partial;
}

static void
sp_json_u64(json_object *o, const char *k, guint64 v)
{
    json_object_object_add(o, k, json_object_new_int64((gint64)v));
}

/**
 * sp_estimate_to_json:
 *
 * The figures under their sysfs names, then "processes" (ksm_stat names),
 * "saved_pages", "sharing_matrix", "nodes", "model" and "scan".
 */
json_object *
sp_estimate_to_json(const SpEstimate *est)
{
    const SpModelCounters *c = &est->counters;
    json_object *o = json_object_new_object();
    json_object *procs = json_object_new_array();
    json_object *saved = json_object_new_object();
    json_object *matrix = json_object_new_object();
    json_object *mpids = json_object_new_array();
    json_object *mrows = json_object_new_array();
    json_object *nodes = json_object_new_array();
    json_object *model = json_object_new_object();
    json_object *stats = json_object_new_object();

    sp_json_u64(o, "pages_shared", c->pages_shared);
    sp_json_u64(o, "pages_sharing", c->pages_sharing);
    sp_json_u64(o, "pages_unshared", c->pages_unshared);
    sp_json_u64(o, "pages_volatile", c->pages_volatile);
    sp_json_u64(o, "ksm_zero_pages", c->ksm_zero_pages);
    sp_json_u64(o, "stable_node_chains", c->stable_node_chains);
    sp_json_u64(o, "stable_node_dups", c->stable_node_dups);
    json_object_object_add(o, "general_profit", json_object_new_int64(c->general_profit));
    sp_json_u64(o, "ksm_rmap_items", c->rmap_items);
    json_object_object_add(o, "partial", json_object_new_boolean(sp_estimate_is_partial(est)));

    for (guint i = 0; i < est->n_proc; i++) {
        const SpEstimateProcess *p = &est->proc[i];
        json_object *po = json_object_new_object();
        json_object_object_add(po, "pid", json_object_new_int(p->pid));
        json_object_object_add(po, "label", json_object_new_string(p->label));
        sp_json_u64(po, "ksm_rmap_items", p->ksm.ksm_rmap_items);
        sp_json_u64(po, "ksm_zero_pages", p->ksm.ksm_zero_pages);
        sp_json_u64(po, "ksm_merging_pages", p->ksm.ksm_merging_pages);
        json_object_object_add(po, "ksm_process_profit",
                               json_object_new_int64(p->ksm.ksm_process_profit));
        sp_json_u64(po, "present_pages", p->present_pages);
        sp_json_u64(po, "scanned_pages", p->scanned_pages);
        sp_json_u64(po, "volatile_pages", p->volatile_pages);
        sp_json_u64(po, "thp_zero_remapped", p->thp_zero_remapped);
        json_object_object_add(po, "partial", json_object_new_boolean(p->partial));
        if (p->partial_reason)
            json_object_object_add(po, "partial_reason", json_object_new_string(p->partial_reason));
        json_object_array_add(procs, po);
        json_object_array_add(mpids, json_object_new_int(p->pid));
        json_object *row = json_object_new_array();
        for (guint j = 0; j < est->n_proc; j++)
            json_object_array_add(row, json_object_new_int64(est->matrix[i * est->n_proc + j]));
        json_object_array_add(mrows, row);
    }
    json_object_object_add(o, "processes", procs);

    sp_json_u64(saved, "zero_filled", est->saved_zero);
    sp_json_u64(saved, "thp_zero_remapped", est->thp_zero_remapped);
    sp_json_u64(saved, "other", est->saved_nonzero);
    sp_json_u64(saved, "total", est->saved_zero + est->saved_nonzero);
    sp_json_u64(saved, "bytes", (est->saved_zero + est->saved_nonzero) * SP_PAGE_SIZE);
    json_object_object_add(o, "saved_pages", saved);

    json_object_object_add(matrix, "pids", mpids);
    json_object_object_add(matrix, "pages", mrows);
    json_object_object_add(o, "sharing_matrix", matrix);

    for (guint i = 0; i < est->n_nodes; i++) {
        json_object *no = json_object_new_object();
        json_object_object_add(no, "node", json_object_new_int(i));
        sp_json_u64(no, "scanned_pages", est->nodes[i].scanned_pages);
        sp_json_u64(no, "stable_pages", est->nodes[i].stable_pages);
        sp_json_u64(no, "zero_merged_pages", est->nodes[i].zero_merged_pages);
        json_object_array_add(nodes, no);
    }
    json_object_object_add(o, "nodes", nodes);

    sp_json_u64(model, "max_page_sharing", est->opt.model.max_page_sharing);
    json_object_object_add(model, "use_zero_pages", json_object_new_int(est->opt.model.use_zero_pages));
    json_object_object_add(model, "merge_across_nodes", json_object_new_int(est->opt.merge_across_nodes));
    json_object_object_add(model, "smart_scan", json_object_new_int(est->opt.model.smart_scan));
    json_object_object_add(model, "checksum_first", json_object_new_boolean(est->opt.model.checksum_first));
    json_object_object_add(model, "thp_zero_remap", json_object_new_boolean(est->opt.thp_zero_remap));
    json_object_object_add(model, "passes", json_object_new_int(est->passes));
    json_object_object_add(model, "converged", json_object_new_boolean(est->converged));
    json_object_object_add(o, "model", model);

    sp_json_u64(stats, "contents", est->classes);
    sp_json_u64(stats, "duplicated_contents", est->dup_classes);
    sp_json_u64(stats, "volatile_pages", est->volatile_pages);
    sp_json_u64(stats, "changed_while_confirming", est->changed);
    sp_json_u64(stats, "hash_collisions", est->collisions);
    json_object_object_add(o, "scan", stats);
    return o;
}
