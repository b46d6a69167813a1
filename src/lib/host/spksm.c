/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spksm.c: read and write /sys/kernel/mm/ksm
 *
 * Theory of operation
 *
 * A table describes every key the kernel has had (6.1 .. 6.18): its type and
 * the range its store function accepts.  Reading walks the table; a file
 * that does not exist marks the key unsupported.  A multi-key write is done
 * in three steps: read the current state, validate the whole request against
 * it (the kernel's own EINVAL/EBUSY rules included, so that a request that
 * is bound to fail is refused before anything changed), then write in the
 * order given.  If a write still fails, the snapshot taken before is
 * restored (sp_ksm_restore()).
 *
 * A restore cannot just write back the keys that were written: some store
 * functions change other keys.  advisor_mode_store() in mm/ksm.c resets
 * pages_to_scan whenever the mode changes (`if (curr_advisor != ksm_advisor)
 * set_advisor_defaults();`: 100 for none, advisor_min_pages_to_scan for
 * scan-time), pages_to_scan_store() is EINVAL while the advisor is on,
 * run_store() unmerges every page on run=2 (when run was not 2), and
 * merge_across_nodes/max_page_sharing are EBUSY while pages are shared.
 * sp_ksm_restore_plan() orders the writes around all four.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-ksm"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "samepage/spksm.h"


G_DEFINE_QUARK(sp-ksm-error-quark, sp_ksm_error)

static const char *const sp_ksm_advisor_modes[] = { "none", "scan-time", NULL };

#define KNOB(n, t, lo, hi, h) { n, TRUE, t, lo, hi, NULL, h }
#define FIGURE(n, t, h) { n, FALSE, t, 0, 0, NULL, h }

