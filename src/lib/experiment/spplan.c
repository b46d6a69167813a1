/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spplan.c: parse and check an experiment plan
 *
 * Theory of operation
 *
 * GKeyFile parses the values but forgets where they were and silently takes
 * the last of two equal keys.  So the text is first walked line by line: a
 * line is blank, a comment, a [group] or a key=value; anything else is an
 * error with its line number, and the line of every group and key is kept
 * for the messages.  Then GKeyFile loads the same text, and every key is
 * looked up in a table that says which group it belongs to and how its
 * value is parsed and bounded.  Checks across keys (duration against
 * interval, guest RAM against MemAvailable) come last.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-plan"

#include <math.h>
#include <string.h>

#include "samepage/spplan.h"
#include "samepage/spproc.h"

G_DEFINE_QUARK(sp-plan-error-quark, sp_plan_error)

/* Where the groups and keys are in the text. */
typedef struct {
    const char *source;
    GHashTable *lines;          /* "group" or "group\nkey" -> line number */
} SpPlanCtx;

static guint
sp_plan_line(const SpPlanCtx *ctx, const char *group, const char *key)
{
    g_autofree char *id = key ? g_strdup_printf("%s\n%s", group, key) : g_strdup(group);
    return GPOINTER_TO_UINT(g_hash_table_lookup(ctx->lines, id));
}

static void G_GNUC_PRINTF(6, 7)
sp_plan_error(GError **error, SpPlanErrorCode code, const SpPlanCtx *ctx,
              const char *group, const char *key, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;
    g_autofree char *where = NULL;
    guint line = group ? sp_plan_line(ctx, group, key) : 0;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (line)
        where = g_strdup_printf("%s:%u", ctx->source, line);
    else
        where = g_strdup(ctx->source);
    if (group && key)
        g_set_error(error, SP_PLAN_ERROR, code, "%s: [%s] %s: %s", where, group, key, msg);
    else if (group)
        g_set_error(error, SP_PLAN_ERROR, code, "%s: [%s]: %s", where, group, msg);
    else
        g_set_error(error, SP_PLAN_ERROR, code, "%s: %s", where, msg);
}


/* "PLAN:LINE: message", for what the line walk finds. */
static void G_GNUC_PRINTF(5, 6)
sp_plan_line_error(GError **error, SpPlanErrorCode code, const SpPlanCtx *ctx, guint line,
                   const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, SP_PLAN_ERROR, code, "%s:%u: %s", ctx->source, line, msg);
}

/* ---------------------------------------------------------------- values */

static gboolean
sp_plan_parse_uint(const char *text, guint64 min, guint64 max, guint64 *out, GError **error)
{
    g_autofree char *copy = g_strstrip(g_strdup(text));
    g_autoptr(GError) local = NULL;

    if (copy[0] == '-' && copy[1]) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "'%s' is negative; it must be between %" G_GUINT64_FORMAT " and %"
                    G_GUINT64_FORMAT, copy, min, max);
        return FALSE;
    }
    if (!g_ascii_string_to_unsigned(copy, 10, min, max, out, &local)) {
        if (g_error_matches(local, G_NUMBER_PARSER_ERROR, G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS))
            g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                        "%s is out of range [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]",
                        copy, min, max);
        else
            g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                        "'%s' is not a whole number", copy);
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_plan_parse_seconds(const char *text, double min, gboolean min_exclusive, double max,
                      double *out, GError **error)
{
    g_autofree char *copy = g_strstrip(g_strdup(text));
    char *end = NULL;
    double v;

    /* Plain decimal numbers only: no hex, no "inf", no "nan". */
    for (const char *p = copy; *p; p++) {
        if (!g_ascii_isdigit(*p) && *p != '.' && *p != '-' && *p != '+' &&
            *p != 'e' && *p != 'E') {
            g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                        "'%s' is not a number of seconds", copy);
            return FALSE;
        }
    }
    v = g_ascii_strtod(copy, &end);
    if (!copy[0] || end == copy || *end || !isfinite(v)) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "'%s' is not a number of seconds", copy);
        return FALSE;
    }
    if (v < 0) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "%s is negative: it must be %s %g seconds", copy,
                    min_exclusive ? "more than" : "at least", min);
        return FALSE;
    }
    if (v < min || (min_exclusive && v == min) || v > max) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "%s seconds is out of range %s%g, %g] seconds", copy,
                    min_exclusive ? "(" : "[", min, max);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

