/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spqmppriv.h: helpers the QMP client (spqmp.c) shares with its typed
 * commands (spqmpcmd.c); not installed
 */
#pragma once

#include "samepage/spqmp.h"

G_BEGIN_DECLS

#define SP_QMP_EXCERPT 72                        /* bytes of bad input quoted */

/* A short, printable quotation of untrusted input for error messages. */
char *sp_qmp_excerpt(const char *text, gsize len);
/* @key of @obj if it exists and has @type. */
json_object *sp_qmp_member(json_object *obj, const char *key, json_type type);
/* @key of @obj as an unsigned integer of at most @max. */
gboolean sp_qmp_get_uint(json_object *obj, const char *key, guint64 max, guint64 *value);

G_END_DECLS
