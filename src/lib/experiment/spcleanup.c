/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcleanup.c: undo what a killed experiment left behind
 *
 * Theory of operation
 *
 * The journal names what may exist, written before each thing was made, so
 * each step takes "already gone" as done.  A domain is looked up by UUID,
 * never by name (a name may since belong to someone else's domain), and a
 * QEMU process is stopped only if the journal's pid still holds the
 * domain's -uuid and belongs to root or libvirt's QEMU user, and through a
 * pidfd opened before that check (a pid may have been reused).  KSM comes last: run=2 and
 * the knobs as the journal recorded them before the experiment changed
 * any; not after a reboot (the boot reset them, and the operator may have
 * set them since), and not while another experiment runs (it restores its
 * own knobs, and ours would disturb its figures).
 *
 * Files: a journal is input, not an order.  An overlay is removed only as
 * NAME.qcow2 inside the experiment's own overlay directory, opened without
 * following a symlink, a directory owned by us that nobody else may write
 * to, and only a regular file owned by us (or by the QEMU user libvirt gave
 * it to), through unlinkat() on that directory.  The INCOMPLETE note is
 * created (O_EXCL, O_NOFOLLOW) only in an output directory of the same
 * kind.  Anything else is kept and named.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-cleanup"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "samepage/spcleanup.h"
#include "samepage/spksm.h"
#include "samepage/splibvirt.h"

G_DEFINE_QUARK(sp-cleanup-error-quark, sp_cleanup_error)

typedef struct {
    const SpHost *host;
    SpJournal *j;
    const SpCleanupOptions *opt;
    SpCleanupLogFunc log;
    gpointer log_data;
    GString *left;                   /* "; "-separated: what could not be undone */
} SpCleanup;

static void G_GNUC_PRINTF(2, 3)
sp_cleanup_log(SpCleanup *c, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *line = NULL;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (c->log)
        c->log(c->j, line, c->log_data);
}

static void G_GNUC_PRINTF(2, 3)
sp_cleanup_left(SpCleanup *c, const char *fmt, ...)
{
    va_list ap;

    if (c->left->len)
        g_string_append(c->left, "; ");
    va_start(ap, fmt);
    g_string_append_vprintf(c->left, fmt, ap);
    va_end(ap);
}

/* Its QEMU by the journal's pid, held by a pidfd, only if that pid still is
 * the domain's QEMU (its -uuid, owned by root or libvirt's QEMU user). */
static void
sp_cleanup_kill(SpCleanup *c, const SpJournalDomain *d)
{
    g_autoptr(SpProcess) qemu = NULL;
    g_autoptr(GError) local = NULL;

    if (d->qemu_pid <= 0)
        return;
    qemu = sp_libvirt_open_qemu_pid(c->host, d->qemu_pid, d->name, d->uuid, NULL, &local);
    if (!qemu) {
        if (g_error_matches(local, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_REFUSED))
            sp_cleanup_log(c, "left pid %d alone: %s", (int)d->qemu_pid, local->message);
        return;
    }
    if (c->opt->dry_run) {
        sp_cleanup_log(c, "would stop QEMU pid %d of %s", (int)d->qemu_pid, d->name);
        return;
    }
    if (!sp_process_stop(qemu, 10000, 5000, &local))
        sp_cleanup_left(c, "QEMU pid %d of %s still runs: %s", (int)d->qemu_pid, d->name,
                        local->message);
    else
        sp_cleanup_log(c, "stopped QEMU pid %d of %s", (int)d->qemu_pid, d->name);
}

/*
 * @dir, opened for changing what the experiment made in it: a directory
 * itself (not a symlink) owned by us and writable by nobody else.  -1 with
 * *why set otherwise; errno is ENOENT when it does not exist.
 */
static int
sp_cleanup_open_own_dir(const char *dir, const char **why)
{
    struct stat st;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;
        *why = e == ELOOP || e == ENOTDIR ? "it is a symbolic link or not a directory"
                                          : g_strerror(e);
        errno = e;
        return -1;
    }
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        *why = "it is not a directory of ours that only we may write to";
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

/* Who may own an overlay: us, or the user libvirt runs QEMU as (it
 * changes a disk's owner while the guest runs). */
static gboolean
sp_cleanup_owner_ok(uid_t uid)
{
    static const char *const qemu_users[] = { "libvirt-qemu", "qemu" };

    if (uid == geteuid())
        return TRUE;
    for (gsize i = 0; i < G_N_ELEMENTS(qemu_users); i++) {
        struct passwd *pw = getpwnam(qemu_users[i]);
        if (pw && pw->pw_uid == uid && uid != 0)
            return TRUE;
    }
    return FALSE;
}

/* Remove the domain's overlay if it is the experiment's own; TRUE when it
 * is gone (or would be, in a dry run). */
static gboolean
sp_cleanup_overlay(SpCleanup *c, const SpJournalDomain *d)
{
    g_autofree char *base = NULL;
    const char *why = NULL;
    struct stat st;
    int fd;

    if (!d->overlay)
        return TRUE;
    if (!sp_journal_overlay_ok(c->j->overlay_dir, d->name, d->overlay)) {
        sp_cleanup_left(c, "kept %s: it is not %s/%s.qcow2, an overlay the experiment made",
                        d->overlay, c->j->overlay_dir ? c->j->overlay_dir : "OVERLAY_DIR",
                        d->name);
        return FALSE;
    }
    fd = sp_cleanup_open_own_dir(c->j->overlay_dir, &why);
    if (fd < 0) {
        if (errno == ENOENT)
            return TRUE;
        sp_cleanup_left(c, "kept %s: its directory %s: %s", d->overlay, c->j->overlay_dir, why);
        return FALSE;
    }
    base = g_strdup_printf("%s.qcow2", d->name);
    if (fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT)
            return TRUE;
        sp_cleanup_left(c, "cannot examine %s: %s", d->overlay, g_strerror(e));
        return FALSE;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || !sp_cleanup_owner_ok(st.st_uid)) {
        close(fd);
        sp_cleanup_left(c, "kept %s: %s", d->overlay,
                        S_ISLNK(st.st_mode) ? "a symbolic link, not an overlay the experiment made"
                        : !S_ISREG(st.st_mode) ? "not a regular file"
                        : st.st_nlink != 1 ? "it has other hard links"
                        : "owned by another user");
        return FALSE;
    }
    if (c->opt->dry_run) {
        close(fd);
        sp_cleanup_log(c, "would remove %s", d->overlay);
        return TRUE;
    }
    if (unlinkat(fd, base, 0) < 0) {
        int e = errno;
        close(fd);
        sp_cleanup_left(c, "cannot remove %s: %s", d->overlay, g_strerror(e));
        return FALSE;
    }
    close(fd);
    sp_cleanup_log(c, "removed %s", d->overlay);
    return TRUE;
}

