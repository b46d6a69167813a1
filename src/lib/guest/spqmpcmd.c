/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spqmpcmd.c: the typed QMP commands SamePage sends, and their reply parsers
 *
 * Memory backends (query-memdev), QOM properties (qom-list, qom-get and
 * qom-set of a boolean) and where a RAM block is mapped (HMP gpa2hva).
 * Each command is a thin wrapper around sp_qmp_execute() (spqmp.c, the
 * client) and a parser that takes json-c objects or text, so the parsers
 * are tested, and fuzzed, on their own.  Unknown members are ignored;
 * a missing or mistyped one is SP_QMP_ERROR_BAD_REPLY naming the element.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-qmp"

#include <string.h>

#include "samepage/spqmpcmd.h"
#include "spqmppriv.h"

void
sp_qmp_memdev_free(SpQmpMemdev *memdev)
{
    if (!memdev)
        return;
    g_free(memdev->id);
    if (memdev->host_nodes)
        g_array_unref(memdev->host_nodes);
    g_free(memdev->policy);
    g_free(memdev);
}

static void
sp_qmp_memdev_free_void(gpointer p)
{
    sp_qmp_memdev_free(p);
}

void
sp_qmp_property_free(SpQmpProperty *property)
{
    if (!property)
        return;
    g_free(property->name);
    g_free(property->type);
    g_free(property->description);
    g_free(property);
}

static void
sp_qmp_property_free_void(gpointer p)
{
    sp_qmp_property_free(p);
}

static gboolean
sp_qmp_get_bool(json_object *obj, const char *key, gboolean optional, gboolean *present,
                gboolean *value, guint index, GError **error)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v)) {
        if (present)
            *present = FALSE;
        if (optional)
            return TRUE;
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "element %u has no '%s'", index, key);
        return FALSE;
    }
    if (!json_object_is_type(v, json_type_boolean)) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "element %u: '%s' is not a boolean", index, key);
        return FALSE;
    }
    if (present)
        *present = TRUE;
    *value = json_object_get_boolean(v);
    return TRUE;
}

static gboolean
sp_qmp_get_string(json_object *obj, const char *key, gboolean optional, char **value,
                  guint index, GError **error)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v)) {
        if (optional)
            return TRUE;
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "element %u has no '%s'", index, key);
        return FALSE;
    }
    if (!json_object_is_type(v, json_type_string)) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "element %u: '%s' is not a string", index, key);
        return FALSE;
    }
    *value = g_strdup(json_object_get_string(v));
    return TRUE;
}

/**
 * sp_qmp_parse_memdevs:
 * @result: the "return" of query-memdev: an array of Memdev
 *
 * "id", "share" and "reserve" may be absent; "size", "merge", "dump",
 * "prealloc", "host-nodes" and "policy" must be there with their types.
 * Unknown members are ignored.
 *
 * Returns: (transfer full): SpQmpMemdev elements in QEMU's order, or NULL
 * with SP_QMP_ERROR_BAD_REPLY.
 */
GPtrArray *
sp_qmp_parse_memdevs(json_object *result, GError **error)
{
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(sp_qmp_memdev_free_void);

    if (!result || !json_object_is_type(result, json_type_array)) {
        g_set_error_literal(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY, "not an array");
        return NULL;
    }
    for (gsize i = 0; i < json_object_array_length(result); i++) {
        json_object *e = json_object_array_get_idx(result, i);
        g_autoptr(SpQmpMemdev) m = g_new0(SpQmpMemdev, 1);
        json_object *nodes;
        guint idx = (guint)i;

        if (!json_object_is_type(e, json_type_object)) {
            g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                        "element %u is not an object", idx);
            return NULL;
        }
        if (!sp_qmp_get_string(e, "id", TRUE, &m->id, idx, error) ||
            !sp_qmp_get_bool(e, "merge", FALSE, NULL, &m->merge, idx, error) ||
            !sp_qmp_get_bool(e, "dump", FALSE, NULL, &m->dump, idx, error) ||
            !sp_qmp_get_bool(e, "prealloc", FALSE, NULL, &m->prealloc, idx, error) ||
            !sp_qmp_get_bool(e, "share", TRUE, &m->has_share, &m->share, idx, error) ||
            !sp_qmp_get_bool(e, "reserve", TRUE, &m->has_reserve, &m->reserve, idx, error) ||
            !sp_qmp_get_string(e, "policy", FALSE, &m->policy, idx, error))
            return NULL;
        if (!sp_qmp_get_uint(e, "size", G_MAXUINT64, &m->size)) {
            g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                        "element %u: 'size' is missing or not an unsigned integer", idx);
            return NULL;
        }
        if (!(nodes = sp_qmp_member(e, "host-nodes", json_type_array))) {
            g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                        "element %u: 'host-nodes' is missing or not an array", idx);
            return NULL;
        }
        m->host_nodes = g_array_new(FALSE, FALSE, sizeof(guint));
        for (gsize j = 0; j < json_object_array_length(nodes); j++) {
            json_object *n = json_object_array_get_idx(nodes, j);
            gint64 v = json_object_is_type(n, json_type_int) ? json_object_get_int64(n) : -1;
            guint node = (guint)v;

            if (v < 0 || v > G_MAXUINT16) {
                g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                            "element %u: host node %zu is not a node number", idx, j);
                return NULL;
            }
            g_array_append_val(m->host_nodes, node);
        }
        g_ptr_array_add(list, g_steal_pointer(&m));
    }
    return g_steal_pointer(&list);
}