/* ---------------------------------------------------------------- the keys */

typedef struct _SpPlanKeyInfo SpPlanKeyInfo;
typedef gboolean (*SpPlanParseFunc)(SpPlan *plan, const SpPlanKeyInfo *info,
                                    const char *value, GError **error);

struct _SpPlanKeyInfo {
    const char *group;
    const char *key;
    SpPlanParseFunc parse;
    gsize offset;               /* of the field in SpPlan */
    double min, max;            /* bounds of numbers */
    gboolean min_exclusive;
};

static gboolean
sp_plan_key_string(SpPlan *plan, const SpPlanKeyInfo *info, const char *value, GError **error)
{
    char **field = G_STRUCT_MEMBER_P(plan, info->offset);
    g_autofree char *copy = g_strstrip(g_strdup(value));

    if (!copy[0]) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID, "the value is empty");
        return FALSE;
    }
    g_free(*field);
    *field = g_steal_pointer(&copy);
    return TRUE;
}

/* [A-Za-z0-9][A-Za-z0-9._-]{0,63}: the name becomes part of domain names,
 * file names and report text. */
gboolean
sp_plan_name_is_valid(const char *name)
{
    gsize n = strlen(name);

    if (n == 0 || n > SP_PLAN_NAME_MAX || !g_ascii_isalnum(name[0]))
        return FALSE;
    for (const char *p = name; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '.' && *p != '_' && *p != '-')
            return FALSE;
    }
    return TRUE;
}

static void
sp_plan_set_name_error(GError **error, const char *name)
{
    g_autofree char *shown = g_strescape(name, NULL);

    g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                "'%s' is not a valid name: 1 to %d of A-Z a-z 0-9 . _ -, starting with a "
                "letter or digit", shown, SP_PLAN_NAME_MAX);
}

static gboolean
sp_plan_key_name(SpPlan *plan, const SpPlanKeyInfo *info, const char *value, GError **error)
{
    g_autofree char *copy = g_strstrip(g_strdup(value));

    if (!sp_plan_name_is_valid(copy)) {
        sp_plan_set_name_error(error, copy);
        return FALSE;
    }
    g_free(plan->name);
    plan->name = g_steal_pointer(&copy);
    return TRUE;
}

static gboolean
sp_plan_key_uint(SpPlan *plan, const SpPlanKeyInfo *info, const char *value, GError **error)
{
    guint *field = G_STRUCT_MEMBER_P(plan, info->offset);
    guint64 v;

    if (!sp_plan_parse_uint(value, (guint64)info->min, (guint64)info->max, &v, error))
        return FALSE;
    *field = (guint)v;
    return TRUE;
}

static gboolean
sp_plan_key_seconds(SpPlan *plan, const SpPlanKeyInfo *info, const char *value, GError **error)
{
    double *field = G_STRUCT_MEMBER_P(plan, info->offset);

    return sp_plan_parse_seconds(value, info->min, info->min_exclusive, info->max, field, error);
}

static gboolean
sp_plan_key_vm_counts(SpPlan *plan, const SpPlanKeyInfo *info, const char *value, GError **error)
{
    g_auto(GStrv) words = g_strsplit_set(value, ",; \t", -1);
    g_autoptr(GArray) counts = g_array_new(FALSE, FALSE, sizeof(guint));

    for (char **w = words; *w; w++) {
        guint64 v;
        g_autoptr(GError) local = NULL;

        if (!**w)
            continue;
        if (!sp_plan_parse_uint(*w, 0, G_MAXUINT32, &v, &local)) {
            g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                        "VM count %s", local->message);
            return FALSE;
        }
        if (v == 0) {
            g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                        "a VM count of 0: every run needs at least one guest");
            return FALSE;
        }
        if (v > SP_PLAN_MAX_VMS) {
            g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                        "a VM count of %" G_GUINT64_FORMAT " is more than %d", v, SP_PLAN_MAX_VMS);
            return FALSE;
        }
        for (guint i = 0; i < counts->len; i++) {
            if (g_array_index(counts, guint, i) == v) {
                g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                            "the VM count %" G_GUINT64_FORMAT " is given twice", v);
                return FALSE;
            }
        }
        guint u = (guint)v;
        g_array_append_val(counts, u);
    }
    if (counts->len == 0) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "no VM counts (give a list such as 1,2,3)");
        return FALSE;
    }
    if (counts->len > SP_PLAN_MAX_RUNS) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "%u VM counts are more than %d runs", counts->len, SP_PLAN_MAX_RUNS);
        return FALSE;
    }
    g_clear_pointer(&plan->vm_counts, g_array_unref);
    plan->vm_counts = g_steal_pointer(&counts);
    return TRUE;
}

