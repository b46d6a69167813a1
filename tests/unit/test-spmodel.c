/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "samepage/spmodel.h"
#include "sptest.h"

/* ------------------------------------------------------------ input builder */

typedef struct {
    GArray *pages;      /* SpModelPage */
    GArray *mm_first;   /* gsize; the last entry is added by build_model() */
    guint32 n_classes;
} Build;

static Build *
build_new(void)
{
    Build *b = g_new0(Build, 1);

    b->pages = g_array_new(FALSE, FALSE, sizeof(SpModelPage));
    b->mm_first = g_array_new(FALSE, FALSE, sizeof(gsize));
    return b;
}

static void
build_free(Build *b)
{
    g_array_unref(b->pages);
    g_array_unref(b->mm_first);
    g_free(b);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Build, build_free)

/* Starts the next mm. */
static void
build_mm(Build *b)
{
    gsize at = b->pages->len;

    g_array_append_val(b->mm_first, at);
}

static guint32
build_class(Build *b)
{
    return b->n_classes++;
}

/* Adds @count pages of @klass to the current mm; returns the first's index. */
static gsize
build_add(Build *b, guint32 klass, guint8 flags, gsize count)
{
    SpModelPage pg = { .klass = klass, .flags = flags };
    gsize first = b->pages->len;

    for (gsize i = 0; i < count; i++)
        g_array_append_val(b->pages, pg);
    return first;
}

/* Adds @count pages, each of a class of its own. */
static void
build_add_unique(Build *b, guint8 flags, gsize count)
{
    for (gsize i = 0; i < count; i++)
        build_add(b, build_class(b), flags, 1);
}

static SpModel *
build_model(Build *b, const SpModelConfig *cfg)
{
    g_autoptr(GArray) mm_first = g_array_copy(b->mm_first);
    g_autoptr(GError) error = NULL;
    gsize end = b->pages->len;
    SpModel *m;

    g_array_append_val(mm_first, end);
    m = sp_model_new(cfg, (const SpModelPage *)b->pages->data, b->pages->len, b->n_classes,
                     (const gsize *)mm_first->data, mm_first->len - 1, &error);
    if (!m)
        fail_msg("sp_model_new: %s", error->message);
    return m;
}

static SpModelCounters
counters(const SpModel *m)
{
    SpModelCounters c;

    sp_model_get_counters(m, &c);
    return c;
}

static SpModelMmCounters
mm_counters(const SpModel *m, guint mm)
{
    SpModelMmCounters c;

    sp_model_get_mm_counters(m, mm, &c);
    return c;
}

static SpModelConfig
config(gboolean checksum_first, gboolean smart_scan, guint max_page_sharing)
{
    SpModelConfig cfg;

    sp_model_config_init(&cfg);
    cfg.checksum_first = checksum_first;
    cfg.smart_scan = smart_scan;
    cfg.max_page_sharing = max_page_sharing;
    return cfg;
}

static void
run_passes(SpModel *m, guint n)
{
    for (guint i = 0; i < n; i++)
        sp_model_run_pass(m);
}

/* The invariants of A.5 that hold after every pass. */
static void
assert_consistent(const SpModel *m, guint n_mm)
{
    SpModelCounters c = counters(m);
    guint64 merging = 0, items = 0, zero = 0;

    for (guint i = 0; i < n_mm; i++) {
        SpModelMmCounters mc = mm_counters(m, i);

        merging += mc.ksm_merging_pages;
        items += mc.ksm_rmap_items;
        zero += mc.ksm_zero_pages;
        assert_int_equal(mc.ksm_process_profit,
                         (gint64)(mc.ksm_merging_pages + mc.ksm_zero_pages) * 4096 -
                         (gint64)mc.ksm_rmap_items * 64);
    }
    assert_int_equal(merging, c.pages_shared + c.pages_sharing);
    assert_int_equal(items, c.rmap_items);
    assert_int_equal(zero, c.ksm_zero_pages);
    assert_int_equal(c.pages_volatile,
                     c.rmap_items - c.pages_shared - c.pages_sharing - c.pages_unshared);
    assert_int_equal(c.general_profit, (gint64)(c.pages_sharing + c.ksm_zero_pages) * 4096 -
                                       (gint64)c.rmap_items * 64);
}

/* ksm_tests.c assert_ksm_pages_count(): N identical pages, max_page_sharing M. */
static void
expected_formula(guint64 n, guint64 mps, guint64 *shared, guint64 *sharing)
{
    if (n % mps == 0 || n % mps == 1) {
        *shared = n / mps;
        *sharing = *shared * (mps - 1);
    } else {
        *shared = n / mps + 1;
        *sharing = n - *shared;
    }
}

/* ------------------------------------------------------------------- tests */

static void
test_config_defaults(void **state)
{
    SpModelConfig cfg;

    memset(&cfg, 0xa5, sizeof(cfg));
    sp_model_config_init(&cfg);
    assert_int_equal(cfg.max_page_sharing, 256);
    assert_false(cfg.use_zero_pages);
    assert_true(cfg.smart_scan);
    assert_true(cfg.checksum_first);
}

/*
 * ksm-model.md's example checked on kernel 6.18: 2 processes x 25,600 pages;
 * 10,000 pages equal across the processes, 1,000 groups of 4 equal pages in
 * each, 2,000 zero pages each, 1,000 volatile, the rest unique.
 */