/**
 * sp_qmp_parse_properties:
 * @result: the "return" of qom-list: an array of ObjectPropertyInfo
 *
 * Returns: (transfer full): SpQmpProperty elements, or NULL with
 * SP_QMP_ERROR_BAD_REPLY.
 */
GPtrArray *
sp_qmp_parse_properties(json_object *result, GError **error)
{
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(sp_qmp_property_free_void);

    if (!result || !json_object_is_type(result, json_type_array)) {
        g_set_error_literal(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY, "not an array");
        return NULL;
    }
    for (gsize i = 0; i < json_object_array_length(result); i++) {
        json_object *e = json_object_array_get_idx(result, i);
        g_autoptr(SpQmpProperty) p = g_new0(SpQmpProperty, 1);

        if (!json_object_is_type(e, json_type_object)) {
            g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                        "element %zu is not an object", i);
            return NULL;
        }
        if (!sp_qmp_get_string(e, "name", FALSE, &p->name, (guint)i, error) ||
            !sp_qmp_get_string(e, "type", FALSE, &p->type, (guint)i, error) ||
            !sp_qmp_get_string(e, "description", TRUE, &p->description, (guint)i, error))
            return NULL;
        g_ptr_array_add(list, g_steal_pointer(&p));
    }
    return g_steal_pointer(&list);
}

/* "0x" and 1..16 hex digits at *p; advances *p. */
static gboolean
sp_qmp_parse_hex(const char **p, guint64 *value)
{
    const char *s = *p;
    guint64 v = 0;
    gsize n = 0;

    if (s[0] != '0' || s[1] != 'x')
        return FALSE;
    s += 2;
    for (; g_ascii_isxdigit(*s); s++, n++) {
        if (v >> 60)
            return FALSE;   /* more than 64 bits */
        v = (v << 4) | (guint64)g_ascii_xdigit_value(*s);
    }
    if (n == 0)
        return FALSE;
    *p = s;
    *value = v;
    return TRUE;
}

/**
 * sp_qmp_parse_gpa2hva:
 * @text: the output of HMP `gpa2hva ADDR`
 * @gpa: (out): the guest physical address it talks about
 * @region: (out) (transfer full): the memory region's name, e.g. "pc.ram"
 * @hva: (out): the host virtual address in QEMU's address space
 *
 * Accepts exactly one line `Host virtual address for 0xGPA (NAME) is 0xHVA`
 * (QEMU 7.2 hmp_gpa2hva(); trailing white space allowed).  Anything else,
 * such as "No memory is mapped at address 0x40000000", is
 * SP_QMP_ERROR_BAD_REPLY quoting the text.
 */
gboolean
sp_qmp_parse_gpa2hva(const char *text, guint64 *gpa, char **region, guint64 *hva,
                     GError **error)
{
    static const char prefix[] = "Host virtual address for ";
    g_autofree char *line = g_strchomp(g_strdup(text));
    const char *p = line;
    const char *open = NULL, *close = NULL;
    gboolean ok;
    guint64 g = 0, h = 0;

    ok = g_str_has_prefix(line, prefix);
    if (ok) {
        p = line + strlen(prefix);
        ok = sp_qmp_parse_hex(&p, &g) && g_str_has_prefix(p, " (");
    }
    if (ok) {
        open = p + 2;
        close = g_strrstr(open, ") is ");
        ok = close && close > open;
    }
    for (const char *c = open; ok && c < close; c++)
        ok = (guchar)*c >= 0x20 && *c != 0x7f;
    if (ok) {
        p = close + strlen(") is ");
        ok = sp_qmp_parse_hex(&p, &h) && *p == '\0';
    }
    if (!ok) {
        g_autofree char *ex = sp_qmp_excerpt(text, strlen(text));
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "not a gpa2hva answer: %s", ex);
        return FALSE;
    }
    *gpa = g;
    *hva = h;
    *region = g_strndup(open, close - open);
    return TRUE;
}

/* ---------------------------------------------------------------- typed commands */

/**
 * sp_qmp_query_memdev:
 *
 * Returns: (transfer full): the memory backends as SpQmpMemdev.  Note that
 * "merge" is the backend's property: in QEMU 7.2 a backend created with
 * merge=off under `-machine mem-merge=on` still has MADV_MERGEABLE set.
 */
GPtrArray *
sp_qmp_query_memdev(SpQmp *qmp, GError **error)
{
    g_autoptr(json_object) ret = sp_qmp_execute(qmp, "query-memdev", NULL, error);
    GPtrArray *list;

    if (!ret)
        return NULL;
    if (!(list = sp_qmp_parse_memdevs(ret, error)))
        g_prefix_error(error, "%s: query-memdev: ", sp_qmp_get_name(qmp));
    return list;
}

