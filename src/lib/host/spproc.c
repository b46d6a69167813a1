/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spproc.c: the procfs files samepage reads, one parser each
 *
 * The parsers trust nothing: a process picks its own command name (up to
 * 15 bytes of anything but NUL, so spaces, ')' and newlines included),
 * files can be cut short by a process that exits while it is read, and a
 * fake tree in a test can hold anything.  Numbers are decimal and must fit
 * their type; what does not is a parse error, never a wrapped value.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-proc"

#include <string.h>

#include "samepage/spproc.h"

/* The file @rel below @host's procfs root; on a parse error the message
 * gets the path in front. */
static gboolean
sp_proc_read(const SpHost *host, const char *rel, char **text, char **path, GError **error)
{
    *path = sp_host_procfs_path(host, "%s", rel);
    return sp_host_read_file(*path, text, error);
}

/* ---------------------------------------------------------------- meminfo */

/**
 * sp_proc_parse_meminfo:
 * @text: the contents of /proc/meminfo (or of /proc/PID/status, whose
 *   memory lines, VmRSS and the like, have the same form)
 * @key: a field, e.g. "MemAvailable"
 * @bytes: (out): its value in bytes
 *
 * The field's line must be "KEY: N kB" with N decimal; N kB that do not fit
 * in 64 bits of bytes are refused, not wrapped.  The first such line counts.
 *
 * Returns: FALSE with SP_HOST_ERROR_PARSE if the field is missing or bad.
 */
gboolean
sp_proc_parse_meminfo(const char *text, const char *key, guint64 *bytes, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    gsize klen = strlen(key);

    for (char **l = lines; *l; l++) {
        g_autofree char *value = NULL;
        char *unit;
        guint64 kib;

        if (strncmp(*l, key, klen) != 0 || (*l)[klen] != ':')
            continue;
        value = g_strstrip(g_strdup(*l + klen + 1));
        unit = strpbrk(value, " \t");
        if (unit)
            *unit++ = '\0';
        if (!unit || !g_str_equal(g_strstrip(unit), "kB")) {
            g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                        "meminfo: %s is not in kB: '%s'", key, *l);
            return FALSE;
        }
        if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT64, &kib, NULL)) {
            g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                        "meminfo: %s is not a decimal number of kB: '%s'", key, *l);
            return FALSE;
        }
        if (!g_uint64_checked_mul(bytes, kib, 1024)) {
            g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                        "meminfo: %s of %s kB does not fit in 64 bits of bytes", key, value);
            return FALSE;
        }
        return TRUE;
    }
    g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE, "meminfo has no %s line", key);
    return FALSE;
}

/**
 * sp_proc_read_meminfo:
 * @key: a field of /proc/meminfo, e.g. "MemTotal"
 * @bytes: (out): its value in bytes
 */
