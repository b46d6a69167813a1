/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spqmpcmd.h: the typed QMP commands and their reply parsers
 *
 * Memory backends (query-memdev), QOM properties (qom-list, qom-get and
 * qom-set of a boolean), HMP commands and where guest RAM is mapped
 * (gpa2hva).  The commands run on an SpQmp (spqmp.h); the parsers take
 * json-c objects or strings and can be tested on their own.
 */
#pragma once

#include "samepage/spqmp.h"

G_BEGIN_DECLS

/* ---------------------------------------------------------------- typed commands */

typedef struct {
    char *id;                   /* NULL if the backend has none */
    guint64 size;               /* bytes */
    gboolean merge;             /* what QEMU believes; see below */
    gboolean dump;
    gboolean prealloc;
    gboolean has_share;         /* share: QEMU >= 6.1 */
    gboolean share;
    gboolean has_reserve;       /* reserve: QEMU >= 6.1, Linux */
    gboolean reserve;
    GArray *host_nodes;         /* of guint */
    char *policy;               /* "default", "preferred", "bind", "interleave" */
} SpQmpMemdev;

void sp_qmp_memdev_free(SpQmpMemdev *memdev);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpQmpMemdev, sp_qmp_memdev_free)

typedef struct {
    char *name;
    char *type;                 /* "bool", "child<memory-backend-ram>", ... */
    char *description;          /* NULL if absent */
} SpQmpProperty;

void sp_qmp_property_free(SpQmpProperty *property);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpQmpProperty, sp_qmp_property_free)

GPtrArray *sp_qmp_query_memdev(SpQmp *qmp, GError **error);
GPtrArray *sp_qmp_qom_list(SpQmp *qmp, const char *path, GError **error);
gboolean sp_qmp_qom_get_bool(SpQmp *qmp, const char *path, const char *property,
                             gboolean *value, GError **error);
gboolean sp_qmp_qom_set_bool(SpQmp *qmp, const char *path, const char *property,
                             gboolean value, GError **error);
char *sp_qmp_hmp(SpQmp *qmp, const char *command_line, GError **error);
gboolean sp_qmp_gpa2hva(SpQmp *qmp, guint64 gpa, char **region, guint64 *hva,
                        GError **error);

/* ---------------------------------------------------------------- parsers */

GPtrArray *sp_qmp_parse_memdevs(json_object *result, GError **error);
GPtrArray *sp_qmp_parse_properties(json_object *result, GError **error);
gboolean sp_qmp_parse_gpa2hva(const char *text, guint64 *gpa, char **region, guint64 *hva,
                              GError **error);

G_END_DECLS