static SpModel *
checked_example(const SpModelConfig *cfg)
{
    g_autoptr(Build) b = build_new();
    guint32 cross0 = b->n_classes;
    guint32 zero;

    b->n_classes += 10000;
    zero = build_class(b);
    for (guint mm = 0; mm < 2; mm++) {
        build_mm(b);
        /* Interleave the kinds, so that no kind sits in one block. */
        for (guint i = 0; i < 1000; i++) {
            guint32 group = build_class(b);

            for (guint j = 0; j < 10; j++)
                build_add(b, cross0 + i * 10 + j, 0, 1);
            build_add(b, group, 0, 2);
            build_add(b, zero, SP_MODEL_PAGE_ZERO, 2);
            build_add_unique(b, SP_MODEL_PAGE_VOLATILE, 1);
            build_add(b, group, 0, 2);
            build_add_unique(b, 0, 8);
        }
        build_add_unique(b, 0, 600);
    }
    assert_int_equal(b->pages->len, 2 * 25600);
    return build_model(b, cfg);
}

static void
test_checked_example(void **state)
{
    for (guint order = 0; order < 2; order++) {
        SpModelConfig cfg = config(order == 0, TRUE, 256);
        g_autoptr(SpModel) m = checked_example(&cfg);
        gboolean converged = FALSE;
        guint passes = sp_model_run_until_converged(m, 50, &converged);
        SpModelCounters c = counters(m);

        assert_true(converged);
        /* Merges in pass 2, then two quiet passes. */
        assert_int_equal(passes, 4);
        assert_int_equal(c.full_scans, 4);
        assert_int_equal(c.pages_shared, 12016);
        assert_int_equal(c.pages_sharing, 19984);
        assert_int_equal(c.stable_node_chains, 1);
        assert_int_equal(c.stable_node_dups, 16);
        assert_int_equal(c.pages_unshared + c.pages_volatile, 19200);
        assert_int_equal(c.pages_shared_zero, 16);
        assert_int_equal(c.pages_sharing_zero, 3984);
        assert_int_equal(c.ksm_zero_pages, 0);
        assert_int_equal(c.rmap_items, 51200);
        assert_int_equal(c.general_profit, 19984LL * 4096 - 51200LL * 64);
        for (guint mm = 0; mm < 2; mm++) {
            SpModelMmCounters mc = mm_counters(m, mm);

            assert_int_equal(mc.ksm_merging_pages, 16000);
            assert_int_equal(mc.ksm_rmap_items, 25600);
            assert_int_equal(mc.ksm_process_profit, 16000LL * 4096 - 25600LL * 64);
        }
        assert_consistent(m, 2);

        /* Pass 4 processed the unique pages again (age 3); pass 5 skips them
         * all, which is what a sample usually sees: pages_unshared 0. */
        assert_int_equal(c.pages_unshared, 17200);
        sp_model_run_pass(m);
        c = counters(m);
        assert_int_equal(c.pages_unshared, 0);
        assert_int_equal(c.pages_volatile, 19200);
        assert_int_equal(c.pages_skipped, 19200);
        assert_int_equal(c.pages_sharing, 19984);
    }

    /* Without smart scan the unique pages stay in the unstable tree. */
    SpModelConfig cfg = config(TRUE, FALSE, 256);
    g_autoptr(SpModel) m = checked_example(&cfg);
    gboolean converged = FALSE;

    sp_model_run_until_converged(m, 50, &converged);
    assert_true(converged);
    assert_int_equal(counters(m).pages_shared, 12016);
    assert_int_equal(counters(m).pages_sharing, 19984);
    assert_int_equal(counters(m).pages_unshared, 17200);
    assert_int_equal(counters(m).pages_volatile, 2000);
    assert_int_equal(counters(m).pages_skipped, 0);
}

/* A.5: N identical pages, max_page_sharing M, spread over three mms. */
static void
test_formula(void **state)
{
    const guint mps[] = { 2, 3, 4, 5, 7, 256 };

    for (gsize i = 0; i < G_N_ELEMENTS(mps); i++) {
        guint M = mps[i];
        g_autoptr(GArray) ns = g_array_new(FALSE, FALSE, sizeof(guint));
        guint extra[] = { M, M + 1, M + 2, 2 * M, 2 * M + 1, 2 * M + M / 2, 3 * M - 1,
                          5 * M + 3, 7 * M, 7 * M + 1 };

        for (guint n = 1; n <= 3 * M && n <= 40; n++)
            g_array_append_val(ns, n);
        g_array_append_vals(ns, extra, G_N_ELEMENTS(extra));

        for (guint j = 0; j < ns->len; j++) {
            guint n = g_array_index(ns, guint, j);

            for (guint variant = 0; variant < 4; variant++) {
                SpModelConfig cfg = config(variant & 1, variant & 2, M);
                g_autoptr(Build) b = build_new();
                guint32 k = build_class(b);
                g_autoptr(SpModel) m = NULL;
                gboolean converged = FALSE;
                guint64 shared, sharing;
                SpModelCounters c;

                for (guint mm = 0; mm < 3; mm++) {
                    build_mm(b);
                    build_add_unique(b, 0, 2);
                    build_add(b, k, 0, n / 3 + (mm < n % 3));
                }
                m = build_model(b, &cfg);
                sp_model_run_until_converged(m, 20, &converged);
                assert_true(converged);
                c = counters(m);
                expected_formula(n, M, &shared, &sharing);
                if (c.pages_shared != shared || c.pages_sharing != sharing)
                    fail_msg("N=%u M=%u variant %u: shared %" G_GUINT64_FORMAT " sharing %"
                             G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT " and %"
                             G_GUINT64_FORMAT, n, M, variant, c.pages_shared,
                             c.pages_sharing, shared, sharing);
                /* One KSM page per M pages: a chain as soon as there are two. */
                assert_int_equal(c.stable_node_chains, shared >= 2 ? 1 : 0);
                assert_int_equal(c.stable_node_dups, shared >= 2 ? shared : 0);
                /* The 6 unique pages and the left-over one stay unmerged. */
                assert_int_equal(c.pages_unshared + c.pages_volatile,
                                 6 + n - shared - sharing);
                assert_int_equal(c.pages_shared_zero + c.pages_sharing_zero, 0);
                assert_consistent(m, 3);
            }
        }
    }
}