static const SpKsmKeyInfo sp_ksm_keys[SP_KSM_N_KEYS] = {
    [SP_KSM_RUN] = KNOB("run", SP_KSM_TYPE_UINT, 0, 2,
        "0 stop, 1 run, 2 stop and unmerge all pages"),
    [SP_KSM_PAGES_TO_SCAN] = KNOB("pages_to_scan", SP_KSM_TYPE_UINT, 0, G_MAXUINT,
        "pages ksmd scans per wake-up"),
    [SP_KSM_SLEEP_MILLISECS] = KNOB("sleep_millisecs", SP_KSM_TYPE_UINT, 0, G_MAXUINT,
        "ksmd sleep between batches (ms)"),
    [SP_KSM_MAX_PAGE_SHARING] = KNOB("max_page_sharing", SP_KSM_TYPE_UINT, 2, G_MAXINT,
        "most mappings one KSM page may have"),
    [SP_KSM_MERGE_ACROSS_NODES] = KNOB("merge_across_nodes", SP_KSM_TYPE_BOOL, 0, 1,
        "merge pages of different NUMA nodes"),
    [SP_KSM_USE_ZERO_PAGES] = KNOB("use_zero_pages", SP_KSM_TYPE_BOOL, 0, 1,
        "merge empty pages with the kernel zero page"),
    [SP_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS] = KNOB("stable_node_chains_prune_millisecs",
        SP_KSM_TYPE_UINT, 0, G_MAXUINT, "how often stale stable-node dups are pruned (ms)"),
    [SP_KSM_SMART_SCAN] = KNOB("smart_scan", SP_KSM_TYPE_BOOL, 0, 1,
        "skip pages that did not merge in earlier scans"),
    [SP_KSM_ADVISOR_MODE] = { "advisor_mode", TRUE, SP_KSM_TYPE_ENUM, 0, 1,
        sp_ksm_advisor_modes, "none, or scan-time: the kernel sets pages_to_scan" },
    [SP_KSM_ADVISOR_MAX_CPU] = KNOB("advisor_max_cpu", SP_KSM_TYPE_UINT, 1, 100,
        "advisor: most ksmd CPU (%)"),
    [SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN] = KNOB("advisor_min_pages_to_scan", SP_KSM_TYPE_UINT,
        1, G_MAXUINT, "advisor: starting pages_to_scan"),
    [SP_KSM_ADVISOR_MAX_PAGES_TO_SCAN] = KNOB("advisor_max_pages_to_scan", SP_KSM_TYPE_UINT,
        1, G_MAXUINT, "advisor: largest pages_to_scan"),
    [SP_KSM_ADVISOR_TARGET_SCAN_TIME] = KNOB("advisor_target_scan_time", SP_KSM_TYPE_UINT,
        1, G_MAXUINT, "advisor: wanted time of a full scan (s)"),
    [SP_KSM_PAGES_SHARED] = FIGURE("pages_shared", SP_KSM_TYPE_UINT,
        "KSM pages in use (each maps >= 2 pages)"),
    [SP_KSM_PAGES_SHARING] = FIGURE("pages_sharing", SP_KSM_TYPE_UINT,
        "further mappings of KSM pages: pages saved"),
    [SP_KSM_PAGES_UNSHARED] = FIGURE("pages_unshared", SP_KSM_TYPE_UINT,
        "pages in the unstable tree"),
    [SP_KSM_PAGES_VOLATILE] = FIGURE("pages_volatile", SP_KSM_TYPE_UINT,
        "scanned pages that changed or did not merge"),
    [SP_KSM_PAGES_SKIPPED] = FIGURE("pages_skipped", SP_KSM_TYPE_UINT,
        "smart-scan skips so far"),
    [SP_KSM_PAGES_SCANNED] = FIGURE("pages_scanned", SP_KSM_TYPE_UINT,
        "pages scanned so far"),
    [SP_KSM_FULL_SCANS] = FIGURE("full_scans", SP_KSM_TYPE_UINT,
        "complete passes since run=2"),
    [SP_KSM_STABLE_NODE_CHAINS] = FIGURE("stable_node_chains", SP_KSM_TYPE_UINT,
        "contents that reached max_page_sharing"),
    [SP_KSM_STABLE_NODE_DUPS] = FIGURE("stable_node_dups", SP_KSM_TYPE_UINT,
        "KSM pages hanging off chains"),
    [SP_KSM_KSM_ZERO_PAGES] = FIGURE("ksm_zero_pages", SP_KSM_TYPE_UINT,
        "pages KSM mapped to the zero page"),
    [SP_KSM_GENERAL_PROFIT] = FIGURE("general_profit", SP_KSM_TYPE_INT,
        "bytes saved minus KSM metadata"),
};

const SpKsmKeyInfo *
sp_ksm_key_info(SpKsmKey key)
{
    g_return_val_if_fail(key < SP_KSM_N_KEYS, NULL);
    return &sp_ksm_keys[key];
}

gboolean
sp_ksm_key_from_name(const char *name, SpKsmKey *key)
{
    for (guint i = 0; i < SP_KSM_N_KEYS; i++) {
        if (g_str_equal(sp_ksm_keys[i].name, name)) {
            *key = i;
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean
sp_ksm_parse_enum(const SpKsmKeyInfo *info, const char *text, gint64 *value, GError **error)
{
    g_autofree char *copy = g_strstrip(g_strdup(text));
    const char *want = copy;
    g_autofree char *selected = NULL;

    /* sysfs shows "[none] scan-time": the bracketed word is the value. */
    if (strchr(copy, '[')) {
        const char *open = strchr(copy, '[');
        const char *close = strchr(open, ']');
        if (!close) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                        "%s: unbalanced '[' in '%s'", info->name, copy);
            return FALSE;
        }
        selected = g_strndup(open + 1, close - open - 1);
        want = selected;
    }
    for (gint64 i = 0; info->choices[i]; i++) {
        if (g_str_equal(info->choices[i], want)) {
            *value = i;
            return TRUE;
        }
    }
    g_autofree char *all = g_strjoinv(", ", (char **)info->choices);
    g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                "%s: '%s' is not one of %s", info->name, want, all);
    return FALSE;
}

