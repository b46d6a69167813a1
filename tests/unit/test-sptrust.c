/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-sptrust.c: the trust-group decision on snapshots: one group,
 * mixing allowed, one group chosen (by required, saving, count, name),
 * side by side on distinct NUMA nodes, unwilling guests left alone; the
 * model's estimates over several guests (per group, mixed) and which sets
 * to estimate
 */
#include "config.h"

#include "sptest.h"
#include "samepage/sptrust.h"

#define MIB (1024 * 1024LL)

static const SpTrustHost one_node = { .allow_mixing = FALSE, .n_numa_nodes = 1,
                                      .merge_across_nodes = TRUE };

static gboolean
verdict(const SpTrustDecision *d, guint i)
{
    return g_array_index(d->verdicts, SpTrustVerdict, i).mergeable;
}

static const char *
why(const SpTrustDecision *d, guint i)
{
    return g_array_index(d->verdicts, SpTrustVerdict, i).reason;
}

static void
test_one_group(void **state)
{
    SpTrustGuest g[] = {
        { "a", "default", TRUE, FALSE, -1, 10 * MIB },
        { "b", "default", TRUE, FALSE, -1, 20 * MIB },
        { "c", "default", FALSE, FALSE, -1, 30 * MIB },
    };
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 3, &one_node);

    assert_true(verdict(d, 0));
    assert_true(verdict(d, 1));
    assert_false(verdict(d, 2));
    assert_null(why(d, 2));
    assert_int_equal(g_strv_length(d->groups), 1);
    assert_string_equal(d->groups[0], "default");
    assert_int_equal(d->saving_chosen, 30 * MIB);
    assert_int_equal(d->saving_mixed, 30 * MIB);
    assert_non_null(strstr(d->reason, "one trust group"));
}

static void
test_nobody(void **state)
{
    SpTrustGuest g[] = { { "a", "x", FALSE, FALSE, 0, -1 } };
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 1, &one_node);
    g_autoptr(SpTrustDecision) e = sp_trust_decide(NULL, 0, &one_node);

    assert_false(verdict(d, 0));
    assert_int_equal(g_strv_length(d->groups), 0);
    assert_string_equal(d->reason, "no guest wants to merge");
    assert_int_equal(e->verdicts->len, 0);
}

static void
test_largest_saving_wins(void **state)
{
    SpTrustGuest g[] = {
        { "a1", "alpha", TRUE, FALSE, -1, 10 * MIB },
        { "a2", "alpha", TRUE, FALSE, -1, 10 * MIB },
        { "b1", "beta", TRUE, FALSE, -1, 50 * MIB },
    };
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 3, &one_node);

    assert_false(verdict(d, 0));
    assert_false(verdict(d, 1));
    assert_true(verdict(d, 2));
    assert_string_equal(d->groups[0], "beta");
    assert_int_equal(g_strv_length(d->groups), 1);
    assert_int_equal(d->saving_chosen, 50 * MIB);
    assert_int_equal(d->saving_mixed, 70 * MIB);
    assert_non_null(strstr(d->reason, "beta merges (the largest predicted saving)"));
    assert_non_null(strstr(d->reason, "50.0 MiB, 70.0 MiB if mixed"));
    assert_non_null(strstr(why(d, 0), "trust group alpha"));
    assert_non_null(strstr(why(d, 0), "group beta"));
}

/* Unknown savings: the group with the most guests, then the name. */
static void
test_ties(void **state)
{
    SpTrustGuest g[] = {
        { "x", "zeta", TRUE, FALSE, -1, -1 },
        { "y", "zeta", TRUE, FALSE, -1, -1 },
        { "z", "eta", TRUE, FALSE, -1, -1 },
    };
    SpTrustGuest h[] = {
        { "x", "zeta", TRUE, FALSE, -1, 5 * MIB },
        { "z", "eta", TRUE, FALSE, -1, 5 * MIB },
    };
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 3, &one_node);
    g_autoptr(SpTrustDecision) e = sp_trust_decide(h, 2, &one_node);

    assert_string_equal(d->groups[0], "zeta");
    assert_true(verdict(d, 0) && verdict(d, 1) && !verdict(d, 2));
    assert_int_equal(d->saving_mixed, -1);
    assert_non_null(strstr(d->reason, "the most guests"));
    assert_non_null(strstr(d->reason, "unknown"));
    assert_string_equal(e->groups[0], "eta");
    assert_false(verdict(e, 0));
    assert_true(verdict(e, 1));
    assert_non_null(strstr(e->reason, "first name"));
}

