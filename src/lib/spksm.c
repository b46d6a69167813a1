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
 * order given.  If a write still fails, the keys already written get their
 * previous values back, newest first.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-ksm"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

    if (!sp_host_write_file(path, text, &local)) {
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
 * Reads the current state, validates the request (sp_ksm_validate()), then
 * writes.  If a write fails, every key already written is set back to its
 * previous value and the error says what was restored.
 */
gboolean
sp_ksm_apply(const SpHost *host, const SpKsmSetting *settings, gsize n_settings,
             GError **error)
{
    SpKsmState before;
    gsize i;

    if (!sp_ksm_read(host, &before, error))
        return FALSE;
    if (!sp_ksm_validate(&before, settings, n_settings, error))
        return FALSE;

    for (i = 0; i < n_settings; i++) {
        g_autoptr(GError) local = NULL;

        if (sp_ksm_write_key(host, settings[i].key, settings[i].value, &local))
            continue;

        g_autoptr(GString) restored = g_string_new(NULL);
        g_autoptr(GString) unrestored = g_string_new(NULL);
        for (gsize j = i; j-- > 0;) {
            SpKsmKey key = settings[j].key;
            g_autoptr(GError) undo = NULL;
            g_autofree char *old = sp_ksm_format_value(key, before.entry[key].value);
            GString *list;

            list = sp_ksm_write_key(host, key, before.entry[key].value, &undo)
                ? restored : unrestored;
            g_string_append_printf(list, "%s%s=%s", list->len ? " " : "",
                                   sp_ksm_keys[key].name, old);
        }
        g_set_error(error, SP_KSM_ERROR, SP_KSM_ERROR_IO, "%s%s%s%s%s",
                    local->message,
                    restored->len ? "; restored " : "", restored->str,
                    unrestored->len ? "; COULD NOT RESTORE " : "", unrestored->str);
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

gboolean
sp_ksm_settings_unmerge(const SpKsmSetting *settings, gsize n_settings)
{
    for (gsize i = 0; i < n_settings; i++) {
        if (settings[i].key == SP_KSM_RUN && settings[i].value == 2)
            return TRUE;
    }
    return FALSE;
}
