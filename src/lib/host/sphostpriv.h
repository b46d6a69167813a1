/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sphostpriv.h: SpHost internals for the unit tests
 */
#pragma once

#include "samepage/sphost.h"

G_BEGIN_DECLS

/* Plays the kernel's store function for @path: writes @value to the fake
 * tree and applies the side effects, or fails as the kernel would. */
typedef gboolean (*SpHostWriteFunc)(const char *path, const char *value, gpointer user_data,
                                    GError **error);

void sp_host_set_write_func(SpHost *host, SpHostWriteFunc func, gpointer user_data);

G_END_DECLS
