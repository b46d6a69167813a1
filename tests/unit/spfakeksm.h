/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spfakeksm.h: a fake kernel behind a fake /sys/kernel/mm/ksm
 *
 * A tree of plain files keeps what is written and nothing else.  The
 * kernel's store functions do more (mm/ksm.c, 6.18), and restoring KSM
 * must cope with it:
 *   advisor_mode_store    a change resets pages_to_scan: 100 for none,
 *                         advisor_min_pages_to_scan for scan-time;
 *   pages_to_scan_store   EINVAL while advisor_mode is not none;
 *   run_store             run=2 (when run is not 2 already) unmerges:
 *                         pages_shared and pages_sharing drop to 0;
 *   merge_across_nodes_store, max_page_sharing_store
 *                         EBUSY for a change while pages_shared is not 0.
 * The test installs sp_fake_ksm_write() with sp_host_set_write_func(); it
 * counts the unmerges and can make the write of one key fail (EIO).
 */
#pragma once

#include <errno.h>

#include "samepage/sphost.h"
#include "../../src/lib/host/sphostpriv.h"
#include "sptest.h"

typedef struct {
    char *dir;                 /* <fake sysfs>/kernel/mm/ksm */
    const char *fail_key;      /* a write of this key fails with EIO */
    gboolean slow_unmerge;     /* run=2 leaves pages_shared as it is */
    guint unmerges;            /* run=2 writes that unmerged */
    GString *log;              /* "key=value " for every write accepted */
} SpFakeKsm;

static inline gint64
sp_fake_ksm_get(SpFakeKsm *k, const char *key)
{
    g_autofree char *path = g_build_filename(k->dir, key, NULL);
    g_autofree char *text = NULL;

    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    if (strstr(text, "[scan-time]"))
        return 1;
    if (strchr(text, '['))
        return 0;
    return g_ascii_strtoll(text, NULL, 10);
}

static inline void
sp_fake_ksm_put(SpFakeKsm *k, const char *key, const char *text)
{
    g_autofree char *path = g_build_filename(k->dir, key, NULL);

    assert_true(g_file_set_contents(path, text, -1, NULL));
}

static inline gboolean
sp_fake_ksm_refuse(const char *path, const char *value, int err, GError **error)
{
    g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_IO, "cannot write '%s' to %s: %s", value,
                path, g_strerror(err));
    return FALSE;
}

static inline gboolean
sp_fake_ksm_write(const char *path, const char *value, gpointer data, GError **error)
{
    SpFakeKsm *k = data;
    g_autofree char *key = g_path_get_basename(path);
    gint64 v = g_ascii_strtoll(value, NULL, 10);

    if (k->fail_key && g_str_equal(key, k->fail_key))
        return sp_fake_ksm_refuse(path, value, EIO, error);
    if (g_str_equal(key, "pages_to_scan") && sp_fake_ksm_get(k, "advisor_mode") != 0)
        return sp_fake_ksm_refuse(path, value, EINVAL, error);
    if ((g_str_equal(key, "merge_across_nodes") || g_str_equal(key, "max_page_sharing")) &&
        v != sp_fake_ksm_get(k, key) && sp_fake_ksm_get(k, "pages_shared") != 0)
        return sp_fake_ksm_refuse(path, value, EBUSY, error);

    if (g_str_equal(key, "advisor_mode")) {
        gint64 want = g_str_equal(value, "scan-time") ? 1 : 0;
        if (want != sp_fake_ksm_get(k, "advisor_mode")) {
            g_autofree char *pts = g_strdup_printf("%" G_GINT64_FORMAT "\n", want
                ? sp_fake_ksm_get(k, "advisor_min_pages_to_scan") : 100);
            sp_fake_ksm_put(k, "pages_to_scan", pts);
        }
        sp_fake_ksm_put(k, "advisor_mode", want ? "none [scan-time]\n" : "[none] scan-time\n");
    } else {
        if (g_str_equal(key, "run") && v == 2 && sp_fake_ksm_get(k, "run") != 2) {
            k->unmerges++;
            if (!k->slow_unmerge) {
                sp_fake_ksm_put(k, "pages_shared", "0\n");
                sp_fake_ksm_put(k, "pages_sharing", "0\n");
            }
        }
        if (!sp_host_write_file(path, value, error))
            return FALSE;
    }
    g_string_append_printf(k->log, "%s=%s ", key, value);
    return TRUE;
}

/* Plays the kernel for @host, whose sysfs root is @root. */
static inline SpFakeKsm *
sp_fake_ksm_new(SpHost *host, const char *root)
{
    SpFakeKsm *k = g_new0(SpFakeKsm, 1);

    k->dir = g_build_filename(root, "kernel", "mm", "ksm", NULL);
    k->log = g_string_new(NULL);
    sp_host_set_write_func(host, sp_fake_ksm_write, k);
    return k;
}

static inline void
sp_fake_ksm_free(SpFakeKsm *k)
{
    if (!k)
        return;
    g_free(k->dir);
    g_string_free(k->log, TRUE);
    g_free(k);
}