static gboolean
sp_plan_key_workload(SpPlan *plan, const SpPlanKeyInfo *info, const char *value, GError **error)
{
    g_autofree char *copy = g_strstrip(g_strdup(value));
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) local = NULL;
    int argc;

    g_clear_pointer(&plan->workload, g_free);
    g_clear_pointer(&plan->workload_argv, g_strfreev);
    if (g_str_equal(copy, "none"))
        return TRUE;
    if (!copy[0]) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "the value is empty (write \"none\" for idle guests)");
        return FALSE;
    }
    if (!g_shell_parse_argv(copy, &argc, &argv, &local)) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "'%s' does not parse as a command line: %s", copy, local->message);
        return FALSE;
    }
    if (!g_str_equal(argv[0], "stress-ng")) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "'%s' is not \"none\" or a stress-ng command line", argv[0]);
        return FALSE;
    }
    if (argc < 2) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID,
                    "stress-ng needs stressors (e.g. --vm 2)");
        return FALSE;
    }
    plan->workload = g_steal_pointer(&copy);
    plan->workload_argv = g_strdupv(argv + 1);
    return TRUE;
}

#define KEY(g, k, fn, field, lo, hi, excl) \
    { g, k, fn, G_STRUCT_OFFSET(SpPlan, field), lo, hi, excl }

static const SpPlanKeyInfo sp_plan_keys[] = {
    KEY("plan", "name", sp_plan_key_name, name, 0, 0, FALSE),
    KEY("plan", "description", sp_plan_key_string, description, 0, 0, FALSE),
    KEY("plan", "vm_counts", sp_plan_key_vm_counts, vm_counts, 0, 0, FALSE),
    KEY("guest", "memory_mib", sp_plan_key_uint, memory_mib, 64, 1024 * 1024, FALSE),
    KEY("guest", "vcpus", sp_plan_key_uint, vcpus, 1, 64, FALSE),
    KEY("guest", "boot_timeout", sp_plan_key_seconds, boot_timeout_s, 1, 24 * 3600, FALSE),
    KEY("guest", "image_dir", sp_plan_key_string, image_dir, 0, 0, FALSE),
    KEY("guest", "template", sp_plan_key_string, template_path, 0, 0, FALSE),
    KEY("guest", "overlay_dir", sp_plan_key_string, overlay_dir, 0, 0, FALSE),
    KEY("workload", "command", sp_plan_key_workload, workload, 0, 0, FALSE),
    KEY("sampling", "interval", sp_plan_key_seconds, interval_s, 1, 3600, FALSE),
    KEY("sampling", "duration", sp_plan_key_seconds, duration_s, 1, 7 * 24 * 3600, FALSE),
    KEY("sampling", "settle", sp_plan_key_seconds, settle_s, 0, 24 * 3600, FALSE),
    KEY("sampling", "predict_interval", sp_plan_key_seconds, predict_interval_s, 0,
        24 * 3600, FALSE),
};

static const char *const sp_plan_groups[] = { "plan", "guest", "ksm", "workload", "sampling", NULL };

static const SpPlanKeyInfo *
sp_plan_key_info(const char *group, const char *key)
{
    for (gsize i = 0; i < G_N_ELEMENTS(sp_plan_keys); i++) {
        if (g_str_equal(sp_plan_keys[i].group, group) && g_str_equal(sp_plan_keys[i].key, key))
            return &sp_plan_keys[i];
    }
    return NULL;
}

