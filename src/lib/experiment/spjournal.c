/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spjournal.c: what a running experiment has created, kept on disk
 *
 * The file is JSON, one per experiment, named PID-STARTTIME.json in the
 * state directory so two experiments never share one.  The owner is
 * identified by its pid, the pid's start time (so a reused pid is not
 * mistaken for the owner) and the boot id (after a reboot no owner lives,
 * QEMU processes are gone and KSM knobs are back at their boot values).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-journal"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "samepage/spjournal.h"
#include "samepage/spjson.h"
#include "samepage/spproc.h"

G_DEFINE_QUARK(sp-journal-error-quark, sp_journal_error)

#define SP_JOURNAL_VERSION 1
#define SP_JOURNAL_MAX_SIZE (1024 * 1024)  /* a journal is a few KiB */

static void
sp_journal_domain_clear(gpointer p)
{
    SpJournalDomain *d = p;

    g_free(d->name);
    g_free(d->uuid);
    g_free(d->overlay);
}

static SpJournal *
sp_journal_alloc(void)
{
    SpJournal *j = g_new0(SpJournal, 1);

    j->domains = g_array_new(FALSE, TRUE, sizeof(SpJournalDomain));
    g_array_set_clear_func(j->domains, sp_journal_domain_clear);
    return j;
}

void
sp_journal_free(SpJournal *j)
{
    if (!j)
        return;
    g_free(j->path);
    g_free(j->boot_id);
    g_free(j->plan);
    g_free(j->uri);
    g_free(j->output_dir);
    g_free(j->overlay_dir);
    g_array_unref(j->domains);
    g_free(j);
}

/* ---------------------------------------------------------------- owner */

/**
 * sp_journal_pid_start:
 *
 * The start time of @pid (field 22 of /proc/PID/stat, clock ticks since
 * boot).  FALSE if the process does not exist, is a zombie or dead, or its
 * stat file is not a stat line.
 */
gboolean
sp_journal_pid_start(const SpHost *host, pid_t pid, guint64 *start)
{
    g_auto(SpProcStat) st = { 0 };

    if (!sp_proc_read_stat(host, pid, &st, NULL) || st.state == 'Z' || st.state == 'X')
        return FALSE;
    *start = st.starttime;
    return TRUE;
}

char *
sp_journal_boot_id(const SpHost *host)
{
    g_autofree char *path = sp_host_procfs_path(host, "sys/kernel/random/boot_id");
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    return g_strdup(g_strstrip(text));
}

SpJournalOwner
sp_journal_owner(const SpJournal *j, const SpHost *host)
{
    g_autofree char *boot = sp_journal_boot_id(host);
    guint64 start;

    /* An unknown boot id on either side: judge by the pid alone. */
    if (boot && j->boot_id && strcmp(boot, j->boot_id) != 0)
        return SP_JOURNAL_OWNER_OTHER_BOOT;
    if (sp_journal_pid_start(host, j->owner_pid, &start) && start == j->owner_start)
        return SP_JOURNAL_OWNER_ALIVE;
    return SP_JOURNAL_OWNER_GONE;
}

/* ---------------------------------------------------------------- building */

SpJournal *
sp_journal_new(const SpHost *host, const char *dir, const char *plan, const char *uri,
               const char *output_dir, GError **error)
{
    g_autoptr(SpJournal) j = sp_journal_alloc();
    g_autofree char *name = NULL;
    struct stat st;
    const char *why = NULL;

    j->owner_pid = getpid();
    if (!sp_journal_pid_start(host, j->owner_pid, &j->owner_start)) {
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "cannot read the start time of this process from %s/%d/stat",
                    sp_host_get_procfs_root(host), (int)j->owner_pid);
        return NULL;
    }
    j->boot_id = sp_journal_boot_id(host);
    j->started = g_get_real_time();
    j->plan = g_strdup(plan);
    j->uri = g_strdup(uri);
    j->output_dir = g_strdup(output_dir);
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "cannot create the state directory %s: %s", dir, g_strerror(errno));
        return NULL;
    }
    /* Journals tell root what to delete: only we may write where they are. */
    if (lstat(dir, &st) < 0) {
        why = g_strerror(errno);
    } else if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
        why = "it is a symbolic link or not a directory";
    } else if (st.st_uid != geteuid()) {
        why = "another user owns it";
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        why = "others may write to it";
    }
    if (why) {
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "refusing the state directory %s: %s", dir, why);
        return NULL;
    }
    name = g_strdup_printf("%d-%" G_GUINT64_FORMAT ".json", (int)j->owner_pid, j->owner_start);
    j->path = g_build_filename(dir, name, NULL);
    return g_steal_pointer(&j);
}

