/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * splibvirt.c: guests under libvirt
 *
 * libvirt owns each domain's QMP socket; commands go through
 * virDomainQemuMonitorCommand(), wrapped as an SpQmp "command" transport.
 * libvirt has no API for the QEMU pid.  For qemu:///system its pid file
 * (/run/libvirt/qemu/NAME.pid) names it; the process must also hold
 * "-uuid <domain uuid>" (libvirt always passes -uuid) and belong to root or
 * libvirt's QEMU user.  Without the pid file every process is looked at,
 * and one of another user is never taken: anyone can start a process with
 * that -uuid.  All of it goes through the host's procfs and /run so tests
 * can point them elsewhere.  Whoever signals QEMU holds it by a pidfd
 * (sp_libvirt_open_qemu(), SpProcess).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-libvirt"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "samepage/splibvirt.h"

G_DEFINE_QUARK(sp-libvirt-error-quark, sp_libvirt_error)

struct _SpLibvirt {
    virConnectPtr conn;
    char *uri;
};

static const char *
sp_libvirt_last_error(void)
{
    const char *msg = virGetLastErrorMessage();
    return msg && *msg ? msg : "unknown libvirt error";
}

/* libvirt prints every error on stderr unless told otherwise; we report
 * errors ourselves, once. */
static void
sp_libvirt_silent(void *opaque, virErrorPtr err)
{
}

/**
 * sp_libvirt_open:
 * @uri: (nullable): a libvirt URI; NULL for libvirt's default
 *   ($LIBVIRT_DEFAULT_URI, else qemu:///system for root)
 */
SpLibvirt *
sp_libvirt_open(const char *uri, GError **error)
{
    SpLibvirt *lv;
    virConnectPtr conn;

    virSetErrorFunc(NULL, sp_libvirt_silent);
    conn = virConnectOpen(uri ? uri : "qemu:///system");
    if (!conn) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT,
                    "cannot connect to %s: %s (is libvirtd running?)",
                    uri ? uri : "qemu:///system", sp_libvirt_last_error());
        return NULL;
    }
    lv = g_new0(SpLibvirt, 1);
    lv->conn = conn;
    lv->uri = g_strdup(uri ? uri : "qemu:///system");
    return lv;
}

void
sp_libvirt_free(SpLibvirt *lv)
{
    if (!lv)
        return;
    virConnectClose(lv->conn);
    g_free(lv->uri);
    g_free(lv);
}

const char *
sp_libvirt_get_uri(const SpLibvirt *lv)
{
    return lv->uri;
}

static int
sp_cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/**
 * sp_libvirt_list_running:
 *
 * Returns: (transfer full): the names of the running domains, sorted.
 */
GStrv
sp_libvirt_list_running(SpLibvirt *lv, GError **error)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    GPtrArray *names;

    if (n < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot list domains: %s", lv->uri, sp_libvirt_last_error());
        return NULL;
    }
    names = g_ptr_array_new();
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strdup(virDomainGetName(doms[i])));
        virDomainFree(doms[i]);
    }
    free(doms);
    g_ptr_array_sort(names, sp_cmp_str);
    g_ptr_array_add(names, NULL);
    return (GStrv)g_ptr_array_free(names, FALSE);
}

static virDomainPtr
sp_libvirt_lookup(SpLibvirt *lv, const char *name, gboolean need_running, GError **error)
{
    virDomainPtr dom = virDomainLookupByName(lv->conn, name);

    if (!dom) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN,
                    "no domain '%s' on %s", name, lv->uri);
        return NULL;
    }
    if (need_running && virDomainIsActive(dom) != 1) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NOT_RUNNING,
                    "domain '%s' is not running", name);
        virDomainFree(dom);
        return NULL;
    }
    return dom;
}

/* ------------------------------------------------------------- transport */

typedef struct {
    SpQmpTransport parent;
    virDomainPtr dom;
} SpLibvirtQmp;

