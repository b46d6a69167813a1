/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-qmp-stream: SpQmp's stream side (line framing, greeting, ids, events,
 * replies) over an in-memory transport that hands out the input as QEMU's
 * side of the conversation.
 *
 * Input: one selector byte (selector % 32 bytes per read, 0 meaning 16 KiB:
 * split and merged messages), then the bytes QEMU sends.  The client reads
 * the greeting, negotiates, then runs commands until the stream ends; each
 * result goes through every typed parser (memdevs, properties, gpa2hva).
 */
#include "config.h"

#include "samepage/spqmp.h"
#include "fuzz.h"

typedef struct {
    SpQmpTransport parent;
    const char *data;
    gsize len;
    gsize pos;
    gsize chunk;
} FuzzStream;

static gboolean
fuzz_send(SpQmpTransport *self, const char *data, gsize len, gint64 deadline, GError **error)
{
    return TRUE;
}

static gssize
fuzz_receive(SpQmpTransport *self, char *buf, gsize size, gint64 deadline, GError **error)
{
    FuzzStream *t = (FuzzStream *)self;
    gsize n = MIN(MIN(size, t->chunk), t->len - t->pos);

    memcpy(buf, t->data + t->pos, n);
    t->pos += n;
    return (gssize)n;         /* 0 at the end: the peer closed */
}

static void
fuzz_free(SpQmpTransport *self)
{
    g_free(self->name);
    g_free(self);
}

static const SpQmpTransportOps fuzz_ops = {
    .send = fuzz_send,
    .receive = fuzz_receive,
    .free = fuzz_free,
};

static void
fuzz_result(json_object *result)
{
    sp_fuzz_drop_array(sp_qmp_parse_memdevs(result, NULL));
    sp_fuzz_drop_array(sp_qmp_parse_properties(result, NULL));
    if (json_object_is_type(result, json_type_string)) {
        g_autofree char *region = NULL;
        guint64 gpa, hva;

        sp_qmp_parse_gpa2hva(json_object_get_string(result), &gpa, &region, &hva, NULL);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzStream *t;
    g_autoptr(SpQmp) qmp = NULL;

    if (size == 0)
        return 0;
    t = g_new0(FuzzStream, 1);
    t->parent.ops = &fuzz_ops;
    t->parent.name = g_strdup("fuzz");
    t->data = (const char *)data + 1;
    t->len = size - 1;
    t->chunk = data[0] % 32 ? data[0] % 32 : 16384;
    /* Nothing waits here; the timeout only has to outlast a slow run. */
    qmp = sp_qmp_new(&t->parent, 600000, NULL);
    if (!qmp)
        return 0;
    sp_qmp_set_record_events(qmp, TRUE);
    for (guint i = 0; i < 16; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = sp_qmp_execute(qmp, "query-memdev", NULL, &error);

        if (r)
            fuzz_result(r);
        else if (g_error_matches(error, SP_QMP_ERROR, SP_QMP_ERROR_CLOSED))
            break;
    }
    g_ptr_array_unref(sp_qmp_take_events(qmp));
    return 0;
}