SpJournalDomain *
sp_journal_add_domain(SpJournal *j, const char *name, const char *uuid, const char *overlay)
{
    SpJournalDomain d = { 0 };

    d.name = g_strdup(name);
    d.uuid = g_strdup(uuid);
    d.overlay = g_strdup(overlay);
    g_array_append_val(j->domains, d);
    return &g_array_index(j->domains, SpJournalDomain, j->domains->len - 1);
}

SpJournalDomain *
sp_journal_find_domain(SpJournal *j, const char *uuid)
{
    for (guint i = 0; i < j->domains->len; i++) {
        SpJournalDomain *d = &g_array_index(j->domains, SpJournalDomain, i);
        if (g_strcmp0(d->uuid, uuid) == 0)
            return d;
    }
    return NULL;
}

void
sp_journal_remove_domain(SpJournal *j, const char *uuid)
{
    for (guint i = 0; i < j->domains->len; i++) {
        if (g_strcmp0(g_array_index(j->domains, SpJournalDomain, i).uuid, uuid) == 0) {
            g_array_remove_index(j->domains, i);
            return;
        }
    }
}

/* ---------------------------------------------------------------- JSON */

static void
sp_json_add_str(json_object *o, const char *key, const char *value)
{
    if (value)
        json_object_object_add(o, key, json_object_new_string(value));
}

char *
sp_journal_to_string(const SpJournal *j)
{
    g_autoptr(json_object) o = json_object_new_object();
    json_object *owner = json_object_new_object();
    json_object *doms = json_object_new_array();

    json_object_object_add(o, "version", json_object_new_int(SP_JOURNAL_VERSION));
    json_object_object_add(owner, "pid", json_object_new_int(j->owner_pid));
    json_object_object_add(owner, "start_ticks", json_object_new_uint64(j->owner_start));
    sp_json_add_str(owner, "boot_id", j->boot_id);
    json_object_object_add(o, "owner", owner);
    json_object_object_add(o, "started_us", json_object_new_int64(j->started));
    sp_json_add_str(o, "plan", j->plan);
    sp_json_add_str(o, "uri", j->uri);
    sp_json_add_str(o, "output_dir", j->output_dir);
    sp_json_add_str(o, "overlay_dir", j->overlay_dir);
    if (j->ksm_changed) {
        json_object *ksm = json_object_new_object();
        for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
            const SpKsmKeyInfo *info = sp_ksm_key_info(k);
            if (info->writable && j->ksm_before.entry[k].supported) {
                g_autofree char *v = sp_ksm_format_value(k, j->ksm_before.entry[k].value);
                json_object_object_add(ksm, info->name, json_object_new_string(v));
            }
        }
        json_object_object_add(o, "ksm_before", ksm);
    }
    for (guint i = 0; i < j->domains->len; i++) {
        const SpJournalDomain *d = &g_array_index(j->domains, SpJournalDomain, i);
        json_object *jd = json_object_new_object();
        sp_json_add_str(jd, "name", d->name);
        sp_json_add_str(jd, "uuid", d->uuid);
        sp_json_add_str(jd, "overlay", d->overlay);
        json_object_object_add(jd, "qemu_pid", json_object_new_int(d->qemu_pid));
        json_object_object_add(jd, "defined", json_object_new_boolean(d->defined));
        json_object_array_add(doms, jd);
    }
    json_object_object_add(o, "domains", doms);
    return g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static gboolean
