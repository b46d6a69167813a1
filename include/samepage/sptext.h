/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sptext.h: text from outside, made safe to print
 *
 * Domain names, QMP backend ids, process names, file names and the QEMU
 * or libvirt error text quoted in messages come from other people.  Printed
 * raw, an ESC in them drives the reader's terminal (clears it, retitles
 * the window, hides lines).  sp_text_escape() is the one helper every text
 * that reaches a terminal goes through.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    SP_TEXT_ESCAPE_DEFAULT = 0,
    SP_TEXT_ESCAPE_KEEP_LINES = 1 << 0,   /* keep "\n" and "\t" as they are */
} SpTextEscapeFlags;

char *sp_text_escape(const char *text, SpTextEscapeFlags flags);

G_END_DECLS
