/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spguestpriv.h: SpGuest's parsers, for unit tests and fuzzers
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* /proc/PID/numa_maps: the pages per node (index) of the mapping starting
 * at @start, as guint64; empty if there is no such line. */
GArray *sp_guest_parse_numa_maps(const char *numa_maps, guint64 start);

/* sp_guest_get_ram_vma() over @regions (SpGuestRegion). */
gboolean sp_guest_pick_ram_vma(GPtrArray *regions, guint64 size, guint64 *start, guint64 *end,
                               GError **error);

G_END_DECLS