/* With use_zero_pages=0 all-zero pages are a content like any other. */
static void
test_zero_pages_as_content(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    guint32 zero = build_class(b), pair = build_class(b);
    g_autoptr(SpModel) m = NULL;
    gboolean converged = FALSE;
    SpModelCounters c;

    build_mm(b);
    build_add(b, zero, SP_MODEL_PAGE_ZERO, 400);
    build_add(b, pair, 0, 1);
    build_mm(b);
    build_add(b, zero, SP_MODEL_PAGE_ZERO, 200);
    build_add(b, pair, 0, 1);
    m = build_model(b, &cfg);
    sp_model_run_until_converged(m, 20, &converged);
    assert_true(converged);
    c = counters(m);
    /* 600 % 256 = 88: 3 KSM pages, plus the pair. */
    assert_int_equal(c.pages_shared, 3 + 1);
    assert_int_equal(c.pages_sharing, 597 + 1);
    assert_int_equal(c.pages_shared_zero, 3);
    assert_int_equal(c.pages_sharing_zero, 597);
    assert_int_equal(c.ksm_zero_pages, 0);
    assert_int_equal(c.stable_node_chains, 1);
    assert_int_equal(c.stable_node_dups, 3);
    assert_consistent(m, 2);
}

/* use_zero_pages=1: zero pages go to the zero page, their items go away. */
static void
test_zero_pages_used(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    guint32 zero = build_class(b), pair = build_class(b);
    g_autoptr(SpModel) m = NULL;
    gboolean converged = FALSE;
    gsize z0, z1;
    SpModelCounters c;

    cfg.use_zero_pages = TRUE;
    build_mm(b);
    z0 = build_add(b, zero, SP_MODEL_PAGE_ZERO, 400);
    build_add(b, pair, 0, 1);
    build_mm(b);
    z1 = build_add(b, zero, SP_MODEL_PAGE_ZERO, 200);
    build_add(b, pair, 0, 1);
    build_add_unique(b, 0, 1);
    m = build_model(b, &cfg);

    sp_model_run_pass(m);
    c = counters(m);
    assert_int_equal(c.ksm_zero_pages, 0);
    assert_int_equal(c.rmap_items, 603);
    assert_int_equal(c.pages_scanned, 603);

    sp_model_run_pass(m);
    c = counters(m);
    assert_int_equal(c.ksm_zero_pages, 600);
    assert_int_equal(c.pages_shared, 1);
    assert_int_equal(c.pages_sharing, 1);
    assert_int_equal(c.pages_shared_zero + c.pages_sharing_zero, 0);
    assert_int_equal(c.stable_node_chains + c.stable_node_dups, 0);
    /* Still rmap_items until the next pass: counted as volatile. */
    assert_int_equal(c.rmap_items, 603);
    assert_int_equal(c.pages_volatile, 600);
    assert_int_equal(c.general_profit, (1LL + 600) * 4096 - 603LL * 64);
    assert_int_equal(sp_model_page_state(m, z0), SP_MODEL_STATE_ZERO_MERGED);
    assert_int_equal(sp_model_page_state(m, z1 + 199), SP_MODEL_STATE_ZERO_MERGED);
    assert_int_equal(mm_counters(m, 0).ksm_zero_pages, 400);
    assert_int_equal(mm_counters(m, 1).ksm_zero_pages, 200);
    assert_int_equal(mm_counters(m, 0).ksm_process_profit, (1LL + 400) * 4096 - 401LL * 64);
    assert_consistent(m, 2);

    sp_model_run_pass(m);
    c = counters(m);
    assert_int_equal(c.rmap_items, 3);
    assert_int_equal(c.ksm_zero_pages, 600);
    assert_int_equal(c.general_profit, (1LL + 600) * 4096 - 3LL * 64);
    /* The zero-page PTEs are not scanned: only the pair and the unique page. */
    assert_int_equal(c.pages_scanned, 603 + 603 + 3);
    assert_int_equal(sp_model_page_state(m, z0), SP_MODEL_STATE_GONE);
    assert_int_equal(mm_counters(m, 0).ksm_rmap_items, 1);
    assert_int_equal(mm_counters(m, 1).ksm_rmap_items, 2);
    assert_int_equal(mm_counters(m, 1).ksm_process_profit, (1LL + 200) * 4096 - 2LL * 64);
    assert_consistent(m, 2);

    /* The frees in pass 3 count as activity: quiet passes 4 and 5. */
    assert_int_equal(sp_model_run_until_converged(m, 20, &converged), 2);
    assert_true(converged);
    assert_int_equal(counters(m).rmap_items, 3);
    assert_int_equal(sp_model_page_state(m, z1), SP_MODEL_STATE_GONE);
}

