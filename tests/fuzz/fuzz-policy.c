/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-policy: a libvirt domain XML (what the hook reads on stdin) through
 * sp_domain_policy_from_xml(), and the per-guest decision of a policy that
 * parses.
 */
#include "config.h"

#include "samepage/sppolicy.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = sp_fuzz_text(data, size);
    g_autoptr(SpDomainPolicy) p = sp_domain_policy_from_xml(text, NULL);

    if (p) {
        g_autofree char *reason = NULL;
        sp_policy_decide(p, TRUE, &reason);
        sp_policy_decide(p, FALSE, NULL);
        sp_policy_merge_to_string(p->merge);
    }
    return 0;
}
