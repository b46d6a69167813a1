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

typedef struct {
    gboolean allow_mixing;
    guint n_numa_nodes;
    gboolean merge_across_nodes;
} SpTrustHost;

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
} SpTrustDecision;

void sp_trust_decision_free(SpTrustDecision *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpTrustDecision, sp_trust_decision_free)

/**
 * sp_trust_decide:
 * @guests: (array length=n): the running guests
 *
 * Returns: (transfer full): each guest's verdict and which groups merge.
 * A guest that does not want to merge is never made mergeable.  The
 * savings are sums of the guests' predictions (sharing inside each guest;
 * what merging across guests adds is not in them).
 */
SpTrustDecision *sp_trust_decide(const SpTrustGuest *guests, guint n, const SpTrustHost *host);

G_END_DECLS