static char *
sp_plan_keys_of(const char *group)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(sp_plan_keys); i++) {
        if (!g_str_equal(sp_plan_keys[i].group, group))
            continue;
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", sp_plan_keys[i].key);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static char *
sp_plan_ksm_knobs(void)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(k);
        if (!info->writable || k == SP_KSM_RUN)
            continue;
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", info->name);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* ---------------------------------------------------------------- lines */

/*
 * Walk the text: record the line of every group and key, refuse what
 * GKeyFile would refuse (or silently merge) with the line number.  The
 * text GKeyFile gets has carriage returns removed.
 */
static gboolean
sp_plan_index_lines(const char *text, gsize len, SpPlanCtx *ctx, GString *clean, GError **error)
{
    const char *p = text, *end = text + len;
    g_autofree char *group = NULL;
    guint lineno = 0;

    if (memchr(text, '\0', len)) {
        guint nul_line = 1;
        for (const char *q = text; *q; q++)
            nul_line += *q == '\n';
        sp_plan_line_error(error, SP_PLAN_ERROR_SYNTAX, ctx, nul_line,
                           "a NUL byte: this is not a plan file");
        return FALSE;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        gsize n = nl ? (gsize)(nl - p) : (gsize)(end - p);
        g_autofree char *line = g_strndup(p, n);
        char *s;

        lineno++;
        p = nl ? nl + 1 : end;
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        g_string_append(clean, line);
        g_string_append_c(clean, '\n');
        if (!g_utf8_validate(line, -1, NULL)) {
            sp_plan_line_error(error, SP_PLAN_ERROR_SYNTAX, ctx, lineno, "not valid UTF-8");
            return FALSE;
        }
        s = g_strstrip(line);
        if (!*s || *s == '#')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] || close == s + 1) {
                sp_plan_line_error(error, SP_PLAN_ERROR_SYNTAX, ctx, lineno,
                                   "'%s' is not a [group] header", s);
                return FALSE;
            }
            g_free(group);
            group = g_strndup(s + 1, close - s - 1);
            if (g_hash_table_contains(ctx->lines, group)) {
                sp_plan_line_error(error, SP_PLAN_ERROR_DUPLICATE, ctx, lineno,
                                   "[%s]: the group is given again (first on line %u)",
                                   group, sp_plan_line(ctx, group, NULL));
                return FALSE;
            }
            g_hash_table_insert(ctx->lines, g_strdup(group), GUINT_TO_POINTER(lineno));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            sp_plan_line_error(error, SP_PLAN_ERROR_SYNTAX, ctx, lineno,
                               "'%s' is not KEY=VALUE, a [group] or a # comment", s);
            return FALSE;
        }
        if (!group) {
            sp_plan_line_error(error, SP_PLAN_ERROR_SYNTAX, ctx, lineno,
                               "a key before the first [group]");
            return FALSE;
        }
        *eq = '\0';
        g_autofree char *key = g_strdup(g_strstrip(s));
        if (strpbrk(key, "[]")) {
            sp_plan_line_error(error, SP_PLAN_ERROR_UNKNOWN, ctx, lineno,
                               "[%s] %s: unknown key (plans have no localized keys)", group, key);
            return FALSE;
        }
        g_autofree char *id = g_strdup_printf("%s\n%s", group, key);
        if (g_hash_table_contains(ctx->lines, id)) {
            sp_plan_line_error(error, SP_PLAN_ERROR_DUPLICATE, ctx, lineno,
                               "[%s] %s: the key is given again (first on line %u)",
                               group, key, sp_plan_line(ctx, group, key));
            return FALSE;
        }
        g_hash_table_insert(ctx->lines, g_steal_pointer(&id), GUINT_TO_POINTER(lineno));
    }
    return TRUE;
}

/* ---------------------------------------------------------------- parse */

/* The KSM rates an experiment may set: the kernel takes any unsigned int,
 * but beyond these ksmd does nothing or only burns a CPU. */
typedef struct {
    SpKsmKey key;
    gint64 min, max;
} SpPlanKsmBound;

static const SpPlanKsmBound sp_plan_ksm_bounds[] = {
    { SP_KSM_PAGES_TO_SCAN, 1, 1000000 },
    { SP_KSM_SLEEP_MILLISECS, 0, 600000 },
    { SP_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS, 0, 24 * 3600 * 1000 },
};