/**
 * sp_ksm_parse_value:
 * @key: which key the text belongs to
 * @text: the text as sysfs shows it, or as a user typed it
 * @value: (out): the value
 *
 * Parses and range-checks one value.  Surrounding white space is allowed,
 * anything else after the number is not.
 */
gboolean
sp_ksm_parse_value(SpKsmKey key, const char *text, gint64 *value, GError **error)
{
    const SpKsmKeyInfo *info = sp_ksm_key_info(key);
    g_autofree char *copy = NULL;
    gint64 v;

    if (info->type == SP_KSM_TYPE_ENUM)
        return sp_ksm_parse_enum(info, text, value, error);

    copy = g_strstrip(g_strdup(text));
    if (info->type == SP_KSM_TYPE_INT) {
        g_autoptr(GError) local = NULL;
        if (!g_ascii_string_to_signed(copy, 10, G_MININT64, G_MAXINT64, &v, &local)) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                        "%s: '%s' is not an integer", info->name, copy);
            return FALSE;
        }
        *value = v;
        return TRUE;
    }

    guint64 u;
    if (!g_ascii_string_to_unsigned(copy, 10, 0, G_MAXINT64, &u, NULL)) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                    "%s: '%s' is not a non-negative integer", info->name, copy);
        return FALSE;
    }
    v = (gint64)u;
    if (info->writable && (v < info->min || v > info->max)) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                    "%s: %" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT
                    ", %" G_GINT64_FORMAT "]", info->name, v, info->min, info->max);
        return FALSE;
    }
    *value = v;
    return TRUE;
}

char *
sp_ksm_format_value(SpKsmKey key, gint64 value)
{
    const SpKsmKeyInfo *info = sp_ksm_key_info(key);

    if (info->type == SP_KSM_TYPE_ENUM)
        return g_strdup(info->choices[value]);
    return g_strdup_printf("%" G_GINT64_FORMAT, value);
}

/**
 * sp_ksm_value_to_json:
 *
 * A key's value as JSON: an enum's choice as a string (advisor_mode's
 * "scan-time"), any other key's as a number.
 */
json_object *
sp_ksm_value_to_json(SpKsmKey key, gint64 value)
{
    const SpKsmKeyInfo *info = sp_ksm_key_info(key);

    if (info->type == SP_KSM_TYPE_ENUM)
        return json_object_new_string(info->choices[value]);
    return json_object_new_int64(value);
}

/**
 * sp_ksm_state_to_json:
 *
 * Every key, knobs then figures, under its sysfs name: a number, an
 * enum's choice as a string, or null for a key this kernel lacks.
 */
json_object *
sp_ksm_state_to_json(const SpKsmState *state)
{
    json_object *obj = json_object_new_object();

    for (guint i = 0; i < SP_KSM_N_KEYS; i++) {
        const SpKsmEntry *e = &state->entry[i];

        json_object_object_add(obj, sp_ksm_key_info(i)->name,
                               e->supported ? sp_ksm_value_to_json(i, e->value) : NULL);
    }
    return obj;
}

/**
 * sp_ksm_changes_to_json:
 *
 * One {"key", "before", "after"} per setting, in the order given; the
 * values as sp_ksm_value_to_json() gives them, from @before and @after
 * (@before may be NULL: the values before are not known, null).
 */
json_object *
sp_ksm_changes_to_json(const SpKsmSetting *settings, gsize n_settings,
                       const SpKsmState *before, const SpKsmState *after)
{
    json_object *arr = json_object_new_array();

    for (gsize i = 0; i < n_settings; i++) {
        SpKsmKey k = settings[i].key;
        json_object *o = json_object_new_object();

        json_object_object_add(o, "key", json_object_new_string(sp_ksm_key_info(k)->name));
        json_object_object_add(o, "before",
                               before ? sp_ksm_value_to_json(k, before->entry[k].value) : NULL);
        json_object_object_add(o, "after", sp_ksm_value_to_json(k, after->entry[k].value));
        json_object_array_add(arr, o);
    }
    return arr;
}