/* merge_across_nodes=0: the caller splits a content into one class per node. */
static void
test_numa_classes(void **state)
{
    const struct { guint mps, n; guint64 one_shared, one_sharing, two_shared, two_sharing; } cases[] = {
        { 256, 10, 1, 9, 2, 8 },
        { 4, 10, 3, 7, 2, 6 },      /* 5 % 4 == 1 on each node: one left over each */
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        for (guint split = 0; split < 2; split++) {
            SpModelConfig cfg = config(TRUE, TRUE, cases[i].mps);
            g_autoptr(Build) b = build_new();
            guint32 node0 = build_class(b), node1 = split ? build_class(b) : node0;
            g_autoptr(SpModel) m = NULL;
            gboolean converged = FALSE;

            build_mm(b);
            for (guint j = 0; j < cases[i].n; j++)
                build_add(b, j % 2 ? node1 : node0, 0, 1);
            m = build_model(b, &cfg);
            sp_model_run_until_converged(m, 20, &converged);
            assert_true(converged);
            assert_int_equal(counters(m).pages_shared,
                             split ? cases[i].two_shared : cases[i].one_shared);
            assert_int_equal(counters(m).pages_sharing,
                             split ? cases[i].two_sharing : cases[i].one_sharing);
        }
    }
}

/* A.7: the visit pattern of a page that never merges, and its counters. */
static void
test_smart_scan_pattern(void **state)
{
    const char *expected = "PPPPSPSSPSSSSPSSSSSSSSPSSSSSSSSP";
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    g_autoptr(SpModel) m = NULL;
    g_autoptr(GString) seen = g_string_new(NULL);
    SpModelCounters before, after;

    build_mm(b);
    build_add_unique(b, 0, 1);
    m = build_model(b, &cfg);
    for (gsize pass = 1; pass <= strlen(expected); pass++) {
        before = counters(m);
        sp_model_run_pass(m);
        after = counters(m);
        if (after.pages_scanned == before.pages_scanned + 1 &&
            after.pages_skipped == before.pages_skipped) {
            g_string_append_c(seen, 'P');
            /* Processed with a settled checksum: into the unstable tree. */
            assert_int_equal(after.pages_unshared, pass >= 2 ? 1 : 0);
        } else if (after.pages_skipped == before.pages_skipped + 1 &&
                   after.pages_scanned == before.pages_scanned) {
            g_string_append_c(seen, 'S');
            /* A skip takes it out of the tree: counted as volatile. */
            assert_int_equal(after.pages_unshared, 0);
            assert_int_equal(after.pages_volatile, 1);
        } else {
            g_string_append_c(seen, '?');
        }
    }
    assert_string_equal(seen->str, expected);
    assert_int_equal(after.pages_skipped, 23);
    assert_int_equal(after.pages_scanned, 9);

    /* age is a u8 that stops at 255 instead of wrapping to 0: passes 241 to
     * 330, across the 256th visit, still process 1 visit in 9. */
    run_passes(m, 240 - 32);
    before = counters(m);
    run_passes(m, 90);
    after = counters(m);
    assert_int_equal(after.pages_scanned - before.pages_scanned, 10);
    assert_int_equal(after.pages_skipped - before.pages_skipped, 80);

    /* Without smart scan: every visit is processed. */
    SpModelConfig off = config(TRUE, FALSE, 256);
    g_autoptr(SpModel) m2 = build_model(b, &off);
    run_passes(m2, 32);
    assert_int_equal(counters(m2).pages_scanned, 32);
    assert_int_equal(counters(m2).pages_skipped, 0);
    assert_int_equal(counters(m2).pages_unshared, 1);
}

/* KSM pages are never skipped nor aged; others are. */
static void
test_smart_scan_spares_ksm_pages(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    guint32 k = build_class(b);
    g_autoptr(SpModel) m = NULL;

    build_mm(b);
    build_add(b, k, 0, 2);
    build_add_unique(b, 0, 3);
    m = build_model(b, &cfg);
    run_passes(m, 32);
    /* 2 KSM pages scanned 32 times; 3 unique pages 9 times, skipped 23. */
    assert_int_equal(counters(m).pages_scanned, 2 * 32 + 3 * 9);
    assert_int_equal(counters(m).pages_skipped, 3 * 23);
    assert_int_equal(sp_model_page_state(m, 0), SP_MODEL_STATE_STABLE);
}