/* The order of the guests does not change the choice. */
static void
test_deterministic(void **state)
{
    SpTrustGuest g[] = {
        { "a", "g1", TRUE, FALSE, -1, 7 * MIB },
        { "b", "g2", TRUE, FALSE, -1, 7 * MIB },
        { "c", "g3", TRUE, FALSE, -1, 7 * MIB },
    };
    SpTrustGuest r[] = { g[2], g[0], g[1] };
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 3, &one_node);
    g_autoptr(SpTrustDecision) e = sp_trust_decide(r, 3, &one_node);

    assert_string_equal(d->groups[0], "g1");
    assert_string_equal(e->groups[0], "g1");
    assert_true(verdict(e, 1));
    assert_false(verdict(e, 0));
}

static void
test_required_first(void **state)
{
    SpTrustGuest g[] = {
        { "big", "alpha", TRUE, FALSE, -1, 500 * MIB },
        { "must", "beta", TRUE, TRUE, -1, 1 * MIB },
        { "must2", "gamma", TRUE, TRUE, -1, 2 * MIB },
    };
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 3, &one_node);

    assert_string_equal(d->groups[0], "gamma");
    assert_false(verdict(d, 0));
    assert_false(verdict(d, 1));
    assert_true(verdict(d, 2));
    assert_non_null(strstr(why(d, 1), "merge=required is not met"));
    assert_non_null(strstr(why(d, 0), "merge=required"));
}

static void
test_allow_mixing(void **state)
{
    SpTrustHost h = one_node;
    SpTrustGuest g[] = {
        { "a", "alpha", TRUE, FALSE, -1, 1 * MIB },
        { "b", "beta", TRUE, FALSE, -1, 2 * MIB },
        { "c", "beta", FALSE, FALSE, -1, 2 * MIB },
    };
    h.allow_mixing = TRUE;
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 3, &h);

    assert_true(verdict(d, 0));
    assert_true(verdict(d, 1));
    assert_false(verdict(d, 2));
    assert_int_equal(g_strv_length(d->groups), 2);
    assert_non_null(strstr(d->reason, "allow_mixing"));
}

/* merge_across_nodes=0, two nodes: groups on distinct nodes side by side;
 * a group spanning the other's node, or of unknown placement, waits. */
static void
test_numa_side_by_side(void **state)
{
    SpTrustHost h = { .allow_mixing = FALSE, .n_numa_nodes = 2, .merge_across_nodes = FALSE };
    SpTrustGuest g[] = {
        { "a", "alpha", TRUE, FALSE, 0, 10 * MIB },
        { "b", "beta", TRUE, FALSE, 1, 5 * MIB },
    };
    SpTrustGuest clash[] = {
        { "a", "alpha", TRUE, FALSE, 0, 10 * MIB },
        { "b", "beta", TRUE, FALSE, 1, 5 * MIB },
        { "b2", "beta", TRUE, FALSE, 0, 1 * MIB },
    };
    SpTrustGuest unknown[] = {
        { "a", "alpha", TRUE, FALSE, 0, 10 * MIB },
        { "b", "beta", TRUE, FALSE, -1, 5 * MIB },
    };
    g_autoptr(SpTrustDecision) d = sp_trust_decide(g, 2, &h);
    g_autoptr(SpTrustDecision) e = sp_trust_decide(clash, 3, &h);
    g_autoptr(SpTrustDecision) f = sp_trust_decide(unknown, 2, &h);
    g_autoptr(SpTrustDecision) across = NULL;

    assert_true(verdict(d, 0) && verdict(d, 1));
    assert_int_equal(g_strv_length(d->groups), 2);
    assert_non_null(strstr(d->reason, "side by side"));
    assert_true(verdict(e, 0));
    assert_false(verdict(e, 1) || verdict(e, 2));
    assert_non_null(strstr(e->reason, "share a NUMA node"));
    assert_true(verdict(f, 0));
    assert_false(verdict(f, 1));

    h.merge_across_nodes = TRUE;
    across = sp_trust_decide(g, 2, &h);
    assert_true(verdict(across, 0));
    assert_false(verdict(across, 1));
}


