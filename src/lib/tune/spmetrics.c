/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmetrics.c: render a metrics snapshot as Prometheus text (format 0.0.4)
 *
 * The text is a list of families, each one "# HELP", one "# TYPE" and its
 * samples, a family's samples together.  Per-guest families therefore loop
 * over the guests inside, not the other way round.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>

#include "samepage/spmetrics.h"

SpMetricsSnapshot *
sp_metrics_snapshot_new(void)
{
    SpMetricsSnapshot *snap = g_new0(SpMetricsSnapshot, 1);

    snap->guests = g_ptr_array_new();
    snap->trust_groups = g_ptr_array_new();
    return snap;
}

static void
sp_metrics_guest_free(SpMetricsGuest *g)
{
    g_free(g->domain);
    g_free(g->uuid);
    g_free(g->group);
    g_free(g);
}

void
sp_metrics_snapshot_free(SpMetricsSnapshot *snap)
{
    if (!snap)
        return;
    if (snap->guests) {
        for (guint i = 0; i < snap->guests->len; i++)
            sp_metrics_guest_free(g_ptr_array_index(snap->guests, i));
        g_ptr_array_unref(snap->guests);
    }
    if (snap->trust_groups) {
        for (guint i = 0; i < snap->trust_groups->len; i++) {
            SpMetricsTrustGroup *t = g_ptr_array_index(snap->trust_groups, i);
            g_free(t->group);
            g_free(t);
        }
        g_ptr_array_unref(snap->trust_groups);
    }
    g_free(snap->controller_mode);
    g_free(snap->controller_reason);
    g_free(snap);
}

SpMetricsGuest *
sp_metrics_snapshot_add_guest(SpMetricsSnapshot *snap, const char *domain, const char *uuid)
{
    SpMetricsGuest *g = g_new0(SpMetricsGuest, 1);

    g->domain = g_strdup(domain ? domain : "");
    g->uuid = g_strdup(uuid ? uuid : "");
    g_ptr_array_add(snap->guests, g);
    return g;
}

SpMetricsTrustGroup *
sp_metrics_snapshot_add_trust_group(SpMetricsSnapshot *snap, const char *group)
{
    SpMetricsTrustGroup *t = g_new0(SpMetricsTrustGroup, 1);

    t->group = g_strdup(group ? group : "");
    g_ptr_array_add(snap->trust_groups, t);
    return t;
}

void
sp_metrics_set_string(char **field, const char *value)
{
    g_free(*field);
    *field = g_strdup(value);
}

/* ---------------------------------------------------------------- escaping */

static void
append_escaped(GString *out, const char *value, gboolean quote)
{
    g_autofree char *valid = g_utf8_make_valid(value ? value : "", -1);

    for (const char *p = valid; *p; p++) {
        switch (*p) {
        case '\\': g_string_append(out, "\\\\"); break;
        case '\n': g_string_append(out, "\\n"); break;
        case '"':
            g_string_append(out, quote ? "\\\"" : "\"");
            break;
        default: g_string_append_c(out, *p); break;
        }
    }
}

char *
sp_metrics_escape_label_value(const char *value)
{
    GString *out = g_string_new(NULL);

    append_escaped(out, value, TRUE);
    return g_string_free(out, FALSE);
}

/* ---------------------------------------------------------------- writer */

typedef enum { SP_GAUGE, SP_COUNTER } SpMetricType;

static void
family(GString *out, const char *name, SpMetricType type, const char *help)
{
    g_string_append_printf(out, "# HELP samepage_%s ", name);
    append_escaped(out, help, FALSE);
    g_string_append_printf(out, "\n# TYPE samepage_%s %s\n", name,
                           type == SP_COUNTER ? "counter" : "gauge");
}

/* Labels: NULL-terminated name, value pairs. */
static void
sample_start(GString *out, const char *name, const char *const *labels)
{
    g_string_append_printf(out, "samepage_%s", name);
    if (labels && labels[0]) {
        g_string_append_c(out, '{');
        for (gsize i = 0; labels[i]; i += 2) {
            g_string_append_printf(out, "%s%s=\"", i ? "," : "", labels[i]);
            append_escaped(out, labels[i + 1], TRUE);
            g_string_append_c(out, '"');
        }
        g_string_append_c(out, '}');
    }
    g_string_append_c(out, ' ');
}

