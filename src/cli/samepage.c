/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * samepage.c: the command-line front end
 */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "samepage/sptext.h"

static int sp_cli_help(const SpCliGlobal *global, int argc, char **argv);

static const SpCliCommand sp_cli_commands[] = {
    { "ksm", "[--json] | set KEY=VALUE... [--json] [--force] | numa --merge-across-nodes 0|1 "
      "[--force] [--timeout S] [--dry-run] [--json]",
      "show or set the kernel's KSM knobs and figures; switch merge_across_nodes safely",
      sp_cli_ksm },
    { "estimate", "DOMAIN... | --all | --qmp SOCKET | --pid PID... | --image FILE... [OPTIONS]",
      "predict what KSM will share, from memory, read-only", sp_cli_estimate },
    { "list", "[--json]", "running guests: pid, RAM, regions marked, KSM merging pages, profit",
      sp_cli_list },
    { "regions", "DOMAIN | --qmp SOCKET [--json]", "a guest's RAM backends and the host memory behind them",
      sp_cli_regions },
    { "mark", "DOMAIN | --qmp SOCKET [--region ID] [--off] [--force]",
      "switch merging of a guest's RAM on or off, verified in smaps", sp_cli_mark },
    { "doctor", "[DOMAIN...] [--qmp SOCKET] [--no-estimate] [--json]",
      "why guests do not merge, with the evidence and the fix", sp_cli_doctor },
    { "experiment", "run PLAN [--output DIR] [--json] [--force] | clean [--dry-run] [--json]",
      "start N cloned guests, measure sharing against VM count, plot and report", sp_cli_experiment },
    { "status", "[--json] [--socket PATH]", "what samepaged, the host agent, is doing",
      sp_cli_status },
    { "help", "[COMMAND [SUBCOMMAND]]", "show the commands, or one command's options", sp_cli_help },
};

/*
 * All text output goes through here: names, ids, messages and paths come
 * from others (guests, their owners, QEMU, files), and their control
 * characters are shown escaped ("\x1b"), never sent to the terminal.
 */
void
sp_cli_print(FILE *out, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *text = NULL;
    g_autofree char *safe = NULL;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    safe = sp_text_escape(text, SP_TEXT_ESCAPE_KEEP_LINES);
    fputs(safe, out);
}

void
sp_cli_error(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    sp_cli_print(stderr, "samepage: error: %s\n", msg);
}

/*
 * A number option: decimal digits only (no sign, space, "0x" or octal),
 * the whole string, from @min to @max.  Prints the error (exit code
 * SP_EXIT_USAGE for the caller) and returns FALSE otherwise.
 */
gboolean
sp_cli_parse_uint(const char *command, const char *option, const char *text, guint64 min,
                  guint64 max, guint64 *value)
{
    if (g_ascii_string_to_unsigned(text, 10, min, max, value, NULL))
        return TRUE;
    if (max >= G_MAXINT32)      /* no limit worth naming */
        sp_cli_error("%s: %s must be at least %" G_GUINT64_FORMAT " (a decimal number up "
                     "to %" G_GUINT64_FORMAT "), not '%s'", command, option, min, max, text);
    else
        sp_cli_error("%s: %s must be between %" G_GUINT64_FORMAT " and %" G_GUINT64_FORMAT
                     " (a decimal number), not '%s'", command, option, min, max, text);
    return FALSE;
}

/*
 * The same for a number with an optional fraction ("0.25"): digits and at
 * most one point, nothing else (no exponent, hex, "inf" or "nan").
 */
gboolean
sp_cli_parse_decimal(const char *command, const char *option, const char *text, double min,
                     double max, double *value)
{
    gsize digits = strspn(text, "0123456789");
    gsize len = strlen(text);
    double v = 0;

    if (text[digits] == '.')
        digits += 1 + strspn(text + digits + 1, "0123456789");
    if (len > 0 && digits == len && !g_str_equal(text, ".")) {
        v = g_ascii_strtod(text, NULL);
        if (v >= min && v <= max) {
            *value = v;
            return TRUE;
        }
    }
    sp_cli_error("%s: %s must be between %g and %g (a decimal number), not '%s'", command,
                 option, min, max, text);
    return FALSE;
}