sp_journal_bad(GError **error, const char *path, const char *what)
{
    g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_PARSE,
                "%s is not a samepage experiment journal: %s", path, what);
    return FALSE;
}

/* An optional string member; present but not a string is an error. */
static gboolean
sp_journal_get_str(json_object *o, const char *key, char **out, const char *path,
                   GError **error)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return TRUE;
    if (!json_object_is_type(v, json_type_string)) {
        g_autofree char *what = g_strdup_printf("\"%s\" is not a string", key);
        return sp_journal_bad(error, path, what);
    }
    if ((gsize)json_object_get_string_len(v) != strlen(json_object_get_string(v))) {
        g_autofree char *what = g_strdup_printf("\"%s\" holds a NUL character", key);
        return sp_journal_bad(error, path, what);
    }
    *out = g_strdup(json_object_get_string(v));
    return TRUE;
}

/* A required integer member in [@min, @max]: a JSON integer, not a double,
 * a string or a boolean. */
static gboolean
sp_journal_get_int(json_object *o, const char *key, gint64 min, gint64 max, gint64 *out,
                   const char *path, GError **error)
{
    json_object *v;
    gint64 n;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) {
        g_autofree char *what = g_strdup_printf("\"%s\" is missing or not an integer in [%"
                                                G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", key,
                                                min, max);
        return sp_journal_bad(error, path, what);
    }
    errno = 0;
    n = json_object_get_int64(v);
    if (errno == EINVAL || n < min || n > max ||
        (n == G_MAXINT64 && json_object_get_uint64(v) != (guint64)G_MAXINT64)) {
        g_autofree char *what = g_strdup_printf("\"%s\" is %s, not in [%" G_GINT64_FORMAT ", %"
                                                G_GINT64_FORMAT "]", key,
                                                json_object_to_json_string(v), min, max);
        return sp_journal_bad(error, path, what);
    }
    *out = n;
    return TRUE;
}

/* An absolute, normalized path: no "." or ".." component, no "//", no
 * control character. */
static gboolean
sp_journal_path_ok(const char *p)
{
    g_auto(GStrv) parts = NULL;

    if (!p || p[0] != '/' || strlen(p) > 4096)
        return FALSE;
    for (const char *c = p; *c; c++) {
        if ((guchar)*c < 0x20 || *c == 0x7f)
            return FALSE;
    }
    parts = g_strsplit(p + 1, "/", -1);
    for (char **q = parts; *q; q++) {
        if (!**q && q[1])
            return FALSE;
        if (g_str_equal(*q, ".") || g_str_equal(*q, ".."))
            return FALSE;
    }
    return TRUE;
}

/**
 * sp_journal_domain_name_ok:
 *
 * A domain name the runner makes: "sp-" and 1 to 60 of [a-z0-9-].
 */
gboolean
sp_journal_domain_name_ok(const char *name)
{
    gsize n = name ? strlen(name) : 0;

    if (n < 4 || n > 63 || !g_str_has_prefix(name, "sp-"))
        return FALSE;
    for (const char *c = name + 3; *c; c++) {
        if (!g_ascii_islower(*c) && !g_ascii_isdigit(*c) && *c != '-')
            return FALSE;
    }
    return TRUE;
}

/**
 * sp_journal_overlay_ok:
 *
 * The overlay of domain @name is the runner's: exactly
 * @overlay_dir/@name.qcow2, both normalized absolute paths.
 */
gboolean
sp_journal_overlay_ok(const char *overlay_dir, const char *name, const char *overlay)
{
    g_autofree char *want = NULL;

    if (!sp_journal_path_ok(overlay_dir) || !sp_journal_domain_name_ok(name) ||
        !sp_journal_path_ok(overlay))
        return FALSE;
    want = g_strdup_printf("%s/%s.qcow2", overlay_dir, name);
    return g_str_equal(want, overlay);
}

