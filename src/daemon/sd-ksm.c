/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-ksm.c: samepaged's KSM knobs: the [ksm] settings applied at start
 * (validated whole by SpKsm, nothing half applied), and at exit restored,
 * when [ksm] restore_at_exit = yes, for the knobs it changed and nobody
 * changed since.  It never turns KSM off that it did not turn on
 * (KubeVirt's ownership rule): run goes back to 0 only if samepaged itself
 * set it from 0 to 1.
 *
 * Every [controller] mode but static runs an SpController on the main
 * context: it decides run, pages_to_scan, sleep_millisecs and smart_scan
 * from a snapshot of the host and the host prediction (sd-model.c), and
 * at exit puts back the knobs it wrote, before the [ksm] ones are; it
 * is told the running guests' memory (ksmtuned's "committed").  Static
 * is the [ksm] knobs applied once, as they are.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include "samepaged.h"

gboolean
sd_ksm_start(SdDaemon *d, GError **error)
{
    const SpConfig *cfg = d->cfg;
    const SpKsmSetting *s = (const SpKsmSetting *)cfg->ksm_settings->data;
    SpKsmState now;

    if (cfg->ksm_settings->len == 0)
        return TRUE;
    if (!sp_ksm_snapshot(d->host, &d->ksm_found, error))
        return FALSE;
    d->ksm_found_valid = TRUE;
    if (!sp_ksm_validate(&d->ksm_found, s, cfg->ksm_settings->len, error)) {
        g_prefix_error(error, "%s: [ksm]: ", cfg->path ? cfg->path : "configuration");
        return FALSE;
    }
    if (d->dry_run) {
        for (guint i = 0; i < cfg->ksm_settings->len; i++) {
            g_autofree char *v = sp_ksm_format_value(s[i].key, s[i].value);
            g_message("dry run: would set %s = %s", sp_ksm_key_info(s[i].key)->name, v);
        }
        return TRUE;
    }
    if (!sp_ksm_apply(d->host, s, cfg->ksm_settings->len, error)) {
        g_prefix_error(error, "%s: [ksm]: ", cfg->path ? cfg->path : "configuration");
        return FALSE;
    }
    d->ksm_applied = TRUE;
    if (sp_ksm_read(d->host, &now, NULL))
        d->we_turned_ksm_on = d->ksm_found.entry[SP_KSM_RUN].value == 0 &&
                              now.entry[SP_KSM_RUN].value == 1;
    for (guint i = 0; i < cfg->ksm_settings->len; i++) {
        g_autofree char *v = sp_ksm_format_value(s[i].key, s[i].value);
        g_message("KSM: %s = %s (line %u of %s)", sp_ksm_key_info(s[i].key)->name, v,
                  g_array_index(cfg->ksm_lines, guint, i), cfg->path);
    }
    return TRUE;
}

void
sd_ksm_exit(SdDaemon *d)
{
    const SpConfig *cfg = d->cfg;
    SpKsmState now, want;
    g_autoptr(GArray) done = NULL;
    g_autoptr(GError) error = NULL;
    gboolean ours[SP_KSM_N_KEYS] = { FALSE };

    if (!d->ksm_applied)
        return;
    if (!cfg->restore_at_exit) {
        g_message("KSM: knobs kept as set ([ksm] restore_at_exit = no)");
        return;
    }
    if (!sp_ksm_read(d->host, &now, &error)) {
        g_warning("KSM: cannot read the knobs to restore them: %s", error->message);
        return;
    }
    for (guint i = 0; i < cfg->ksm_settings->len; i++) {
        const SpKsmSetting *s = &g_array_index(cfg->ksm_settings, SpKsmSetting, i);
        /* Changed by someone else since: theirs now. */
        ours[s->key] = now.entry[s->key].value == s->value;
    }
    if (!d->we_turned_ksm_on && now.entry[SP_KSM_RUN].value == 1)
        ours[SP_KSM_RUN] = FALSE;
    want = d->ksm_found;
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        if (!ours[k])
            want.entry[k] = now.entry[k];
    }
    if (!sp_ksm_restore(d->host, &want, &done, &error))
        g_warning("KSM: %s", error->message);
    for (guint i = 0; done && i < done->len; i++) {
        const SpKsmSetting *s = &g_array_index(done, SpKsmSetting, i);
        g_autofree char *v = sp_ksm_format_value(s->key, s->value);
        g_message("KSM: restored %s = %s", sp_ksm_key_info(s->key)->name, v);
    }
}