static char *
sp_libvirt_qmp_command(SpQmpTransport *self, const char *command, gint64 deadline,
                       GError **error)
{
    SpLibvirtQmp *t = (SpLibvirtQmp *)self;
    char *result = NULL;

    if (virDomainQemuMonitorCommand(t->dom, command, &result, 0) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "%s",
                    sp_libvirt_last_error());
        return NULL;
    }
    /* libvirt allocates with malloc; hand back glib memory. */
    char *copy = g_strdup(result);
    free(result);
    return copy;
}

static void
sp_libvirt_qmp_free(SpQmpTransport *self)
{
    SpLibvirtQmp *t = (SpLibvirtQmp *)self;

    virDomainFree(t->dom);
    g_free(t->parent.name);
    g_free(t);
}

static const SpQmpTransportOps sp_libvirt_qmp_ops = {
    .command = sp_libvirt_qmp_command,
    .free = sp_libvirt_qmp_free,
};

/* ------------------------------------------------------------- pid */

/**
 * sp_cmdline_has_uuid:
 * @cmdline: /proc/PID/cmdline (NUL-separated)
 *
 * TRUE when the arguments hold "-uuid" followed by @uuid.
 */
gboolean
sp_cmdline_has_uuid(const char *cmdline, gsize len, const char *uuid)
{
    const char *p = cmdline, *end = cmdline + len;
    gboolean next_is_uuid = FALSE;

    while (p < end) {
        gsize l = strnlen(p, end - p);
        if (next_is_uuid)
            return l == strlen(uuid) && g_ascii_strncasecmp(p, uuid, l) == 0;
        next_is_uuid = (l == 5 && memcmp(p, "-uuid", 5) == 0);
        p += l + 1;
    }
    return FALSE;
}

/**
 * sp_libvirt_qemu_owners:
 *
 * Returns: (transfer full) (element-type uid_t): the users a QEMU started
 * by libvirt may run as: root, libvirt's QEMU user (libvirt-qemu on Debian,
 * qemu on Fedora; whichever exists), and ourselves (qemu:///session).
 */
GArray *
sp_libvirt_qemu_owners(void)
{
    static const char *const users[] = { "libvirt-qemu", "qemu" };
    GArray *uids = g_array_new(FALSE, FALSE, sizeof(uid_t));
    uid_t root = 0, self = geteuid();

    g_array_append_val(uids, root);
    if (self != 0)
        g_array_append_val(uids, self);
    for (gsize i = 0; i < G_N_ELEMENTS(users); i++) {
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwnam_r(users[i], &pw, buf, sizeof(buf), &found) == 0 && found)
            g_array_append_val(uids, found->pw_uid);
    }
    return uids;
}

typedef enum {
    SP_QEMU_NO,          /* not this domain's (no such process, no -uuid) */
    SP_QEMU_FOREIGN,     /* carries the -uuid, but another user owns it */
    SP_QEMU_YES,
} SpQemuMatch;

/* Whether /proc/@pid is a QEMU of @uuid owned by one of @owners (every uid
 * of its Uid line); *@uid is the real uid read. */
static SpQemuMatch
sp_libvirt_match_qemu(const SpHost *host, pid_t pid, const char *uuid, GArray *owners, uid_t *uid)
{
    g_autofree char *cmd_path = sp_host_procfs_path(host, "%d/cmdline", (int)pid);
    g_autofree char *status_path = sp_host_procfs_path(host, "%d/status", (int)pid);
    g_autofree char *cmdline = NULL;
    g_autofree char *status = NULL;
    SpProcessStatus st;
    gsize len;

    if (!g_file_get_contents(cmd_path, &cmdline, &len, NULL) ||
        !sp_cmdline_has_uuid(cmdline, len, uuid))
        return SP_QEMU_NO;
    if (!g_file_get_contents(status_path, &status, NULL, NULL) ||
        !sp_process_parse_status(status, &st, NULL))
        return SP_QEMU_NO;
    *uid = st.uid[0];
    for (guint i = 0; i < G_N_ELEMENTS(st.uid); i++) {
        gboolean ok = FALSE;
        for (guint j = 0; j < owners->len && !ok; j++)
            ok = st.uid[i] == g_array_index(owners, uid_t, j);
        if (!ok) {
            *uid = st.uid[i];
            return SP_QEMU_FOREIGN;
        }
    }
    return SP_QEMU_YES;
}

