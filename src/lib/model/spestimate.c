/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spestimate.c: from scanned pages to the figures KSM will converge to
 *
 * Theory of operation
 *
 * 1. Contents.  The scan grouped the pages while reading them: every page
 *    whose hash matched an earlier page's was compared with it byte for
 *    byte (see spscan.c), so each page points to a representative it
 *    equals, or to itself.  Pages that did not change between scan passes
 *    and did not vanish, and share a representative, are one content class
 *    when there are two or more of them (with merge_across_nodes=0, one
 *    class per NUMA node); any other page is unique.  A page found changed
 *    while it was being compared is volatile.  So a hash collision can
 *    never make two different pages count as one, and no page is read
 *    here.
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
#include "samepage/spproc.h"
#include "spestimatepriv.h"

G_DEFINE_QUARK(sp-estimate-error-quark, sp_estimate_error)

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
    guint64 confirm_reads;         /* pages read again to confirm a duplicate */
    guint64 node_bound;            /* stable nodes the model may allocate */
    guint64 state_bytes;           /* peak of per-page and per-content state */
    guint64 volatile_pages;
    guint64 gone_pages;
    guint64 classes;
    guint64 dup_classes;           /* contents held by >= 2 pages */
    guint64 thp_zero_remapped;
    guint64 present_pages;
    guint64 unmerged_pages;
    SpScanZeroMethod zero_method;
    char *zero_reason;
    double cpu_s;                  /* thread CPU of sp_estimate_targets(), or 0 */
};


void
sp_estimate_options_init(SpEstimateOptions *opt)
{
    sp_model_config_init(&opt->model);
    opt->merge_across_nodes = TRUE;
    opt->thp_zero_remap = TRUE;
    opt->max_passes = 64;
}

/* ------------------------------------------------------------------ profiles */

/*
 * The kernel behaviours the model follows, by release: 6.11 moved the
 * checksum gate before the stable-tree search (d58a361b0350); since 6.12 a
 * THP split maps the zero-filled subpages to the shared zero page
 * (b1f202060afe).  The one table of them: --kernel-profile, the running
 * kernel's profile and the help texts all come from here.
 */
static const SpEstimateProfile sp_estimate_profiles[] = {
    { "6.6", 6, 6, FALSE, FALSE, "stable search first" },
    { "6.11", 6, 11, TRUE, FALSE, "checksum first" },
    { "6.12", 6, 12, TRUE, TRUE, "and THP splits free zero subpages" },
};

/**
 * sp_estimate_get_profiles:
 * @n: (out): how many
 *
 * Returns: (array length=n): the kernel profiles, oldest first.
 */
const SpEstimateProfile *
sp_estimate_get_profiles(guint *n)
{
    *n = G_N_ELEMENTS(sp_estimate_profiles);
    return sp_estimate_profiles;
}

/**
 * sp_estimate_profile_find:
 * @name: "6.6", "6.11" or "6.12"
 *
 * Returns: (nullable): the profile of that name, or NULL.
 */
const SpEstimateProfile *
sp_estimate_profile_find(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(sp_estimate_profiles); i++) {
        if (g_str_equal(sp_estimate_profiles[i].name, name))
            return &sp_estimate_profiles[i];
    }
    return NULL;
}

/**
 * sp_estimate_profile_for_release:
 * @release: a kernel release, "6.12.5-amd64" say
 *
 * Returns: the newest profile whose first release is not after @release;
 * the oldest for an older kernel, the newest for a release that cannot be
 * read (a current kernel is assumed).
 */
const SpEstimateProfile *
sp_estimate_profile_for_release(const char *release)
{
    const gsize n = G_N_ELEMENTS(sp_estimate_profiles);
    const SpEstimateProfile *best = &sp_estimate_profiles[0];
    guint ma = 0, mi = 0;

    if (!release || !sp_proc_release_version(release, &ma, &mi))
        return &sp_estimate_profiles[n - 1];
    for (gsize i = 0; i < n; i++) {
        const SpEstimateProfile *p = &sp_estimate_profiles[i];
        if (ma > p->major || (ma == p->major && mi >= p->minor))
            best = p;
    }
    return best;
}