/* ------------------------------------------------------------ controller */

static void
sd_knob_str(GString *s, const char *name, gint64 v)
{
    if (v < 0)
        return;
    g_string_append_printf(s, "%s%s=%" G_GINT64_FORMAT, s->len ? " " : "", name, v);
}

/* After every tick: a decision that changes the phase or a knob is logged
 * with its reason; a new error once. */
static void
sd_controller_notify(SpController *c, gpointer user_data)
{
    SdDaemon *d = user_data;
    const SpControlDecision *dec = sp_controller_get_decision(c);
    const char *err = sp_controller_get_error(c);
    const SpControlDecision *l = &d->ctl_last;
    g_autoptr(GString) knobs = g_string_new(NULL);

    if (g_strcmp0(err, d->ctl_error) != 0) {
        if (err)
            g_warning("controller: %s", err);
        else
            g_message("controller: the knobs apply again");
        g_free(d->ctl_error);
        d->ctl_error = g_strdup(err);
    }
    if (!dec)
        return;
    if (d->ctl_logged && dec->phase == l->phase && dec->run == l->run &&
        dec->pages_to_scan == l->pages_to_scan && dec->sleep_ms == l->sleep_ms &&
        dec->smart_scan == l->smart_scan && dec->advisor_scan_time == l->advisor_scan_time)
        return;
    sd_knob_str(knobs, "run", dec->run);
    sd_knob_str(knobs, "pages_to_scan", dec->pages_to_scan ? (gint64)dec->pages_to_scan : -1);
    sd_knob_str(knobs, "sleep_millisecs", dec->sleep_ms ? (gint64)dec->sleep_ms : -1);
    sd_knob_str(knobs, "smart_scan", dec->smart_scan);
    if (dec->advisor_scan_time == 1)
        g_string_append(knobs, " advisor_mode=scan-time");
    if (dec->ksmd_cpu_pct >= 0)
        g_string_append_printf(knobs, " (ksmd %.1f%% of a CPU)", dec->ksmd_cpu_pct);
    g_message("controller: %s, %s: %s%s: %s", sp_control_mode_name(sp_controller_get_mode(c)),
              sp_control_phase_name(dec->phase), knobs->str,
              d->dry_run ? " (dry run: not written)" : "", dec->reason);
    d->ctl_last = *dec;
    d->ctl_logged = TRUE;
    sd_metrics_write_textfile(d);
}

/* ksmtuned's "committed", as its law wants it: the RAM of the running
 * guests (their RAM backends, known once inspected), updated whenever
 * guests come and go (sd_guests_redecide()).  None known: 0, and the
 * controller counts the memory registered with KSM instead. */
void
sd_controller_update_committed(SdDaemon *d)
{
    GHashTableIter it;
    gpointer value;
    guint64 bytes = 0;

    if (!d->controller)
        return;
    g_hash_table_iter_init(&it, d->guests);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const SdGuest *g = value;
        for (guint i = 0; g->ram && i < g->ram->len; i++) {
            const SpScanRange *r = &g_array_index(g->ram, SpScanRange, i);
            bytes += r->end > r->start ? r->end - r->start : 0;
        }
    }
    sp_controller_set_committed(d->controller, bytes / 1024);
}

/* Not for static (sd_ksm_start() did it all) nor --oneshot.  After
 * sd_ksm_start(): the knobs the controller finds, and restores, are those
 * [ksm] set. */
