/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spclones.c: the experiment's cloned guests, from overlay to teardown
 *
 * Theory of operation
 *
 * A clone is a qcow2 overlay on the image's base.qcow2 and a libvirt
 * domain filled in from the template, both named in the journal before
 * they exist.  All clones are defined, then all started (boots overlap);
 * each one's QEMU is held by a pidfd from the moment it runs, so teardown
 * never signals whoever has its pid later.  A clone is ready when its
 * guest agent answers guest-ping; its RAM is the one host VMA SpGuest
 * places its memory backend of the plan's size on (QEMU's gpa2hva answer
 * through libvirt).  The workload runs through guest-exec.  Teardown
 * destroys, undefines and removes the overlay of whatever exists, in
 * reverse order, collecting problems instead of stopping at the first,
 * and keeps libvirt's QEMU log with the results.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-experiment"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "samepage/spguest.h"
#include "spexperimentint.h"
#include "spexperimentpriv.h"

#define SP_EXP_AGENT_TIMEOUT_S 3

void
sp_exp_domain_clear(gpointer data)
{
    g_clear_pointer(&((SpExpDomain *)data)->qemu, sp_process_free);
    g_clear_pointer(&((SpExpDomain *)data)->dom, sp_libvirt_domain_free);
}

/* ================================================================ pure helpers */

char *
sp_exp_fill_template(const char *tmpl, GHashTable *vars, GError **error)
{
    g_autoptr(GString) out = g_string_new(NULL);
    const char *p = tmpl;

    while (*p) {
        const char *at = strchr(p, '@');
        const char *close;
        g_autofree char *key = NULL;
        const char *value;

        if (!at) {
            g_string_append(out, p);
            break;
        }
        g_string_append_len(out, p, at - p);
        close = strchr(at + 1, '@');
        if (!close) {
            g_string_append(out, at);
            break;
        }
        key = g_strndup(at + 1, close - at - 1);
        gboolean placeholder = key[0] != '\0';
        for (const char *k = key; *k; k++)
            placeholder &= g_ascii_isupper(*k) || *k == '_' || g_ascii_isdigit(*k);
        if (!placeholder) {
            g_string_append_c(out, '@');
            p = at + 1;
            continue;
        }
        value = g_hash_table_lookup(vars, key);
        if (!value) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                        "the domain template has a placeholder @%s@ that has no value", key);
            return NULL;
        }
        g_autofree char *esc = g_markup_escape_text(value, -1);
        g_string_append(out, esc);
        p = close + 1;
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

char *
sp_exp_domain_name(const char *plan_name, const char *tag, guint run, guint guest)
{
    g_autoptr(GString) s = g_string_new("sp-");

    for (const char *p = plan_name; *p && s->len < 23; p++) {
        char c = g_ascii_tolower(*p);
        if (g_ascii_isalnum(c))
            g_string_append_c(s, c);
        else if (s->str[s->len - 1] != '-')
            g_string_append_c(s, '-');
    }
    if (s->str[s->len - 1] != '-')
        g_string_append_c(s, '-');
    g_string_append_printf(s, "%s-%u-%u", tag, run, guest);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* ================================================================ the clones */

static SpLibvirtDomain *
sp_exp_dom(SpExperiment *exp, guint i)
{
    return g_array_index(exp->domains, SpExpDomain, i).dom;
}

/* After a libvirt call failed with @cause: TRUE, with @error set, when
 * libvirtd is gone. */
static gboolean
sp_exp_libvirt_lost(SpExperiment *exp, const char *doing, const GError *cause, GError **error)
{
    if (sp_libvirt_is_alive(exp->lv))
        return FALSE;
    g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_LIBVIRT,
                "libvirtd (%s) stopped answering while %s: %s", exp->uri, doing,
                cause->message);
    return TRUE;
}

/* The guest agent: a command and its "return" member. */
static json_object *
sp_exp_agent(SpExperiment *exp, guint i, const char *cmd, json_object *args, GError **error)
{
    g_autoptr(json_object) req = json_object_new_object();
    g_autoptr(json_object) reply = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    json_object *ret;

    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args)
        json_object_object_add(req, "arguments", args);
    text = sp_libvirt_agent_command(sp_exp_dom(exp, i), json_object_to_json_string(req),
                                    SP_EXP_AGENT_TIMEOUT_S, &local);
    if (!text) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST, "%s: %s", cmd,
                    local->message);
        return NULL;
    }
    reply = json_tokener_parse(text);
    if (!reply || !json_object_object_get_ex(reply, "return", &ret)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                    "%s: unexpected agent reply %.200s", cmd, text);
        return NULL;
    }
    return json_object_get(ret);
}