static const SpTrustGroupSaving *
group_saving(const SpTrustDecision *d, const char *group)
{
    for (guint i = 0; i < d->group_savings->len; i++) {
        const SpTrustGroupSaving *gs = &g_array_index(d->group_savings, SpTrustGroupSaving, i);
        if (strcmp(gs->group, group) == 0)
            return gs;
    }
    return NULL;
}

/* The model's estimates over several guests replace the sums: here
 * alpha's guests share a lot with each other, which makes alpha the
 * group that merges; mixing adds what alpha and beta share. */
static void
test_estimates_together(void **state)
{
    SpTrustGuest g[] = {
        { "a1", "alpha", TRUE, FALSE, -1, 10 * MIB },
        { "a2", "alpha", TRUE, FALSE, -1, 10 * MIB },
        { "b1", "beta", TRUE, FALSE, -1, 50 * MIB },
        { "n", "beta", FALSE, FALSE, -1, 99 * MIB },
    };
    SpTrustEstimate est[] = { { "alpha", 80 * MIB }, { NULL, 150 * MIB } };
    SpTrustHost h = one_node;
    g_autoptr(SpTrustDecision) sums = sp_trust_decide(g, 4, &one_node);
    g_autoptr(SpTrustDecision) d = NULL;
    const SpTrustGroupSaving *a, *b;

    /* Without them: sums of the guests' own predictions. */
    assert_string_equal(sums->groups[0], "beta");
    assert_int_equal(sums->saving_mixed, 70 * MIB);
    assert_false(sums->mixed_together);
    assert_false(group_saving(sums, "alpha")->together);
    assert_true(group_saving(sums, "beta")->together);      /* one guest: its own */
    assert_int_equal(group_saving(sums, "alpha")->saving, 20 * MIB);
    assert_non_null(strstr(sums->reason, "sums of per-guest estimates so far"));

    h.estimates = est;
    h.n_estimates = 2;
    d = sp_trust_decide(g, 4, &h);
    assert_string_equal(d->groups[0], "alpha");
    assert_true(verdict(d, 0) && verdict(d, 1));
    assert_false(verdict(d, 2) || verdict(d, 3));
    assert_int_equal(d->saving_chosen, 80 * MIB);
    assert_int_equal(d->saving_mixed, 150 * MIB);
    assert_true(d->mixed_together);
    assert_int_equal(d->group_savings->len, 2);
    a = &g_array_index(d->group_savings, SpTrustGroupSaving, 0);   /* ranked */
    b = &g_array_index(d->group_savings, SpTrustGroupSaving, 1);
    assert_string_equal(a->group, "alpha");
    assert_int_equal(a->n_guests, 2);
    assert_int_equal(a->saving, 80 * MIB);
    assert_true(a->together && a->mergeable);
    assert_string_equal(b->group, "beta");
    assert_int_equal(b->n_guests, 1);                            /* "n" does not want to */
    assert_int_equal(b->saving, 50 * MIB);
    assert_true(b->together);
    assert_false(b->mergeable);
    assert_non_null(strstr(d->reason, "80.0 MiB, 150.0 MiB if mixed"));
    assert_non_null(strstr(d->reason, "per group: alpha 80.0 MiB, beta 50.0 MiB"));
    assert_null(strstr(d->reason, "so far"));
}

/* One group: the saving if mixed is the group's; an estimate for a group
 * nobody is in changes nothing. */
static void
test_estimates_one_group(void **state)
{
    SpTrustGuest g[] = {
        { "a", "alpha", TRUE, FALSE, -1, 10 * MIB },
        { "b", "alpha", TRUE, FALSE, -1, 10 * MIB },
    };
    SpTrustEstimate est[] = { { "alpha", 33 * MIB }, { "ghost", 1000 * MIB } };
    SpTrustHost h = one_node;
    g_autoptr(SpTrustDecision) d = NULL;

    h.estimates = est;
    h.n_estimates = 2;
    d = sp_trust_decide(g, 2, &h);
    assert_int_equal(d->saving_chosen, 33 * MIB);
    assert_int_equal(d->saving_mixed, 33 * MIB);
    assert_true(d->mixed_together);
    assert_int_equal(d->group_savings->len, 1);
    assert_null(group_saving(d, "ghost"));
}

