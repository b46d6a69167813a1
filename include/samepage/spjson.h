/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spjson.h: json-c under glib's ownership rules
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/*
 * Every JSON document samepage prints (each command's --json) and every
 * reply of samepaged's control socket carries "format": the version of
 * data/samepage.schema.json it follows.  Raised only when a key changes
 * meaning or goes away; new keys keep the number.
 */
#define SP_JSON_FORMAT 1

/**
 * sp_json_document_new:
 * @command: the command that prints it ("ksm", "ksm set", ...)
 *
 * Returns: (transfer full): {"format": SP_JSON_FORMAT, "command": @command},
 * the start of a command's --json document.
 */
static inline json_object *
sp_json_document_new(const char *command)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "format", json_object_new_int(SP_JSON_FORMAT));
    json_object_object_add(o, "command", json_object_new_string(command));
    return o;
}

/**
 * sp_json_document_take:
 * @doc: a document from sp_json_document_new()
 * @members: (transfer full): an object whose members are moved into @doc
 *
 * Returns: @doc
 */
static inline json_object *
sp_json_document_take(json_object *doc, json_object *members)
{
    json_object_object_foreach(members, key, val)
        json_object_object_add(doc, key, json_object_get(val));
    json_object_put(members);
    return doc;
}