/* Counters pass by pass for a tiny layout, checked by hand. */
static void
test_pass_by_pass(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    guint32 x = build_class(b);
    g_autoptr(SpModel) m = NULL;
    SpModelCounters c;

    build_mm(b);
    build_add(b, x, 0, 1);                            /* 0 */
    build_add_unique(b, 0, 1);                        /* 1 */
    build_add_unique(b, SP_MODEL_PAGE_VOLATILE, 1);   /* 2 */
    build_mm(b);
    build_add(b, x, 0, 1);                            /* 3 */
    m = build_model(b, &cfg);

    c = counters(m);
    assert_int_equal(c.rmap_items, 0);
    assert_int_equal(c.full_scans, 0);
    assert_int_equal(sp_model_page_state(m, 0), SP_MODEL_STATE_NONE);

    sp_model_run_pass(m);
    c = counters(m);
    assert_int_equal(c.full_scans, 1);
    assert_int_equal(c.rmap_items, 4);
    assert_int_equal(c.pages_scanned, 4);
    assert_int_equal(c.pages_shared + c.pages_sharing + c.pages_unshared, 0);
    assert_int_equal(c.pages_volatile, 4);
    assert_int_equal(c.general_profit, -4 * 64);

    sp_model_run_pass(m);
    c = counters(m);
    assert_int_equal(c.pages_shared, 1);
    assert_int_equal(c.pages_sharing, 1);
    assert_int_equal(c.pages_unshared, 1);
    assert_int_equal(c.pages_volatile, 1);
    assert_int_equal(c.pages_scanned, 8);
    assert_int_equal(c.stable_node_chains + c.stable_node_dups, 0);
    assert_int_equal(c.general_profit, 4096 - 4 * 64);
    assert_int_equal(mm_counters(m, 0).ksm_merging_pages, 1);
    assert_int_equal(mm_counters(m, 0).ksm_rmap_items, 3);
    assert_int_equal(mm_counters(m, 0).ksm_process_profit, 4096 - 3 * 64);
    assert_int_equal(mm_counters(m, 1).ksm_merging_pages, 1);
    assert_int_equal(mm_counters(m, 1).ksm_process_profit, 4096 - 64);
    assert_int_equal(sp_model_page_state(m, 0), SP_MODEL_STATE_STABLE);
    assert_int_equal(sp_model_page_state(m, 1), SP_MODEL_STATE_UNSTABLE);
    assert_int_equal(sp_model_page_state(m, 2), SP_MODEL_STATE_NONE);
    assert_int_equal(sp_model_page_state(m, 3), SP_MODEL_STATE_STABLE);

    sp_model_run_pass(m);
    c = counters(m);
    assert_int_equal(c.pages_scanned, 12);
    assert_int_equal(c.pages_unshared, 1);
    assert_int_equal(c.pages_shared, 1);
    assert_int_equal(c.pages_sharing, 1);
    assert_consistent(m, 2);
}

/*
 * The 6.6-6.10 order searches the stable tree before the checksum gate, so
 * a page equal to a KSM page with room merges on its first visit; 6.11+
 * first records its checksum and merges on the second.  With all mms in
 * pass 1 no KSM page exists at anybody's first visit, so the third page is
 * in an mm that joins in pass 3.
 */
static void
test_checksum_order(void **state)
{
    for (guint order = 0; order < 2; order++) {
        gboolean checksum_first = order == 1;
        SpModelConfig cfg = config(checksum_first, TRUE, 256);
        g_autoptr(Build) b = build_new();
        g_autoptr(GError) error = NULL;
        guint32 x = build_class(b);
        g_autoptr(SpModel) m = NULL;
        gboolean converged = FALSE;
        guint64 final_pass = 0;

        build_mm(b);
        build_add(b, x, 0, 2);
        build_mm(b);
        build_add(b, x, 0, 1);
        build_add_unique(b, 0, 1);
        m = build_model(b, &cfg);
        assert_true(sp_model_set_mm_first_pass(m, 1, 3, &error));

        run_passes(m, 2);
        assert_int_equal(counters(m).pages_sharing, 1);
        assert_int_equal(mm_counters(m, 1).ksm_rmap_items, 0);
        for (guint pass = 3; pass <= 6 && !final_pass; pass++) {
            sp_model_run_pass(m);
            if (counters(m).pages_sharing == 2)
                final_pass = pass;
        }
        assert_int_equal(final_pass, checksum_first ? 4 : 3);
        assert_int_equal(mm_counters(m, 1).ksm_merging_pages, 1);
        assert_int_equal(mm_counters(m, 1).ksm_rmap_items, 2);
        sp_model_run_until_converged(m, 20, &converged);
        assert_true(converged);
        assert_int_equal(counters(m).pages_shared, 1);
        assert_int_equal(counters(m).pages_sharing, 2);
    }
}

