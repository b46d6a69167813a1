/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-status.c: samepage status, and samepaged's view for samepage list
 *
 * Both ask the daemon over its control socket (SpAgent); the daemon's
 * JSON is printed as it is with --json, or as a few lines of text.
 */
#include "config.h"

#include "cli.h"
#include "table.h"
#include "samepage/spagent.h"

#define SP_CLI_AGENT_TIMEOUT_MS 5000

static json_object *
sp_cli_agent_request(const char *socket_path, const char *what, GError **error)
{
    g_autoptr(SpHost) host = sp_host_new_from_env();
    const char *env = g_getenv("SAMEPAGE_SOCKET");
    g_autofree char *path = socket_path ? g_strdup(socket_path)
                          : env && *env ? g_strdup(env)
                                        : sp_agent_default_socket(host);
    g_autoptr(json_object) req = json_object_new_object();

    json_object_object_add(req, "request", json_object_new_string(what));
    return sp_agent_call(path, req, SP_CLI_AGENT_TIMEOUT_MS, error);
}

static const char *
str_of(json_object *o, const char *key, const char *dflt)
{
    json_object *v;

    if (!o || !json_object_object_get_ex(o, key, &v) || !v)
        return dflt;
    return json_object_get_string(v);
}

enum { ST_DOMAIN, ST_MERGEABLE, ST_MARKED, ST_POLICY, ST_GROUP, ST_PRED, ST_DELAY, ST_REASON };
static const SpTableColumn sp_cli_status_columns[] = {
    [ST_DOMAIN] = { "DOMAIN", 16, 0, "the libvirt domain" },
    [ST_MERGEABLE] = { "MERGEABLE", 9, 0, "whether samepaged lets it merge (yes, no)" },
    [ST_MARKED] = { "MARKED", 6, 0, "whether its RAM is marked mergeable (yes, no)" },
    [ST_POLICY] = { "POLICY", 8, 0, "its policy: merge yes, no or required" },
    [ST_GROUP] = { "GROUP", 8, 0, "its trust group" },
    [ST_PRED] = { "PRED_MIB", 8, SP_TABLE_RIGHT, "the model's predicted saving, MiB" },
    [ST_DELAY] = { "DELAY_S", 7, SP_TABLE_RIGHT, "seconds from its start to verified marking" },
    [ST_REASON] = { "REASON", 0.3, SP_TABLE_WRAP, "why, or the error" },
};

/* The guests table, from the daemon's "guests" array. */
static int
sp_cli_print_daemon_guests(json_object *guests, const SpTableOptions *topt)
{
    g_autoptr(SpTable) table = sp_cli_table_new("status", sp_cli_status_columns,
                                                G_N_ELEMENTS(sp_cli_status_columns), topt);

    if (!table)
        return SP_EXIT_USAGE;
    for (size_t i = 0; guests && i < json_object_array_length(guests); i++) {
        json_object *g = json_object_array_get_idx(guests, i), *p = NULL, *v = NULL;

        sp_table_add_row(table);
        sp_table_set(table, ST_DOMAIN, str_of(g, "domain", "?"));
        sp_table_set(table, ST_MERGEABLE,
                     g_str_equal(str_of(g, "mergeable", "false"), "true") ? "yes" : "no");
        sp_table_set(table, ST_MARKED,
                     g_str_equal(str_of(g, "marked", "false"), "true") ? "yes" : "no");
        sp_table_set(table, ST_POLICY, str_of(g, "policy", "-"));
        sp_table_set(table, ST_GROUP, str_of(g, "group", "-"));
        if (json_object_object_get_ex(g, "prediction", &p) && p &&
            json_object_object_get_ex(p, "saved_bytes", &v))
            sp_table_setf(table, ST_PRED, "%.1f", json_object_get_int64(v) / 1048576.0);
        else
            sp_table_set(table, ST_PRED, "-");
        if (json_object_object_get_ex(g, "mark_delay_s", &v) && v)
            sp_table_setf(table, ST_DELAY, "%.2f", json_object_get_double(v));
        else
            sp_table_set(table, ST_DELAY, "-");
        sp_table_set(table, ST_REASON, str_of(g, "error", NULL) ? str_of(g, "error", "")
                                                                : str_of(g, "reason", ""));
    }
    return sp_cli_table_print(table);
}