/* An optional absolute, normalized path. */
static gboolean
sp_journal_get_path(json_object *o, const char *key, char **out, const char *path,
                    GError **error)
{
    if (!sp_journal_get_str(o, key, out, path, error))
        return FALSE;
    if (*out && !sp_journal_path_ok(*out)) {
        g_autofree char *shown = g_strescape(*out, NULL);
        g_autofree char *what = g_strdup_printf("\"%s\" is '%s', not an absolute normalized "
                                                "path", key, shown);
        return sp_journal_bad(error, path, what);
    }
    return TRUE;
}

static gboolean
sp_journal_parse_ksm(SpJournal *j, json_object *ksm, const char *path, GError **error)
{
    if (!json_object_is_type(ksm, json_type_object))
        return sp_journal_bad(error, path, "\"ksm_before\" is not an object");
    json_object_object_foreach(ksm, key, val) {
        SpKsmKey k;
        g_autoptr(GError) local = NULL;

        if (!sp_ksm_key_from_name(key, &k) || !sp_ksm_key_info(k)->writable) {
            g_autofree char *what = g_strdup_printf("\"ksm_before\" names \"%s\", not a KSM knob",
                                                    key);
            return sp_journal_bad(error, path, what);
        }
        if (!json_object_is_type(val, json_type_string) ||
            !sp_ksm_parse_value(k, json_object_get_string(val), &j->ksm_before.entry[k].value,
                                &local)) {
            g_autofree char *what = g_strdup_printf("\"ksm_before\".%s: %s", key,
                                                    local ? local->message : "not a string");
            return sp_journal_bad(error, path, what);
        }
        j->ksm_before.entry[k].supported = TRUE;
    }
    j->ksm_changed = TRUE;
    return TRUE;
}