/**
 * sp_ksm_parse_setting:
 * @text: "KEY=VALUE", KEY a sysfs file name
 */
gboolean
sp_ksm_parse_setting(const char *text, SpKsmSetting *setting, GError **error)
{
    const char *eq = strchr(text, '=');
    g_autofree char *name = NULL;

    if (!eq || eq == text || !eq[1]) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                    "'%s' is not KEY=VALUE", text);
        return FALSE;
    }
    name = g_strndup(text, eq - text);
    if (!sp_ksm_key_from_name(name, &setting->key)) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_UNKNOWN_KEY,
                    "'%s' is not a KSM key (see 'samepage ksm')", name);
        return FALSE;
    }
    if (!sp_ksm_keys[setting->key].writable) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_READ_ONLY,
                    "%s is a read-only figure, not a knob", name);
        return FALSE;
    }
    return sp_ksm_parse_value(setting->key, eq + 1, &setting->value, error);
}

/**
 * sp_ksm_read:
 * @host: where sysfs is
 * @state: (out caller-allocates): every key, supported or not
 *
 * Fails when KSM itself is missing, or when a file that exists cannot be
 * read or holds something that is not a value of its key.
 */
gboolean
sp_ksm_read(const SpHost *host, SpKsmState *state, GError **error)
{
    g_autofree char *dir = sp_host_sysfs_path(host, "kernel/mm/ksm");

    memset(state, 0, sizeof(*state));
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_NOT_BUILT,
                    "%s does not exist: this kernel has no KSM (CONFIG_KSM)", dir);
        return FALSE;
    }
    for (guint i = 0; i < SP_KSM_N_KEYS; i++) {
        g_autofree char *path = g_build_filename(dir, sp_ksm_keys[i].name, NULL);
        g_autofree char *text = NULL;
        g_autoptr(GError) local = NULL;

        if (!sp_host_read_file(path, &text, &local)) {
            if (g_error_matches(local, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND))
                continue;
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_IO, "%s", local->message);
            return FALSE;
        }
        if (!sp_ksm_parse_value(i, text, &state->entry[i].value, &local)) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                        "%s: unexpected contents: %s", path, local->message);
            return FALSE;
        }
        state->entry[i].supported = TRUE;
    }
    return TRUE;
}

/**
 * sp_ksm_validate:
 * @current: the state the settings would be applied to
 * @settings: (array length=n_settings): the writes, in order
 *
 * Checks a request as a whole before anything is written: every key is a
 * knob this kernel has, every value is in range, no key appears twice, and
 * none of the kernel's refusals would hit: pages_to_scan cannot be written
 * while advisor_mode is not none (EINVAL), and max_page_sharing or
 * merge_across_nodes cannot change while pages are shared (EBUSY) unless a
 * run=2 earlier in the request unmerged them.
 */
