/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-ksm.c: samepaged's KSM knobs: the [ksm] settings applied at start
 * (validated whole by SpKsm, nothing half applied), and at exit restored,
 * when [ksm] restore_at_exit = yes, for the knobs it changed and nobody
 * changed since.  It never turns KSM off that it did not turn on
 * (KubeVirt's ownership rule): run goes back to 0 only if samepaged itself
 * set it from 0 to 1.
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

    if (cfg->mode != SP_CONTROL_STATIC)
        g_warning("[controller] mode = %s: this samepaged drives only the static mode; "
                  "the [ksm] knobs are applied once", sp_control_mode_name(cfg->mode));
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
