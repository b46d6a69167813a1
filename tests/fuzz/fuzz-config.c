/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-config: samepaged's configuration file (a GKeyFile text) through
 * sp_config_load_data(), NUL bytes included.
 */
#include "config.h"

#include "samepage/spconfig.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(SpConfig) cfg = sp_config_load_data((const char *)data, size, "fuzz.conf", NULL);

    if (cfg && cfg->metrics_listen) {
        g_autofree char *host = NULL;
        guint16 port;
        sp_config_parse_listen(cfg->metrics_listen, &host, &port);
    }
    return 0;
}