static void
sample_int(GString *out, const char *name, const char *const *labels, gint64 v)
{
    sample_start(out, name, labels);
    g_string_append_printf(out, "%" G_GINT64_FORMAT "\n", v);
}

static void
sample_uint(GString *out, const char *name, const char *const *labels, guint64 v)
{
    sample_start(out, name, labels);
    g_string_append_printf(out, "%" G_GUINT64_FORMAT "\n", v);
}

/* The shortest %g text that reads back as @v (0.7, not 0.69999999999999996). */
static const char *
shortest(char *buf, gsize size, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        char fmt[8];

        g_snprintf(fmt, sizeof fmt, "%%.%dg", prec);
        g_ascii_formatd(buf, size, fmt, v);
        if (g_ascii_strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

static void
sample_double(GString *out, const char *name, const char *const *labels, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    sample_start(out, name, labels);
    if (isnan(v))
        g_string_append(out, "NaN\n");
    else if (isinf(v))
        g_string_append(out, v > 0 ? "+Inf\n" : "-Inf\n");
    else
        g_string_append_printf(out, "%s\n", shortest(buf, sizeof buf, v));
}

/* ---------------------------------------------------------------- KSM */

/* How each sysfs key is exported.  A divisor turns the kernel's unit
 * (milliseconds, percent) into a base unit (seconds, ratio); enum knobs become one
 * sample per choice, labelled, 1 for the current one. */
typedef struct {
    const char *name;           /* after "samepage_" */
    SpMetricType type;
    double divisor;             /* 0: integer as is; else value / divisor */
    const char *help;
} SpKsmMetric;

static const SpKsmMetric sp_ksm_metrics[SP_KSM_N_KEYS] = {
    [SP_KSM_RUN] = { "ksm_run", SP_GAUGE, 0,
        "KSM knob run: 0 stopped, 1 running, 2 unmerge all" },
    [SP_KSM_PAGES_TO_SCAN] = { "ksm_pages_to_scan", SP_GAUGE, 0,
        "KSM knob pages_to_scan: pages ksmd scans per batch" },
    [SP_KSM_SLEEP_MILLISECS] = { "ksm_sleep_seconds", SP_GAUGE, 1000,
        "KSM knob sleep_millisecs, in seconds: ksmd's pause between batches" },
    [SP_KSM_MAX_PAGE_SHARING] = { "ksm_max_page_sharing", SP_GAUGE, 0,
        "KSM knob max_page_sharing: most mappings of one KSM page" },
    [SP_KSM_MERGE_ACROSS_NODES] = { "ksm_merge_across_nodes", SP_GAUGE, 0,
        "KSM knob merge_across_nodes: 1 if pages of different NUMA nodes may merge" },
    [SP_KSM_USE_ZERO_PAGES] = { "ksm_use_zero_pages", SP_GAUGE, 0,
        "KSM knob use_zero_pages: 1 if empty pages map the zero page" },
    [SP_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS] = { "ksm_stable_node_chains_prune_seconds",
        SP_GAUGE, 1000, "KSM knob stable_node_chains_prune_millisecs, in seconds" },
    [SP_KSM_SMART_SCAN] = { "ksm_smart_scan", SP_GAUGE, 0,
        "KSM knob smart_scan: 1 if ksmd skips pages that did not merge lately" },
    [SP_KSM_ADVISOR_MODE] = { "ksm_advisor_mode", SP_GAUGE, 0,
        "KSM knob advisor_mode: 1 for the current mode" },
    [SP_KSM_ADVISOR_MAX_CPU] = { "ksm_advisor_max_cpu_ratio", SP_GAUGE, 100,
        "KSM knob advisor_max_cpu as a ratio of one CPU" },
    [SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN] = { "ksm_advisor_min_pages_to_scan", SP_GAUGE, 0,
        "KSM knob advisor_min_pages_to_scan" },
    [SP_KSM_ADVISOR_MAX_PAGES_TO_SCAN] = { "ksm_advisor_max_pages_to_scan", SP_GAUGE, 0,
        "KSM knob advisor_max_pages_to_scan" },
    [SP_KSM_ADVISOR_TARGET_SCAN_TIME] = { "ksm_advisor_target_scan_time_seconds", SP_GAUGE, 0,
        "KSM knob advisor_target_scan_time: seconds the advisor aims at per full scan" },
    [SP_KSM_PAGES_SHARED] = { "ksm_pages_shared", SP_GAUGE, 0,
        "KSM pages_shared: KSM pages in use" },
    [SP_KSM_PAGES_SHARING] = { "ksm_pages_sharing", SP_GAUGE, 0,
        "KSM pages_sharing: further mappings of KSM pages (pages saved)" },
    [SP_KSM_PAGES_UNSHARED] = { "ksm_pages_unshared", SP_GAUGE, 0,
        "KSM pages_unshared: pages scanned, unique, repeatedly checked" },
    [SP_KSM_PAGES_VOLATILE] = { "ksm_pages_volatile", SP_GAUGE, 0,
        "KSM pages_volatile: pages changing too fast to be merged" },
    [SP_KSM_PAGES_SKIPPED] = { "ksm_pages_skipped_total", SP_COUNTER, 0,
        "KSM pages_skipped: pages smart scan skipped" },
    [SP_KSM_PAGES_SCANNED] = { "ksm_pages_scanned_total", SP_COUNTER, 0,
        "KSM pages_scanned: pages ksmd scanned" },
    [SP_KSM_FULL_SCANS] = { "ksm_full_scans_total", SP_COUNTER, 0,
        "KSM full_scans: passes of ksmd over every mergeable area" },
    [SP_KSM_STABLE_NODE_CHAINS] = { "ksm_stable_node_chains", SP_GAUGE, 0,
        "KSM stable_node_chains: KSM pages that hit max_page_sharing" },
    [SP_KSM_STABLE_NODE_DUPS] = { "ksm_stable_node_dups", SP_GAUGE, 0,
        "KSM stable_node_dups: duplicated KSM pages in chains" },
    [SP_KSM_KSM_ZERO_PAGES] = { "ksm_zero_pages", SP_GAUGE, 0,
        "KSM ksm_zero_pages: empty pages mapped to the zero page by ksmd" },
    [SP_KSM_GENERAL_PROFIT] = { "ksm_general_profit_bytes", SP_GAUGE, 0,
        "KSM general_profit: bytes saved minus ksmd's metadata, may be negative" },
};

static void
render_ksm(GString *out, const SpMetricsSnapshot *snap)
{
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        const SpKsmMetric *m = &sp_ksm_metrics[k];
        const SpKsmKeyInfo *info = sp_ksm_key_info(k);
        gint64 v = snap->ksm.entry[k].value;

        if (!snap->ksm.entry[k].supported)
            continue;
        family(out, m->name, m->type, m->help);
        if (info->type == SP_KSM_TYPE_ENUM) {
            for (gint64 i = 0; info->choices[i]; i++) {
                const char *labels[] = { "mode", info->choices[i], NULL };
                sample_int(out, m->name, labels, i == v);
            }
        } else if (m->divisor != 0) {
            sample_double(out, m->name, NULL, (double)v / m->divisor);
        } else if (m->type == SP_COUNTER || info->type == SP_KSM_TYPE_UINT
                   || info->type == SP_KSM_TYPE_BOOL) {
            sample_uint(out, m->name, NULL, v < 0 ? 0 : (guint64)v);
        } else {
            sample_int(out, m->name, NULL, v);
        }
    }
    if (snap->ksm.entry[SP_KSM_PAGES_SHARING].supported) {
        gint64 v = snap->ksm.entry[SP_KSM_PAGES_SHARING].value;
        guint64 page = snap->page_size ? snap->page_size : 4096;

        family(out, "ksm_saving_bytes", SP_GAUGE,
               "Memory KSM saves now: pages_sharing times the page size");
        sample_uint(out, "ksm_saving_bytes", NULL, (v < 0 ? 0 : (guint64)v) * page);
    }
}

/* ---------------------------------------------------------------- guests */

typedef enum {
    SP_GUEST_MERGEABLE,
    SP_GUEST_MERGING_PAGES,
    SP_GUEST_MERGING_BYTES,
    SP_GUEST_PROFIT,
    SP_GUEST_PREDICTED,
} SpGuestField;

typedef struct {
    SpGuestField field;
    const char *name;
    const char *help;
} SpGuestMetric;

static const SpGuestMetric sp_guest_metrics[] = {
    { SP_GUEST_MERGEABLE, "guest_mergeable",
      "1 if the guest's RAM is marked mergeable by its policy, else 0" },
    { SP_GUEST_MERGING_PAGES, "guest_ksm_merging_pages",
      "Pages of the guest's process that KSM merged (ksm_stat ksm_merging_pages)" },
    { SP_GUEST_MERGING_BYTES, "guest_ksm_merging_bytes",
      "Bytes of the guest's process that KSM merged (ksm_merging_pages times the page size)" },
    { SP_GUEST_PROFIT, "guest_ksm_profit_bytes",
      "KSM's profit on the guest's process in bytes (ksm_stat ksm_process_profit)" },
    { SP_GUEST_PREDICTED, "guest_predicted_saving_bytes",
      "Bytes the model predicts KSM saves on this guest" },
};

static gboolean
guest_has(const SpMetricsGuest *g, SpGuestField f)
{
    switch (f) {
    case SP_GUEST_MERGEABLE: return TRUE;
    case SP_GUEST_MERGING_PAGES:
    case SP_GUEST_MERGING_BYTES: return g->have_ksm_stat;
    case SP_GUEST_PROFIT: return g->have_ksm_stat && g->have_profit;
    case SP_GUEST_PREDICTED: return g->have_prediction;
    }
    return FALSE;
}

static void
render_guests(GString *out, const SpMetricsSnapshot *snap)
{
    guint64 page = snap->page_size ? snap->page_size : 4096;
    guint n_mergeable = 0;
    gboolean any_group = FALSE;

    family(out, "guests", SP_GAUGE, "Guests samepaged knows of");
    sample_uint(out, "guests", NULL, snap->guests->len);
    for (guint i = 0; i < snap->guests->len; i++) {
        const SpMetricsGuest *g = g_ptr_array_index(snap->guests, i);
        n_mergeable += g->mergeable ? 1 : 0;
        any_group |= g->group != NULL;
    }
    family(out, "guests_mergeable", SP_GAUGE, "Guests whose RAM is marked mergeable");
    sample_uint(out, "guests_mergeable", NULL, n_mergeable);

    for (gsize m = 0; m < G_N_ELEMENTS(sp_guest_metrics); m++) {
        const SpGuestMetric *gm = &sp_guest_metrics[m];
        gboolean header = FALSE;

        for (guint i = 0; i < snap->guests->len; i++) {
            const SpMetricsGuest *g = g_ptr_array_index(snap->guests, i);
            const char *labels[] = { "domain", g->domain, "uuid", g->uuid, NULL };

            if (!guest_has(g, gm->field))
                continue;
            if (!header) {
                family(out, gm->name, SP_GAUGE, gm->help);
                header = TRUE;
            }
            switch (gm->field) {
            case SP_GUEST_MERGEABLE:
                sample_uint(out, gm->name, labels, g->mergeable ? 1 : 0);
                break;
            case SP_GUEST_MERGING_PAGES:
                sample_uint(out, gm->name, labels, g->merging_pages);
                break;
            case SP_GUEST_MERGING_BYTES:
                sample_uint(out, gm->name, labels, g->merging_pages * page);
                break;
            case SP_GUEST_PROFIT:
                sample_int(out, gm->name, labels, g->profit_bytes);
                break;
            case SP_GUEST_PREDICTED:
                sample_uint(out, gm->name, labels, g->predicted_saving_bytes);
                break;
            }
        }
    }
    if (any_group) {
        family(out, "guest_trust_group", SP_GAUGE,
               "The guest's trust group, as a label (always 1)");
        for (guint i = 0; i < snap->guests->len; i++) {
            const SpMetricsGuest *g = g_ptr_array_index(snap->guests, i);
            const char *labels[] = { "domain", g->domain, "uuid", g->uuid,
                                     "group", g->group, NULL };
            if (g->group)
                sample_uint(out, "guest_trust_group", labels, 1);
        }
    }
}

/* ---------------------------------------------------------- trust groups */

static void
render_trust(GString *out, const SpMetricsSnapshot *snap)
{
    gboolean header = FALSE;

    if (snap->trust_groups->len > 0) {
        family(out, "trust_group_mergeable", SP_GAUGE,
               "1 if the trust group's willing guests may merge, else 0");
        for (guint i = 0; i < snap->trust_groups->len; i++) {
            const SpMetricsTrustGroup *t = g_ptr_array_index(snap->trust_groups, i);
            const char *labels[] = { "group", t->group, NULL };
            sample_uint(out, "trust_group_mergeable", labels, t->mergeable ? 1 : 0);
        }
    }
    for (guint i = 0; i < snap->trust_groups->len; i++) {
        const SpMetricsTrustGroup *t = g_ptr_array_index(snap->trust_groups, i);
        const char *labels[] = { "group", t->group, NULL };

        if (!t->have_saving)
            continue;
        if (!header) {
            family(out, "trust_group_predicted_saving_bytes", SP_GAUGE,
                   "Bytes the model predicts KSM saves with the group's willing guests "
                   "merging together, on their own");
            header = TRUE;
        }
        sample_uint(out, "trust_group_predicted_saving_bytes", labels, t->predicted_saving_bytes);
    }
    if (snap->have_trust_chosen) {
        family(out, "trust_isolated_predicted_saving_bytes", SP_GAUGE,
               "Bytes the model predicts KSM saves with the groups that may merge, "
               "each kept apart (the trust groups' decision)");
        sample_uint(out, "trust_isolated_predicted_saving_bytes", NULL,
                    snap->trust_chosen_saving_bytes);
    }
    if (snap->have_trust_mixed) {
        family(out, "trust_mixed_predicted_saving_bytes", SP_GAUGE,
               "Bytes the model predicts KSM would save with every willing guest merging "
               "together, trust groups mixed");
        sample_uint(out, "trust_mixed_predicted_saving_bytes", NULL,
                    snap->trust_mixed_saving_bytes);
    }
}

/* ---------------------------------------------------------------- the rest */

char *
sp_metrics_render(const SpMetricsSnapshot *snap)
{
    GString *out = g_string_sized_new(4096);

    if (snap->have_ksm)
        render_ksm(out, snap);
    if (snap->have_ksmd_cpu) {
        family(out, "ksmd_cpu_seconds_total", SP_COUNTER,
               "CPU time ksmd used since boot (utime + stime)");
        sample_double(out, "ksmd_cpu_seconds_total", NULL, snap->ksmd_cpu_seconds);
    }
    render_guests(out, snap);
    render_trust(out, snap);
    if (snap->have_prediction) {
        family(out, "model_predicted_pages_sharing", SP_GAUGE,
               "pages_sharing the model predicts for the mergeable guests");
        sample_uint(out, "model_predicted_pages_sharing", NULL, snap->predicted_pages_sharing);
        family(out, "model_predicted_saving_bytes", SP_GAUGE,
               "Bytes the model predicts KSM saves on the host");
        sample_uint(out, "model_predicted_saving_bytes", NULL, snap->predicted_saving_bytes);
        family(out, "model_prediction_age_seconds", SP_GAUGE,
               "Age of the model's latest prediction");
        sample_double(out, "model_prediction_age_seconds", NULL, snap->prediction_age_seconds);
    }
    if (snap->have_controller) {
        const char *mode[] = { "mode", snap->controller_mode ? snap->controller_mode : "", NULL };
        const char *why[] = { "reason", snap->controller_reason ? snap->controller_reason : "",
                              NULL };

        family(out, "controller_mode", SP_GAUGE,
               "The scan-rate controller's mode, as a label (always 1)");
        sample_uint(out, "controller_mode", mode, 1);
        family(out, "controller_decision", SP_GAUGE,
               "Why the controller chose the current knobs, as a label (always 1)");
        sample_uint(out, "controller_decision", why, 1);
        family(out, "controller_pages_to_scan", SP_GAUGE,
               "pages_to_scan the controller chose");
        sample_uint(out, "controller_pages_to_scan", NULL, snap->controller_pages_to_scan);
        family(out, "controller_sleep_seconds", SP_GAUGE,
               "sleep_millisecs the controller chose, in seconds");
        sample_double(out, "controller_sleep_seconds", NULL,
                      snap->controller_sleep_ms / 1000.0);
    }
    return g_string_free(out, FALSE);
}
