/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spestimatepriv.h: what spestimatetargets.c needs of SpEstimate's
 * insides (not installed)
 */
#pragma once

#include "samepage/spestimate.h"

G_BEGIN_DECLS

void sp_estimate_set_cpu_seconds(SpEstimate *est, double cpu_s);

G_END_DECLS