static gboolean
sp_plan_parse_ksm(SpPlan *plan, GKeyFile *kf, const SpPlanCtx *ctx, GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "ksm", NULL, NULL);
    gboolean given[SP_KSM_N_KEYS] = { FALSE };
    gint64 value[SP_KSM_N_KEYS] = { 0 };

    for (char **k = keys; k && *k; k++) {
        g_autofree char *text = g_key_file_get_value(kf, "ksm", *k, NULL);
        g_autoptr(GError) local = NULL;
        SpKsmKey key;

        if (!sp_ksm_key_from_name(*k, &key) || !sp_ksm_key_info(key)->writable) {
            g_autofree char *knobs = sp_plan_ksm_knobs();
            sp_plan_error(error, SP_PLAN_ERROR_UNKNOWN, ctx, "ksm", *k,
                          "unknown key: not a KSM knob (knobs: %s)", knobs);
            return FALSE;
        }
        if (key == SP_KSM_RUN) {
            sp_plan_error(error, SP_PLAN_ERROR_INVALID, ctx, "ksm", *k,
                          "the runner controls run (reset with run=2, then run=1 once the "
                          "guests are up): leave it out of the plan");
            return FALSE;
        }
        if (!sp_ksm_parse_value(key, text, &value[key], &local)) {
            sp_plan_error(error, SP_PLAN_ERROR_INVALID, ctx, "ksm", *k, "%s", local->message);
            return FALSE;
        }
        for (gsize b = 0; b < G_N_ELEMENTS(sp_plan_ksm_bounds); b++) {
            const SpPlanKsmBound *bound = &sp_plan_ksm_bounds[b];
            if (bound->key == key && (value[key] < bound->min || value[key] > bound->max)) {
                sp_plan_error(error, SP_PLAN_ERROR_INVALID, ctx, "ksm", *k,
                              "%" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT ", %"
                              G_GINT64_FORMAT "] for an experiment", value[key], bound->min,
                              bound->max);
                return FALSE;
            }
        }
        given[key] = TRUE;
    }
    /* advisor_mode first: pages_to_scan is refused while the advisor runs. */
    plan->n_ksm = 0;
    if (given[SP_KSM_ADVISOR_MODE])
        plan->ksm[plan->n_ksm++] = (SpKsmSetting){ SP_KSM_ADVISOR_MODE, value[SP_KSM_ADVISOR_MODE] };
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        if (given[k] && k != SP_KSM_ADVISOR_MODE)
            plan->ksm[plan->n_ksm++] = (SpKsmSetting){ k, value[k] };
    }
    if (given[SP_KSM_ADVISOR_MODE] && value[SP_KSM_ADVISOR_MODE] != 0 &&
        given[SP_KSM_PAGES_TO_SCAN]) {
        sp_plan_error(error, SP_PLAN_ERROR_INVALID, ctx, "ksm", "pages_to_scan",
                      "the kernel refuses pages_to_scan while advisor_mode is not none");
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_plan_parse:
 * @text: the plan
 * @len: its length, or -1 if NUL-terminated
 * @source: its name in messages (a file name)
 * @limits: (nullable): what the host has; NULL or 0 fields skip those checks
 *
 * Returns: (transfer full): the plan, or NULL with an error naming the
 * line, the group and the key.
 */
SpPlan *
sp_plan_parse(const char *text, gssize len, const char *source,
              const SpPlanLimits *limits, GError **error)
{
    g_autoptr(SpPlan) plan = g_new0(SpPlan, 1);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GHashTable) lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GString) clean = g_string_new(NULL);
    g_autoptr(GError) local = NULL;
    g_auto(GStrv) groups = NULL;
    SpPlanCtx ctx = { source ? source : "plan", lines };
    gsize n = len < 0 ? strlen(text) : (gsize)len;

    plan->source = g_strdup(ctx.source);
    plan->memory_mib = 512;
    plan->vcpus = 1;
    plan->boot_timeout_s = 300;
    plan->interval_s = 10;
    plan->duration_s = 300;
    plan->settle_s = 0;
    plan->predict_interval_s = -1;      /* unset: every sample */

    if (!sp_plan_index_lines(text, n, &ctx, clean, error))
        return NULL;
    if (!g_key_file_load_from_data(kf, clean->str, clean->len, G_KEY_FILE_NONE, &local)) {
        sp_plan_error(error, SP_PLAN_ERROR_SYNTAX, &ctx, NULL, NULL, "%s", local->message);
        return NULL;
    }

    groups = g_key_file_get_groups(kf, NULL);
    for (char **g = groups; *g; g++) {
        g_auto(GStrv) keys = NULL;

        if (!g_strv_contains(sp_plan_groups, *g)) {
            g_autofree char *all = g_strjoinv(", ", (char **)sp_plan_groups);
            sp_plan_error(error, SP_PLAN_ERROR_UNKNOWN, &ctx, *g, NULL,
                          "unknown group (groups: %s)", all);
            return NULL;
        }
        if (g_str_equal(*g, "ksm")) {
            if (!sp_plan_parse_ksm(plan, kf, &ctx, error))
                return NULL;
            continue;
        }
        keys = g_key_file_get_keys(kf, *g, NULL, NULL);
        for (char **k = keys; k && *k; k++) {
            const SpPlanKeyInfo *info = sp_plan_key_info(*g, *k);
            g_autofree char *value = NULL;

            if (!info) {
                g_autofree char *known = sp_plan_keys_of(*g);
                sp_plan_error(error, SP_PLAN_ERROR_UNKNOWN, &ctx, *g, *k,
                              "unknown key (keys of [%s]: %s)", *g, known);
                return NULL;
            }
            value = g_key_file_get_string(kf, *g, *k, &local);
            if (!value) {
                sp_plan_error(error, SP_PLAN_ERROR_INVALID, &ctx, *g, *k, "%s", local->message);
                return NULL;
            }
            if (!info->parse(plan, info, value, &local)) {
                sp_plan_error(error, SP_PLAN_ERROR_INVALID, &ctx, *g, *k, "%s", local->message);
                return NULL;
            }
        }
    }

    /* Across keys. */
    if (!plan->vm_counts) {
        sp_plan_error(error, SP_PLAN_ERROR_MISSING, &ctx, "plan", "vm_counts",
                      "missing: the VM counts to run (e.g. vm_counts=1,2,3)");
        return NULL;
    }
    if (!plan->name) {
        g_autofree char *base = g_path_get_basename(ctx.source);
        char *dot = strrchr(base, '.');
        if (dot && dot != base)
            *dot = '\0';
        if (!sp_plan_name_is_valid(base)) {
            g_autoptr(GError) bad = NULL;
            sp_plan_set_name_error(&bad, base);
            sp_plan_error(error, SP_PLAN_ERROR_INVALID, &ctx, "plan", "name",
                          "the file's name gives %s; set [plan] name", bad->message);
            return NULL;
        }
        plan->name = g_steal_pointer(&base);
    }
    if (plan->interval_s > plan->duration_s) {
        sp_plan_error(error, SP_PLAN_ERROR_INVALID, &ctx, "sampling",
                      sp_plan_line(&ctx, "sampling", "interval") ? "interval" : "duration",
                      "the interval (%g s) is longer than the duration of a run (%g s)",
                      plan->interval_s, plan->duration_s);
        return NULL;
    }
    if (plan->duration_s / plan->interval_s > SP_PLAN_MAX_SAMPLES) {
        sp_plan_error(error, SP_PLAN_ERROR_INVALID, &ctx, "sampling",
                      sp_plan_line(&ctx, "sampling", "duration") ? "duration" : "interval",
                      "%g s every %g s is more than %d samples per run; lengthen the "
                      "interval or shorten the duration", plan->duration_s, plan->interval_s,
                      SP_PLAN_MAX_SAMPLES);
        return NULL;
    }
    if (plan->predict_interval_s < 0)
        plan->predict_interval_s = plan->interval_s;
    if (plan->predict_interval_s > 0 && plan->predict_interval_s < plan->interval_s) {
        sp_plan_error(error, SP_PLAN_ERROR_INVALID, &ctx, "sampling", "predict_interval",
                      "%g s is shorter than the sampling interval (%g s): a prediction is "
                      "made at a sample", plan->predict_interval_s, plan->interval_s);
        return NULL;
    }
    if (limits && limits->mem_available_kib) {
        guint max_vms = sp_plan_max_vms(plan);
        guint64 need_mib = (guint64)max_vms * plan->memory_mib;
        guint64 have_mib = limits->mem_available_kib / 1024;
        if (need_mib > have_mib) {
            sp_plan_error(error, SP_PLAN_ERROR_INVALID, &ctx, "guest",
                          sp_plan_line(&ctx, "guest", "memory_mib") ? "memory_mib" : NULL,
                          "%u VMs x %u MiB = %" G_GUINT64_FORMAT " MiB of guest RAM is more "
                          "than the host's MemAvailable (%" G_GUINT64_FORMAT " MiB); lower "
                          "memory_mib or [plan] vm_counts (line %u)", max_vms,
                          plan->memory_mib, need_mib, have_mib,
                          sp_plan_line(&ctx, "plan", "vm_counts"));
            return NULL;
        }
    }
    return g_steal_pointer(&plan);
}

