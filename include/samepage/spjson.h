/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spjson.h: json-c under glib's ownership rules
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)
