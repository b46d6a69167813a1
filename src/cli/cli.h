/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cli.h: what the samepage commands share
 *
 * Each command is one file with an option table and one function; main()
 * only finds the command and hands it the rest of argv.
 */
#pragma once

#include <stdio.h>
#include <glib.h>
#include "samepage/spjson.h"
#include "samepage/splibvirt.h"

/* Exit codes, documented in samepage(1). */
enum {
    SP_EXIT_OK = 0,
    SP_EXIT_FAILURE = 1,   /* the command ran and failed */
    SP_EXIT_USAGE = 2,     /* bad command line */
    SP_EXIT_FINDINGS = 3,  /* doctor: it ran, and found at least one error */
};

typedef struct {
    const char *uri;       /* -c/--connect, NULL for libvirt's default */
    gboolean debug;
    gboolean readonly;     /* -r/--readonly: a read-only connection, nothing changed */
} SpCliGlobal;

typedef int (*SpCliRunFunc)(const SpCliGlobal *global, int argc, char **argv);

typedef struct {
    const char *name;
    const char *args;      /* synopsis after the name */
    const char *summary;
    SpCliRunFunc run;
} SpCliCommand;

int sp_cli_ksm(const SpCliGlobal *global, int argc, char **argv);
int sp_cli_estimate(const SpCliGlobal *global, int argc, char **argv);
int sp_cli_list(const SpCliGlobal *global, int argc, char **argv);
int sp_cli_regions(const SpCliGlobal *global, int argc, char **argv);
int sp_cli_mark(const SpCliGlobal *global, int argc, char **argv);
int sp_cli_doctor(const SpCliGlobal *global, int argc, char **argv);
int sp_cli_experiment(const SpCliGlobal *global, int argc, char **argv);
int sp_cli_status(const SpCliGlobal *global, int argc, char **argv);
json_object *sp_cli_daemon_guests(void);
void sp_cli_print_daemon_view(json_object *guests);
void sp_cli_warn_daemon(const char *command, const char *guest);

/* guests.c: which host a command acts on (samepage(1), REMOTE HOSTS) */
gboolean sp_cli_uri_place(const SpCliGlobal *global, const char *command, gboolean use_default,
                          SpLibvirtPlace *place, char **uri, char **why);
int sp_cli_require_local(const SpCliGlobal *global, const char *command, gboolean use_default,
                         const char *what);
int sp_cli_refuse_readonly(const SpCliGlobal *global, const char *command, const char *change);
guint sp_cli_libvirt_flags(const SpCliGlobal *global);
SpLibvirt *sp_cli_open_libvirt(const SpCliGlobal *global, gboolean need_local, GError **error);
SpGuest *sp_cli_open_guest(const SpCliGlobal *global, SpLibvirt **lv, const SpHost *host,
                           const char *name, const char *qmp_socket, GError **error);

void sp_cli_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void sp_cli_print(FILE *out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
gboolean sp_cli_parse_uint(const char *command, const char *option, const char *text,
                           guint64 min, guint64 max, guint64 *value);
gboolean sp_cli_parse_decimal(const char *command, const char *option, const char *text,
                              double min, double max, double *value);
int sp_cli_parse(GOptionContext *ctx, int *argc, char ***argv);
void sp_cli_print_json(json_object *obj);