/* The pid in libvirt's pid file of @name (qemu:///system writes
 * <run>/libvirt/qemu/NAME.pid), or 0. */
static pid_t
sp_libvirt_pid_file(const SpHost *host, const char *name)
{
    g_autofree char *path = sp_host_run_path(host, "libvirt/qemu/%s.pid", name);
    g_autofree char *text = NULL;
    gint64 pid;

    if (strchr(name, '/') || !g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    if (!g_ascii_string_to_signed(g_strstrip(text), 10, 1, G_MAXINT32, &pid, NULL)) {
        g_debug("%s: '%s' is not a pid; ignored", path, text);
        return 0;
    }
    return (pid_t)pid;
}

/**
 * sp_libvirt_find_qemu:
 * @name: the domain's name (for libvirt's pid file)
 * @uuid: the domain's uuid
 * @owners: (nullable) (element-type uid_t): the users QEMU may run as;
 *   NULL: sp_libvirt_qemu_owners()
 *
 * The pid of the domain's QEMU.  libvirt's pid file names it; the process
 * must still carry "-uuid @uuid" and belong to one of @owners.  Without a
 * usable pid file (another URI, an older libvirt), every process is looked
 * at: any local user can start one with that -uuid, so a process of another
 * user is never taken (SP_LIBVIRT_ERROR_REFUSED when there is no other),
 * and two candidates are an error (SP_LIBVIRT_ERROR_AMBIGUOUS), not a
 * guess.
 *
 * Returns: the pid, or 0 with @error set.
 */
pid_t
sp_libvirt_find_qemu(const SpHost *host, const char *name, const char *uuid, GArray *owners,
                     GError **error)
{
    g_autoptr(GArray) own = owners ? g_array_ref(owners) : sp_libvirt_qemu_owners();
    g_autofree char *proc = sp_host_procfs_path(host, "%s", "");
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(pid_t));
    g_autoptr(GString) foreign = g_string_new(NULL);
    pid_t pid = sp_libvirt_pid_file(host, name);
    const char *entry;
    uid_t uid = 0;

    if (pid) {
        SpQemuMatch m = sp_libvirt_match_qemu(host, pid, uuid, own, &uid);
        if (m == SP_QEMU_YES)
            return pid;
        g_debug("libvirt's pid file of %s names pid %d, which is %s; looking at every process",
                name, (int)pid, m == SP_QEMU_FOREIGN ? "another user's" : "not its QEMU");
    }
    dir = g_dir_open(proc, 0, NULL);
    while (dir && (entry = g_dir_read_name(dir))) {
        gint64 n;

        if (!g_ascii_string_to_signed(entry, 10, 1, G_MAXINT32, &n, NULL))
            continue;
        pid = (pid_t)n;
        switch (sp_libvirt_match_qemu(host, pid, uuid, own, &uid)) {
        case SP_QEMU_YES:
            g_array_append_val(found, pid);
            break;
        case SP_QEMU_FOREIGN:
            g_string_append_printf(foreign, "%spid %d (uid %u)", foreign->len ? ", " : "",
                                   (int)pid, (guint)uid);
            break;
        case SP_QEMU_NO:
            break;
        }
    }
    if (found->len == 1)
        return g_array_index(found, pid_t, 0);
    if (found->len > 1) {
        g_autoptr(GString) pids = g_string_new(NULL);
        for (guint i = 0; i < found->len; i++)
            g_string_append_printf(pids, "%s%d", i ? ", " : "", (int)g_array_index(found, pid_t, i));
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_AMBIGUOUS,
                    "domain '%s' (uuid %s): processes %s all carry its -uuid and libvirt's pid "
                    "file does not say which is its QEMU: refusing to guess", name, uuid,
                    pids->str);
        return 0;
    }
    if (foreign->len) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_REFUSED,
                    "domain '%s' (uuid %s): %s carries its -uuid but belongs to neither root "
                    "nor libvirt's QEMU user: refused", name, uuid, foreign->str);
        return 0;
    }
    g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID,
                "domain '%s' (uuid %s): no QEMU process with that uuid on this host "
                "(a remote URI?)", name, uuid);
    return 0;
}

