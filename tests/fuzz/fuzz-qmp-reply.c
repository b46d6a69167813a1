/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-qmp-reply: one QMP reply as a command transport (libvirt) returns
 * it, through sp_qmp_parse_reply() and the typed parsers; the text also
 * goes to the gpa2hva parser (HMP output) as it is.
 */
#include "config.h"

#include "samepage/spqmp.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = sp_fuzz_text(data, size);
    g_autoptr(json_object) r = sp_qmp_parse_reply(text, NULL);
    g_autofree char *region = NULL;
    guint64 gpa, hva;

    if (r) {
        sp_fuzz_drop_array(sp_qmp_parse_memdevs(r, NULL));
        sp_fuzz_drop_array(sp_qmp_parse_properties(r, NULL));
        if (json_object_is_type(r, json_type_string)) {
            g_autofree char *reg = NULL;
            sp_qmp_parse_gpa2hva(json_object_get_string(r), &gpa, &reg, &hva, NULL);
        }
    }
    sp_qmp_parse_gpa2hva(text, &gpa, &region, &hva, NULL);
    return 0;
}
