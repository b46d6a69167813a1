/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * samepaged.c: the samepage host agent, main()
 *
 * Options, the start-up self-check, signals, the loop.  It stays in the
 * foreground (service managers expect it) and logs through GLib's
 * structured log (stderr, or the journal when it is stderr's target).
 * The work is in sd-guests.c (libvirt, policy, marking), sd-ksm.c (knobs
 * at start and exit, the scan-rate controller), sd-model.c (estimates in the background) and
 * sd-control.c (the control socket).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>

#include "samepaged.h"

#define SD_DEFAULT_CONFIG SP_SYSCONFDIR "/samepage/samepaged.conf"

static gboolean
sd_on_quit(gpointer user_data)
{
    SdDaemon *d = user_data;

    g_message("signal received: exiting");
    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean
sd_on_hup(gpointer user_data)
{
    SdDaemon *d = user_data;
    g_autoptr(GError) error = NULL;

    if (!sd_reload(d, &error))
        g_warning("reload refused, the running configuration stays: %s", error->message);
    return G_SOURCE_CONTINUE;
}

/* Reads the configuration again.  What can change on the fly: the default
 * policy, trust rules, the libvirt URI (reconnects), the model's budget;
 * [metrics] (a new listen address that cannot be bound keeps the old
 * listener, with a warning); the socket and [ksm] knobs are read at start
 * only (said so). */
gboolean
sd_reload(SdDaemon *d, GError **error)
{
    g_autoptr(SpConfig) cfg = sp_config_load(d->config_path, error);
    gboolean new_uri;

    if (!cfg)
        return FALSE;
    new_uri = g_strcmp0(cfg->libvirt_uri, d->cfg->libvirt_uri) != 0;
    if (g_strcmp0(cfg->socket_path, d->cfg->socket_path))
        g_message("reload: [daemon] socket takes effect at the next start");
    if (!d->oneshot)
        sd_metrics_reload(d, cfg);
    if (cfg->mode != d->cfg->mode || cfg->max_ksmd_cpu != d->cfg->max_ksmd_cpu ||
        cfg->stop_above_available != d->cfg->stop_above_available) {
        g_message("reload: [controller] takes effect at the next start");
        cfg->mode = d->cfg->mode;
        cfg->max_ksmd_cpu = d->cfg->max_ksmd_cpu;
        cfg->stop_above_available = d->cfg->stop_above_available;
    }
    /* The [ksm] knobs stay those applied at start (and restored at exit). */
    g_array_set_size(cfg->ksm_settings, 0);
    g_array_append_vals(cfg->ksm_settings, d->cfg->ksm_settings->data, d->cfg->ksm_settings->len);
    g_array_set_size(cfg->ksm_lines, 0);
    g_array_append_vals(cfg->ksm_lines, d->cfg->ksm_lines->data, d->cfg->ksm_lines->len);
    cfg->restore_at_exit = d->cfg->restore_at_exit;
    g_free(cfg->socket_path);
    cfg->socket_path = g_strdup(d->cfg->socket_path);
    sp_config_free(d->cfg);
    d->cfg = g_steal_pointer(&cfg);
    g_message("reload: %s read", d->config_path);
    if (new_uri) {
        /* The reconnection loop opens the new URI once no job holds the
         * old connection, then applies the policy to what runs there. */
        g_message("reload: [libvirt] uri is now %s: reconnecting", d->cfg->libvirt_uri);
        if (d->lv)
            sp_libvirt_unwatch(d->lv);
        d->connected = FALSE;
        d->disconnected_us = g_get_monotonic_time();
        sd_libvirt_retry(d);
    } else if (d->connected) {
        sd_guests_refresh_all(d, "reload");
    }
    return TRUE;
}

/* The start-up self-check: what is missing, named.  FALSE: cannot run. */
static gboolean
sd_self_check(SdDaemon *d)
{
    static const SpKsmKey needed[] = { SP_KSM_RUN, SP_KSM_PAGES_TO_SCAN, SP_KSM_SLEEP_MILLISECS };
    g_autoptr(GError) error = NULL;
    SpKsmState st;
    gboolean ok = TRUE;

    if (!sp_ksm_read(d->host, &st, &error)) {
        g_critical("self-check: KSM: %s", error->message);
        return FALSE;
    }
    for (guint i = 0; i < G_N_ELEMENTS(needed); i++) {
        if (!st.entry[needed[i]].supported) {
            g_critical("self-check: KSM knob %s is missing from %s/kernel/mm/ksm",
                       sp_ksm_key_info(needed[i])->name, sp_host_get_sysfs_root(d->host));
            ok = FALSE;
        }
    }
    if (!st.entry[SP_KSM_SMART_SCAN].supported)
        g_message("self-check: no smart_scan knob (kernel before 6.7): fine");
    if (geteuid() != 0) {
        if (d->dry_run) {
            g_warning("self-check: not root: a dry run only reads what it may");
        } else {
            g_critical("self-check: samepaged must run as root: it reads QEMU's memory maps "
                       "and writes KSM's knobs (uid %d)", (int)geteuid());
            ok = FALSE;
        }
    }
    if (st.entry[SP_KSM_RUN].value == 0 && d->cfg->ksm_settings->len == 0)
        g_message("self-check: KSM is off (run=0) and [ksm] sets no knobs: guests are marked, "
                  "nothing merges until something turns ksmd on");
    return ok;
}

int
main(int argc, char **argv)
{
    g_autofree char *config = NULL;
    gboolean oneshot = FALSE, dry_run = FALSE, debug = FALSE, version = FALSE;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
          "configuration file (default " SD_DEFAULT_CONFIG ")", "FILE" },
        { "oneshot", 0, 0, G_OPTION_ARG_NONE, &oneshot,
          "apply the policy to the running guests, print, exit", NULL },
        { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run,
          "say what would change, change nothing", NULL },
        { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "debug messages", NULL },
        { "version", 0, 0, G_OPTION_ARG_NONE, &version, "print the version", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- the samepage host agent");
    g_autoptr(GError) error = NULL;
    SdDaemon dd = { 0 }, *d = &dd;
    guint sig[3];

    g_option_context_set_summary(ctx,
        "Applies each guest's memory-sharing policy (its domain metadata, else the\n"
        "configuration) as guests start, keeps trust groups apart, sets KSM's knobs,\n"
        "and answers on a control socket.  Runs in the foreground; see samepaged(8).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "samepaged: error: %s\n", error->message);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "samepaged: error: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    if (version) {
        printf("samepaged %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (debug)
        g_setenv("G_MESSAGES_DEBUG", "all", TRUE);

    d->config_path = g_strdup(config ? config : SD_DEFAULT_CONFIG);
    d->cfg = sp_config_load(d->config_path, &error);
    if (!d->cfg) {
        fprintf(stderr, "samepaged: error: %s\n", error->message);
        g_free(d->config_path);
        return 1;
    }
    d->host = sp_host_new_from_env();
    d->dry_run = dry_run;
    d->oneshot = oneshot;
    d->started_wall = g_get_real_time() / G_USEC_PER_SEC;
    d->loop = g_main_loop_new(NULL, FALSE);
    d->model_cancel = g_cancellable_new();
    g_message("samepaged %s: %s%s%s", PACKAGE_VERSION, d->config_path,
              dry_run ? ", dry run" : "", oneshot ? ", one shot" : "");

    if (!sd_self_check(d)) {
        d->exit_code = 1;
        goto out;
    }
    sd_guests_init(d);
    if (!oneshot)
        sp_libvirt_event_loop_init();
    if (!sd_ksm_start(d, &error)) {
        g_critical("%s", error->message);
        d->exit_code = 1;
        goto out_guests;
    }
    if (!sd_controller_start(d, &error)) {
        g_critical("%s", error->message);
        d->exit_code = 1;
        goto out_ksm;
    }
    if (!oneshot) {
        d->control = sd_control_start(d, &error);
        if (!d->control) {
            g_critical("control socket: %s", error->message);
            d->exit_code = 1;
            goto out_ksm;
        }
    }
    if (!oneshot && !sd_metrics_start(d, &error)) {
        g_critical("%s", error->message);
        d->exit_code = 1;
        goto out_ksm;
    }
    if (!sd_libvirt_connect(d, &error)) {
        if (oneshot) {
            g_critical("self-check: libvirt: %s", error->message);
            d->exit_code = 1;
            goto out_ksm;
        }
        g_warning("self-check: libvirt: %s; retrying every second", error->message);
        g_clear_error(&error);
        d->disconnected_us = g_get_monotonic_time();
        d->reconnect_id = 0;
        /* sd-guests.c's reconnection loop takes it from here. */
        sd_libvirt_retry(d);
    } else {
        g_message("connected to %s", d->cfg->libvirt_uri);
        sd_guests_refresh_all(d, "start");
    }

    if (!oneshot)
        sd_model_start_host(d);
    sig[0] = g_unix_signal_add(SIGTERM, sd_on_quit, d);
    sig[1] = g_unix_signal_add(SIGINT, sd_on_quit, d);
    sig[2] = g_unix_signal_add(SIGHUP, sd_on_hup, d);
    if (!oneshot || !sd_guests_idle(d))
        g_main_loop_run(d->loop);
    for (guint i = 0; i < G_N_ELEMENTS(sig); i++)
        g_source_remove(sig[i]);

    if (oneshot) {
        g_autoptr(json_object) arr = sd_guests_to_json(d);
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                           JSON_C_TO_STRING_SPACED));
    }
    /* Jobs in flight finish first: they hold the libvirt connection.  An
     * estimate is cancelled: its scan stops at its next chunk. */
    d->quitting = TRUE;
    g_cancellable_cancel(d->model_cancel);
    while (d->job_running || sd_model_busy(d) || d->metrics_writing)
        g_main_context_iteration(NULL, TRUE);

out_ksm:
    sd_metrics_stop(d);
    sd_control_stop(d->control);
    sd_controller_stop(d);
    sd_ksm_exit(d);
out_guests:
    if (d->reconnect_id)
        g_source_remove(d->reconnect_id);
    sd_model_finish(d);
    sp_libvirt_free(d->lv);
    sd_guests_finish(d);
out:
    g_main_loop_unref(d->loop);
    g_object_unref(d->model_cancel);
    sp_config_free(d->cfg);
    sp_host_free(d->host);
    g_free(d->config_path);
    g_message("samepaged: exit %d", d->exit_code);
    return d->exit_code;
}