gboolean
sd_controller_start(SdDaemon *d, GError **error)
{
    const SpConfig *cfg = d->cfg;
    SpControlConfig cc;

    if (cfg->mode == SP_CONTROL_STATIC || d->oneshot)
        return TRUE;
    sp_control_config_init(&cc);
    cc.mode = cfg->mode;
    cc.max_ksmd_cpu_pct = cfg->max_ksmd_cpu;
    cc.stop_above_available_pct = cfg->stop_above_available;
    /* kernel-advisor falls back to static on kernels without the advisor:
     * the [ksm] rate then, if set. */
    for (guint i = 0; i < cfg->ksm_settings->len; i++) {
        const SpKsmSetting *s = &g_array_index(cfg->ksm_settings, SpKsmSetting, i);
        if (s->key == SP_KSM_PAGES_TO_SCAN)
            cc.static_pages_to_scan = s->value;
        else if (s->key == SP_KSM_SLEEP_MILLISECS)
            cc.static_sleep_ms = s->value;
    }
    d->controller = sp_controller_new(d->host, &cc);
    sp_controller_set_dry_run(d->controller, d->dry_run);
    sp_controller_set_notify(d->controller, sd_controller_notify, d);
    if (!sp_controller_start(d->controller, NULL, error)) {
        g_prefix_error(error, "controller: ");
        g_clear_pointer(&d->controller, sp_controller_free);
        return FALSE;
    }
    g_message("controller: %s mode, ksmd budget %.1f%% of a CPU averaged over a minute",
              sp_control_mode_name(cc.mode), cc.max_ksmd_cpu_pct);
    if (d->hm.have)
        sp_controller_set_prediction(d->controller, d->hm.pages_sharing, d->hm.registered_pages);
    sd_controller_update_committed(d);
    return TRUE;
}

/* The knobs the controller wrote, back as it found them (before
 * sd_ksm_exit() puts back the [ksm] ones). */
void
sd_controller_stop(SdDaemon *d)
{
    g_autoptr(GError) error = NULL;

    if (!d->controller)
        return;
    if (!sp_controller_stop(d->controller, &error))
        g_warning("controller: %s", error->message);
    else if (!d->dry_run)
        g_message("controller: stopped, the knobs it wrote are back as found");
    g_clear_pointer(&d->controller, sp_controller_free);
    g_clear_pointer(&d->ctl_error, g_free);
}

/* status' "controller": the mode, phase, reason, ksmd's CPU and the knobs
 * it set; for static, the [ksm] knobs. */
json_object *
sd_controller_to_json(SdDaemon *d)
{
    json_object *ctl = json_object_new_object();
    json_object *configured = json_object_new_object();

    for (guint i = 0; i < d->cfg->ksm_settings->len; i++) {
        const SpKsmSetting *s = &g_array_index(d->cfg->ksm_settings, SpKsmSetting, i);
        json_object_object_add(configured, sp_ksm_key_info(s->key)->name,
                               json_object_new_int64(s->value));
    }
    if (d->controller) {
        g_autoptr(json_object) c = sp_controller_to_json(d->controller);
        json_object_object_foreach(c, key, val)
            json_object_object_add(ctl, key, json_object_get(val));
    } else {
        json_object_object_add(ctl, "running", json_object_new_boolean(FALSE));
        json_object_object_add(ctl, "phase", json_object_new_string(
                                   sp_control_phase_name(SP_CONTROL_PHASE_FIXED)));
        json_object_object_add(ctl, "reason", json_object_new_string(
            d->ksm_applied ? "static: the [ksm] knobs applied at start"
                           : "static: no [ksm] knobs configured"));
        json_object_object_add(ctl, "knobs", json_object_get(configured));
    }
    json_object_object_add(ctl, "mode", json_object_new_string(sp_control_mode_name(d->cfg->mode)));
    json_object_object_add(ctl, "max_ksmd_cpu", json_object_new_double(d->cfg->max_ksmd_cpu));
    json_object_object_add(ctl, "stop_above_available",
                           json_object_new_double(d->cfg->stop_above_available));
    json_object_object_add(ctl, "configured", configured);
    json_object_object_add(ctl, "applied", json_object_new_boolean(d->ksm_applied));
    json_object_object_add(ctl, "restore_at_exit", json_object_new_boolean(d->cfg->restore_at_exit));
    json_object_object_add(ctl, "turned_ksm_on", json_object_new_boolean(d->we_turned_ksm_on));
    return ctl;
}

json_object *
sd_ksm_to_json(SdDaemon *d)
{
    SpKsmState st;
    json_object *o;

    if (!sp_ksm_read(d->host, &st, NULL))
        return NULL;
    o = json_object_new_object();
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(k);
        if (!st.entry[k].supported)
            continue;
        if (info->type == SP_KSM_TYPE_ENUM)
            json_object_object_add(o, info->name,
                                   json_object_new_string(info->choices[st.entry[k].value]));
        else
            json_object_object_add(o, info->name, json_object_new_int64(st.entry[k].value));
    }
    return o;
}