/**
 * sp_estimate_profile_names:
 *
 * Returns: (transfer full): the names as a sentence: "6.6, 6.11 or 6.12".
 */
char *
sp_estimate_profile_names(void)
{
    GString *s = g_string_new(NULL);
    const gsize n = G_N_ELEMENTS(sp_estimate_profiles);

    for (gsize i = 0; i < n; i++) {
        if (i > 0)
            g_string_append(s, i + 1 == n ? " or " : ", ");
        g_string_append(s, sp_estimate_profiles[i].name);
    }
    return g_string_free(s, FALSE);
}

/**
 * sp_estimate_options_set_profile:
 *
 * Predict for the kernel behaviours of @profile.
 */
void
sp_estimate_options_set_profile(SpEstimateOptions *opt, const SpEstimateProfile *profile)
{
    opt->model.checksum_first = profile->checksum_first;
    opt->thp_zero_remap = profile->thp_zero_remap;
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
    release = sp_proc_read_osrelease(host, NULL);
    if (release)
        sp_estimate_options_set_profile(opt, sp_estimate_profile_for_release(release));
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
    g_free(est->zero_reason);
    g_free(est);
}

/* ------------------------------------------------------------------ contents */

/* Private to classification: a representative whose class is in klass. */
#define SP_HAS_CLASS 0x80
G_STATIC_ASSERT((SP_HAS_CLASS & SP_MODEL_PAGE_FLAGS_ALL) == 0);

/* sp_model_node_bound() for one content of @c pages: the most stable nodes
 * the model can allocate for it (for the state-bytes figure). */
static guint64
sp_node_bound(guint64 c, guint max_page_sharing)
{
    return MIN(c / 2, c / max_page_sharing + (c % max_page_sharing ? 1 : 0));
}

/* Sort page indices by (class, index), in place (per-node split only). */
static inline gboolean
sp_class_less(const SpModelPage *mp, guint32 a, guint32 b)
{
    return mp[a].klass != mp[b].klass ? mp[a].klass < mp[b].klass : a < b;
}