/* A checksum of 0 equals the initial oldchecksum: settled on the first visit. */
static void
test_csum0(void **state)
{
    for (guint order = 0; order < 2; order++) {
        SpModelConfig cfg = config(order == 1, TRUE, 256);
        g_autoptr(Build) b = build_new();
        guint32 c0 = build_class(b), plain = build_class(b);
        g_autoptr(SpModel) m = NULL;
        SpModelCounters c;

        build_mm(b);
        build_add(b, c0, SP_MODEL_PAGE_CSUM0, 3);
        build_add(b, plain, 0, 3);
        /* A volatile page whose first checksum is 0 passes the gate once. */
        build_add_unique(b, SP_MODEL_PAGE_VOLATILE | SP_MODEL_PAGE_CSUM0, 1);
        m = build_model(b, &cfg);

        sp_model_run_pass(m);
        c = counters(m);
        assert_int_equal(c.pages_shared, 1);
        assert_int_equal(c.pages_sharing, 2);
        assert_int_equal(c.pages_unshared, 1);
        assert_int_equal(sp_model_page_state(m, 6), SP_MODEL_STATE_UNSTABLE);
        assert_int_equal(sp_model_page_state(m, 3), SP_MODEL_STATE_NONE);

        sp_model_run_pass(m);
        c = counters(m);
        assert_int_equal(c.pages_shared, 2);
        assert_int_equal(c.pages_sharing, 4);
        assert_int_equal(c.pages_unshared, 0);
        assert_int_equal(c.pages_volatile, 1);
        assert_int_equal(sp_model_page_state(m, 6), SP_MODEL_STATE_NONE);
    }
}

/* Volatile pages never merge, whatever the number of passes. */
static void
test_volatile(void **state)
{
    SpModelConfig cfg = config(TRUE, FALSE, 256);
    g_autoptr(Build) b = build_new();
    g_autoptr(SpModel) m = NULL;

    build_mm(b);
    build_add_unique(b, SP_MODEL_PAGE_VOLATILE, 50);
    m = build_model(b, &cfg);
    run_passes(m, 10);
    assert_int_equal(counters(m).pages_shared + counters(m).pages_sharing, 0);
    assert_int_equal(counters(m).pages_unshared, 0);
    assert_int_equal(counters(m).pages_volatile, 50);
    assert_int_equal(counters(m).pages_scanned, 500);
}

/*
 * The unstable tree is emptied at the start of each pass, while the items
 * keep UNSTABLE_FLAG (and their place in pages_unshared) until visited.
 * A (mm 1) is inserted in pass 4 and skipped in pass 5; B (mm 0, joining in
 * pass 4) settles its checksum in pass 4 and is compared in pass 5 before
 * A's visit: it must not find A.  Both are compared in pass 6.
 */
static void
test_unstable_tree_reset(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    g_autoptr(GError) error = NULL;
    guint32 x = build_class(b);
    g_autoptr(SpModel) m = NULL;
    gsize pb, pa;

    build_mm(b);
    pb = build_add(b, x, 0, 1);
    build_mm(b);
    pa = build_add(b, x, 0, 1);
    m = build_model(b, &cfg);
    assert_true(sp_model_set_mm_first_pass(m, 0, 4, &error));

    run_passes(m, 4);
    assert_int_equal(sp_model_page_state(m, pa), SP_MODEL_STATE_UNSTABLE);
    assert_int_equal(sp_model_page_state(m, pb), SP_MODEL_STATE_NONE);
    assert_int_equal(counters(m).pages_unshared, 1);

    sp_model_run_pass(m);
    assert_int_equal(counters(m).pages_sharing, 0);
    assert_int_equal(counters(m).pages_skipped, 1);
    assert_int_equal(sp_model_page_state(m, pa), SP_MODEL_STATE_NONE);
    assert_int_equal(sp_model_page_state(m, pb), SP_MODEL_STATE_UNSTABLE);
    assert_int_equal(counters(m).pages_unshared, 1);

    sp_model_run_pass(m);
    assert_int_equal(counters(m).pages_shared, 1);
    assert_int_equal(counters(m).pages_sharing, 1);
    assert_int_equal(counters(m).pages_unshared, 0);
    assert_int_equal(mm_counters(m, 0).ksm_merging_pages, 1);
    assert_int_equal(mm_counters(m, 1).ksm_merging_pages, 1);
}

/*
 * Builds three mms, the second and third joining in passes @join1 and
 * @join2: each holds one page of content X (the third only if @x3) and a few
 * of content Y.
 */
static SpModel *
late_mms(guint64 join1, guint64 join2, gboolean x3)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    g_autoptr(GError) error = NULL;
    guint32 x = build_class(b), y = build_class(b);
    SpModel *m;

    for (guint mm = 0; mm < 3; mm++) {
        build_mm(b);
        if (mm < 2 || x3)
            build_add(b, x, 0, 1);
        build_add(b, y, 0, 3 - mm);
    }
    m = build_model(b, &cfg);
    assert_true(sp_model_set_mm_first_pass(m, 1, join1, &error));
    assert_true(sp_model_set_mm_first_pass(m, 2, join2, &error));
    return m;
}

/* run_until_converged() must reach what 400 passes reach. */
static void
check_late_mms(guint64 join1, guint64 join2, gboolean x3)
{
    g_autoptr(SpModel) m = late_mms(join1, join2, x3);
    g_autoptr(SpModel) ref = late_mms(join1, join2, x3);
    gboolean converged = FALSE;
    guint passes = sp_model_run_until_converged(m, 1000, &converged);
    SpModelCounters got = counters(m), want;

    assert_true(converged);
    assert_true(passes > MAX(join1, join2));
    run_passes(ref, 400);
    want = counters(ref);
    if (got.pages_sharing != want.pages_sharing || got.pages_shared != want.pages_shared)
        fail_msg("joins %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " (x3 %d): converged "
                 "after %u passes with %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                 ", 400 passes give %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
                 join1, join2, x3, passes, got.pages_shared, got.pages_sharing,
                 want.pages_shared, want.pages_sharing);
}

