/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-ksm-sysfs: the values of /sys/kernel/mm/ksm.  Input: the knob's
 * name, a newline, the file's text (a name that is no knob picks one by its
 * first byte).  The whole input also goes through sp_ksm_parse_setting() as
 * a KEY=VALUE argument, and a value that parses back through
 * sp_ksm_format_value().
 */
#include "config.h"

#include "samepage/spksm.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *input = sp_fuzz_text(data, size);
    const char *text = strchr(input, '\n');
    g_autofree char *name = g_strndup(input, text ? (gsize)(text - input) : strlen(input));
    SpKsmSetting setting;
    SpKsmKey key;
    gint64 value;

    if (!sp_ksm_key_from_name(name, &key))
        key = (SpKsmKey)((size ? data[0] : 0) % SP_KSM_N_KEYS);
    if (sp_ksm_parse_value(key, text ? text + 1 : "", &value, NULL))
        g_free(sp_ksm_format_value(key, value));
    sp_ksm_parse_setting(input, &setting, NULL);
    return 0;
}