static char *
sp_exp_serial_tail(const char *path, guint lines)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) all = NULL;
    guint n;

    if (!path || !g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("(no serial log)");
    all = g_strsplit(text, "\n", -1);
    n = g_strv_length(all);
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = n > lines ? n - lines : 0; i < n; i++) {
        g_autofree char *l = g_strdup(all[i]);
        /* Terminal escapes and carriage returns out. */
        for (char *c = l; *c; c++) {
            if (*c == '\r' || *c == '\x1b')
                *c = ' ';
        }
        g_strstrip(l);
        if (*l)
            g_string_append_printf(s, "\n    %s", l);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static gboolean
sp_exp_make_overlay(SpExperiment *exp, const char *overlay, GError **error)
{
    g_autofree char *base = g_build_filename(exp->image_dir, "base.qcow2", NULL);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                           overlay, NULL };
    g_autofree char *err = NULL;
    g_autoptr(GError) local = NULL;
    struct stat st;
    int status, fd;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, &local) ||
        !g_spawn_check_wait_status(status, &local)) {
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "qemu-img create %s: %s%s%s", overlay, local->message,
                    err && *err ? ": " : "", err ? g_strstrip(err) : "");
        return FALSE;
    }
    /* QEMU runs as libvirt-qemu: it must read the overlay; never through a
     * symlink (the directory is ours, but be exact). */
    fd = open(overlay, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fchmod(fd, 0644) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_SETUP,
                    "qemu-img create %s: the new overlay is %s", overlay,
                    fd >= 0 && !S_ISREG(st.st_mode) ? "not a regular file" : g_strerror(e));
        return FALSE;
    }
    close(fd);
    return TRUE;
}

gboolean
sp_exp_create_guests(SpExperiment *exp, SpExpRun *run, const char *tmpl, GError **error)
{
    const SpPlan *plan = exp->plan_ref;
    g_autofree char *kernel = g_build_filename(exp->image_dir, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(exp->image_dir, "initrd.img", NULL);
    g_autofree char *mem = g_strdup_printf("%u", plan->memory_mib);
    g_autofree char *vcpus = g_strdup_printf("%u", plan->vcpus);

    for (guint i = 1; i <= run->n_vms; i++) {
        SpExpGuestInfo gi = { 0 };
        SpExpDomain d = { 0 };
        g_autoptr(GHashTable) vars = g_hash_table_new(g_str_hash, g_str_equal);
        g_autofree char *xml = NULL;
        SpExpGuestInfo *g;

        if (!sp_exp_check_interrupt(exp, error))
            return FALSE;
        gi.name = sp_exp_domain_name(plan->name, exp->tag, run->index, i);
        gi.uuid = g_uuid_string_random();
        gi.mac = g_strdup_printf("52:54:00:%02x:%02x:%02x", g_random_int_range(0, 256),
                                 g_random_int_range(0, 256), g_random_int_range(0, 256));
        gi.overlay = g_strdup_printf("%s/%s.qcow2", exp->overlay_dir, gi.name);
        gi.serial_log = g_strdup_printf("%s/%s.serial.log", run->dir, gi.name);
        gi.workload_pid = -1;
        g_array_append_val(run->guests, gi);
        g_array_append_val(exp->domains, d);
        g = &g_array_index(run->guests, SpExpGuestInfo, i - 1);
        if (exp->journal) {
            sp_journal_add_domain(exp->journal, g->name, g->uuid, g->overlay);
            if (!sp_exp_journal_save(exp, error)) {
                g_prefix_error(error, "guest %s: ", g->name);
                return FALSE;
            }
        }

        sp_exp_progress(exp, run, "creating guests", i - 1, 0, NULL);
        if (!sp_exp_make_overlay(exp, g->overlay, error)) {
            g_prefix_error(error, "guest %s: ", g->name);
            return FALSE;
        }
        g_hash_table_insert(vars, (char *)"NAME", g->name);
        g_hash_table_insert(vars, (char *)"UUID", g->uuid);
        g_hash_table_insert(vars, (char *)"MAC", g->mac);
        g_hash_table_insert(vars, (char *)"DISK", g->overlay);
        g_hash_table_insert(vars, (char *)"KERNEL", kernel);
        g_hash_table_insert(vars, (char *)"INITRD", initrd);
        g_hash_table_insert(vars, (char *)"MEMORY_MIB", mem);
        g_hash_table_insert(vars, (char *)"VCPUS", vcpus);
        g_hash_table_insert(vars, (char *)"SERIAL_LOG", g->serial_log);
        xml = sp_exp_fill_template(tmpl, vars, error);
        if (!xml) {
            g_prefix_error(error, "%s: ", exp->template_path);
            return FALSE;
        }
        g_autoptr(GError) refused = NULL;
        SpLibvirtDomain *dom = sp_libvirt_define_xml(exp->lv, xml, &refused);
        if (!dom) {
            if (!sp_exp_libvirt_lost(exp, "defining a guest", refused, error))
                g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                            "guest %s: libvirt refused the domain (template %s): %s", g->name,
                            exp->template_path, refused->message);
            return FALSE;
        }
        g_array_index(exp->domains, SpExpDomain, i - 1).dom = dom;
        g_array_index(exp->domains, SpExpDomain, i - 1).defined = TRUE;
        if (exp->journal) {
            sp_journal_find_domain(exp->journal, g->uuid)->defined = TRUE;
            if (!sp_exp_journal_save(exp, error)) {
                g_prefix_error(error, "guest %s: ", g->name);
                return FALSE;
            }
        }
    }
    /* Start them all, then wait for all: boots overlap. */
    for (guint i = 0; i < run->n_vms; i++) {
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        if (!sp_exp_check_interrupt(exp, error))
            return FALSE;
        sp_exp_progress(exp, run, "starting guests", i, 0, NULL);
        g_autoptr(GError) local = NULL;
        if (!sp_libvirt_start(sp_exp_dom(exp, i), &local)) {
            if (!sp_exp_libvirt_lost(exp, "starting a guest", local, error))
                g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                            "guest %s did not start: %s", g->name, local->message);
            return FALSE;
        }
        SpExpDomain *d = &g_array_index(exp->domains, SpExpDomain, i);
        d->started = TRUE;
        d->qemu = sp_libvirt_open_qemu(exp->host, g->name, g->uuid, NULL, &local);
        g->pid = d->qemu ? sp_process_get_pid(d->qemu) : 0;
        if (g->pid && exp->journal) {
            sp_journal_find_domain(exp->journal, g->uuid)->qemu_pid = g->pid;
            if (!sp_exp_journal_save(exp, error)) {
                g_prefix_error(error, "guest %s: ", g->name);
                return FALSE;
            }
        }
        if (!g->pid) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                        "guest %s runs, but its QEMU process: %s", g->name, local->message);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
