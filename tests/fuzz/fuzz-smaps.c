/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-smaps: /proc/PID/smaps (sp_maps_parse_smaps) and the questions asked
 * of each mapping.
 */
#include "config.h"

#include <stdlib.h>

#include "samepage/spmaps.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = sp_fuzz_text(data, size);
    g_autoptr(GPtrArray) vmas = sp_maps_parse_smaps(text, NULL);

    for (guint i = 0; vmas && i < vmas->len; i++) {
        const SpVma *v = g_ptr_array_index(vmas, i);
        const char *why = NULL;

        sp_vma_is_mergeable(v);
        sp_vma_ksm_compatible(v, &why);
        sp_vma_is_private_anon(v);
        sp_vma_has_flag(v, "mg");
        /* What the parser promises: non-empty, in order, none overlapping. */
        if (v->end <= v->start)
            abort();
        if (i > 0 && ((const SpVma *)g_ptr_array_index(vmas, i - 1))->end > v->start)
            abort();
    }
    return 0;
}