int
sp_cli_status(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE;
    g_auto(SpTableOptions) topt = { 0 };
    g_autofree char *socket_path = NULL;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print samepaged's JSON reply", NULL },
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &socket_path,
          "samepaged's control socket (default $SAMEPAGE_SOCKET, else "
          "RUNDIR/samepage/samepaged.sock)", "PATH" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- what samepaged is doing");
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) st = NULL;
    json_object *dm = NULL, *ctl = NULL, *trust = NULL, *model = NULL, *ksm = NULL, *guests = NULL, *host = NULL;
    const char *cpu;
    g_autofree char *cpu_text = NULL;
    int rc;

    g_option_context_set_summary(ctx, "samepaged's state over its control socket: the daemon, "
                                      "KSM, the controller,\ntrust groups, the model and each "
                                      "guest's policy and marking.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    sp_table_add_options(ctx, &topt, sp_cli_status_columns, G_N_ELEMENTS(sp_cli_status_columns),
                         "The guests' table; with --raw, -o or -n, only the table is printed.");
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (argc != 1) {
        sp_cli_error("status: no arguments expected");
        return SP_EXIT_USAGE;
    }
    if ((rc = sp_cli_require_local(global, "status", FALSE,
                                   "asks samepaged over its control socket")) != SP_EXIT_OK)
        return rc;
    if (topt.output && !json) {
        /* An unknown column is a usage error before the daemon is asked. */
        g_autoptr(SpTable) check = sp_cli_table_new("status", sp_cli_status_columns,
                                                    G_N_ELEMENTS(sp_cli_status_columns), &topt);
        if (!check)
            return SP_EXIT_USAGE;
    }
    st = sp_cli_agent_request(socket_path, "status", &error);
    if (!st) {
        sp_cli_error("status: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (json) {
        /* samepaged's reply carries "format" (SP_JSON_FORMAT) and "ok";
         * the command's name goes first, as in every --json document. */
        g_autoptr(json_object) doc = json_object_new_object();
        json_object_object_add(doc, "format", NULL);
        json_object_object_add(doc, "command", json_object_new_string("status"));
        sp_cli_print_json(sp_json_document_take(doc, json_object_get(st)));
        return SP_EXIT_OK;
    }
    json_object_object_get_ex(st, "daemon", &dm);
    json_object_object_get_ex(st, "controller", &ctl);
    json_object_object_get_ex(st, "trust", &trust);
    json_object_object_get_ex(st, "model", &model);
    json_object_object_get_ex(st, "ksm", &ksm);
    json_object_object_get_ex(st, "guests", &guests);
    if (sp_table_options_given(&topt))
        return sp_cli_print_daemon_guests(guests, &topt);
    sp_cli_print(stdout, "samepaged %s, pid %s, up %s s, config %s\n", str_of(dm, "version", "?"),
                 str_of(dm, "pid", "?"), str_of(dm, "uptime_s", "?"), str_of(dm, "config", "-"));
    sp_cli_print(stdout, "libvirt: %s, %s\n", str_of(dm, "libvirt_uri", "?"),
                 g_str_equal(str_of(dm, "connected", "false"), "true") ? "connected"
                                                                       : "not connected");
    cpu = str_of(ctl, "ksmd_cpu_pct", NULL);
    cpu_text = cpu ? g_strdup_printf("%.1f%%", g_ascii_strtod(cpu, NULL)) : g_strdup("unknown");
    sp_cli_print(stdout, "controller: %s, %s, knobs %s, ksmd %s of a CPU (budget %s%%), "
                 "restore at exit: %s\n", str_of(ctl, "mode", "?"), str_of(ctl, "phase", "?"),
                 str_of(ctl, "knobs", "{}"), cpu_text, str_of(ctl, "max_ksmd_cpu", "?"),
                 str_of(ctl, "restore_at_exit", "?"));
    sp_cli_print(stdout, "  reason: %s\n", str_of(ctl, "reason", "-"));
    if (ksm)
        sp_cli_print(stdout, "ksm: run %s, pages_to_scan %s, sleep_millisecs %s, pages_sharing %s\n",
                     str_of(ksm, "run", "?"), str_of(ksm, "pages_to_scan", "?"),
                     str_of(ksm, "sleep_millisecs", "?"), str_of(ksm, "pages_sharing", "?"));
    sp_cli_print(stdout, "trust: %s\n", str_of(trust, "reason", "-"));
    sp_cli_print(stdout, "model: %s estimates, %.2f CPU-s (budget %s%% of a CPU)\n",
                 str_of(model, "estimates", "0"), g_ascii_strtod(str_of(model, "cpu_seconds", "0"), NULL),
                 str_of(model, "max_cpu_percent", "?"));
    if (model && json_object_object_get_ex(model, "host", &host) &&
        g_str_equal(str_of(host, "have_prediction", "false"), "true"))
        sp_cli_print(stdout, "  host: %s processes registered with KSM, %s pages present: "
                     "pages_sharing %s predicted, %s s ago\n", str_of(host, "processes", "?"),
                     str_of(host, "registered_pages", "?"),
                     str_of(host, "predicted_pages_sharing", "?"), str_of(host, "age_seconds", "?"));
    return sp_cli_print_daemon_guests(guests, &topt);
}

/**
 * sp_cli_daemon_guests:
 *
 * Returns: (transfer full): samepaged's guests, or NULL when no daemon
 * answers on the default socket.
 */
json_object *
sp_cli_daemon_guests(void)
{
    g_autoptr(json_object) reply = sp_cli_agent_request(NULL, "guests", NULL);
    json_object *guests = NULL;

    if (!reply || !json_object_object_get_ex(reply, "guests", &guests))
        return NULL;
    return json_object_get(guests);
}

/* samepage list, when samepaged runs: its view after the table. */
void
sp_cli_print_daemon_view(json_object *guests)
{
    SpTableOptions defaults = { 0 };

    sp_cli_print(stdout, "\nsamepaged's view (policy, trust groups, marking):\n");
    sp_cli_print_daemon_guests(guests, &defaults);
}

/* A state-changing command on a host where samepaged runs: say that the
 * daemon's policy will apply again. */
void
sp_cli_warn_daemon(const char *command, const char *guest)
{
    g_autoptr(json_object) guests = sp_cli_daemon_guests();

    if (guests)
        sp_cli_print(stderr, "samepage: warning: %s: samepaged runs here and applies each "
                             "guest's policy; it will set %s as its policy says again at the "
                             "guest's next start, a reload or a libvirtd restart "
                             "(samepage status)\n", command, guest);
}
