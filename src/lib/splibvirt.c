/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * splibvirt.c: guests under libvirt
 *
 * libvirt owns each domain's QMP socket; commands go through
 * virDomainQemuMonitorCommand(), wrapped as an SpQmp "command" transport.
 * libvirt has no API for the QEMU pid: the process whose command line holds
 * "-uuid <domain uuid>" is it (libvirt always passes -uuid), found through
 * the host's procfs so tests can point it elsewhere.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-libvirt"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <string.h>

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

static pid_t
sp_libvirt_find_pid(const SpHost *host, const char *uuid)
{
    g_autofree char *proc = sp_host_procfs_path(host, "%s", "");
    g_autoptr(GDir) dir = g_dir_open(proc, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *path = NULL;
        g_autofree char *cmdline = NULL;
        gsize len;
        gint64 pid;

        if (!g_ascii_string_to_signed(name, 10, 1, G_MAXINT32, &pid, NULL))
            continue;
        path = g_build_filename(proc, name, "cmdline", NULL);
        if (g_file_get_contents(path, &cmdline, &len, NULL) &&
            sp_cmdline_has_uuid(cmdline, len, uuid))
            return (pid_t)pid;
    }
    return 0;
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
    pid = sp_libvirt_find_pid(host, uuid);
    if (!pid) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID,
                    "domain '%s' (uuid %s): no QEMU process with that uuid on this host "
                    "(a remote URI?)", name, uuid);
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