/* Remove the (empty) overlay directory the experiment made. */
static void
sp_cleanup_overlay_dir(SpCleanup *c)
{
    g_autofree char *parent = NULL;
    g_autofree char *base = NULL;
    const char *why = NULL;
    int fd, pfd;

    if (!c->j->overlay_dir)
        return;
    fd = sp_cleanup_open_own_dir(c->j->overlay_dir, &why);
    if (fd < 0) {
        if (errno == ENOENT)
            g_clear_pointer(&c->j->overlay_dir, g_free);
        else
            sp_cleanup_left(c, "kept the directory %s: %s", c->j->overlay_dir, why);
        return;
    }
    close(fd);
    if (c->opt->dry_run) {
        sp_cleanup_log(c, "would remove the directory %s", c->j->overlay_dir);
        return;
    }
    parent = g_path_get_dirname(c->j->overlay_dir);
    base = g_path_get_basename(c->j->overlay_dir);
    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0 || unlinkat(pfd, base, AT_REMOVEDIR) < 0) {
        sp_cleanup_left(c, "cannot remove %s: %s", c->j->overlay_dir, g_strerror(errno));
    } else {
        sp_cleanup_log(c, "removed the directory %s", c->j->overlay_dir);
        g_clear_pointer(&c->j->overlay_dir, g_free);
    }
    if (pfd >= 0)
        close(pfd);
}

/* Destroy and undefine through libvirt; TRUE when the domain is gone. */
static gboolean
sp_cleanup_domain(SpCleanup *c, SpLibvirt *lv, SpJournalDomain *d)
{
    g_autoptr(SpLibvirtDomain) dom = NULL;
    g_autoptr(GError) local = NULL;
    gboolean gone = TRUE;

    if (lv) {
        dom = sp_libvirt_lookup_uuid(lv, d->uuid, &local);
        if (!dom && !g_error_matches(local, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN)) {
            sp_cleanup_left(c, "domain %s: lookup failed: %s", d->name, local->message);
            return FALSE;
        }
        g_clear_error(&local);
    }
    if (dom) {
        if (sp_libvirt_is_active(dom, NULL)) {
            if (c->opt->dry_run)
                sp_cleanup_log(c, "would destroy domain %s", d->name);
            else if (!sp_libvirt_destroy(dom, &local))
                sp_cleanup_left(c, "domain %s: destroy failed: %s", d->name, local->message);
            else
                sp_cleanup_log(c, "destroyed domain %s", d->name);
            g_clear_error(&local);
        }
        if (c->opt->dry_run) {
            sp_cleanup_log(c, "would undefine domain %s", d->name);
            gone = FALSE;
        } else if (!sp_libvirt_undefine(dom, &local)) {
            sp_cleanup_left(c, "domain %s: undefine failed: %s", d->name, local->message);
            gone = FALSE;
        } else {
            sp_cleanup_log(c, "undefined domain %s", d->name);
            d->defined = FALSE;
        }
    } else if (!lv && d->defined) {
        sp_cleanup_left(c, "domain %s is still defined: libvirt at %s does not answer "
                        "(start libvirtd and run `samepage experiment clean` again)", d->name,
                        c->opt->uri ? c->opt->uri : c->j->uri);
        gone = FALSE;
    }
    /* Without libvirt, or a process libvirt lost track of: by PID. */
    sp_cleanup_kill(c, d);
    if (!sp_cleanup_overlay(c, d))
        gone = FALSE;
    return gone && !c->opt->dry_run;
}