/**
 * sp_libvirt_open_qemu_pid:
 * @pid: a pid that was the domain's QEMU (recorded earlier, say)
 *
 * The process @pid held by a pidfd, if it is (still) the QEMU of @uuid:
 * it carries the -uuid and belongs to one of @owners (NULL:
 * sp_libvirt_qemu_owners()).  The check is made after the pidfd is open and
 * the process is then seen not to have exited, so it was of this process,
 * not of an earlier one with the same pid.
 *
 * Returns: (transfer full): the process, or NULL with @error set
 * (SP_LIBVIRT_ERROR_NO_PID: gone or not that QEMU; _REFUSED: another
 * user's).
 */
SpProcess *
sp_libvirt_open_qemu_pid(const SpHost *host, pid_t pid, const char *name, const char *uuid,
                         GArray *owners, GError **error)
{
    g_autoptr(GArray) own = owners ? g_array_ref(owners) : sp_libvirt_qemu_owners();
    g_autoptr(SpProcess) qemu = NULL;
    g_autoptr(GError) local = NULL;
    SpQemuMatch match;
    uid_t uid = 0;

    qemu = sp_process_open(pid, &local);
    if (!qemu) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID,
                    "domain '%s': QEMU pid %d: %s", name, (int)pid, local->message);
        return NULL;
    }
    match = sp_libvirt_match_qemu(host, pid, uuid, own, &uid);
    if (match == SP_QEMU_FOREIGN) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_REFUSED,
                    "domain '%s': pid %d carries its -uuid but belongs to uid %u, neither root "
                    "nor libvirt's QEMU user: refused", name, (int)pid, (guint)uid);
        return NULL;
    }
    if (match != SP_QEMU_YES || sp_process_has_exited(qemu)) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID,
                    "domain '%s': pid %d is not (or no longer) its QEMU", name, (int)pid);
        return NULL;
    }
    return g_steal_pointer(&qemu);
}

/**
 * sp_libvirt_open_qemu:
 *
 * sp_libvirt_find_qemu(), then sp_libvirt_open_qemu_pid(): signals through
 * the result reach that QEMU or fail, never another process.
 *
 * Returns: (transfer full): the process, or NULL with @error set.
 */
SpProcess *
sp_libvirt_open_qemu(const SpHost *host, const char *name, const char *uuid, GArray *owners,
                     GError **error)
{
    g_autoptr(GArray) own = owners ? g_array_ref(owners) : sp_libvirt_qemu_owners();
    pid_t pid = sp_libvirt_find_qemu(host, name, uuid, own, error);

    if (!pid)
        return NULL;
    return sp_libvirt_open_qemu_pid(host, pid, name, uuid, own, error);
}

/**
 * sp_libvirt_get_guest:
 *
 * The running domain @name as an SpGuest: its QEMU pid and a QMP
 * connection through libvirt.  Errors: no such domain, not running, QEMU
 * process not found on this host (a remote URI).
 */