static void
test_allow_mixing_figures(void **state)
{
    SpTrustGuest g[] = {
        { "a", "alpha", TRUE, FALSE, -1, 1 * MIB },
        { "b", "beta", TRUE, FALSE, -1, 2 * MIB },
    };
    SpTrustEstimate est[] = { { NULL, 4 * MIB } };
    SpTrustHost h = one_node;
    g_autoptr(SpTrustDecision) d = NULL;

    h.allow_mixing = TRUE;
    h.estimates = est;
    h.n_estimates = 1;
    d = sp_trust_decide(g, 2, &h);
    assert_int_equal(d->saving_mixed, 4 * MIB);
    assert_int_equal(d->saving_chosen, 3 * MIB);   /* the groups' own, summed */
    assert_true(group_saving(d, "alpha")->mergeable && group_saving(d, "beta")->mergeable);
    assert_non_null(strstr(d->reason, "predicted saving 4.0 MiB mixed; per group: beta 2.0 MiB, "
                                      "alpha 1.0 MiB"));
}

static guint
set_index(const SpTrustEstimateSet *set, guint i)
{
    return g_array_index(set->guests, guint, i);
}

/* What to estimate: nothing for one group; for two or more, each group of
 * two willing guests or more, then all willing guests. */
static void
test_plan(void **state)
{
    SpTrustGuest one[] = {
        { "a", "alpha", TRUE, FALSE, -1, -1 },
        { "b", "alpha", TRUE, FALSE, -1, -1 },
        { "c", "beta", FALSE, FALSE, -1, -1 },
    };
    SpTrustGuest g[] = {
        { "b2", "beta", TRUE, FALSE, -1, -1 },
        { "a1", "alpha", TRUE, FALSE, -1, -1 },
        { "g1", "gamma", TRUE, FALSE, -1, -1 },
        { "b1", "beta", TRUE, FALSE, -1, -1 },
        { "no", "alpha", FALSE, FALSE, -1, -1 },
    };
    SpTrustGuest r[] = { g[3], g[4], g[2], g[1], g[0] };
    g_autoptr(GPtrArray) none = sp_trust_plan_estimates(one, 3);
    g_autoptr(GPtrArray) empty = sp_trust_plan_estimates(NULL, 0);
    g_autoptr(GPtrArray) p = sp_trust_plan_estimates(g, 5);
    g_autoptr(GPtrArray) q = sp_trust_plan_estimates(r, 5);
    g_autoptr(GPtrArray) less = sp_trust_plan_estimates(g, 4);   /* without "no" */
    const SpTrustEstimateSet *beta, *mixed;

    assert_int_equal(none->len, 0);
    assert_int_equal(empty->len, 0);
    assert_int_equal(p->len, 2);
    beta = p->pdata[0];
    mixed = p->pdata[1];
    assert_string_equal(beta->group, "beta");      /* alpha and gamma: one willing guest each */
    assert_int_equal(beta->guests->len, 2);
    assert_int_equal(set_index(beta, 0), 0);
    assert_int_equal(set_index(beta, 1), 3);
    assert_string_equal(beta->key, "group beta\nb1\nb2");
    assert_null(mixed->group);
    assert_int_equal(mixed->guests->len, 4);       /* "no" left out */
    assert_int_equal(set_index(mixed, 0), 0);
    assert_int_equal(set_index(mixed, 3), 3);
    assert_string_equal(mixed->key, "mixed\na1\nb1\nb2\ng1");
    /* The same guests in another order: the same keys. */
    assert_int_equal(q->len, 2);
    assert_string_equal(((SpTrustEstimateSet *)q->pdata[0])->key, beta->key);
    assert_string_equal(((SpTrustEstimateSet *)q->pdata[1])->key, mixed->key);
    /* An unwilling guest more or less: the same sets. */
    assert_string_equal(((SpTrustEstimateSet *)less->pdata[1])->key, mixed->key);
    /* A guest fewer: another key. */
    {
        g_autoptr(GPtrArray) fewer = sp_trust_plan_estimates(g + 1, 4);
        assert_int_equal(fewer->len, 1);           /* beta has one guest left */
        assert_string_equal(((SpTrustEstimateSet *)fewer->pdata[0])->key, "mixed\na1\nb1\ng1");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_group),
        cmocka_unit_test(test_nobody),
        cmocka_unit_test(test_largest_saving_wins),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_estimates_together),
        cmocka_unit_test(test_estimates_one_group),
        cmocka_unit_test(test_allow_mixing_figures),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_required_first),
        cmocka_unit_test(test_allow_mixing),
        cmocka_unit_test(test_numa_side_by_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