static void
sp_cleanup_ksm(SpCleanup *c, gboolean others_running)
{
    g_autoptr(GArray) done = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GString) knobs = g_string_new(NULL);

    if (!c->j->ksm_changed)
        return;
    if (sp_journal_owner(c->j, c->host) == SP_JOURNAL_OWNER_OTHER_BOOT) {
        sp_cleanup_log(c, "KSM left as it is: the host rebooted since, which reset the knobs");
        c->j->ksm_changed = FALSE;
        return;
    }
    if (others_running) {
        sp_cleanup_log(c, "KSM left as it is: another experiment is running and restores "
                       "the knobs when it ends");
        c->j->ksm_changed = FALSE;
        return;
    }
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(k);
        if (info->writable && c->j->ksm_before.entry[k].supported) {
            g_autofree char *v = sp_ksm_format_value(k, c->j->ksm_before.entry[k].value);
            g_string_append_printf(knobs, " %s=%s", info->name, v);
        }
    }
    if (c->opt->dry_run) {
        sp_cleanup_log(c, "would unmerge (run=2) and restore the KSM knobs:%s", knobs->str);
        return;
    }
    if (!sp_ksm_unmerge_and_restore(c->host, &c->j->ksm_before, &done, &local)) {
        sp_cleanup_left(c, "%s", local->message);
        return;
    }
    g_string_truncate(knobs, 0);
    for (guint i = 0; i < done->len; i++) {
        const SpKsmSetting *s = &g_array_index(done, SpKsmSetting, i);
        g_autofree char *v = sp_ksm_format_value(s->key, s->value);
        g_string_append_printf(knobs, " %s=%s", sp_ksm_key_info(s->key)->name, v);
    }
    sp_cleanup_log(c, "unmerged (run=2) and restored the KSM knobs:%s",
                   knobs->len ? knobs->str : " (none differed)");
    c->j->ksm_changed = FALSE;
}