/*
 * With late mms, smart scan skips their items in other passes than the old
 * ones, so equal pages may meet only much later.  With mms 0 and 1 alone
 * (mm 2 joining very late), A (pass 1) and B (joining in pass 6) are first
 * compared together in pass 9, after the two quiet passes 7 and 8.  For
 * every pair of joining passes, what run_until_converged() reaches must be
 * what 400 passes reach.
 */
static void
test_late_mm_convergence(void **state)
{
    {
        g_autoptr(SpModel) m = late_mms(6, 1000, TRUE);
        guint64 before;

        run_passes(m, 8);
        before = counters(m).pages_sharing;
        sp_model_run_pass(m);
        assert_int_equal(counters(m).pages_sharing, before + 1);
    }

    for (guint x3 = 0; x3 < 2; x3++) {
        for (guint64 join1 = 1; join1 <= 30; join1++) {
            for (guint64 join2 = 1; join2 <= 30; join2++)
                check_late_mms(join1, join2, x3);
        }
    }

    /* Nothing to join for: still not converged while an mm is to come. */
    SpModelConfig cfg = config(TRUE, FALSE, 256);
    g_autoptr(Build) b = build_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(SpModel) m = NULL;
    gboolean converged = TRUE;

    build_mm(b);
    build_add_unique(b, 0, 2);
    build_mm(b);
    build_add_unique(b, 0, 2);
    m = build_model(b, &cfg);
    assert_true(sp_model_set_mm_first_pass(m, 1, 10, &error));
    assert_int_equal(sp_model_run_until_converged(m, 5, &converged), 5);
    assert_false(converged);
    /* Pass 10 brings new items, pass 11 compares them. */
    assert_int_equal(sp_model_run_until_converged(m, 50, &converged), 6);
    assert_true(converged);
    assert_int_equal(counters(m).full_scans, 11);
}

static void
test_convergence_basics(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    g_autoptr(SpModel) m = NULL;
    gboolean converged = TRUE;

    build_mm(b);
    build_add_unique(b, 0, 5);
    m = build_model(b, &cfg);
    /* Nothing can ever merge: two passes are the minimum. */
    assert_int_equal(sp_model_run_until_converged(m, 1, &converged), 1);
    assert_false(converged);
    assert_int_equal(sp_model_run_until_converged(m, 10, &converged), 1);
    assert_true(converged);
    /* Already converged: no pass run. */
    assert_int_equal(sp_model_run_until_converged(m, 10, NULL), 0);
    assert_int_equal(counters(m).full_scans, 2);

    /* An empty model converges too. */
    g_autoptr(Build) e = build_new();
    g_autoptr(SpModel) empty = NULL;

    build_mm(e);
    empty = build_model(e, &cfg);
    assert_int_equal(sp_model_run_until_converged(empty, 10, &converged), 2);
    assert_true(converged);
    assert_int_equal(counters(empty).rmap_items, 0);
}

static void
expect_new_error(const SpModelConfig *cfg, const SpModelPage *pages, gsize n_pages,
                 guint32 n_classes, const gsize *mm_first, guint n_mm,
                 gint code, const char *needle)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpModel) m = sp_model_new(cfg, pages, n_pages, n_classes, mm_first, n_mm, &error);

    assert_null(m);
    assert_non_null(error);
    if (!g_error_matches(error, SP_MODEL_ERROR, code) || !strstr(error->message, needle))
        fail_msg("expected code %d with '%s', got %d: %s", code, needle, error->code,
                 error->message);
}

