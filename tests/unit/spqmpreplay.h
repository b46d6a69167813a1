/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spqmpreplay.h: an SpQmp that answers from a recorded QMP transcript
 *
 * For the unit tests that need a guest's regions without a QEMU: the
 * transcripts are in tests/data/qmp (C: command, S: reply lines).
 */
#pragma once

#include <glib.h>
#include <string.h>

#include "samepage/spqmp.h"
#include "sptest.h"

/* A "command" transport that answers from a transcript (C:/S: lines): each
 * command must equal, ignoring "id", the next recorded one. */
typedef struct {
    SpQmpTransport parent;
    GPtrArray *lines;
    guint next;
} Replay;

static gboolean
same_command(const char *a, const char *b)
{
    g_autoptr(json_object) ja = json_tokener_parse(a);
    g_autoptr(json_object) jb = json_tokener_parse(b);

    if (!ja || !jb)
        return FALSE;
    json_object_object_del(ja, "id");
    json_object_object_del(jb, "id");
    return json_object_equal(ja, jb);
}

static char *
replay_command(SpQmpTransport *self, const char *command, gint64 deadline, GError **error)
{
    Replay *r = (Replay *)self;

    for (; r->next < r->lines->len; r->next++) {
        const char *l = g_ptr_array_index(r->lines, r->next);
        if (!g_str_has_prefix(l, "C: "))
            continue;
        if (!same_command(l + 3, command))
            break;
        r->next++;
        for (; r->next < r->lines->len; r->next++) {
            const char *s = g_ptr_array_index(r->lines, r->next);
            if (g_str_has_prefix(s, "S: ") && !strstr(s, "\"event\"")) {
                r->next++;
                return g_strdup(s + 3);
            }
        }
    }
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "unexpected command %s", command);
    return NULL;
}

static void
replay_free(SpQmpTransport *self)
{
    Replay *r = (Replay *)self;
    g_ptr_array_unref(r->lines);
    g_free(r->parent.name);
    g_free(r);
}

static const SpQmpTransportOps replay_ops = { .command = replay_command, .free = replay_free };

static SpQmp *
replay_qmp(const char *transcript)
{
    g_autofree char *path = sp_test_data_path(transcript);
    g_autofree char *text = NULL;
    Replay *r = g_new0(Replay, 1);
    g_autoptr(GError) error = NULL;
    SpQmp *qmp;

    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    r->lines = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        /* qmp_capabilities is the socket client's business, not ours. */
        if (strstr(*l, "qmp_capabilities"))
            continue;
        g_ptr_array_add(r->lines, g_strdup(*l));
    }
    r->parent.ops = &replay_ops;
    r->parent.name = g_strdup("replay");
    qmp = sp_qmp_new(&r->parent, 1000, &error);
    assert_non_null(qmp);
    return qmp;
}