gboolean
sp_ksm_validate(const SpKsmState *current, const SpKsmSetting *settings,
                gsize n_settings, GError **error)
{
    gboolean seen[SP_KSM_N_KEYS] = { FALSE };
    gint64 advisor_mode = current->entry[SP_KSM_ADVISOR_MODE].supported
        ? current->entry[SP_KSM_ADVISOR_MODE].value : 0;
    gint64 pages_shared = current->entry[SP_KSM_PAGES_SHARED].value;

    if (n_settings == 0) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE, "nothing to set");
        return FALSE;
    }
    for (gsize i = 0; i < n_settings; i++) {
        SpKsmKey key = settings[i].key;
        gint64 v = settings[i].value;
        const SpKsmKeyInfo *info;
        g_autofree char *text = NULL;

        if (key >= SP_KSM_N_KEYS) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_UNKNOWN_KEY,
                        "setting %zu: unknown key %d", i + 1, (int)key);
            return FALSE;
        }
        info = &sp_ksm_keys[key];
        if (!info->writable) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_READ_ONLY,
                        "%s is a read-only figure, not a knob", info->name);
            return FALSE;
        }
        if (!current->entry[key].supported) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_UNSUPPORTED,
                        "%s is not supported by this kernel", info->name);
            return FALSE;
        }
        if (seen[key]) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                        "%s is given twice", info->name);
            return FALSE;
        }
        seen[key] = TRUE;
        if (v < info->min || v > info->max) {
            g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_INVALID_VALUE,
                        "%s: %" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT
                        ", %" G_GINT64_FORMAT "]", info->name, v, info->min, info->max);
            return FALSE;
        }
        text = sp_ksm_format_value(key, v);

        switch (key) {
        case SP_KSM_ADVISOR_MODE:
            advisor_mode = v;
            break;
        case SP_KSM_RUN:
            if (v == 2)
                pages_shared = 0;
            break;
        case SP_KSM_PAGES_TO_SCAN:
            if (advisor_mode != 0) {
                g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_CONFLICT,
                            "pages_to_scan=%s: the kernel refuses it while advisor_mode "
                            "is %s; set advisor_mode=none first", text,
                            sp_ksm_advisor_modes[advisor_mode]);
                return FALSE;
            }
            break;
        case SP_KSM_MAX_PAGE_SHARING:
        case SP_KSM_MERGE_ACROSS_NODES:
            if (v != current->entry[key].value && pages_shared > 0) {
                g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_CONFLICT,
                            "%s=%s: the kernel refuses it while pages are shared "
                            "(pages_shared=%" G_GINT64_FORMAT "); put run=2 before it "
                            "to unmerge first", info->name, text, pages_shared);
                return FALSE;
            }
            break;
        default:
            break;
        }
    }
    return TRUE;
}

static gboolean
sp_ksm_write_key(const SpHost *host, SpKsmKey key, gint64 value, GError **error)
{
    g_autofree char *path = sp_host_sysfs_path(host, "kernel/mm/ksm/%s", sp_ksm_keys[key].name);
    g_autofree char *text = sp_ksm_format_value(key, value);
    g_autoptr(GError) local = NULL;

    if (!sp_host_write(host, path, text, &local)) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_IO, "%s", local->message);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_ksm_apply:
 * @host: where sysfs is
 * @settings: (array length=n_settings): the writes, in order
 *
 * Takes a snapshot, validates the request (sp_ksm_validate()), then writes.
 * If a write fails, the snapshot is restored (sp_ksm_restore(): the knobs
 * the kernel changed on its own too) and the error says what was restored
 * and what could not be.
 */
