/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcontrollerpriv.h: SpController internals for the unit tests
 */
#pragma once

#include "samepage/spcontroller.h"

G_BEGIN_DECLS

/* Seconds on a monotonic clock; tests replace g_get_monotonic_time(). */
typedef double (*SpControllerClock)(gpointer user_data);

void sp_controller_set_clock(SpController *c, SpControllerClock clock, gpointer user_data);

G_END_DECLS