sp_exp_domain_running(SpExperiment *exp, SpExpRun *run, guint i, const char *doing,
                      GError **error)
{
    SpLibvirtState state = SP_LIBVIRT_STATE_NOSTATE;
    int reason = 0;
    const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
    g_autoptr(GError) local = NULL;

    if (!sp_libvirt_get_state(sp_exp_dom(exp, i), &state, &reason, &local)) {
        if (!sp_exp_libvirt_lost(exp, doing, local, error))
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_LIBVIRT,
                        "guest %s: cannot get its state: %s", g->name, local->message);
        return FALSE;
    }
    if (state != SP_LIBVIRT_STATE_RUNNING) {
        g_autofree char *tail = sp_exp_serial_tail(g->serial_log, 15);
        g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                    "guest %s stopped while %s (libvirt state %d, reason %d); serial log "
                    "%s ends:%s", g->name, doing, state, reason, g->serial_log, tail);
        return FALSE;
    }
    return TRUE;
}

gboolean
sp_exp_wait_agents(SpExperiment *exp, SpExpRun *run, GError **error)
{
    gint64 start = g_get_monotonic_time();
    gint64 deadline = start + (gint64)(exp->plan_ref->boot_timeout_s * G_USEC_PER_SEC);
    g_autofree gboolean *ready = g_new0(gboolean, run->n_vms);
    guint n_ready = 0;

    while (n_ready < run->n_vms) {
        for (guint i = 0; i < run->n_vms; i++) {
            SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
            g_autoptr(GError) local = NULL;
            g_autoptr(json_object) r = NULL;

            if (ready[i])
                continue;
            if (!sp_exp_domain_running(exp, run, i, "booting", error))
                return FALSE;
            r = sp_exp_agent(exp, i, "guest-ping", NULL, &local);
            if (r) {
                ready[i] = TRUE;
                n_ready++;
                g->ready_s = (g_get_monotonic_time() - start) / 1e6;
                g_debug("guest %s: agent answered after %.1f s", g->name, g->ready_s);
            }
        }
        sp_exp_progress(exp, run, "booting", n_ready, 0, NULL);
        if (n_ready == run->n_vms)
            break;
        if (g_get_monotonic_time() > deadline) {
            g_autoptr(GString) names = g_string_new(NULL);
            guint first = G_MAXUINT, missing = 0;
            for (guint i = 0; i < run->n_vms; i++) {
                if (ready[i])
                    continue;
                const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
                first = MIN(first, i);
                missing++;
                g_string_append_printf(names, "%s%s", names->len ? ", " : "", g->name);
            }
            const char *log = g_array_index(run->guests, SpExpGuestInfo, first).serial_log;
            g_autofree char *tail = sp_exp_serial_tail(log, 10);
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                        "guest%s %s never became ready: %s did not answer guest-ping "
                        "within %g s ([guest] boot_timeout in %s); serial log %s ends:%s",
                        missing == 1 ? "" : "s", names->str,
                        missing == 1 ? "its agent" : "their agents",
                        exp->plan_ref->boot_timeout_s, exp->plan_ref->source, log, tail);
            return FALSE;
        }
        if (!sp_exp_wait_until(exp, g_get_monotonic_time() + G_USEC_PER_SEC))
            return sp_exp_check_interrupt(exp, error);
    }
    run->boot_s = (g_get_monotonic_time() - start) / 1e6;
    return TRUE;
}