gboolean
sp_ksm_apply(const SpHost *host, const SpKsmSetting *settings, gsize n_settings,
             GError **error)
{
    SpKsmState before;

    if (!sp_ksm_snapshot(host, &before, error))
        return FALSE;
    if (!sp_ksm_validate(&before, settings, n_settings, error))
        return FALSE;

    for (gsize i = 0; i < n_settings; i++) {
        g_autoptr(GError) local = NULL;
        g_autoptr(GError) undo = NULL;
        g_autoptr(GArray) done = NULL;
        g_autoptr(GString) restored = g_string_new(NULL);

        if (sp_ksm_write_key(host, settings[i].key, settings[i].value, &local))
            continue;

        sp_ksm_restore(host, &before, &done, &undo);
        for (guint j = 0; done && j < done->len; j++) {
            const SpKsmSetting *d = &g_array_index(done, SpKsmSetting, j);
            g_autofree char *v = sp_ksm_format_value(d->key, d->value);
            g_string_append_printf(restored, "%s%s=%s", restored->len ? " " : "",
                                   sp_ksm_keys[d->key].name, v);
        }
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_IO, "%s%s%s%s%s", local->message,
                    restored->len ? "; restored " : "", restored->str,
                    undo ? "; " : "", undo ? undo->message : "");
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_ksm_snapshot:
 * @snapshot: (out caller-allocates): every key, as sp_ksm_read()
 *
 * The state to come back to with sp_ksm_restore(): every knob this kernel
 * has (the others are marked unsupported and never written), and the
 * figures the restore needs (pages_shared).
 */
gboolean
sp_ksm_snapshot(const SpHost *host, SpKsmState *snapshot, GError **error)
{
    if (!sp_ksm_read(host, snapshot, error)) {
        g_prefix_error(error, "cannot take a snapshot of the KSM knobs: ");
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_ksm_restorable(const SpKsmState *snapshot, const SpKsmState *current, SpKsmKey key)
{
    return sp_ksm_keys[key].writable && snapshot->entry[key].supported &&
        current->entry[key].supported;
}

static gboolean
sp_ksm_differs(const SpKsmState *snapshot, const SpKsmState *current, SpKsmKey key)
{
    return sp_ksm_restorable(snapshot, current, key) &&
        snapshot->entry[key].value != current->entry[key].value;
}

static void
sp_ksm_add_step(GArray *plan, SpKsmKey key, gint64 value, const char *blocked)
{
    SpKsmRestoreStep step = { key, value, blocked };
    g_array_append_val(plan, step);
}

static gboolean
sp_ksm_is_advisor_param(SpKsmKey key)
{
    return key == SP_KSM_ADVISOR_MAX_CPU || key == SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN ||
        key == SP_KSM_ADVISOR_MAX_PAGES_TO_SCAN || key == SP_KSM_ADVISOR_TARGET_SCAN_TIME;
}

/**
 * sp_ksm_restore_plan:
 * @snapshot: the state to come back to (sp_ksm_snapshot())
 * @current: the state now
 *
 * The writes that bring @current back to @snapshot, in an order that
 * respects what the kernel's store functions do besides storing
 * (mm/ksm.c, 6.18):
 *  1. run=0 if ksmd runs and merge_across_nodes or max_page_sharing must
 *     change, so that nothing merges before they are written;
 *  2. merge_across_nodes and max_page_sharing: EBUSY while pages_shared is
 *     not 0, so with pages shared they are @blocked (nothing unmerges them
 *     here: that is the caller's decision, run=2);
 *  3. the advisor's knobs, then advisor_mode: a change of advisor_mode sets
 *     pages_to_scan (to 100, or to advisor_min_pages_to_scan);
 *  4. pages_to_scan, when the snapshot's advisor is none (with the advisor
 *     on, the kernel sets it and refuses writes), also when it is equal but
 *     advisor_mode was written;
 *  5. the other knobs that differ;
 *  6. run last.  A snapshot's run=2 means "stopped": run=0 if ksmd runs
 *     now, nothing if it is stopped (writing 2 again would unmerge every
 *     page merged since).
 *
 * Returns: (transfer full) (element-type SpKsmRestoreStep): possibly empty.
 */
GArray *
sp_ksm_restore_plan(const SpKsmState *snapshot, const SpKsmState *current)
{
    GArray *plan = g_array_new(FALSE, FALSE, sizeof(SpKsmRestoreStep));
    static const SpKsmKey ebusy_keys[] = { SP_KSM_MERGE_ACROSS_NODES, SP_KSM_MAX_PAGE_SHARING };
    gint64 run_now = current->entry[SP_KSM_RUN].value;
    gint64 run_want = snapshot->entry[SP_KSM_RUN].value;
    gint64 shared = current->entry[SP_KSM_PAGES_SHARED].value;
    gboolean need_ebusy = FALSE;
    gboolean advisor_written = FALSE;
    const SpKsmEntry *adv = &snapshot->entry[SP_KSM_ADVISOR_MODE];

    for (gsize i = 0; i < G_N_ELEMENTS(ebusy_keys); i++)
        need_ebusy |= sp_ksm_differs(snapshot, current, ebusy_keys[i]);

    if (need_ebusy && run_now == 1) {
        sp_ksm_add_step(plan, SP_KSM_RUN, 0, NULL);
        run_now = 0;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(ebusy_keys); i++) {
        if (sp_ksm_differs(snapshot, current, ebusy_keys[i]))
            sp_ksm_add_step(plan, ebusy_keys[i], snapshot->entry[ebusy_keys[i]].value,
                            shared > 0 ? "the kernel refuses it while pages are shared" : NULL);
    }
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        if (sp_ksm_is_advisor_param(k) && sp_ksm_differs(snapshot, current, k))
            sp_ksm_add_step(plan, k, snapshot->entry[k].value, NULL);
    }
    if (sp_ksm_differs(snapshot, current, SP_KSM_ADVISOR_MODE)) {
        sp_ksm_add_step(plan, SP_KSM_ADVISOR_MODE, adv->value, NULL);
        advisor_written = TRUE;
    }
    if (sp_ksm_restorable(snapshot, current, SP_KSM_PAGES_TO_SCAN) &&
        !(adv->supported && adv->value != 0) &&
        (advisor_written || sp_ksm_differs(snapshot, current, SP_KSM_PAGES_TO_SCAN)))
        sp_ksm_add_step(plan, SP_KSM_PAGES_TO_SCAN, snapshot->entry[SP_KSM_PAGES_TO_SCAN].value,
                        NULL);
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        if (k == SP_KSM_RUN || k == SP_KSM_PAGES_TO_SCAN || k == SP_KSM_ADVISOR_MODE ||
            k == SP_KSM_MERGE_ACROSS_NODES || k == SP_KSM_MAX_PAGE_SHARING ||
            sp_ksm_is_advisor_param(k))
            continue;
        if (sp_ksm_differs(snapshot, current, k))
            sp_ksm_add_step(plan, k, snapshot->entry[k].value, NULL);
    }
    if (run_want == 2)
        run_want = run_now == 1 ? 0 : run_now;
    if (run_want != run_now)
        sp_ksm_add_step(plan, SP_KSM_RUN, run_want, NULL);
    return plan;
}

/**
 * sp_ksm_restore:
 * @snapshot: from sp_ksm_snapshot()
 * @done: (out) (optional) (transfer full) (element-type SpKsmSetting): the
 *   writes made
 *
 * Reads the state now and writes sp_ksm_restore_plan().  A write that
 * fails, or that the kernel would refuse now, does not stop the others;
 * then the error (SP_KSM_ERROR_NOT_RESTORED) names every knob left as it
 * is, with its wanted value and why.
 */
gboolean
sp_ksm_restore(const SpHost *host, const SpKsmState *snapshot, GArray **done, GError **error)
{
    g_autoptr(GArray) plan = NULL;
    g_autoptr(GArray) written = g_array_new(FALSE, FALSE, sizeof(SpKsmSetting));
    g_autoptr(GString) failed = g_string_new(NULL);
    SpKsmState now;

    if (done)
        *done = NULL;
    if (!sp_ksm_read(host, &now, error)) {
        g_prefix_error(error, "cannot restore the KSM knobs: ");
        return FALSE;
    }
    plan = sp_ksm_restore_plan(snapshot, &now);
    for (guint i = 0; i < plan->len; i++) {
        const SpKsmRestoreStep *step = &g_array_index(plan, SpKsmRestoreStep, i);
        g_autofree char *v = sp_ksm_format_value(step->key, step->value);
        g_autoptr(GError) local = NULL;

        if (step->blocked) {
            g_string_append_printf(failed, "%s%s=%s (%s: pages_shared=%" G_GINT64_FORMAT ")",
                                   failed->len ? ", " : "", sp_ksm_keys[step->key].name, v,
                                   step->blocked, now.entry[SP_KSM_PAGES_SHARED].value);
        } else if (!sp_ksm_write_key(host, step->key, step->value, &local)) {
            g_string_append_printf(failed, "%s%s=%s (%s)", failed->len ? ", " : "",
                                   sp_ksm_keys[step->key].name, v, local->message);
        } else {
            SpKsmSetting s = { step->key, step->value };
            g_array_append_val(written, s);
        }
    }
    if (done)
        *done = g_steal_pointer(&written);
    if (failed->len) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_NOT_RESTORED,
                    "COULD NOT RESTORE %s", failed->str);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_ksm_unmerge_and_restore:
 * @snapshot: from sp_ksm_snapshot()
 * @done: (out) (optional) (transfer full) (element-type SpKsmSetting): the
 *   writes of the restore
 *
 * Unmerges everything (run=2: the kernel does it before the write
 * returns), which also lets merge_across_nodes and max_page_sharing
 * change, then sp_ksm_restore(): every knob that differs, @snapshot's run
 * last (a run=2 there stays "stopped", never a second unmerge).  For
 * whoever changed the knobs and merged pages with them (an experiment) and
 * puts the host back as it was.
 */
gboolean
sp_ksm_unmerge_and_restore(const SpHost *host, const SpKsmState *snapshot, GArray **done,
                           GError **error)
{
    SpKsmSetting unmerge = { SP_KSM_RUN, 2 };

    if (done)
        *done = NULL;
    if (!sp_ksm_apply(host, &unmerge, 1, error)) {
        g_prefix_error(error, "restoring the host's KSM settings: run=2: ");
        return FALSE;
    }
    if (!sp_ksm_restore(host, snapshot, done, error)) {
        g_prefix_error(error, "restoring the host's KSM settings: ");
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_ksm_unmerge_check:
 * @pages: the merged pages that come back as copies (pages_sharing for
 *   run=2; a process's ksm_merging_pages when it is unmarked)
 * @page_size: bytes per page
 * @mem_available: MemAvailable in bytes (0 when unknown: then only 0 pages
 *   pass)
 * @need: (out) (optional): pages x page size + 10%
 *
 * The one rule for every unmerge samepage makes: refused, with the
 * numbers, when MemAvailable does not cover the copies.
 */
gboolean
sp_ksm_unmerge_check(gint64 pages, guint64 page_size, guint64 mem_available, guint64 *need,
                     GError **error)
{
    guint64 bytes, want;

    if (need)
        *need = 0;
    if (pages <= 0)
        return TRUE;
    if (page_size == 0 || (guint64)pages > G_MAXUINT64 / 2 / page_size) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_MEMORY,
                    "unmerging %" G_GINT64_FORMAT " merged pages needs more memory than any "
                    "host has; --force overrides", pages);
        return FALSE;
    }
    bytes = (guint64)pages * page_size;
    want = bytes + bytes / 10;
    if (need)
        *need = want;
    if (mem_available < want) {
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_MEMORY,
                    "unmerging %" G_GINT64_FORMAT " merged pages needs %.1f MiB (pages x %"
                    G_GUINT64_FORMAT " KiB + 10%%), MemAvailable is %.1f MiB; --force overrides",
                    pages, want / 1048576.0, page_size / 1024, mem_available / 1048576.0);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_ksm_unmerge_all_check:
 * @state: the KSM state now (its pages_sharing)
 * @bytes: (out) (optional): pages_sharing x the page size
 * @mem_available: (out) (optional): the host's MemAvailable in bytes
 *
 * sp_ksm_unmerge_check() for run=2, which unmerges every merged page on the
 * host, with this host's page size and MemAvailable.  The figures are set
 * even when the check fails, for a caller that goes on when forced.
 */
gboolean
sp_ksm_unmerge_all_check(const SpHost *host, const SpKsmState *state, guint64 *bytes,
                         guint64 *mem_available, GError **error)
{
    gint64 sharing = MAX(state->entry[SP_KSM_PAGES_SHARING].value, 0);
    long page_size = sysconf(_SC_PAGESIZE);
    guint64 avail = sp_host_mem_available(host);

    if (bytes)
        *bytes = (guint64)sharing * (guint64)page_size;
    if (mem_available)
        *mem_available = avail;
    return sp_ksm_unmerge_check(sharing, page_size, avail, NULL, error);
}

gboolean
sp_ksm_settings_unmerge(const SpKsmSetting *settings, gsize n_settings)
{
    for (gsize i = 0; i < n_settings; i++) {
        if (settings[i].key == SP_KSM_RUN && settings[i].value == 2)
            return TRUE;
    }
    return FALSE;
}
