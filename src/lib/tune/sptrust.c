/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sptrust.c: the trust-group decision (see sptrust.h)
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-trust"

#include <string.h>

#include "samepage/sptrust.h"

typedef struct {
    const char *name;
    guint n_guests;
    gboolean required;
    gint64 saving;              /* -1 unknown */
    gboolean together;          /* saving is one estimate over its guests */
    guint64 nodes;              /* bit per NUMA node (< 64) */
    gboolean nodes_unknown;
} Group;

static char *
format_mib(gint64 bytes)
{
    return bytes < 0 ? g_strdup("unknown") : g_strdup_printf("%.1f MiB", bytes / 1048576.0);
}

void
sp_trust_decision_free(SpTrustDecision *d)
{
    if (!d)
        return;
    for (guint i = 0; d->verdicts && i < d->verdicts->len; i++)
        g_free(g_array_index(d->verdicts, SpTrustVerdict, i).reason);
    if (d->verdicts)
        g_array_unref(d->verdicts);
    for (guint i = 0; d->group_savings && i < d->group_savings->len; i++)
        g_free(g_array_index(d->group_savings, SpTrustGroupSaving, i).group);
    if (d->group_savings)
        g_array_unref(d->group_savings);
    g_strfreev(d->groups);
    g_free(d->reason);
    g_free(d);
}

void
sp_trust_estimate_set_free(SpTrustEstimateSet *set)
{
    if (!set)
        return;
    g_free(set->group);
    if (set->guests)
        g_array_unref(set->guests);
    g_free(set->key);
    g_free(set);
}

static int
cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The set's key: "group NAME" or "mixed", then the guests' names sorted,
 * one per line (a domain name has no newline). */
static char *
set_key(const char *group, const SpTrustGuest *guests, GArray *idx)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    GString *k = g_string_new(NULL);

    if (group)
        g_string_append_printf(k, "group %s", group);
    else
        g_string_append(k, "mixed");
    for (guint i = 0; i < idx->len; i++)
        g_ptr_array_add(names, (gpointer)guests[g_array_index(idx, guint, i)].name);
    g_ptr_array_sort(names, cmp_str);
    for (guint i = 0; i < names->len; i++)
        g_string_append_printf(k, "\n%s", (const char *)names->pdata[i]);
    return g_string_free(k, FALSE);
}

static SpTrustEstimateSet *
set_new(const char *group, const SpTrustGuest *guests, GArray *idx)
{
    SpTrustEstimateSet *set = g_new0(SpTrustEstimateSet, 1);

    set->group = g_strdup(group);
    set->guests = g_array_ref(idx);
    set->key = set_key(group, guests, idx);
    return set;
}

GPtrArray *
sp_trust_plan_estimates(const SpTrustGuest *guests, guint n)
{
    GPtrArray *plan = g_ptr_array_new_with_free_func((GDestroyNotify)sp_trust_estimate_set_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(guint));

    for (guint i = 0; i < n; i++) {
        if (!guests[i].wants_merge)
            continue;
        g_array_append_val(all, i);
        if (!g_ptr_array_find_with_equal_func(names, guests[i].group, g_str_equal, NULL))
            g_ptr_array_add(names, (gpointer)guests[i].group);
    }
    if (names->len < 2)
        return plan;
    g_ptr_array_sort(names, cmp_str);
    for (guint j = 0; j < names->len; j++) {
        g_autoptr(GArray) idx = g_array_new(FALSE, FALSE, sizeof(guint));
        for (guint i = 0; i < all->len; i++) {
            guint gi = g_array_index(all, guint, i);
            if (strcmp(guests[gi].group, names->pdata[j]) == 0)
                g_array_append_val(idx, gi);
        }
        if (idx->len >= 2)
            g_ptr_array_add(plan, set_new(names->pdata[j], guests, idx));
    }
    g_ptr_array_add(plan, set_new(NULL, guests, all));
    return plan;
}

/* The model's estimate for @group (NULL: mixed) in @host, or NULL. */
static const SpTrustEstimate *
find_estimate(const SpTrustHost *host, const char *group)
{
    for (guint i = 0; host->estimates && i < host->n_estimates; i++) {
        const SpTrustEstimate *e = &host->estimates[i];
        if (g_strcmp0(e->group, group) == 0)
            return e;
    }
    return NULL;
}