gboolean
sp_proc_read_meminfo(const SpHost *host, const char *key, guint64 *bytes, GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    if (!sp_proc_read(host, "meminfo", &text, &path, error))
        return FALSE;
    if (!sp_proc_parse_meminfo(text, key, bytes, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- osrelease */

/**
 * sp_proc_parse_osrelease:
 * @text: the contents of /proc/sys/kernel/osrelease ("6.12.9-amd64\n")
 *
 * Returns: (transfer full): the release, its first line without the
 * surrounding blanks; NULL with SP_HOST_ERROR_PARSE if that is empty.
 */
char *
sp_proc_parse_osrelease(const char *text, GError **error)
{
    const char *nl = strchr(text, '\n');
    g_autofree char *release = g_strstrip(g_strndup(text, nl ? (gsize)(nl - text) : strlen(text)));

    if (!*release) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE, "osrelease is empty");
        return NULL;
    }
    return g_steal_pointer(&release);
}

static gboolean
sp_proc_parse_uint(const char **p, guint *out)
{
    guint64 v = 0;
    const char *s = *p;

    if (!g_ascii_isdigit(*s))
        return FALSE;
    for (; g_ascii_isdigit(*s); s++) {
        v = v * 10 + (guint64)(*s - '0');
        if (v > G_MAXUINT)
            return FALSE;
    }
    *out = (guint)v;
    *p = s;
    return TRUE;
}

/**
 * sp_proc_release_version:
 * @release: a kernel release, "6.12.9-amd64"
 * @major: (out): 6
 * @minor: (out): 12
 *
 * Returns: FALSE if @release does not start with MAJOR.MINOR in decimal.
 */
gboolean
sp_proc_release_version(const char *release, guint *major, guint *minor)
{
    const char *p = release;
    guint ma, mi;

    if (!sp_proc_parse_uint(&p, &ma) || *p++ != '.' || !sp_proc_parse_uint(&p, &mi))
        return FALSE;
    *major = ma;
    *minor = mi;
    return TRUE;
}

/**
 * sp_proc_read_osrelease:
 *
 * Returns: (transfer full): the running kernel's release, or NULL.
 */
char *
sp_proc_read_osrelease(const SpHost *host, GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;
    char *release;

    if (!sp_proc_read(host, "sys/kernel/osrelease", &text, &path, error))
        return NULL;
    release = sp_proc_parse_osrelease(text, error);
    if (!release)
        g_prefix_error(error, "%s: ", path);
    return release;
}

/* ---------------------------------------------------------------- /proc/stat */

/**
 * sp_proc_parse_cpu_stat:
 * @text: the contents of /proc/stat
 * @busy: (out): jiffies not idle and not waiting for I/O
 * @total: (out): all jiffies
 *
 * The first line must be "cpu  user nice system idle [iowait irq softirq
 * steal guest guest_nice]", at least four of them.  Guest time is already
 * in user and nice, so it is not added again.
 */
gboolean
sp_proc_parse_cpu_stat(const char *text, guint64 *busy, guint64 *total, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", 2);
    g_auto(GStrv) f = NULL;
    guint64 v[10] = { 0 };
    guint64 sum = 0;
    guint n = 0;

    if (!lines[0] || !g_str_has_prefix(lines[0], "cpu ")) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "/proc/stat does not start with a \"cpu\" line");
        return FALSE;
    }
    f = g_strsplit_set(lines[0] + 4, " ", -1);
    for (char **w = f; *w && n < G_N_ELEMENTS(v); w++) {
        if (!**w)
            continue;
        if (!g_ascii_string_to_unsigned(*w, 10, 0, G_MAXUINT64, &v[n], NULL)) {
            g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                        "/proc/stat: '%s' is not a number of jiffies", *w);
            return FALSE;
        }
        n++;
    }
    if (n < 4) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "/proc/stat: the cpu line has %u fields, not at least 4", n);
        return FALSE;
    }
    for (guint i = 0; i < MIN(n, 8u); i++) {
        if (!g_uint64_checked_add(&sum, sum, v[i])) {
            g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                        "/proc/stat: the cpu line's jiffies do not fit in 64 bits");
            return FALSE;
        }
    }
    /* sum >= idle + iowait: both are terms of it. */
    *total = sum;
    *busy = sum - v[3] - (n > 4 ? v[4] : 0);
    return TRUE;
}

/**
 * sp_proc_read_cpu_stat:
 * @busy: (out): see sp_proc_parse_cpu_stat()
 * @total: (out): all jiffies of /proc/stat's cpu line
 */