gboolean
sp_exp_find_ram(SpExperiment *exp, SpExpRun *run, GError **error)
{
    guint64 size = (guint64)exp->plan_ref->memory_mib << 20;

    for (guint i = 0; i < run->n_vms; i++) {
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        g_autoptr(SpGuest) guest = NULL;
        g_autoptr(GError) local = NULL;

        guest = sp_libvirt_domain_get_guest(sp_exp_dom(exp, i), g->pid, &local);
        if (!guest || !sp_guest_load_regions(guest, exp->host, &local) ||
            !sp_guest_get_ram_vma(guest, size, &g->ram_start, &g->ram_end, &local)) {
            /* SpGuest may have named the guest already: once is enough. */
            g_autofree char *named = g_strdup_printf("guest %s: ", g->name);
            const char *why = g_str_has_prefix(local->message, named)
                ? local->message + strlen(named) : local->message;
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                        "guest %s (QEMU pid %d): %s", g->name, (int)g->pid, why);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
sp_exp_start_workload(SpExperiment *exp, SpExpRun *run, GError **error)
{
    const SpPlan *plan = exp->plan_ref;

    if (!plan->workload_argv)
        return TRUE;
    for (guint i = 0; i < run->n_vms; i++) {
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        json_object *args = json_object_new_object();
        json_object *argv = json_object_new_array();
        g_autoptr(json_object) r = NULL;
        json_object *pid;

        for (char **a = plan->workload_argv; *a; a++)
            json_object_array_add(argv, json_object_new_string(*a));
        json_object_object_add(args, "path", json_object_new_string("/usr/bin/stress-ng"));
        json_object_object_add(args, "arg", argv);
        json_object_object_add(args, "capture-output", json_object_new_boolean(FALSE));
        r = sp_exp_agent(exp, i, "guest-exec", args, error);
        if (!r || !json_object_object_get_ex(r, "pid", &pid)) {
            if (r)
                g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                            "guest-exec returned no pid");
            g_prefix_error(error, "guest %s: starting the workload '%s' ([workload] command "
                           "in %s): ", g->name, plan->workload, plan->source);
            return FALSE;
        }
        g->workload_pid = json_object_get_int64(pid);
    }
    return TRUE;
}

/* Whether the workload still runs in guest @i; FALSE with an error when it
 * failed at once. */
gboolean
sp_exp_check_workload(SpExperiment *exp, SpExpRun *run, guint i, gboolean at_start,
                      GError **error)
{
    SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
    json_object *args, *exited = NULL, *code = NULL;
    g_autoptr(json_object) r = NULL;
    g_autoptr(GError) local = NULL;

    if (g->workload_pid < 0)
        return TRUE;
    args = json_object_new_object();
    json_object_object_add(args, "pid", json_object_new_int64(g->workload_pid));
    r = sp_exp_agent(exp, i, "guest-exec-status", args, &local);
    if (!r)
        return TRUE;    /* a busy agent is not a failed workload */
    if (json_object_object_get_ex(r, "exited", &exited) && json_object_get_boolean(exited)) {
        int c = json_object_object_get_ex(r, "exitcode", &code) ? json_object_get_int(code) : -1;
        if (at_start) {
            g_set_error(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_GUEST,
                        "guest %s: the workload '%s' ([workload] command in %s) exited at "
                        "once with status %d", g->name, exp->plan_ref->workload,
                        exp->plan_ref->source, c);
            return FALSE;
        }
        g_debug("guest %s: the workload exited with status %d", g->name, c);
        g->workload_pid = -1;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- teardown */

/* Destroy and undefine the current run's domains, remove their overlays.
 * Problems are collected, not fatal: teardown goes on. */
void
sp_exp_teardown_guests(SpExperiment *exp, SpExpRun *run, GString *problems)
{
    g_autoptr(GError) local = NULL;
    gboolean alive = exp->lv && sp_libvirt_is_alive(exp->lv);

    if (exp->lv && !alive) {
        /* libvirtd went away; it may be back (restarted).  If not, the
         * old handles stay, to name what is left defined. */
        alive = sp_libvirt_reconnect(exp->lv, NULL);
        for (guint i = 0; alive && i < exp->domains->len; i++) {
            SpExpDomain *d = &g_array_index(exp->domains, SpExpDomain, i);
            const SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
            g_clear_pointer(&d->dom, sp_libvirt_domain_free);
            d->dom = d->defined ? sp_libvirt_lookup_uuid(exp->lv, g->uuid, NULL) : NULL;
            if (!d->dom)
                d->defined = d->started = FALSE;
        }
    }
    for (guint i = exp->domains->len; i-- > 0;) {
        SpExpDomain *d = &g_array_index(exp->domains, SpExpDomain, i);
        SpExpGuestInfo *g = &g_array_index(run->guests, SpExpGuestInfo, i);
        g_autofree char *liblog = sp_host_log_path(exp->host, "libvirt/qemu/%s.log", g->name);
        gsize problems_before = problems->len;
        g_autoptr(GError) failed = NULL;

        if (alive && d->dom && sp_libvirt_is_active(d->dom, NULL) &&
            !sp_libvirt_destroy(d->dom, &failed))
            g_string_append_printf(problems, "\n  guest %s: destroy failed: %s", g->name,
                                   failed->message);
        /* Without libvirtd, or if destroy failed: the process, through the
         * pidfd held since it started (never whoever has its pid now). */
        g_autoptr(GError) stop = NULL;
        if (d->qemu && !sp_process_stop(d->qemu, 10000, 5000, &stop))
            g_string_append_printf(problems, "\n  guest %s: QEMU pid %d still runs: %s",
                                   g->name, (int)g->pid, stop->message);
        g_clear_error(&failed);
        if (d->dom && d->defined) {
            if (alive && sp_libvirt_undefine(d->dom, &failed))
                d->defined = FALSE;
            else
                g_string_append_printf(problems, "\n  guest %s: still defined in libvirt "
                                       "(virsh undefine %s): %s", g->name, g->name,
                                       alive ? failed->message : "libvirtd is gone");
        }
        g_clear_pointer(&d->dom, sp_libvirt_domain_free);
        if (g->overlay && g_unlink(g->overlay) < 0 && errno != ENOENT) {
            g_string_append_printf(problems, "\n  cannot remove %s: %s", g->overlay,
                                   g_strerror(errno));
        } else if (exp->journal) {
            /* Gone: a domain that stays in the journal names no overlay. */
            SpJournalDomain *jd = sp_journal_find_domain(exp->journal, g->uuid);
            if (jd)
                g_clear_pointer(&jd->overlay, g_free);
        }
        /* libvirt's log of a domain we made: keep it with the results. */
        g_autofree char *text = NULL;
        gsize len;
        if (g_file_get_contents(liblog, &text, &len, NULL)) {
            g_autofree char *copy = g_strdup_printf("%s/%s.qemu.log", run->dir, g->name);
            if (g_file_set_contents(copy, text, len, NULL))
                g_unlink(liblog);
        }
        /* Gone for good: out of the journal.  Otherwise it stays there, for
         * `samepage experiment clean`. */
        if (exp->journal && problems->len == problems_before)
            sp_journal_remove_domain(exp->journal, g->uuid);
    }
    g_array_set_size(exp->domains, 0);
    if (!sp_exp_journal_save(exp, &local))
        g_string_append_printf(problems, "\n  %s", local->message);
}