SpGuest *
sp_libvirt_get_guest(SpLibvirt *lv, const SpHost *host, const char *name, GError **error)
{
    virDomainPtr dom = sp_libvirt_lookup(lv, name, TRUE, error);
    char uuid[VIR_UUID_STRING_BUFLEN];
    SpLibvirtQmp *t;
    SpQmp *qmp;
    pid_t pid;

    if (!dom)
        return NULL;
    if (virDomainGetUUIDString(dom, uuid) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "domain '%s': %s",
                    name, sp_libvirt_last_error());
        virDomainFree(dom);
        return NULL;
    }
    pid = sp_libvirt_find_qemu(host, name, uuid, NULL, error);
    if (!pid) {
        virDomainFree(dom);
        return NULL;
    }
    t = g_new0(SpLibvirtQmp, 1);
    t->parent.ops = &sp_libvirt_qmp_ops;
    t->parent.name = g_strdup_printf("domain %s", name);
    t->dom = dom;
    qmp = sp_qmp_new(&t->parent, 0, error);
    if (!qmp)
        return NULL;
    return sp_guest_new(name, pid, qmp);
}

/**
 * sp_libvirt_has_nosharepages:
 *
 * Whether the domain's XML opts out of memory sharing
 * (<memoryBacking><nosharepages/>).
 */
gboolean
sp_libvirt_has_nosharepages(SpLibvirt *lv, const char *name, gboolean *nosharepages,
                            GError **error)
{
    virDomainPtr dom = sp_libvirt_lookup(lv, name, FALSE, error);
    char *xml;

    if (!dom)
        return FALSE;
    xml = virDomainGetXMLDesc(dom, 0);
    virDomainFree(dom);
    if (!xml) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "domain '%s': %s", name,
                    sp_libvirt_last_error());
        return FALSE;
    }
    *nosharepages = strstr(xml, "<nosharepages/>") != NULL;
    free(xml);
    return TRUE;
}

/**
 * sp_libvirt_uri_is_remote:
 *
 * TRUE for a URI that names a host ("qemu+ssh://host/system"): the host's
 * sysfs is not ours to write then.
 */
gboolean
sp_libvirt_uri_is_remote(const char *uri)
{
    const char *p;

    if (!uri || !(p = strstr(uri, "://")))
        return FALSE;
    p += 3;
    return *p && *p != '/';
}

/**
 * sp_libvirt_set_ksm:
 *
 * KSM knobs of a remote host through virNodeSetMemoryParameters(), which
 * knows only shm_pages_to_scan, shm_sleep_millisecs and
 * shm_merge_across_nodes; any other key is refused before anything is sent.
 * libvirt writes them in order and stops at the first failure.
 */
gboolean
sp_libvirt_set_ksm(SpLibvirt *lv, const SpKsmSetting *settings, gsize n, GError **error)
{
    g_autofree virTypedParameterPtr params = g_new0(virTypedParameter, MAX(n, 1));

    for (gsize i = 0; i < n; i++) {
        const char *field;
        switch (settings[i].key) {
        case SP_KSM_PAGES_TO_SCAN:
            field = VIR_NODE_MEMORY_SHARED_PAGES_TO_SCAN;
            break;
        case SP_KSM_SLEEP_MILLISECS:
            field = VIR_NODE_MEMORY_SHARED_SLEEP_MILLISECS;
            break;
        case SP_KSM_MERGE_ACROSS_NODES:
            field = VIR_NODE_MEMORY_SHARED_MERGE_ACROSS_NODES;
            break;
        default:
            g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                        "%s cannot be set over %s: libvirt only passes pages_to_scan, "
                        "sleep_millisecs and merge_across_nodes",
                        sp_ksm_key_info(settings[i].key)->name, lv->uri);
            return FALSE;
        }
        g_strlcpy(params[i].field, field, VIR_TYPED_PARAM_FIELD_LENGTH);
        params[i].type = VIR_TYPED_PARAM_UINT;
        params[i].value.ui = (unsigned int)settings[i].value;
    }
    if (virNodeSetMemoryParameters(lv->conn, params, (int)n, 0) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "%s: %s", lv->uri,
                    sp_libvirt_last_error());
        return FALSE;
    }
    return TRUE;
}