/* "; per group: a 1.0 MiB, b unknown", the figures behind a decision. */
static void
append_per_group(GString *s, GArray *groups)
{
    g_string_append(s, "; per group:");
    for (guint j = 0; j < groups->len; j++) {
        const Group *grp = &g_array_index(groups, Group, j);
        g_autofree char *v = format_mib(grp->saving);
        g_string_append_printf(s, "%s %s %s", j ? "," : "", grp->name, v);
    }
}

/* Rank: required first, then larger saving (unknown counts as 0), more
 * guests, then name. */
static int
group_cmp(gconstpointer a, gconstpointer b)
{
    const Group *x = a, *y = b;
    gint64 sx = MAX(x->saving, 0), sy = MAX(y->saving, 0);

    if (x->required != y->required)
        return x->required ? -1 : 1;
    if (sx != sy)
        return sx > sy ? -1 : 1;
    if (x->n_guests != y->n_guests)
        return x->n_guests > y->n_guests ? -1 : 1;
    return strcmp(x->name, y->name);
}

static const char *
why_first(const Group *first, const Group *second)
{
    if (first->required != second->required)
        return "it holds a merge=required guest";
    if (MAX(first->saving, 0) != MAX(second->saving, 0))
        return "the largest predicted saving";
    if (first->n_guests != second->n_guests)
        return "the most guests";
    return "the first name (a tie on saving and guests)";
}

