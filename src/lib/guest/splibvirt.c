/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * splibvirt.c: guests under libvirt
 *
 * The only file of libsamepage that calls libvirt: connections, the
 * domains the experiment runner and SpCleanup make and remove, their guest
 * agents, and the guests samepage looks at.  libvirt's errors become
 * GErrors here (one reader of its last error, one silencer of its stderr
 * printing, in sp_libvirt_open()).
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

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <libvirt-glib/libvirt-glib.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "samepage/splibvirt.h"

G_DEFINE_QUARK(sp-libvirt-error-quark, sp_libvirt_error)

struct _SpLibvirt {
    virConnectPtr conn;
    char *uri;
    /* sp_libvirt_watch() */
    int lifecycle_id;           /* -1: none */
    gboolean close_registered;
    SpLibvirtLifecycleFunc lifecycle;
    SpLibvirtClosedFunc closed;
    gpointer user_data;
};

/* The one reader of libvirt's (per-thread) last error. */
static const char *
sp_libvirt_last_error(void)
{
    const char *msg = virGetLastErrorMessage();
    return msg && *msg ? msg : "unknown libvirt error";
}

/* libvirt's last error as our code. */
static SpLibvirtErrorCode
sp_libvirt_last_code(void)
{
    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_DOMAIN:
        return SP_LIBVIRT_ERROR_NO_DOMAIN;
    case VIR_ERR_AGENT_UNRESPONSIVE:
    case VIR_ERR_AGENT_UNSYNCED:
        return SP_LIBVIRT_ERROR_AGENT;
    default:
        return SP_LIBVIRT_ERROR_FAILED;
    }
}

/* @error from libvirt's last error: its code, its message; callers add
 * what they were doing with g_prefix_error(). */
static void
sp_libvirt_fail(GError **error)
{
    g_set_error_literal(error, SP_LIBVIRT_ERROR, sp_libvirt_last_code(), sp_libvirt_last_error());
}

/* libvirt prints every error on stderr unless told otherwise; we report
 * errors ourselves, once. */
static void
sp_libvirt_silent(void *opaque, virErrorPtr err)
{
}

static virConnectPtr
sp_libvirt_connect(const char *uri, GError **error)
{
    virConnectPtr conn = virConnectOpen(uri);

    if (!conn)
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT,
                    "cannot connect to %s: %s (is libvirtd running?)", uri,
                    sp_libvirt_last_error());
    return conn;
}

/**
 * sp_libvirt_open:
 * @uri: (nullable): a libvirt URI; NULL: qemu:///system
 *
 * The connection is to @uri (never libvirt's default instead), and every
 * call through it reports libvirt's errors in its GError only: this is the
 * one place that silences libvirt's printing of errors on stderr (a
 * process-wide setting of libvirt's).
 */
SpLibvirt *
sp_libvirt_open(const char *uri, GError **error)
{
    SpLibvirt *lv;
    virConnectPtr conn;

    if (!uri)
        uri = "qemu:///system";
    virSetErrorFunc(NULL, sp_libvirt_silent);
    conn = sp_libvirt_connect(uri, error);
    if (!conn)
        return NULL;
    lv = g_new0(SpLibvirt, 1);
    lv->conn = conn;
    lv->uri = g_strdup(uri);
    lv->lifecycle_id = -1;
    return lv;
}

/**
 * sp_libvirt_is_alive:
 *
 * TRUE while libvirtd answers on the connection.
 */
gboolean
sp_libvirt_is_alive(SpLibvirt *lv)
{
    return lv->conn && virConnectIsAlive(lv->conn) == 1;
}

/**
 * sp_libvirt_reconnect:
 *
 * Drops the connection and opens a new one to the same URI (libvirtd was
 * restarted, say).  Domain handles of the old connection must be looked up
 * again.  On failure the connection stays closed: calls fail with
 * SP_LIBVIRT_ERROR_CONNECT until a reconnect succeeds.
 */
gboolean
sp_libvirt_reconnect(SpLibvirt *lv, GError **error)
{
    sp_libvirt_unwatch(lv);
    if (lv->conn)
        virConnectClose(lv->conn);
    lv->conn = sp_libvirt_connect(lv->uri, error);
    return lv->conn != NULL;
}