int
sp_cli_parse(GOptionContext *ctx, int *argc, char ***argv)
{
    g_autoptr(GError) error = NULL;

    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        sp_cli_error("%s", error->message);
        return SP_EXIT_USAGE;
    }
    return SP_EXIT_OK;
}

void
sp_cli_print_json(json_object *obj)
{
    printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const SpCliCommand *
sp_cli_find(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(sp_cli_commands); i++) {
        if (g_str_equal(sp_cli_commands[i].name, name))
            return &sp_cli_commands[i];
    }
    return NULL;
}

static void
sp_cli_usage(FILE *out)
{
    fprintf(out, "Usage: samepage [-c URI] [-r] [--debug] COMMAND [ARGS]\n\n"
                 "Options:\n"
                 "  -c, --connect URI  libvirt connection (default: libvirt's own)\n"
                 "  -r, --readonly     a read-only connection; change nothing\n"
                 "  -d, --debug        log everything, QMP traffic included\n"
                 "  -h, --help         this text\n"
                 "  -V, --version      samepage's version\n\nCommands:\n");
    for (gsize i = 0; i < G_N_ELEMENTS(sp_cli_commands); i++)
        fprintf(out, "  %-10s %s\n", sp_cli_commands[i].name, sp_cli_commands[i].summary);
    fprintf(out, "\n'samepage help COMMAND' shows a command's options; see samepage(1).\n");
}

static int
sp_cli_help(const SpCliGlobal *global, int argc, char **argv)
{
    const SpCliCommand *cmd;

    if (argc < 2) {
        sp_cli_usage(stdout);
        return SP_EXIT_OK;
    }
    cmd = sp_cli_find(argv[1]);
    if (!cmd) {
        sp_cli_error("unknown command '%s'", argv[1]);
        return SP_EXIT_USAGE;
    }
    if (cmd->run == sp_cli_help) {
        printf("Usage: samepage help [COMMAND [SUBCOMMAND]]\n");
        return SP_EXIT_OK;
    }
    /* help ksm numa: the subcommand's own options. */
    char *help_argv[] = { (char *)cmd->name, argc > 2 ? argv[2] : (char *)"--help",
                          (char *)"--help", NULL };
    return cmd->run(global, argc > 2 ? 3 : 2, help_argv);
}

int
main(int argc, char **argv)
{
    SpCliGlobal global = { NULL, FALSE, FALSE };
    int i;

    setlocale(LC_ALL, "");
    /* A libvirtd or QEMU that dies mid-call closes its socket under us: the
     * call must fail with an error, not kill us with SIGPIPE (as virsh). */
    signal(SIGPIPE, SIG_IGN);
    /* No -c: libvirt picks the URI ($LIBVIRT_DEFAULT_URI, uri_default). */

    /* Global options come before the command, as with virsh. */
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (g_str_equal(a, "-c") || g_str_equal(a, "--connect")) {
            if (++i >= argc) {
                sp_cli_error("%s needs a URI", a);
                return SP_EXIT_USAGE;
            }
            global.uri = argv[i];
        } else if (g_str_has_prefix(a, "--connect=")) {
            global.uri = a + strlen("--connect=");
        } else if (g_str_equal(a, "-r") || g_str_equal(a, "--readonly")) {
            global.readonly = TRUE;
        } else if (g_str_equal(a, "-d") || g_str_equal(a, "--debug")) {
            global.debug = TRUE;
            g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
        } else if (g_str_equal(a, "-h") || g_str_equal(a, "--help")) {
            sp_cli_usage(stdout);
            return SP_EXIT_OK;
        } else if (g_str_equal(a, "-V") || g_str_equal(a, "--version")) {
            printf("samepage %s\n", PACKAGE_VERSION);
            return SP_EXIT_OK;
        } else {
            sp_cli_error("unknown option '%s' (see 'samepage help')", a);
            return SP_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        sp_cli_usage(stderr);
        return SP_EXIT_USAGE;
    }
    const SpCliCommand *cmd = sp_cli_find(argv[i]);
    if (!cmd) {
        sp_cli_error("unknown command '%s' (see 'samepage help')", argv[i]);
        return SP_EXIT_USAGE;
    }
    return cmd->run(&global, argc - i, argv + i);
}