void
sp_plan_free(SpPlan *plan)
{
    if (!plan)
        return;
    g_free(plan->source);
    g_free(plan->name);
    g_free(plan->description);
    if (plan->vm_counts)
        g_array_unref(plan->vm_counts);
    g_free(plan->image_dir);
    g_free(plan->template_path);
    g_free(plan->overlay_dir);
    g_free(plan->workload);
    g_strfreev(plan->workload_argv);
    g_free(plan);
}

gboolean
sp_plan_limits_from_host(const SpHost *host, SpPlanLimits *limits, GError **error)
{
    guint64 bytes;

    memset(limits, 0, sizeof(*limits));
    if (!sp_proc_read_meminfo(host, "MemAvailable", &bytes, error))
        return FALSE;
    limits->mem_available_kib = bytes / 1024;
    return TRUE;
}

/**
 * sp_plan_load:
 * @path: the plan file
 * @host: (nullable): where /proc/meminfo is, for the MemAvailable check
 */
SpPlan *
sp_plan_load(const char *path, const SpHost *host, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    gsize len;
    SpPlanLimits limits = { 0 };

    if (!g_file_get_contents(path, &text, &len, &local)) {
        g_set_error(error, SP_PLAN_ERROR, SP_PLAN_ERROR_IO, "%s", local->message);
        return NULL;
    }
    if (host && !sp_plan_limits_from_host(host, &limits, error))
        return NULL;
    return sp_plan_parse(text, len, path, host ? &limits : NULL, error);
}