static void
sp_cleanup_mark_output(SpCleanup *c)
{
    g_autofree char *note_path = NULL;
    g_autofree char *note = NULL;
    g_autoptr(GDateTime) started = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *s_started = NULL;
    g_autofree char *s_now = NULL;
    const char *why = NULL;
    struct stat st;
    int dfd, fd;
    gsize len;

    if (!c->j->output_dir)
        return;
    dfd = sp_cleanup_open_own_dir(c->j->output_dir, &why);
    if (dfd < 0) {
        if (errno != ENOENT)
            sp_cleanup_log(c, "not marked %s incomplete: %s", c->j->output_dir, why);
        return;
    }
    if (fstatat(dfd, "results.json", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        close(dfd);
        return;
    }
    note_path = g_build_filename(c->j->output_dir, "INCOMPLETE", NULL);
    if (c->opt->dry_run) {
        close(dfd);
        sp_cleanup_log(c, "would write %s", note_path);
        return;
    }
    started = g_date_time_new_from_unix_local(c->j->started / G_USEC_PER_SEC);
    s_started = started ? g_date_time_format(started, "%F %T") : g_strdup("?");
    s_now = g_date_time_format(now, "%F %T");
    note = g_strdup_printf("INCOMPLETE: the experiment \"%s\" (pid %d, started %s) was killed "
                           "before it wrote its results.\n"
                           "The run directories here hold what it had written; a run without "
                           "run.json did not finish.\n"
                           "`samepage experiment clean` undid what it left on the host at %s.\n",
                           c->j->plan ? c->j->plan : "?", (int)c->j->owner_pid, s_started,
                           s_now);
    len = strlen(note);
    fd = openat(dfd, "INCOMPLETE", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        close(dfd);
        if (e == EEXIST)
            sp_cleanup_log(c, "not marked %s incomplete: %s already exists", c->j->output_dir,
                           note_path);
        else
            sp_cleanup_left(c, "cannot create %s: %s", note_path, g_strerror(e));
        return;
    }
    if (write(fd, note, len) != (ssize_t)len) {
        int e = errno;
        sp_cleanup_left(c, "cannot write %s: %s", note_path, g_strerror(e));
    } else {
        sp_cleanup_log(c, "marked %s incomplete (%s)", c->j->output_dir, note_path);
    }
    close(fd);
    close(dfd);
}

static gboolean
sp_cleanup_one(const SpHost *host, SpJournal *j, const SpCleanupOptions *opt,
               gboolean others_running, SpCleanupLogFunc log, gpointer user_data,
               GError **error)
{
    g_autoptr(GString) left = g_string_new(NULL);
    SpCleanup c = { host, j, opt, log, user_data, left };
    const char *uri = opt->uri ? opt->uri : j->uri ? j->uri : "qemu:///system";
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(GError) local = NULL;

    if (sp_journal_owner(j, host) == SP_JOURNAL_OWNER_ALIVE) {
        g_set_error(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_RUNNING,
                    "the experiment of %s (pid %d) is still running", j->path,
                    (int)j->owner_pid);
        return FALSE;
    }
    if (j->domains->len) {
        lv = sp_libvirt_open_full(uri, opt->libvirt_flags, &local);
        if (!lv)
            g_debug("%s", local->message);
        g_clear_error(&local);
    }
    for (guint i = j->domains->len; i-- > 0;) {
        SpJournalDomain *d = &g_array_index(j->domains, SpJournalDomain, i);
        if (sp_cleanup_domain(&c, lv, d))
            g_array_remove_index(j->domains, i);
    }
    g_clear_pointer(&lv, sp_libvirt_free);
    /* Only once no domain needs it (its overlays are gone). */
    if (j->domains->len == 0 || opt->dry_run)
        sp_cleanup_overlay_dir(&c);
    sp_cleanup_ksm(&c, others_running);
    sp_cleanup_mark_output(&c);
    if (opt->dry_run) {
        if (left->len)
            sp_cleanup_log(&c, "cannot be undone now: %s", left->str);
        return TRUE;
    }
    if (left->len) {
        if (!sp_journal_save(j, &local))
            g_string_append_printf(left, "; %s", local->message);
        g_set_error(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_LEFT,
                    "the killed experiment \"%s\" (pid %d, journal %s): %s",
                    j->plan ? j->plan : "?", (int)j->owner_pid, j->path, left->str);
        return FALSE;
    }
    if (!sp_journal_delete(j, &local)) {
        g_set_error(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_LEFT, "%s", local->message);
        return FALSE;
    }
    return TRUE;
}

gboolean
sp_cleanup_journal(const SpHost *host, SpJournal *j, const SpCleanupOptions *opt,
                   SpCleanupLogFunc log, gpointer user_data, GError **error)
{
    return sp_cleanup_one(host, j, opt, FALSE, log, user_data, error);
}

gboolean
sp_cleanup_dir(const SpHost *host, const char *dir, const SpCleanupOptions *opt,
               SpCleanupLogFunc log, gpointer user_data, guint *n_cleaned, guint *n_running,
               GError **error)
{
    g_autoptr(GPtrArray) journals = NULL;
    g_autoptr(GPtrArray) bad = NULL;
    g_autoptr(GString) errors = g_string_new(NULL);
    g_autoptr(GError) local = NULL;
    guint running = 0, cleaned = 0;
    gboolean left_any = FALSE;

    journals = sp_journal_list_all(dir, &bad, &local);
    if (!journals) {
        g_set_error(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_JOURNAL, "%s", local->message);
        return FALSE;
    }
    for (guint i = 0; i < journals->len; i++) {
        if (sp_journal_owner(g_ptr_array_index(journals, i), host) == SP_JOURNAL_OWNER_ALIVE)
            running++;
    }
    for (guint i = journals->len; i-- > 0;) {
        SpJournal *j = g_ptr_array_index(journals, i);

        if (sp_journal_owner(j, host) == SP_JOURNAL_OWNER_ALIVE)
            continue;
        if (sp_cleanup_one(host, j, opt, running > 0, log, user_data, &local))
            cleaned++;
        else {
            g_string_append_printf(errors, "%s%s", errors->len ? "\n" : "", local->message);
            g_clear_error(&local);
            left_any = TRUE;
        }
    }
    if (n_cleaned)
        *n_cleaned = cleaned;
    if (n_running)
        *n_running = running;
    /* Bad journals last: only they make the error SP_CLEANUP_ERROR_JOURNAL. */
    for (guint i = 0; i < bad->len; i++)
        g_string_append_printf(errors, "%sskipped: %s (remove it once you have looked at it)",
                               errors->len ? "\n" : "", (const char *)g_ptr_array_index(bad, i));
    if (errors->len) {
        g_set_error(error, SP_CLEANUP_ERROR,
                    left_any ? SP_CLEANUP_ERROR_LEFT : SP_CLEANUP_ERROR_JOURNAL, "%s",
                    errors->str);
        return FALSE;
    }
    return TRUE;
}