gboolean
sp_proc_read_cpu_stat(const SpHost *host, guint64 *busy, guint64 *total, GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    if (!sp_proc_read(host, "stat", &text, &path, error))
        return FALSE;
    if (!sp_proc_parse_cpu_stat(text, busy, total, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- /proc/PID/stat */

/**
 * sp_proc_stat_clear:
 *
 * Frees what sp_proc_parse_stat() allocated (the comm); @st can be filled
 * again.
 */
void
sp_proc_stat_clear(SpProcStat *st)
{
    g_clear_pointer(&st->comm, g_free);
}

static gboolean
sp_proc_stat_field(char **f, guint field, guint64 *v, GError **error)
{
    if (!g_ascii_string_to_unsigned(f[field - 3], 10, 0, G_MAXUINT64, v, NULL)) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "stat: field %u '%s' is not a number of clock ticks", field, f[field - 3]);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_proc_parse_stat:
 * @text: the contents of /proc/PID/stat
 * @st: (out caller-allocates): its fields; clear with sp_proc_stat_clear()
 *
 * "PID (COMM) STATE PPID ...": COMM may hold spaces, parentheses and
 * newlines, so the fields start after the last ')'.  Fields 3 to 22 must be
 * there (a file cut short is an error), single-space separated; the ones
 * samepage uses must be decimal numbers that fit.
 */
gboolean
sp_proc_parse_stat(const char *text, SpProcStat *st, GError **error)
{
    const char *open = strchr(text, '(');
    const char *close = strrchr(text, ')');
    g_autofree char *pid_text = NULL;
    g_autofree char *rest = NULL;
    g_auto(GStrv) f = NULL;
    gint64 pid, ppid;
    gsize len;

    memset(st, 0, sizeof(*st));
    if (!open || !close || close < open) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "stat: no ')' after the command name");
        return FALSE;
    }
    if (open > text && open[-1] == ' ')
        pid_text = g_strndup(text, (gsize)(open - 1 - text));
    if (!pid_text || !g_ascii_string_to_signed(pid_text, 10, 1, G_MAXINT32, &pid, NULL)) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "stat: no pid before the command name");
        return FALSE;
    }
    if (close[1] != ' ') {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "stat: no fields after the command name");
        return FALSE;
    }
    rest = g_strdup(close + 2);
    len = strlen(rest);
    if (len && rest[len - 1] == '\n')
        rest[len - 1] = '\0';
    f = g_strsplit(rest, " ", -1);
    if (g_strv_length(f) < 20) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "stat: %u fields after the command name, not at least 20",
                    g_strv_length(f));
        return FALSE;
    }
    if (strlen(f[0]) != 1 || !g_ascii_isgraph(f[0][0])) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "stat: state '%s' is not one letter", f[0]);
        return FALSE;
    }
    if (!g_ascii_string_to_signed(f[1], 10, 0, G_MAXINT32, &ppid, NULL)) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "stat: ppid '%s' is not a pid", f[1]);
        return FALSE;
    }
    if (!sp_proc_stat_field(f, 14, &st->utime, error) ||
        !sp_proc_stat_field(f, 15, &st->stime, error) ||
        !sp_proc_stat_field(f, 22, &st->starttime, error))
        return FALSE;
    st->pid = (pid_t)pid;
    st->state = f[0][0];
    st->ppid = (pid_t)ppid;
    st->comm = g_strndup(open + 1, (gsize)(close - open - 1));
    return TRUE;
}

/**
 * sp_proc_read_stat:
 * @pid: a process (> 0)
 * @st: (out caller-allocates): clear with sp_proc_stat_clear()
 *
 * A pid that does not exist is SP_HOST_ERROR_NOT_FOUND.
 */
