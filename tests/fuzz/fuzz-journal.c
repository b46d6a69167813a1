/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-journal: an experiment journal (JSON, left by a killed experiment in
 * the state directory) through sp_journal_parse(), and a journal that
 * parses written back and parsed again.
 */
#include "config.h"

#include "samepage/spjournal.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = sp_fuzz_text(data, size);
    g_autoptr(SpJournal) j = sp_journal_parse(text, "fuzz.json", NULL);

    if (j) {
        g_autofree char *again = sp_journal_to_string(j);

        sp_journal_free(sp_journal_parse(again, "fuzz.json", NULL));
    }
    return 0;
}