SpJournal *
sp_journal_parse(const char *text, const char *path, GError **error)
{
    g_autoptr(SpJournal) j = sp_journal_alloc();
    g_autoptr(json_object) o = NULL;
    enum json_tokener_error jerr = json_tokener_success;
    json_object *owner, *ksm, *doms;
    gint64 v;

    o = json_tokener_parse_verbose(text, &jerr);
    if (!o) {
        sp_journal_bad(error, path, json_tokener_error_desc(jerr));
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        sp_journal_bad(error, path, "not a JSON object");
        return NULL;
    }
    if (!sp_journal_get_int(o, "version", 1, G_MAXINT32, &v, path, error))
        return NULL;
    if (v != SP_JOURNAL_VERSION) {
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_PARSE,
                    "%s: journal version %" G_GINT64_FORMAT " (this samepage reads %d)", path, v,
                    SP_JOURNAL_VERSION);
        return NULL;
    }
    j->path = g_strdup(path);
    if (!json_object_object_get_ex(o, "owner", &owner) ||
        !json_object_is_type(owner, json_type_object)) {
        sp_journal_bad(error, path, "no \"owner\" object");
        return NULL;
    }
    if (!sp_journal_get_int(owner, "pid", 1, SP_JOURNAL_PID_MAX, &v, path, error))
        return NULL;
    j->owner_pid = (pid_t)v;
    if (!sp_journal_get_int(owner, "start_ticks", 0, G_MAXINT64, &v, path, error))
        return NULL;
    j->owner_start = (guint64)v;
    if (!sp_journal_get_str(owner, "boot_id", &j->boot_id, path, error))
        return NULL;
    if (!sp_journal_get_int(o, "started_us", 0, G_MAXINT64, &j->started, path, error))
        return NULL;
    if (!sp_journal_get_str(o, "plan", &j->plan, path, error) ||
        !sp_journal_get_str(o, "uri", &j->uri, path, error) ||
        !sp_journal_get_path(o, "output_dir", &j->output_dir, path, error) ||
        !sp_journal_get_path(o, "overlay_dir", &j->overlay_dir, path, error))
        return NULL;
    if (json_object_object_get_ex(o, "ksm_before", &ksm) &&
        !sp_journal_parse_ksm(j, ksm, path, error))
        return NULL;
    if (!json_object_object_get_ex(o, "domains", &doms) ||
        !json_object_is_type(doms, json_type_array)) {
        sp_journal_bad(error, path, "no \"domains\" array");
        return NULL;
    }
    for (size_t i = 0; i < json_object_array_length(doms); i++) {
        json_object *jd = json_object_array_get_idx(doms, i);
        json_object *def;
        g_autofree char *name = NULL, *uuid = NULL, *overlay = NULL;
        SpJournalDomain *d;
        gboolean defined = FALSE;

        if (!json_object_is_type(jd, json_type_object)) {
            sp_journal_bad(error, path, "a domain that is not an object");
            return NULL;
        }
        if (!sp_journal_get_str(jd, "name", &name, path, error) ||
            !sp_journal_get_str(jd, "uuid", &uuid, path, error) ||
            !sp_journal_get_str(jd, "overlay", &overlay, path, error))
            return NULL;
        if (!name || !uuid) {
            sp_journal_bad(error, path, "a domain without \"name\" or \"uuid\"");
            return NULL;
        }
        if (!sp_journal_domain_name_ok(name) || !g_uuid_string_is_valid(uuid)) {
            g_autofree char *n = g_strescape(name, NULL);
            g_autofree char *u = g_strescape(uuid, NULL);
            g_autofree char *what = g_strdup_printf("a domain whose \"name\" '%s' or \"uuid\" "
                                                    "'%s' is not one samepage makes", n, u);
            sp_journal_bad(error, path, what);
            return NULL;
        }
        if (overlay && !sp_journal_overlay_ok(j->overlay_dir, name, overlay)) {
            g_autofree char *shown = g_strescape(overlay, NULL);
            g_autofree char *what = g_strdup_printf(
                "domain %s: \"overlay\" '%s' is not %s/%s.qcow2 (the experiment's own overlay "
                "directory and name)", name, shown, j->overlay_dir ? j->overlay_dir
                                                                    : "OVERLAY_DIR", name);
            sp_journal_bad(error, path, what);
            return NULL;
        }
        if (!sp_journal_get_int(jd, "qemu_pid", 0, SP_JOURNAL_PID_MAX, &v, path, error))
            return NULL;
        if (json_object_object_get_ex(jd, "defined", &def)) {
            if (!json_object_is_type(def, json_type_boolean)) {
                g_autofree char *what = g_strdup_printf("domain %s: \"defined\" is %s, not "
                                                        "true or false", name,
                                                        json_object_to_json_string(def));
                sp_journal_bad(error, path, what);
                return NULL;
            }
            defined = json_object_get_boolean(def);
        }
        d = sp_journal_add_domain(j, name, uuid, overlay);
        d->qemu_pid = (pid_t)v;
        d->defined = defined;
    }
    return g_steal_pointer(&j);
}

/* Read a journal file without following a symlink, a regular file of at
 * most SP_JOURNAL_MAX_SIZE. */
static char *
sp_journal_read(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    struct stat st;
    gsize got = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        int e = errno;
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO, "cannot open %s: %s", path,
                    e == ELOOP ? "it is a symbolic link" : g_strerror(e));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SP_JOURNAL_MAX_SIZE) {
        int e = errno;
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_PARSE,
                    "%s is not a samepage experiment journal: %s", path,
                    !S_ISREG(st.st_mode) ? "not a regular file"
                    : st.st_size > SP_JOURNAL_MAX_SIZE ? "larger than 1 MiB" : g_strerror(e));
        close(fd);
        return NULL;
    }
    text = g_malloc(st.st_size + 1);
    while (got < (gsize)st.st_size) {
        ssize_t n = read(fd, text + got, st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO, "cannot read %s: %s", path,
                        n < 0 ? g_strerror(e) : "it shrank while read");
            close(fd);
            return NULL;
        }
        got += n;
    }
    text[got] = '\0';
    close(fd);
    if (memchr(text, '\0', got)) {
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_PARSE,
                    "%s is not a samepage experiment journal: it holds a NUL byte", path);
        return NULL;
    }
    return g_steal_pointer(&text);
}

SpJournal *
sp_journal_load(const char *path, GError **error)
{
    g_autofree char *text = sp_journal_read(path, error);

    if (!text)
        return NULL;
    return sp_journal_parse(text, path, error);
}