gboolean
sp_proc_read_stat(const SpHost *host, pid_t pid, SpProcStat *st, GError **error)
{
    g_autofree char *rel = g_strdup_printf("%d/stat", (int)pid);
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    memset(st, 0, sizeof(*st));
    if (pid <= 0) {
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND, "no process has pid %d",
                    (int)pid);
        return FALSE;
    }
    if (!sp_proc_read(host, rel, &text, &path, error))
        return FALSE;
    if (!sp_proc_parse_stat(text, st, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

#define SP_PROC_KTHREADD_PID 2

/**
 * sp_proc_find_ksmd:
 *
 * ksmd, the kernel thread: a process named "ksmd" whose parent is kthreadd
 * (pid 2).  Any process may name itself ksmd (prctl(PR_SET_NAME)), but it
 * cannot be kthreadd's child.
 *
 * Returns: its pid (the lowest, should there be more), or 0 if none.
 */
pid_t
sp_proc_find_ksmd(const SpHost *host)
{
    g_autofree char *root = sp_host_procfs_path(host, "%s", "");
    g_autoptr(GDir) dir = g_dir_open(root, 0, NULL);
    const char *name;
    pid_t found = 0;

    while (dir && (name = g_dir_read_name(dir))) {
        g_auto(SpProcStat) st = { 0 };
        gint64 pid;

        if (!g_ascii_string_to_signed(name, 10, 1, G_MAXINT32, &pid, NULL) ||
            !sp_proc_read_stat(host, (pid_t)pid, &st, NULL))
            continue;
        if (g_str_equal(st.comm, "ksmd") && st.ppid == SP_PROC_KTHREADD_PID &&
            (!found || st.pid < found))
            found = st.pid;
    }
    return found;
}

/* ---------------------------------------------------------------- /proc/PID/ksm_stat */

/**
 * sp_proc_parse_ksm_stat:
 * @text: /proc/PID/ksm_stat: "ksm_rmap_items N" lines, and since about
 *   6.14 "ksm_merge_any: yes|no" and "ksm_mergeable: yes|no" (with a colon)
 *
 * Unknown lines are skipped; a known line with a bad value is an error, and
 * so is a line that is not "KEY VALUE".
 */
gboolean
sp_proc_parse_ksm_stat(const char *text, SpKsmStat *stat, GError **error)
{
    static const struct { const char *key; gsize off; } nums[] = {
        { "ksm_rmap_items", G_STRUCT_OFFSET(SpKsmStat, ksm_rmap_items) },
        { "ksm_zero_pages", G_STRUCT_OFFSET(SpKsmStat, ksm_zero_pages) },
        { "ksm_merging_pages", G_STRUCT_OFFSET(SpKsmStat, ksm_merging_pages) },
        { "ksm_process_profit", G_STRUCT_OFFSET(SpKsmStat, ksm_process_profit) },
    };
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    memset(stat, 0, sizeof(*stat));
    stat->present = TRUE;
    stat->ksm_zero_pages = -1;
    stat->ksm_merge_any = -1;
    stat->ksm_mergeable = -1;
    for (char **l = lines; *l; l++) {
        g_auto(GStrv) kv = NULL;
        char *key;

        if (!**l)
            continue;
        kv = g_strsplit_set(*l, " \t", 2);
        if (!kv[0] || !kv[1]) {
            g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                        "ksm_stat: malformed line '%s'", *l);
            return FALSE;
        }
        key = kv[0];
        g_strstrip(kv[1]);
        if (g_str_has_suffix(key, ":"))
            key[strlen(key) - 1] = '\0';
        if (g_str_equal(key, "ksm_merge_any") || g_str_equal(key, "ksm_mergeable")) {
            int v = g_str_equal(kv[1], "yes") ? 1 : g_str_equal(kv[1], "no") ? 0 : -2;
            if (v == -2) {
                g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                            "ksm_stat: %s is '%s', not yes or no", key, kv[1]);
                return FALSE;
            }
            if (g_str_equal(key, "ksm_merge_any"))
                stat->ksm_merge_any = v;
            else
                stat->ksm_mergeable = v;
            continue;
        }
        for (gsize i = 0; i < G_N_ELEMENTS(nums); i++) {
            gint64 v;
            if (!g_str_equal(key, nums[i].key))
                continue;
            if (!g_ascii_string_to_signed(kv[1], 10, G_MININT64, G_MAXINT64, &v, NULL)) {
                g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                            "ksm_stat: %s is '%s', not a number", key, kv[1]);
                return FALSE;
            }
            G_STRUCT_MEMBER(gint64, stat, nums[i].off) = v;
        }
    }
    return TRUE;
}

/**
 * sp_proc_read_ksm_stat:
 * @pid: a process
 *
 * A missing file is SP_HOST_ERROR_NOT_FOUND: the pid does not exist, or
 * the kernel is older than 6.1 (the caller tells them apart).
 */
