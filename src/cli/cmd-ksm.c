/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-ksm.c: samepage ksm [--json] | samepage ksm set KEY=VALUE...
 */
#include "config.h"

#include <stdio.h>

#include "cli.h"
#include "samepage/spksm.h"

static json_object *
sp_cli_ksm_to_json(const SpKsmState *state)
{
    json_object *obj = json_object_new_object();

    for (guint i = 0; i < SP_KSM_N_KEYS; i++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(i);
        const SpKsmEntry *e = &state->entry[i];
        json_object *v = NULL;

        if (e->supported) {
            if (info->type == SP_KSM_TYPE_ENUM)
                v = json_object_new_string(info->choices[e->value]);
            else
                v = json_object_new_int64(e->value);
        }
        json_object_object_add(obj, info->name, v);
    }
    return obj;
}

static void
sp_cli_ksm_print_table(const SpKsmState *state)
{
    printf("%-36s %-14s %s\n", "KEY", "VALUE", "MEANING");
    for (guint i = 0; i < SP_KSM_N_KEYS; i++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(i);
        const SpKsmEntry *e = &state->entry[i];
        g_autofree char *v = e->supported ? sp_ksm_format_value(i, e->value)
                                          : g_strdup("unsupported");

        printf("%-36s %-14s %s%s\n", info->name, v, info->writable ? "" : "(figure) ",
               info->help);
    }
}

static int
sp_cli_ksm_set(int argc, char **argv)
{
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(GError) error = NULL;
    g_autofree SpKsmSetting *settings = NULL;
    SpKsmState before, after;

    if (argc < 1) {
        sp_cli_error("ksm set: give at least one KEY=VALUE");
        return SP_EXIT_USAGE;
    }
    settings = g_new0(SpKsmSetting, argc);
    for (int i = 0; i < argc; i++) {
        if (!sp_ksm_parse_setting(argv[i], &settings[i], &error)) {
            sp_cli_error("ksm set: %s", error->message);
            return SP_EXIT_USAGE;
        }
    }
    if (!sp_ksm_read(host, &before, &error) ||
        !sp_ksm_apply(host, settings, argc, &error) ||
        !sp_ksm_read(host, &after, &error)) {
        sp_cli_error("ksm set: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    for (int i = 0; i < argc; i++) {
        SpKsmKey k = settings[i].key;
        g_autofree char *was = sp_ksm_format_value(k, before.entry[k].value);
        g_autofree char *now = sp_ksm_format_value(k, after.entry[k].value);
        printf("%s: %s -> %s\n", sp_ksm_key_info(k)->name, was, now);
    }
    return SP_EXIT_OK;
}

int
sp_cli_ksm(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (keys are the sysfs names)", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[set KEY=VALUE...]");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(GError) error = NULL;
    SpKsmState state;
    int rc;

    g_option_context_set_summary(ctx,
        "Show every file of /sys/kernel/mm/ksm (a key this kernel lacks is 'unsupported'),\n"
        "or write knobs: all are validated first, and a failed write restores the others.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    /* "set" takes KEY=VALUE words that must not be parsed as options. */
    if (argc >= 2 && g_str_equal(argv[1], "set"))
        return sp_cli_ksm_set(argc - 2, argv + 2);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (argc > 1) {
        sp_cli_error("ksm: unexpected argument '%s'", argv[1]);
        return SP_EXIT_USAGE;
    }
    if (!sp_ksm_read(host, &state, &error)) {
        sp_cli_error("ksm: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (json) {
        g_autoptr(json_object) obj = sp_cli_ksm_to_json(&state);
        sp_cli_print_json(obj);
    } else {
        sp_cli_ksm_print_table(&state);
    }
    return SP_EXIT_OK;
}