static void
sp_sort_by_class(const SpModelPage *mp, guint32 *v, gsize n)
{
    while (n > 16) {
        guint32 a = v[0], b = v[n / 2], d = v[n - 1], p;
        gsize i = 0, j = n - 1;

        /* median of three */
        if (sp_class_less(mp, a, b))
            p = sp_class_less(mp, b, d) ? b : (sp_class_less(mp, a, d) ? d : a);
        else
            p = sp_class_less(mp, a, d) ? a : (sp_class_less(mp, b, d) ? d : b);
        for (;;) {
            while (sp_class_less(mp, v[i], p))
                i++;
            while (sp_class_less(mp, p, v[j]))
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
            sp_sort_by_class(mp, v, left);
            v += left;
            n -= left;
        } else {
            sp_sort_by_class(mp, v + left, n - left);
            n = left;
        }
    }
    for (gsize i = 1; i < n; i++) {
        guint32 x = v[i];
        gsize j = i;
        while (j > 0 && sp_class_less(mp, x, v[j - 1])) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/*
 * merge_across_nodes=0: one tree per node, so a content is one class per
 * node.  The classed pages are ordered by (node, class), and every run of
 * two or more gets a class of its own; a lone page is unique.
 */
static guint32
sp_estimate_split_nodes(SpEstimate *est, gsize n, const guint8 *nodes, guint n_nodes,
                        SpModelPage *mp, gsize scan_bytes)
{
    g_autofree guint32 *start = g_new0(guint32, n_nodes + 1);
    g_autofree guint32 *order = NULL;
    gsize m = 0;
    guint32 next = 0;

    for (gsize p = 0; p < n; p++) {
        if (!(mp[p].flags & SP_MODEL_PAGE_UNIQUE)) {
            start[nodes[p] + 1]++;
            m++;
        }
    }
    order = g_new(guint32, MAX(m, 1));
    est->state_bytes = MAX(est->state_bytes, scan_bytes + n * sizeof(SpModelPage) +
                           m * sizeof(guint32));
    for (guint k = 0; k < n_nodes; k++)
        start[k + 1] += start[k];
    for (gsize p = 0; p < n; p++) {
        if (!(mp[p].flags & SP_MODEL_PAGE_UNIQUE))
            order[start[nodes[p]]++] = (guint32)p;
    }
    /* start[k] is now the end of node k's pages */
    est->node_bound = 0;
    for (guint k = 0, s = 0; k < n_nodes; s = start[k], k++) {
        sp_sort_by_class(mp, order + s, start[k] - s);
        for (gsize i = s; i < start[k];) {
            guint32 old = mp[order[i]].klass;
            gsize e = i + 1;

            while (e < start[k] && mp[order[e]].klass == old)
                e++;
            if (e - i >= 2) {
                est->node_bound += sp_node_bound(e - i, est->opt.model.max_page_sharing);
                for (gsize j = i; j < e; j++)
                    mp[order[j]].klass = next;
                next++;
            } else {
                mp[order[i]].klass = 0;
                mp[order[i]].flags |= SP_MODEL_PAGE_UNIQUE;
            }
            i = e;
        }
    }
    return next;
}

/*
 * Fill mp[] (one entry per scanned page, in scan order) with content
 * classes from the scan's representatives (sp_scan_get_reps(): every page
 * was compared byte for byte with its representative during the scan):
 * the non-volatile pages that share a representative are a class when they
 * are two or more; any other page is SP_MODEL_PAGE_UNIQUE.  Gone pages are
 * left UNIQUE too (the caller drops them).  A representative may itself be
 * volatile or gone: the others stay equal to each other.
 */
static guint32
sp_estimate_classify(SpEstimate *est, SpScan *scan, SpModelPage *mp)
{
    gsize n = sp_scan_get_n_pages(scan);
    const guint32 *rep = sp_scan_get_reps(scan);
    const guint8 *sflags = sp_scan_get_flags(scan);
    const guint8 *nodes = sp_scan_get_nodes(scan);
    guint n_nodes = sp_scan_get_n_nodes(scan);
    guint32 next = 0;

#define SP_LIVE(p) (!(sflags[p] & (SP_SCAN_PAGE_GONE | SP_SCAN_PAGE_VOLATILE)))
    for (gsize p = 0; p < n; p++) {
        mp[p].klass = 0;
        if (sflags[p] & SP_SCAN_PAGE_GONE) {
            mp[p].flags = SP_MODEL_PAGE_UNIQUE;
        } else if (sflags[p] & SP_SCAN_PAGE_VOLATILE) {
            mp[p].flags = SP_MODEL_PAGE_UNIQUE | SP_MODEL_PAGE_VOLATILE;
            est->volatile_pages++;
        } else {
            mp[p].flags = sflags[p] & SP_SCAN_PAGE_ZERO ? SP_MODEL_PAGE_ZERO : 0;
        }
    }
    /* Live members per representative, counted in its own klass... */
    for (gsize p = 0; p < n; p++) {
        if (SP_LIVE(p))
            mp[rep[p]].klass++;
    }
    /* ...which becomes the class of a representative with two or more... */
    for (gsize p = 0; p < n; p++) {
        if (rep[p] == p && mp[p].klass >= 2) {
            est->node_bound += sp_node_bound(mp[p].klass, est->opt.model.max_page_sharing);
            mp[p].klass = next++;
            mp[p].flags |= SP_HAS_CLASS;
        }
    }
    /* ...and of its members. */
    for (gsize p = 0; p < n; p++) {
        if (!SP_LIVE(p))
            continue;
        if (mp[rep[p]].flags & SP_HAS_CLASS) {
            mp[p].klass = mp[rep[p]].klass;
        } else {
            mp[p].klass = 0;
            mp[p].flags |= SP_MODEL_PAGE_UNIQUE;
        }
    }
    for (gsize p = 0; p < n; p++) {
        if (mp[p].flags & SP_MODEL_PAGE_UNIQUE) {
            mp[p].klass = 0;
            mp[p].flags &= ~SP_HAS_CLASS;
        }
    }
#undef SP_LIVE
    est->dup_classes = next;
    if (!est->opt.merge_across_nodes && nodes && n_nodes > 1) {
        next = sp_estimate_split_nodes(est, n, nodes, n_nodes, mp,
                                       sp_scan_get_state_bytes(scan));
    }
    for (gsize p = 0; p < n; p++)
        mp[p].flags &= ~SP_HAS_CLASS;
    est->classes = next;
    return next;
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
                    /* still an anonymous page: the split has not happened */
                    est->proc[runs[r].source].unmerged_pages++;
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
                   guint32 n_classes, gsize base_bytes)
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
    est->state_bytes = MAX(est->state_bytes, base_bytes + ((gsize)n_classes + 1 + n_stable) *
                           sizeof(guint32));
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
    gsize m = 0, mi, fixed_bytes;
    SpScanStats scan_stats;
    SpScanZeroMethod zero_method;
    const char *zero_reason = NULL;

    est->opt = *opt;
    if (!sp_scan_get_reps(scan)) {
        g_set_error(error, SP_ESTIMATE_ERROR, SP_ESTIMATE_ERROR_INVALID,
                    "the scan has no page contents (not run, or already estimated)");
        return NULL;
    }
    if (opt->model.max_page_sharing < 2) {
        g_set_error(error, SP_ESTIMATE_ERROR, SP_ESTIMATE_ERROR_INVALID,
                    "max_page_sharing %u is below 2", opt->model.max_page_sharing);
        return NULL;
    }
    sp_scan_get_stats(scan, &scan_stats);
    est->state_bytes = scan_stats.state_bytes;
    zero_method = sp_scan_get_zero_method(scan, &zero_reason);
    est->zero_method = zero_method;
    est->zero_reason = g_strdup(zero_reason);
    est->collisions = scan_stats.collisions;
    est->changed = scan_stats.changed;
    est->confirm_reads = scan_stats.confirm_reads;
    est->n_proc = sp_scan_get_n_sources(scan);
    est->proc = g_new0(SpEstimateProcess, est->n_proc);
    est->matrix = g_new0(guint64, (gsize)est->n_proc * est->n_proc);
    est->n_nodes = sp_scan_get_n_nodes(scan);
    est->nodes = g_new0(SpEstimateNode, est->n_nodes);
    est->partial = sp_scan_is_partial(scan);

    /* The scan grouped the pages: hashes are no longer needed. */
    sp_scan_release_hashes(scan);
    mp = g_new(SpModelPage, MAX(n, 1));
    est->state_bytes = MAX(est->state_bytes, sp_scan_get_state_bytes(scan) +
                           n * sizeof(SpModelPage));
    n_classes = sp_estimate_classify(est, scan, mp);
    sp_scan_release_reps(scan);

    /* Pages that leave before the model: gone, or freed by a THP split. */
    removed = g_new0(guint8, n / 8 + 1);
    /* From here on: the scan's flags (and nodes), mp (the model's items),
     * the removed bits, and the model's 8 bytes per class and per node. */
    fixed_bytes = sp_scan_get_state_bytes(scan) + n * sizeof(SpModelPage) + n / 8 + 1;
    est->state_bytes = MAX(est->state_bytes, fixed_bytes + n_classes * (gsize)2 * sizeof(guint32) +
                           est->node_bound * 2 * sizeof(guint32));
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

    /* Per node: walk the scan order again, counting model indices.  A page
     * the model merges that was not a KSM page when read is one the kernel
     * holds apart now (kpageflags; without it, a page mapped once). */
    mi = 0;
    for (gsize r = 0; r < n_runs; r++) {
        for (gsize k = 0; k < runs[r].n; k++) {
            gsize p = runs[r].first + k;
            guint node = nodes ? nodes[p] : 0;
            guint8 merged_now = zero_method == SP_SCAN_ZERO_KPAGEFLAGS ? SP_SCAN_PAGE_KSM
                                                                      : SP_SCAN_PAGE_SHARED;
            SpModelState st;

            if (SP_REMOVED(p))
                continue;
            st = sp_model_page_state(model, mi++);
            if (st == SP_MODEL_STATE_STABLE)
                est->nodes[node].stable_pages++;
            else if (st == SP_MODEL_STATE_ZERO_MERGED || st == SP_MODEL_STATE_GONE)
                est->nodes[node].zero_merged_pages++;
            if ((st == SP_MODEL_STATE_STABLE || st == SP_MODEL_STATE_ZERO_MERGED) &&
                !(sflags[p] & merged_now))
                est->proc[runs[r].source].unmerged_pages++;
        }
    }
#undef SP_REMOVED
    sp_estimate_matrix(est, model, m, mm_first, n_classes,
                       fixed_bytes + n_classes * (gsize)2 * sizeof(guint32) +
                       est->node_bound * 2 * sizeof(guint32));

    for (guint i = 0; i < est->n_proc; i++) {
        const SpScanSource *src = sp_scan_get_source(scan, i);
        SpEstimateProcess *pr = &est->proc[i];

        pr->pid = src->pid;
        pr->label = g_strdup(src->label);
        pr->present_pages = src->present_pages;
        pr->zero_mapped_pages = src->zero_mapped_pages;
        est->present_pages += src->present_pages;
        est->unmerged_pages += pr->unmerged_pages;
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

/**
 * sp_estimate_get_present_pages:
 *
 * Present anonymous pages found in the scanned memory (zero-page mappings
 * not included): the denominator of every share of the saving, which
 * never exceeds it.
 */
guint64
sp_estimate_get_present_pages(const SpEstimate *est)
{
    return est->present_pages;
}

/**
 * sp_estimate_get_unmerged_pages:
 *
 * Pages the model merges (or a THP split frees) that were not KSM pages
 * when they were read: equal contents the kernel holds apart at the time
 * of the scan.  Before ksmd runs, every page the model merges; once the
 * kernel has merged what the model does, about 0.  When the kernel settles
 * below the model, these are the pages that make the difference.
 */
guint64
sp_estimate_get_unmerged_pages(const SpEstimate *est)
{
    return est->unmerged_pages;
}

/**
 * sp_estimate_get_zero_method:
 * @reason: (out) (optional): why the zero page was guessed, or NULL
 *
 * How the scan told zero-page mappings apart (sp_scan_get_zero_method()).
 */
SpScanZeroMethod
sp_estimate_get_zero_method(const SpEstimate *est, const char **reason)
{
    if (reason)
        *reason = est->zero_reason;
    return est->zero_method;
}

guint64
sp_estimate_get_saved_nonzero(const SpEstimate *est)
{
    return est->saved_nonzero;
}

/* What merging saves in all, zero-filled and other pages, in bytes. */
guint64
sp_estimate_get_saved_bytes(const SpEstimate *est)
{
    return (est->saved_zero + est->saved_nonzero) * SP_PAGE_SIZE;
}

guint
sp_estimate_get_passes(const SpEstimate *est, gboolean *converged)
{
    if (converged)
        *converged = est->converged;
    return est->passes;
}

/**
 * sp_estimate_get_state_bytes:
 *
 * The peak of the state the scan and the estimate held per page and per
 * content (arrays, hash table, the model's items, classes and nodes), from
 * the sizes of those structures; fixed-size buffers are not counted.
 */
guint64
sp_estimate_get_state_bytes(const SpEstimate *est)
{
    return est->state_bytes;
}

/* For sp_estimate_targets(): what its thread spent (spestimatepriv.h). */
void
sp_estimate_set_cpu_seconds(SpEstimate *est, double cpu_s)
{
    est->cpu_s = cpu_s;
}

/**
 * sp_estimate_get_cpu_seconds:
 *
 * The CPU time the scan and the model took in the thread that ran them
 * (sp_estimate_targets(), or the worker of sp_estimate_targets_async()),
 * the cost an agent keeps within its budget; 0 for sp_estimate_run().
 */
double
sp_estimate_get_cpu_seconds(const SpEstimate *est)
{
    return est->cpu_s;
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
 * "saved" (pages and bytes), "sharing_matrix", "nodes", "model" and "scan"
 * (data/samepage.schema.json, `samepage estimate --json`).
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
        /* An image file is no process: pid null. */
        json_object_object_add(po, "pid", p->pid ? json_object_new_int(p->pid) : NULL);
        json_object_object_add(po, "label", json_object_new_string(p->label));
        sp_json_u64(po, "ksm_rmap_items", p->ksm.ksm_rmap_items);
        sp_json_u64(po, "ksm_zero_pages", p->ksm.ksm_zero_pages);
        sp_json_u64(po, "ksm_merging_pages", p->ksm.ksm_merging_pages);
        json_object_object_add(po, "ksm_process_profit",
                               json_object_new_int64(p->ksm.ksm_process_profit));
        sp_json_u64(po, "present_pages", p->present_pages);
        sp_json_u64(po, "scanned_pages", p->scanned_pages);
        sp_json_u64(po, "volatile_pages", p->volatile_pages);
        sp_json_u64(po, "thp_zero_remapped_pages", p->thp_zero_remapped);
        sp_json_u64(po, "zero_mapped_pages", p->zero_mapped_pages);
        sp_json_u64(po, "unmerged_pages", p->unmerged_pages);
        json_object_object_add(po, "partial", json_object_new_boolean(p->partial));
        if (p->partial_reason)
            json_object_object_add(po, "partial_reason", json_object_new_string(p->partial_reason));
        json_object_array_add(procs, po);
        json_object_array_add(mpids, p->pid ? json_object_new_int(p->pid) : NULL);
        json_object *row = json_object_new_array();
        for (guint j = 0; j < est->n_proc; j++)
            json_object_array_add(row, json_object_new_int64(est->matrix[i * est->n_proc + j]));
        json_object_array_add(mrows, row);
    }
    json_object_object_add(o, "processes", procs);

    sp_json_u64(saved, "zero_filled_pages", est->saved_zero);
    sp_json_u64(saved, "thp_zero_remapped_pages", est->thp_zero_remapped);
    sp_json_u64(saved, "other_pages", est->saved_nonzero);
    sp_json_u64(saved, "total_pages", est->saved_zero + est->saved_nonzero);
    sp_json_u64(saved, "total_bytes", sp_estimate_get_saved_bytes(est));
    sp_json_u64(saved, "present_pages", est->present_pages);
    json_object_object_add(saved, "percent_of_present",
                           json_object_new_double(est->present_pages
                               ? 100.0 * (est->saved_zero + est->saved_nonzero) / est->present_pages
                               : 0.0));
    json_object_object_add(o, "saved", saved);
    sp_json_u64(o, "unmerged_pages", est->unmerged_pages);

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
    sp_json_u64(stats, "confirm_reads", est->confirm_reads);
    sp_json_u64(stats, "state_bytes", est->state_bytes);
    json_object_object_add(stats, "zero_page_from",
                           json_object_new_string(est->zero_method == SP_SCAN_ZERO_KPAGEFLAGS
                                                  ? "kpageflags" : "guessed"));
    if (est->zero_reason)
        json_object_object_add(stats, "zero_page_guess_reason",
                               json_object_new_string(est->zero_reason));
    json_object_object_add(o, "scan", stats);
    return o;
}