guint
sp_plan_max_vms(const SpPlan *plan)
{
    guint m = 0;

    for (guint i = 0; plan->vm_counts && i < plan->vm_counts->len; i++)
        m = MAX(m, g_array_index(plan->vm_counts, guint, i));
    return m;
}

const SpKsmSetting *
sp_plan_find_ksm(const SpPlan *plan, SpKsmKey key)
{
    for (gsize i = 0; i < plan->n_ksm; i++) {
        if (plan->ksm[i].key == key)
            return &plan->ksm[i];
    }
    return NULL;
}

/* "pages_to_scan=1000 sleep_millisecs=20", or "the host's settings". */
char *
sp_plan_describe_ksm(const SpPlan *plan)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (gsize i = 0; i < plan->n_ksm; i++) {
        g_autofree char *v = sp_ksm_format_value(plan->ksm[i].key, plan->ksm[i].value);
        g_string_append_printf(s, "%s%s=%s", s->len ? " " : "",
                               sp_ksm_key_info(plan->ksm[i].key)->name, v);
    }
    if (!s->len)
        g_string_append(s, "the host's settings");
    return g_string_free(g_steal_pointer(&s), FALSE);
}

char *
sp_plan_describe_workload(const SpPlan *plan)
{
    return g_strdup(plan->workload ? plan->workload : "none (idle guests)");
}

json_object *
sp_plan_to_json(const SpPlan *plan)
{
    json_object *o = json_object_new_object();
    json_object *counts = json_object_new_array();
    json_object *ksm = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(plan->name));
    if (plan->description)
        json_object_object_add(o, "description", json_object_new_string(plan->description));
    json_object_object_add(o, "source", json_object_new_string(plan->source));
    for (guint i = 0; i < plan->vm_counts->len; i++)
        json_object_array_add(counts, json_object_new_int(g_array_index(plan->vm_counts, guint, i)));
    json_object_object_add(o, "vm_counts", counts);
    json_object_object_add(o, "memory_mib", json_object_new_int(plan->memory_mib));
    json_object_object_add(o, "vcpus", json_object_new_int(plan->vcpus));
    json_object_object_add(o, "boot_timeout", json_object_new_double(plan->boot_timeout_s));
    for (gsize i = 0; i < plan->n_ksm; i++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(plan->ksm[i].key);
        if (info->type == SP_KSM_TYPE_ENUM)
            json_object_object_add(ksm, info->name,
                                   json_object_new_string(info->choices[plan->ksm[i].value]));
        else
            json_object_object_add(ksm, info->name, json_object_new_int64(plan->ksm[i].value));
    }
    json_object_object_add(o, "ksm", ksm);
    json_object_object_add(o, "workload",
                           plan->workload ? json_object_new_string(plan->workload) : NULL);
    json_object_object_add(o, "interval", json_object_new_double(plan->interval_s));
    json_object_object_add(o, "duration", json_object_new_double(plan->duration_s));
    json_object_object_add(o, "settle", json_object_new_double(plan->settle_s));
    json_object_object_add(o, "predict_interval", json_object_new_double(plan->predict_interval_s));
    return o;
}