static gboolean
sp_libvirt_check_conn(SpLibvirt *lv, GError **error)
{
    if (lv->conn)
        return TRUE;
    g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT,
                "not connected to %s (is libvirtd running?)", lv->uri);
    return FALSE;
}

void
sp_libvirt_free(SpLibvirt *lv)
{
    if (!lv)
        return;
    sp_libvirt_unwatch(lv);
    if (lv->conn)
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
    GPtrArray *names;
    int n;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
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
    virDomainPtr dom;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    dom = virDomainLookupByName(lv->conn, name);
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

/* ------------------------------------------------------------- domains */

struct _SpLibvirtDomain {
    virDomainPtr dom;
    char *name;
    char uuid[VIR_UUID_STRING_BUFLEN];
};

G_STATIC_ASSERT(SP_LIBVIRT_STATE_RUNNING == (int)VIR_DOMAIN_RUNNING);
G_STATIC_ASSERT(SP_LIBVIRT_STATE_SHUTOFF == (int)VIR_DOMAIN_SHUTOFF);
G_STATIC_ASSERT(SP_LIBVIRT_STATE_PMSUSPENDED == (int)VIR_DOMAIN_PMSUSPENDED);

/* Takes @dom. */
static SpLibvirtDomain *
sp_libvirt_domain_new(virDomainPtr dom, GError **error)
{
    g_autoptr(SpLibvirtDomain) d = g_new0(SpLibvirtDomain, 1);
    const char *name;

    d->dom = dom;
    name = virDomainGetName(dom);
    if (!name || virDomainGetUUIDString(dom, d->uuid) < 0) {
        sp_libvirt_fail(error);
        return NULL;
    }
    d->name = g_strdup(name);
    return g_steal_pointer(&d);
}

void
sp_libvirt_domain_free(SpLibvirtDomain *dom)
{
    if (!dom)
        return;
    if (dom->dom)
        virDomainFree(dom->dom);
    g_free(dom->name);
    g_free(dom);
}

/**
 * sp_libvirt_define_xml:
 * @xml: a domain's XML
 *
 * Defines (persistently) the domain @xml describes; it is not started.
 *
 * Returns: (transfer full): the domain, or NULL with @error set (libvirt's
 * message: the XML refused, a name or UUID taken).
 */
SpLibvirtDomain *
sp_libvirt_define_xml(SpLibvirt *lv, const char *xml, GError **error)
{
    virDomainPtr dom;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    dom = virDomainDefineXML(lv->conn, xml);
    if (!dom) {
        sp_libvirt_fail(error);
        return NULL;
    }
    return sp_libvirt_domain_new(dom, error);
}

/**
 * sp_libvirt_lookup_uuid:
 *
 * Returns: (transfer full): the domain of @uuid, or NULL with @error set:
 * SP_LIBVIRT_ERROR_NO_DOMAIN when libvirt knows no such domain, another
 * code when it could not tell (libvirtd gone, say).
 */
SpLibvirtDomain *
sp_libvirt_lookup_uuid(SpLibvirt *lv, const char *uuid, GError **error)
{
    virDomainPtr dom;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    dom = virDomainLookupByUUIDString(lv->conn, uuid);
    if (!dom) {
        sp_libvirt_fail(error);
        return NULL;
    }
    return sp_libvirt_domain_new(dom, error);
}

const char *
sp_libvirt_domain_get_name(const SpLibvirtDomain *dom)
{
    return dom->name;
}

const char *
sp_libvirt_domain_get_uuid(const SpLibvirtDomain *dom)
{
    return dom->uuid;
}

/**
 * sp_libvirt_start:
 *
 * Starts the defined domain (virDomainCreate()).
 */
gboolean
sp_libvirt_start(SpLibvirtDomain *dom, GError **error)
{
    if (virDomainCreate(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_libvirt_destroy:
 *
 * Stops the running domain at once (its QEMU is killed); it stays defined.
 */
gboolean
sp_libvirt_destroy(SpLibvirtDomain *dom, GError **error)
{
    if (virDomainDestroy(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_libvirt_undefine:
 *
 * Removes the domain's definition (a running domain becomes transient).
 */
gboolean
sp_libvirt_undefine(SpLibvirtDomain *dom, GError **error)
{
    if (virDomainUndefine(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_libvirt_is_active:
 *
 * Returns: TRUE when the domain runs; FALSE when it does not, or with
 * @error set when libvirt could not tell.
 */
gboolean
sp_libvirt_is_active(SpLibvirtDomain *dom, GError **error)
{
    int active = virDomainIsActive(dom->dom);

    if (active < 0)
        sp_libvirt_fail(error);
    return active == 1;
}

/**
 * sp_libvirt_get_state:
 * @state: (out): the domain's state
 * @reason: (out): why, libvirt's reason code of that state
 */
gboolean
sp_libvirt_get_state(SpLibvirtDomain *dom, SpLibvirtState *state, int *reason, GError **error)
{
    int st = 0, why = 0;

    if (virDomainGetState(dom->dom, &st, &why, 0) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    *state = (SpLibvirtState)st;
    *reason = why;
    return TRUE;
}

/**
 * sp_libvirt_agent_command:
 * @json: a guest agent command ({"execute": ..., "arguments": ...})
 * @timeout_s: seconds to wait for the answer
 *
 * Sends @json to the domain's QEMU guest agent through libvirt.
 *
 * Returns: (transfer full): the agent's reply, JSON text, or NULL with
 * @error set (SP_LIBVIRT_ERROR_AGENT: no agent connected or no answer in
 * time).
 */
char *
sp_libvirt_agent_command(SpLibvirtDomain *dom, const char *json, int timeout_s, GError **error)
{
    char *reply = virDomainQemuAgentCommand(dom->dom, json, timeout_s, 0);
    char *copy;

    if (!reply) {
        sp_libvirt_fail(error);
        return NULL;
    }
    /* libvirt allocates with malloc; hand back glib memory. */
    copy = g_strdup(reply);
    free(reply);
    return copy;
}

/**
 * sp_libvirt_hmp_command:
 * @command: a human monitor command ("gpa2hva 0")
 *
 * Returns: (transfer full): QEMU's answer, or NULL with @error set.
 */
char *
sp_libvirt_hmp_command(SpLibvirtDomain *dom, const char *command, GError **error)
{
    char *reply = NULL;
    char *copy;

    if (virDomainQemuMonitorCommand(dom->dom, command, &reply,
                                    VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) < 0) {
        sp_libvirt_fail(error);
        return NULL;
    }
    copy = g_strdup(reply);
    free(reply);
    return copy;
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
        sp_libvirt_fail(error);
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

/* An SpGuest named @name on QMP through @dom (its reference is taken over). */
static SpGuest *
sp_libvirt_guest_new(virDomainPtr dom, const char *name, pid_t pid, GError **error)
{
    SpLibvirtQmp *t = g_new0(SpLibvirtQmp, 1);
    SpQmp *qmp;

    t->parent.ops = &sp_libvirt_qmp_ops;
    t->parent.name = g_strdup_printf("domain %s", name);
    t->dom = dom;
    qmp = sp_qmp_new(&t->parent, 0, error);
    if (!qmp)
        return NULL;
    return sp_guest_new(name, pid, qmp);
}

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
    return sp_libvirt_guest_new(dom, name, pid, error);
}

/**
 * sp_libvirt_domain_get_guest:
 * @pid: its QEMU process, found before (sp_libvirt_open_qemu())
 *
 * The running domain as an SpGuest, as sp_libvirt_get_guest(), for a
 * caller that holds the domain and knows its QEMU already.
 */
SpGuest *
sp_libvirt_domain_get_guest(SpLibvirtDomain *dom, pid_t pid, GError **error)
{
    if (virDomainRef(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return NULL;
    }
    return sp_libvirt_guest_new(dom->dom, dom->name, pid, error);
}

/**
 * sp_libvirt_open_guest:
 * @lv: (inout): the connection; opened on @uri when NULL, and left open
 * @uri: (nullable): libvirt's URI, NULL for the default
 *
 * Returns: the domain's guest, or NULL with the connection's or
 * sp_libvirt_get_guest()'s error.
 */
SpGuest *
sp_libvirt_open_guest(SpLibvirt **lv, const char *uri, const SpHost *host, const char *name,
                      GError **error)
{
    if (!*lv && !(*lv = sp_libvirt_open(uri, error)))
        return NULL;
    return sp_libvirt_get_guest(*lv, host, name, error);
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
    if (!sp_libvirt_check_conn(lv, error))
        return FALSE;
    if (virNodeSetMemoryParameters(lv->conn, params, (int)n, 0) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "%s: %s", lv->uri,
                    sp_libvirt_last_error());
        return FALSE;
    }
    return TRUE;
}

/* ------------------------------------------------------------- events */

void
sp_libvirt_event_loop_init(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        gvir_event_register();
        g_once_init_leave(&done, 1);
    }
}

static int
sp_libvirt_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                        void *opaque)
{
    SpLibvirt *lv = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN] = "";
    const char *name = virDomainGetName(dom);
    SpLibvirtEvent ev;

    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
        ev = SP_LIBVIRT_EVENT_STARTED;
        break;
    case VIR_DOMAIN_EVENT_STOPPED:
        ev = SP_LIBVIRT_EVENT_STOPPED;
        break;
    default:
        ev = SP_LIBVIRT_EVENT_OTHER;
        break;
    }
    if (virDomainGetUUIDString(dom, uuid) < 0)
        uuid[0] = '\0';
    if (lv->lifecycle && name)
        lv->lifecycle(name, uuid, ev, lv->user_data);
    return 0;
}

static void
sp_libvirt_on_close(virConnectPtr conn, int reason, void *opaque)
{
    SpLibvirt *lv = opaque;
    const char *why;

    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_EOF:
        why = "eof";
        break;
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        why = "keepalive";
        break;
    case VIR_CONNECT_CLOSE_REASON_CLIENT:
        why = "client";
        break;
    default:
        why = "error";
        break;
    }
    if (lv->closed)
        lv->closed(why, lv->user_data);
}

gboolean
sp_libvirt_watch(SpLibvirt *lv, SpLibvirtLifecycleFunc lifecycle, SpLibvirtClosedFunc closed,
                 gpointer user_data, GError **error)
{
    if (!sp_libvirt_check_conn(lv, error))
        return FALSE;
    sp_libvirt_unwatch(lv);
    lv->lifecycle = lifecycle;
    lv->closed = closed;
    lv->user_data = user_data;
    lv->lifecycle_id = virConnectDomainEventRegisterAny(
        lv->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(sp_libvirt_on_lifecycle), lv, NULL);
    if (lv->lifecycle_id < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot register for domain events: %s", lv->uri,
                    sp_libvirt_last_error());
        return FALSE;
    }
    if (virConnectRegisterCloseCallback(lv->conn, sp_libvirt_on_close, lv, NULL) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot register a close callback: %s", lv->uri,
                    sp_libvirt_last_error());
        sp_libvirt_unwatch(lv);
        return FALSE;
    }
    lv->close_registered = TRUE;
    /* A local connection sees libvirtd go (EOF); keepalive also catches a
     * hung one.  Not every driver has keepalive (qemu:///session over a
     * direct socket does); its absence is not an error. */
    virConnectSetKeepAlive(lv->conn, 5, 3);
    return TRUE;
}

void
sp_libvirt_unwatch(SpLibvirt *lv)
{
    if (!lv->conn)
        return;
    if (lv->lifecycle_id >= 0)
        virConnectDomainEventDeregisterAny(lv->conn, lv->lifecycle_id);
    lv->lifecycle_id = -1;
    if (lv->close_registered)
        virConnectUnregisterCloseCallback(lv->conn, sp_libvirt_on_close);
    lv->close_registered = FALSE;
    lv->lifecycle = NULL;
    lv->closed = NULL;
}

char *
sp_libvirt_get_xml(SpLibvirt *lv, const char *name, GError **error)
{
    virDomainPtr dom = sp_libvirt_lookup(lv, name, FALSE, error);
    char *xml, *copy;

    if (!dom)
        return NULL;
    xml = virDomainGetXMLDesc(dom, 0);
    virDomainFree(dom);
    if (!xml) {
        g_set_error(error, SP_LIBVIRT_ERROR, sp_libvirt_last_code(), "domain '%s': %s", name,
                    sp_libvirt_last_error());
        return NULL;
    }
    copy = g_strdup(xml);
    free(xml);
    return copy;
}