gboolean
sp_proc_read_ksm_stat(const SpHost *host, pid_t pid, SpKsmStat *stat, GError **error)
{
    g_autofree char *rel = g_strdup_printf("%d/ksm_stat", (int)pid);
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    if (!sp_proc_read(host, rel, &text, &path, error))
        return FALSE;
    if (!sp_proc_parse_ksm_stat(text, stat, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_proc_read_meminfo_keys:
 * @keys: (array zero-terminated=1): fields, e.g. { "MemTotal", "MemAvailable", NULL }
 * @bytes: (out) (array): one value in bytes per key
 *
 * One read of /proc/meminfo, so the values belong to one moment; every key
 * must be there (see sp_proc_parse_meminfo()).
 */
gboolean
sp_proc_read_meminfo_keys(const SpHost *host, const char *const *keys, guint64 *bytes,
                          GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    if (!sp_proc_read(host, "meminfo", &text, &path, error))
        return FALSE;
    for (guint i = 0; keys[i]; i++) {
        if (!sp_proc_parse_meminfo(text, keys[i], &bytes[i], error)) {
            g_prefix_error(error, "%s: ", path);
            return FALSE;
        }
    }
    return TRUE;
}

/* ---------------------------------------------------------------- /proc/pressure/memory */

static gboolean
sp_proc_parse_pct(const char *word, const char *key, double *out)
{
    gsize klen = strlen(key);
    const char *v = word + klen + 1;
    char *end = NULL;
    double d;

    if (strncmp(word, key, klen) != 0 || word[klen] != '=' || !g_ascii_isdigit(*v))
        return FALSE;
    d = g_ascii_strtod(v, &end);
    if (!end || *end || !(d >= 0.0 && d <= 100.0))
        return FALSE;
    *out = d;
    return TRUE;
}

/**
 * sp_proc_parse_pressure:
 * @text: the contents of a PSI file such as /proc/pressure/memory
 * @kind: "some" or "full"
 * @psi: (out): that line's figures
 *
 * The line must be "KIND avg10=P avg60=P avg300=P total=N", the averages
 * percentages in [0, 100], the total a decimal that fits 64 bits.
 */
gboolean
sp_proc_parse_pressure(const char *text, const char *kind, SpProcPressure *psi,
                       GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    gsize klen = strlen(kind);

    for (char **l = lines; *l; l++) {
        g_auto(GStrv) w = NULL;
        SpProcPressure p = { 0 };

        if (strncmp(*l, kind, klen) != 0 || (*l)[klen] != ' ')
            continue;
        w = g_strsplit(*l + klen + 1, " ", -1);
        if (g_strv_length(w) != 4 || !sp_proc_parse_pct(w[0], "avg10", &p.avg10) ||
            !sp_proc_parse_pct(w[1], "avg60", &p.avg60) ||
            !sp_proc_parse_pct(w[2], "avg300", &p.avg300) ||
            !g_str_has_prefix(w[3], "total=") ||
            !g_ascii_string_to_unsigned(w[3] + 6, 10, 0, G_MAXUINT64, &p.total_us, NULL)) {
            g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                        "pressure: malformed '%s' line: '%s'", kind, *l);
            return FALSE;
        }
        *psi = p;
        return TRUE;
    }
    g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE, "pressure: no '%s' line", kind);
    return FALSE;
}

/**
 * sp_proc_read_memory_pressure:
 * @some: (out): the "some" line of /proc/pressure/memory
 *
 * A kernel without PSI (or booted with psi=0) has no such file:
 * SP_HOST_ERROR_NOT_FOUND.
 */
gboolean
sp_proc_read_memory_pressure(const SpHost *host, SpProcPressure *some, GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    if (!sp_proc_read(host, "pressure/memory", &text, &path, error))
        return FALSE;
    if (!sp_proc_parse_pressure(text, "some", some, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}