static gboolean
sp_journal_write_all(int fd, const char *text, gsize len)
{
    while (len) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        text += n;
        len -= n;
    }
    return TRUE;
}

/**
 * sp_journal_save:
 *
 * Writes a new temporary file in the journal's directory (O_EXCL,
 * O_NOFOLLOW, mode 0600 whatever the umask), fsyncs it, renames it over
 * the journal and fsyncs the directory: the journal is always either the
 * old one or the new one, and only root reads it.
 */
gboolean
sp_journal_save(const SpJournal *j, GError **error)
{
    g_autofree char *text = sp_journal_to_string(j);
    g_autofree char *dir = g_path_get_dirname(j->path);
    g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", j->path);
    gsize len = strlen(text);
    int fd, dfd, e;

    fd = g_mkstemp_full(tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "cannot write the experiment journal %s: cannot create a file in %s: %s",
                    j->path, dir, g_strerror(e));
        return FALSE;
    }
    if (fchmod(fd, 0600) < 0 || !sp_journal_write_all(fd, text, len) || fsync(fd) < 0) {
        e = errno;
        close(fd);
        g_unlink(tmp);
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "cannot write the experiment journal %s: %s", tmp, g_strerror(e));
        return FALSE;
    }
    if (close(fd) < 0 || rename(tmp, j->path) < 0) {
        e = errno;
        g_unlink(tmp);
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "cannot write the experiment journal %s: %s", j->path, g_strerror(e));
        return FALSE;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return TRUE;
}

gboolean
sp_journal_delete(const SpJournal *j, GError **error)
{
    if (g_unlink(j->path) < 0 && errno != ENOENT) {
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "cannot remove the experiment journal %s: %s", j->path, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

static gint
sp_journal_cmp_started(gconstpointer a, gconstpointer b)
{
    const SpJournal *ja = *(SpJournal *const *)a;
    const SpJournal *jb = *(SpJournal *const *)b;

    if (ja->started != jb->started)
        return ja->started < jb->started ? -1 : 1;
    return g_strcmp0(ja->path, jb->path);
}

/**
 * sp_journal_list_all:
 * @bad: (out) (element-type utf8): one message per file that is not a
 *   journal samepage could use (what is wrong, naming the file)
 *
 * Every good journal in @dir (a missing directory has none), oldest
 * first; a bad one is reported in @bad and skipped.  NULL only when the
 * directory cannot be read.
 */
GPtrArray *
sp_journal_list_all(const char *dir, GPtrArray **bad, GError **error)
{
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func((GDestroyNotify)sp_journal_free);
    g_autoptr(GPtrArray) bads = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) local = NULL;
    const char *name;

    d = g_dir_open(dir, 0, &local);
    if (!d) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            *bad = g_steal_pointer(&bads);
            return g_steal_pointer(&list);
        }
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO,
                    "cannot read the state directory: %s", local->message);
        return NULL;
    }
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = NULL;
        g_autoptr(GError) why = NULL;
        SpJournal *j;

        /* Temporary files of sp_journal_save are NAME.json.XXXXXX. */
        if (!g_str_has_suffix(name, ".json"))
            continue;
        path = g_build_filename(dir, name, NULL);
        j = sp_journal_load(path, &why);
        if (!j)
            g_ptr_array_add(bads, g_strdup(why->message));
        else
            g_ptr_array_add(list, j);
    }
    g_ptr_array_sort(list, sp_journal_cmp_started);
    *bad = g_steal_pointer(&bads);
    return g_steal_pointer(&list);
}

GPtrArray *
sp_journal_list(const char *dir, GError **error)
{
    g_autoptr(GPtrArray) bad = NULL;
    g_autoptr(GPtrArray) list = sp_journal_list_all(dir, &bad, error);

    if (!list)
        return NULL;
    if (bad->len) {
        g_set_error(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_PARSE, "%s",
                    (const char *)g_ptr_array_index(bad, 0));
        return NULL;
    }
    return g_steal_pointer(&list);
}