static void
test_validation(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    SpModelConfig bad = config(TRUE, TRUE, 1);
    SpModelConfig huge = config(TRUE, TRUE, (guint)G_MAXINT + 1);
    SpModelPage ok[4] = { { 0, 0 }, { 0, 0 }, { 1, SP_MODEL_PAGE_ZERO }, { 1, SP_MODEL_PAGE_ZERO } };
    gsize mm_ok[] = { 0, 2, 4 };

    /* The good input builds. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(SpModel) m = sp_model_new(&cfg, ok, 4, 2, mm_ok, 2, &error);
        assert_non_null(m);
        assert_null(error);
    }
    expect_new_error(NULL, ok, 4, 2, mm_ok, 2, SP_MODEL_ERROR_CONFIG, "configuration");
    expect_new_error(&bad, ok, 4, 2, mm_ok, 2, SP_MODEL_ERROR_CONFIG, "max_page_sharing 1");
    expect_new_error(&huge, ok, 4, 2, mm_ok, 2, SP_MODEL_ERROR_CONFIG, "max_page_sharing");
    expect_new_error(&cfg, NULL, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "4 pages");

    /* mm_first */
    gsize mm_start[] = { 1, 2, 4 }, mm_back[] = { 0, 3, 2, 4 }, mm_short[] = { 0, 2, 3 };
    expect_new_error(&cfg, ok, 4, 2, NULL, 2, SP_MODEL_ERROR_MM, "missing");
    expect_new_error(&cfg, ok, 4, 2, mm_start, 2, SP_MODEL_ERROR_MM, "mm_first[0] is 1");
    expect_new_error(&cfg, ok, 4, 2, mm_back, 3, SP_MODEL_ERROR_MM, "mm_first[2] = 2");
    expect_new_error(&cfg, ok, 4, 2, mm_short, 2, SP_MODEL_ERROR_MM, "page count 4");
    gsize none[] = { 0 };
    expect_new_error(&cfg, ok, 4, 2, none, 0, SP_MODEL_ERROR_MM, "mm_first[0] is 0");

    /* pages */
    SpModelPage p[4];
    memcpy(p, ok, sizeof(p));
    p[3].klass = 2;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "page 3: class 2");
    memcpy(p, ok, sizeof(p));
    p[1].flags = 0x80;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "page 1: flags 0x80");
    memcpy(p, ok, sizeof(p));
    p[2].flags = p[3].flags = SP_MODEL_PAGE_ZERO | SP_MODEL_PAGE_VOLATILE;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "volatile");
    memcpy(p, ok, sizeof(p));
    p[2].flags = p[3].flags = SP_MODEL_PAGE_ZERO | SP_MODEL_PAGE_CSUM0;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "page 2");
    memcpy(p, ok, sizeof(p));
    p[0].flags = SP_MODEL_PAGE_VOLATILE;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "page 1: class 0");
    memcpy(p, ok, sizeof(p));
    p[1].flags = SP_MODEL_PAGE_VOLATILE;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "volatile");
    memcpy(p, ok, sizeof(p));
    p[3].flags = 0;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "page 3: flags 0x0");
    memcpy(p, ok, sizeof(p));
    p[1].flags = SP_MODEL_PAGE_CSUM0;
    expect_new_error(&cfg, p, 4, 2, mm_ok, 2, SP_MODEL_ERROR_PAGE, "checksum-0");

    /* sp_model_set_mm_first_pass() */
    g_autoptr(GError) error = NULL;
    g_autoptr(SpModel) m = sp_model_new(&cfg, ok, 4, 2, mm_ok, 2, &error);
    assert_non_null(m);
    assert_false(sp_model_set_mm_first_pass(m, 2, 3, &error));
    assert_true(g_error_matches(error, SP_MODEL_ERROR, SP_MODEL_ERROR_MM));
    g_clear_error(&error);
    assert_false(sp_model_set_mm_first_pass(m, 1, 0, &error));
    assert_true(g_error_matches(error, SP_MODEL_ERROR, SP_MODEL_ERROR_STATE));
    g_clear_error(&error);
    assert_true(sp_model_set_mm_first_pass(m, 1, 3, &error));
    sp_model_run_pass(m);
    assert_false(sp_model_set_mm_first_pass(m, 0, 5, &error));
    assert_true(g_error_matches(error, SP_MODEL_ERROR, SP_MODEL_ERROR_STATE));
    assert_non_null(strstr(error->message, "mm 0 was already visited"));
    g_clear_error(&error);
    assert_false(sp_model_set_mm_first_pass(m, 1, 1, &error));
    assert_true(g_error_matches(error, SP_MODEL_ERROR, SP_MODEL_ERROR_STATE));
    g_clear_error(&error);
    assert_true(sp_model_set_mm_first_pass(m, 1, 2, &error));
    sp_model_run_pass(m);
    assert_int_equal(mm_counters(m, 1).ksm_rmap_items, 2);
    assert_false(sp_model_set_mm_first_pass(m, 1, 5, &error));
    assert_true(g_error_matches(error, SP_MODEL_ERROR, SP_MODEL_ERROR_STATE));
}

/* Pages of the mms are visited in the order given, empty mms included. */
static void
test_empty_mms(void **state)
{
    SpModelConfig cfg = config(TRUE, TRUE, 256);
    g_autoptr(Build) b = build_new();
    guint32 x = build_class(b);
    g_autoptr(SpModel) m = NULL;
    gboolean converged = FALSE;

    build_mm(b);
    build_mm(b);
    build_add(b, x, 0, 1);
    build_mm(b);
    build_mm(b);
    build_add(b, x, 0, 1);
    build_mm(b);
    m = build_model(b, &cfg);
    sp_model_run_until_converged(m, 10, &converged);
    assert_true(converged);
    assert_int_equal(mm_counters(m, 0).ksm_rmap_items, 0);
    assert_int_equal(mm_counters(m, 1).ksm_merging_pages, 1);
    assert_int_equal(mm_counters(m, 2).ksm_rmap_items, 0);
    assert_int_equal(mm_counters(m, 3).ksm_merging_pages, 1);
    assert_int_equal(mm_counters(m, 4).ksm_rmap_items, 0);
    assert_consistent(m, 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_checked_example),
        cmocka_unit_test(test_formula),
        cmocka_unit_test(test_zero_pages_as_content),
        cmocka_unit_test(test_zero_pages_used),
        cmocka_unit_test(test_numa_classes),
        cmocka_unit_test(test_smart_scan_pattern),
        cmocka_unit_test(test_smart_scan_spares_ksm_pages),
        cmocka_unit_test(test_pass_by_pass),
        cmocka_unit_test(test_checksum_order),
        cmocka_unit_test(test_csum0),
        cmocka_unit_test(test_volatile),
        cmocka_unit_test(test_unstable_tree_reset),
        cmocka_unit_test(test_late_mm_convergence),
        cmocka_unit_test(test_convergence_basics),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_empty_mms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
