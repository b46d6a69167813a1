/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h: what the libFuzzer targets share
 *
 * Each target is one C file defining LLVMFuzzerTestOneInput() over one
 * family of parsers of outside input; the parsers take NUL-terminated
 * strings, so the input is copied and terminated first (a NUL inside it
 * ends the text, as it would for text read from a file).  Targets never
 * assert on results: a crash, a sanitizer report, a leak or a hang is the
 * finding.  See tests/fuzz/README.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a string. */
static inline char *
sp_fuzz_text(const uint8_t *data, size_t size)
{
    char *text = g_malloc(size + 1);

    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

/* Drops a parser's result (NULL allowed). */
static inline void
sp_fuzz_drop_array(GPtrArray *array)
{
    if (array)
        g_ptr_array_unref(array);
}

/* A selector byte (the first) and the text after it; FALSE for empty input. */
static inline gboolean
sp_fuzz_split(const uint8_t *data, size_t size, guint *selector, char **text)
{
    if (size == 0)
        return FALSE;
    *selector = data[0];
    *text = sp_fuzz_text(data + 1, size - 1);
    return TRUE;
}
