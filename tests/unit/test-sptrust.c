/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-sptrust.c: the trust-group decision on snapshots: one group,
 * mixing allowed, one group chosen (by required, saving, count, name),
 * side by side on distinct NUMA nodes, unwilling guests left alone
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_group),
        cmocka_unit_test(test_nobody),
        cmocka_unit_test(test_largest_saving_wins),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_required_first),
        cmocka_unit_test(test_allow_mixing),
        cmocka_unit_test(test_numa_side_by_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
