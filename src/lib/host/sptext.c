/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sptext.c: text from outside, made safe to print
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-text"

#include <string.h>

#include "samepage/sptext.h"

/**
 * sp_text_escape:
 * @text: text to print, from anywhere; need not be UTF-8
 * @flags: SP_TEXT_ESCAPE_KEEP_LINES keeps "\n" and "\t"
 *
 * Control characters become visible escapes: C0 bytes and DEL as "\xNN"
 * (ESC is "\x1b"), the C1 controls U+0080..U+009F as "\uNNNN", and bytes
 * that are not UTF-8 as "\xNN".  Everything else, backslashes included, is
 * copied as it is.
 *
 * Returns: (transfer full): valid UTF-8 without control characters (but
 * "\n" and "\t" with SP_TEXT_ESCAPE_KEEP_LINES).
 */
char *
sp_text_escape(const char *text, SpTextEscapeFlags flags)
{
    GString *out = g_string_sized_new(strlen(text) + 1);
    const char *p = text;

    while (*p) {
        guchar c = (guchar)*p;
        const char *next;
        gunichar u;

        if (c < 0x80) {
            gboolean keep = (flags & SP_TEXT_ESCAPE_KEEP_LINES) && (c == '\n' || c == '\t');

            if ((c < 0x20 || c == 0x7f) && !keep)
                g_string_append_printf(out, "\\x%02x", c);
            else
                g_string_append_c(out, (char)c);
            p++;
            continue;
        }
        u = g_utf8_get_char_validated(p, -1);
        if (u == (gunichar)-1 || u == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", c);
            p++;
            continue;
        }
        next = g_utf8_next_char(p);
        if (u <= 0x9f)
            g_string_append_printf(out, "\\u%04x", u);
        else
            g_string_append_len(out, p, next - p);
        p = next;
    }
    return g_string_free(out, FALSE);
}