/**
 * sp_qmp_qom_list:
 * @path: a QOM path, e.g. "/objects"
 *
 * Returns: (transfer full): the properties of @path as SpQmpProperty.
 */
GPtrArray *
sp_qmp_qom_list(SpQmp *qmp, const char *path, GError **error)
{
    g_autoptr(json_object) args = json_object_new_object();
    g_autoptr(json_object) ret = NULL;
    GPtrArray *list;

    json_object_object_add(args, "path", json_object_new_string(path));
    if (!(ret = sp_qmp_execute(qmp, "qom-list", args, error)))
        return NULL;
    if (!(list = sp_qmp_parse_properties(ret, error)))
        g_prefix_error(error, "%s: qom-list %s: ", sp_qmp_get_name(qmp), path);
    return list;
}

static json_object *
sp_qmp_qom_args(const char *path, const char *property)
{
    json_object *args = json_object_new_object();

    json_object_object_add(args, "path", json_object_new_string(path));
    json_object_object_add(args, "property", json_object_new_string(property));
    return args;
}

/**
 * sp_qmp_qom_get_bool:
 * @path: a QOM path, e.g. "/objects/pc.ram"
 * @property: a boolean property, e.g. "merge"
 * @value: (out): its value
 */
gboolean
sp_qmp_qom_get_bool(SpQmp *qmp, const char *path, const char *property, gboolean *value,
                    GError **error)
{
    g_autoptr(json_object) args = sp_qmp_qom_args(path, property);
    g_autoptr(json_object) ret = sp_qmp_execute(qmp, "qom-get", args, error);

    if (!ret)
        return FALSE;
    if (!json_object_is_type(ret, json_type_boolean)) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "%s: qom-get %s %s: not a boolean but %s", sp_qmp_get_name(qmp),
                    path, property, json_type_to_name(json_object_get_type(ret)));
        return FALSE;
    }
    *value = json_object_get_boolean(ret);
    return TRUE;
}

/**
 * sp_qmp_qom_set_bool:
 *
 * E.g. ("/objects/pc.ram", "merge", FALSE): QEMU runs MADV_UNMERGEABLE over
 * the whole backend at once, but only if the value changes.
 */
gboolean
sp_qmp_qom_set_bool(SpQmp *qmp, const char *path, const char *property, gboolean value,
                    GError **error)
{
    g_autoptr(json_object) args = sp_qmp_qom_args(path, property);
    g_autoptr(json_object) ret = NULL;

    json_object_object_add(args, "value", json_object_new_boolean(value));
    ret = sp_qmp_execute(qmp, "qom-set", args, error);
    return ret != NULL;
}

/**
 * sp_qmp_hmp:
 * @command_line: a human monitor command, e.g. "gpa2hva 0"
 *
 * Returns: (transfer full): its output as QEMU prints it ("\r\n" line
 * ends).  An HMP command that fails prints its error into this text too;
 * only the parser of its output can tell.
 */
char *
sp_qmp_hmp(SpQmp *qmp, const char *command_line, GError **error)
{
    g_autoptr(json_object) args = json_object_new_object();
    g_autoptr(json_object) ret = NULL;

    json_object_object_add(args, "command-line", json_object_new_string(command_line));
    if (!(ret = sp_qmp_execute(qmp, "human-monitor-command", args, error)))
        return NULL;
    if (!json_object_is_type(ret, json_type_string)) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "%s: human-monitor-command %s: not a string but %s",
                    sp_qmp_get_name(qmp), command_line,
                    json_type_to_name(json_object_get_type(ret)));
        return NULL;
    }
    return g_strdup(json_object_get_string(ret));
}

/**
 * sp_qmp_gpa2hva:
 * @gpa: a guest physical address
 * @region: (out) (transfer full): the memory region holding it ("pc.ram")
 * @hva: (out): where QEMU maps it
 *
 * HMP `gpa2hva`: QEMU 7.2's only way to learn where guest RAM is mapped.
 */
gboolean
sp_qmp_gpa2hva(SpQmp *qmp, guint64 gpa, char **region, guint64 *hva, GError **error)
{
    g_autofree char *cmdline = g_strdup_printf("gpa2hva 0x%" G_GINT64_MODIFIER "x", gpa);
    g_autofree char *text = sp_qmp_hmp(qmp, cmdline, error);
    g_autofree char *name = NULL;
    guint64 g, h;

    if (!text)
        return FALSE;
    if (!sp_qmp_parse_gpa2hva(text, &g, &name, &h, error)) {
        g_prefix_error(error, "%s: %s: ", sp_qmp_get_name(qmp), cmdline);
        return FALSE;
    }
    if (g != gpa) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_BAD_REPLY,
                    "%s: %s: the answer is about 0x%" G_GINT64_MODIFIER "x",
                    sp_qmp_get_name(qmp), cmdline, g);
        return FALSE;
    }
    *region = g_steal_pointer(&name);
    *hva = h;
    return TRUE;
}
