/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sptrust.h: trust groups, which guests may be mergeable at the same time
 *
 * KSM merges equal pages across every mergeable process, and a merged page
 * tells one guest something about another (timing of copy-on-write).  So
 * guests of different trust groups are never mergeable at once, unless the
 * configuration allows mixing.  With several NUMA nodes and
 * merge_across_nodes=0, ksmd keeps one tree per node: groups whose guests
 * sit on distinct nodes may merge side by side.  Otherwise one group is
 * mergeable, chosen deterministically: a group with a merge=required guest
 * first, then the largest predicted saving, then the most guests, then the
 * name.  A pure function of a snapshot.
 *
 * What the isolation costs: the model estimates the willing guests of each
 * group together, and all of them together (mixed), so that sharing
 * across guests counts; sp_trust_plan_estimates() says which sets to
 * estimate, and the results go back to sp_trust_decide() through
 * SpTrustHost.estimates.  Without them, a group's saving is the sum of its
 * guests' own predictions (sharing inside each guest only).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    const char *name;           /* domain */
    const char *group;          /* its trust group (the default group when it names none) */
    gboolean wants_merge;       /* sp_policy_decide() */
    gboolean required;          /* policy merge=required */
    int numa_node;              /* the one node its RAM sits on; -1: unknown or several */
    gint64 predicted_saving;    /* bytes, from the model; -1: unknown */
} SpTrustGuest;

/* A saving the model estimated over several guests at once. */
typedef struct {
    const char *group;          /* the group's willing guests; NULL: every willing guest (mixed) */
    gint64 saving;              /* bytes */
} SpTrustEstimate;

typedef struct {
    gboolean allow_mixing;
    guint n_numa_nodes;
    gboolean merge_across_nodes;
    const SpTrustEstimate *estimates;   /* optional, n_estimates of them */
    guint n_estimates;
} SpTrustHost;

/* A group of willing guests, what it saves, whether it merges. */
typedef struct {
    char *group;
    guint n_guests;             /* its willing guests */
    gint64 saving;              /* bytes; -1 unknown */
    gboolean together;          /* estimated over its guests together (one guest: its own) */
    gboolean mergeable;         /* chosen to merge */
} SpTrustGroupSaving;

typedef struct {
    gboolean mergeable;         /* after trust groups */
    char *reason;               /* why not, when the group decision vetoed it; else NULL */
} SpTrustVerdict;

typedef struct {
    GArray *verdicts;           /* SpTrustVerdict, one per guest, in order */
    GStrv groups;               /* the groups that may merge, in rank order */
    char *reason;               /* which and why, one sentence */
    gint64 saving_chosen;       /* predicted bytes of the mergeable guests; -1 unknown */
    gint64 saving_mixed;        /* predicted bytes if every willing guest merged; -1 unknown */
    gboolean mixed_together;    /* saving_mixed is one estimate over all of them */
    GArray *group_savings;      /* SpTrustGroupSaving, one per group of willing guests, ranked */
} SpTrustDecision;

void sp_trust_decision_free(SpTrustDecision *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpTrustDecision, sp_trust_decision_free)

/**
 * sp_trust_decide:
 * @guests: (array length=n): the running guests
 *
 * Returns: (transfer full): each guest's verdict and which groups merge.
 * A guest that does not want to merge is never made mergeable.  A group's
 * saving is the model's estimate over its guests together when @host has
 * it (SpTrustHost.estimates), else the sum of its guests' predictions
 * (sharing inside each guest; what merging across guests adds is not in
 * them); the same for the saving if mixed.
 */
SpTrustDecision *sp_trust_decide(const SpTrustGuest *guests, guint n, const SpTrustHost *host);

/* A set of guests to estimate together. */
typedef struct {
    char *group;                /* NULL: every willing guest (mixed) */
    GArray *guests;             /* guint: indices into the guests given, in order */
    char *key;                  /* the group and the guests' names: equal keys, equal sets */
} SpTrustEstimateSet;

void sp_trust_estimate_set_free(SpTrustEstimateSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpTrustEstimateSet, sp_trust_estimate_set_free)

/**
 * sp_trust_plan_estimates:
 * @guests: (array length=n): the running guests
 *
 * Returns: (transfer full) (element-type SpTrustEstimateSet): what the
 * model estimates to tell what the isolation costs, in order: when the
 * willing guests belong to two groups or more, each group of two willing
 * guests or more (by name; a group of one is its guest's own estimate),
 * then every willing guest together (group NULL).  Empty otherwise.
 */
GPtrArray *sp_trust_plan_estimates(const SpTrustGuest *guests, guint n);

G_END_DECLS