SpTrustDecision *
sp_trust_decide(const SpTrustGuest *guests, guint n, const SpTrustHost *host)
{
    g_autoptr(SpTrustDecision) d = g_new0(SpTrustDecision, 1);
    g_autoptr(GArray) groups = g_array_new(FALSE, TRUE, sizeof(Group));
    g_autoptr(GPtrArray) chosen = g_ptr_array_new();
    gboolean per_node = host->n_numa_nodes > 1 && !host->merge_across_nodes;
    gboolean mixed_known = TRUE, chosen_known = TRUE, all_together = TRUE;
    g_autoptr(GString) figures = g_string_new(NULL);
    g_autofree char *mixed_s = NULL, *chosen_s = NULL;
    guint64 used_nodes = 0;

    d->verdicts = g_array_sized_new(FALSE, TRUE, sizeof(SpTrustVerdict), n);
    g_array_set_size(d->verdicts, n);
    d->saving_mixed = 0;

    /* The groups of the willing guests. */
    for (guint i = 0; i < n; i++) {
        const SpTrustGuest *g = &guests[i];
        Group *grp = NULL;

        if (!g->wants_merge)
            continue;
        if (g->predicted_saving < 0)
            mixed_known = FALSE;
        else
            d->saving_mixed += g->predicted_saving;
        for (guint j = 0; j < groups->len && !grp; j++) {
            if (strcmp(g_array_index(groups, Group, j).name, g->group) == 0)
                grp = &g_array_index(groups, Group, j);
        }
        if (!grp) {
            Group fresh = { .name = g->group };
            g_array_append_val(groups, fresh);
            grp = &g_array_index(groups, Group, groups->len - 1);
        }
        grp->n_guests++;
        grp->required |= g->required;
        if (g->predicted_saving >= 0)
            grp->saving = (grp->saving < 0 ? 0 : grp->saving) + g->predicted_saving;
        else if (grp->n_guests == 1)
            grp->saving = -1;
        if (g->numa_node < 0 || g->numa_node >= 64)
            grp->nodes_unknown = TRUE;
        else
            grp->nodes |= G_GUINT64_CONSTANT(1) << g->numa_node;
    }
    if (!mixed_known)
        d->saving_mixed = -1;
    /* The model's estimates over several guests at once, where it has them. */
    for (guint j = 0; j < groups->len; j++) {
        Group *grp = &g_array_index(groups, Group, j);
        const SpTrustEstimate *e = find_estimate(host, grp->name);

        if (e) {
            grp->saving = e->saving;
            grp->together = TRUE;
        } else {
            grp->together = grp->n_guests == 1 && grp->saving >= 0;
        }
    }
    {
        const SpTrustEstimate *e = find_estimate(host, NULL);
        if (e) {
            d->saving_mixed = e->saving;
            d->mixed_together = TRUE;
        } else if (groups->len == 1) {
            d->saving_mixed = g_array_index(groups, Group, 0).saving;
            d->mixed_together = g_array_index(groups, Group, 0).together;
        }
    }
    g_array_sort(groups, group_cmp);

    /* Which groups merge. */
    for (guint j = 0; j < groups->len; j++) {
        Group *grp = &g_array_index(groups, Group, j);

        if (host->allow_mixing || j == 0) {
            g_ptr_array_add(chosen, grp);
            used_nodes |= grp->nodes;
            continue;
        }
        if (per_node && !grp->nodes_unknown &&
            !g_array_index(groups, Group, 0).nodes_unknown && !(grp->nodes & used_nodes)) {
            g_ptr_array_add(chosen, grp);
            used_nodes |= grp->nodes;
        }
    }
    d->groups = g_new0(char *, chosen->len + 1);
    d->saving_chosen = 0;
    for (guint c = 0; c < chosen->len; c++) {
        const Group *grp = chosen->pdata[c];
        d->groups[c] = g_strdup(grp->name);
        if (grp->saving < 0)
            chosen_known = FALSE;
        else
            d->saving_chosen += grp->saving;
    }
    if (!chosen_known)
        d->saving_chosen = -1;
    mixed_s = format_mib(d->saving_mixed);
    chosen_s = format_mib(d->saving_chosen);
    d->group_savings = g_array_sized_new(FALSE, TRUE, sizeof(SpTrustGroupSaving), groups->len);
    for (guint j = 0; j < groups->len; j++) {
        const Group *grp = &g_array_index(groups, Group, j);
        SpTrustGroupSaving gs = {
            .group = g_strdup(grp->name), .n_guests = grp->n_guests, .saving = grp->saving,
            .together = grp->together,
            .mergeable = g_ptr_array_find(chosen, grp, NULL),
        };
        all_together &= grp->together;
        g_array_append_val(d->group_savings, gs);
    }
    all_together &= d->mixed_together;

    if (groups->len == 0) {
        d->reason = g_strdup("no guest wants to merge");
    } else if (groups->len == 1) {
        d->reason = g_strdup_printf("one trust group among the willing guests: %s",
                                    g_array_index(groups, Group, 0).name);
    } else if (host->allow_mixing) {
        append_per_group(figures, groups);
        d->reason = g_strdup_printf("[trust] allow_mixing = yes: %u groups merge together; "
                                    "predicted saving %s mixed%s%s", groups->len, mixed_s,
                                    figures->str, all_together ? "" : " (sums of per-guest "
                                    "estimates so far)");
    } else if (chosen->len > 1) {
        g_autofree char *list = g_strjoinv(", ", d->groups);
        append_per_group(figures, groups);
        d->reason = g_strdup_printf("merge_across_nodes=0 on %u NUMA nodes: groups on "
                                    "distinct nodes merge side by side (%s); predicted "
                                    "saving %s, %s if mixed%s%s", host->n_numa_nodes, list,
                                    chosen_s, mixed_s, figures->str,
                                    all_together ? "" : " (sums of per-guest estimates so far)");
    } else {
        const Group *first = &g_array_index(groups, Group, 0);
        const Group *second = &g_array_index(groups, Group, 1);
        append_per_group(figures, groups);
        d->reason = g_strdup_printf("%u trust groups want to merge and may not mix: %s "
                                    "merges (%s); predicted saving %s, %s if mixed%s%s%s",
                                    groups->len, first->name, why_first(first, second),
                                    chosen_s, mixed_s, figures->str,
                                    all_together ? "" : " (sums of per-guest estimates so far)",
                                    per_node ? "; the groups share a NUMA node" : "");
    }

    /* Each guest. */
    for (guint i = 0; i < n; i++) {
        const SpTrustGuest *g = &guests[i];
        SpTrustVerdict *v = &g_array_index(d->verdicts, SpTrustVerdict, i);

        if (!g->wants_merge)
            continue;
        v->mergeable = g_strv_contains((const char *const *)d->groups, g->group);
        if (!v->mergeable) {
            const Group *own = NULL;
            for (guint j = 0; j < groups->len && !own; j++) {
                if (strcmp(g_array_index(groups, Group, j).name, g->group) == 0)
                    own = &g_array_index(groups, Group, j);
            }
            v->reason = g_strdup_printf("trust group %s may not merge alongside group %s "
                                        "(chosen for %s)%s", g->group, d->groups[0],
                                        why_first(chosen->pdata[0], own),
                                        g->required ? "; its merge=required is not met" : "");
        }
    }
    return g_steal_pointer(&d);
}
