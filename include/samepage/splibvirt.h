/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * splibvirt.h: guests under libvirt
 *
 * Connects by URI (NULL: libvirt's default; virConnectOpenAuth, read-only
 * if asked), tells whether a URI leads to this host or another one (from
 * its text, libvirt.conf's aliases and default, before connecting), lists
 * running QEMU domains, finds each one's QEMU pid and talks QMP to it
 * through virDomainQemuMonitorCommand() (libvirt owns the monitor socket;
 * using it marks the domain "tainted: custom-monitor"; a read-only
 * connection may not).  Another host's KSM knobs go through the node's
 * memory parameters.
 * The experiment runner and SpCleanup define, start, destroy and undefine
 * their clones and talk to their guest agents through SpLibvirtDomain.
 * This is the only place of libsamepage that calls libvirt.
 */
#pragma once

#include <glib.h>

#include "samepage/spguest.h"
#include "samepage/sphost.h"
#include "samepage/spksm.h"
#include "samepage/spprocess.h"

G_BEGIN_DECLS

#define SP_LIBVIRT_ERROR (sp_libvirt_error_quark())
GQuark sp_libvirt_error_quark(void);

typedef enum {
    SP_LIBVIRT_ERROR_CONNECT,      /* libvirtd not running, URI refused */
    SP_LIBVIRT_ERROR_NO_DOMAIN,    /* unknown domain */
    SP_LIBVIRT_ERROR_NOT_RUNNING,  /* the domain exists but is shut off */
    SP_LIBVIRT_ERROR_NO_PID,       /* its QEMU process was not found */
    SP_LIBVIRT_ERROR_FAILED,
    SP_LIBVIRT_ERROR_REFUSED,      /* only processes of other users carry its -uuid */
    SP_LIBVIRT_ERROR_AMBIGUOUS,    /* two processes of QEMU's users carry its -uuid */
    SP_LIBVIRT_ERROR_AGENT,        /* the guest agent is not connected or does not answer */
    SP_LIBVIRT_ERROR_BAD_URI,      /* neither a URI nor an alias of libvirt.conf */
    SP_LIBVIRT_ERROR_REMOTE,       /* the URI names another host: this needs the local one */
    SP_LIBVIRT_ERROR_READ_ONLY,    /* refused on a read-only connection */
} SpLibvirtErrorCode;

/* libvirt's virDomainState, under our name (the same values). */
typedef enum {
    SP_LIBVIRT_STATE_NOSTATE,
    SP_LIBVIRT_STATE_RUNNING,
    SP_LIBVIRT_STATE_BLOCKED,
    SP_LIBVIRT_STATE_PAUSED,
    SP_LIBVIRT_STATE_SHUTDOWN,
    SP_LIBVIRT_STATE_SHUTOFF,
    SP_LIBVIRT_STATE_CRASHED,
    SP_LIBVIRT_STATE_PMSUSPENDED,
} SpLibvirtState;

typedef struct _SpLibvirt SpLibvirt;

/* How to connect (sp_libvirt_open_full()). */
typedef enum {
    SP_LIBVIRT_OPEN_READONLY = 1 << 0,   /* virConnectOpenReadOnly's rights: look, change nothing */
    SP_LIBVIRT_OPEN_ASK = 1 << 1,        /* ask for credentials on the terminal (a CLI, not a daemon) */
} SpLibvirtOpenFlags;

SpLibvirt *sp_libvirt_open(const char *uri, GError **error);
SpLibvirt *sp_libvirt_open_full(const char *uri, SpLibvirtOpenFlags flags, GError **error);
gboolean sp_libvirt_is_readonly(const SpLibvirt *lv);
void sp_libvirt_free(SpLibvirt *lv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLibvirt, sp_libvirt_free)

const char *sp_libvirt_get_uri(const SpLibvirt *lv);
GStrv sp_libvirt_list_running(SpLibvirt *lv, GError **error);
SpGuest *sp_libvirt_get_guest(SpLibvirt *lv, const SpHost *host, const char *name,
                              GError **error);
/* sp_libvirt_get_guest() on *@lv, opened on @uri first if NULL (the caller
 * frees it): for a caller that may need no connection at all. */
SpGuest *sp_libvirt_open_guest(SpLibvirt **lv, const char *uri, const SpHost *host,
                               const char *name, GError **error);
gboolean sp_libvirt_has_nosharepages(SpLibvirt *lv, const char *name, gboolean *nosharepages,
                                     GError **error);

gboolean sp_cmdline_has_uuid(const char *cmdline, gsize len, const char *uuid);

GArray *sp_libvirt_qemu_owners(void);
pid_t sp_libvirt_find_qemu(const SpHost *host, const char *name, const char *uuid,
                           GArray *owners, GError **error);
SpProcess *sp_libvirt_open_qemu(const SpHost *host, const char *name, const char *uuid,
                                GArray *owners, GError **error);
SpProcess *sp_libvirt_open_qemu_pid(const SpHost *host, pid_t pid, const char *name,
                                    const char *uuid, GArray *owners, GError **error);

gboolean sp_libvirt_is_alive(SpLibvirt *lv);
gboolean sp_libvirt_reconnect(SpLibvirt *lv, GError **error);

/* One domain, by handle; it stays usable after sp_libvirt_free() of its
 * connection (libvirt counts references), but not across a reconnect:
 * look it up again then. */
typedef struct _SpLibvirtDomain SpLibvirtDomain;

void sp_libvirt_domain_free(SpLibvirtDomain *dom);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLibvirtDomain, sp_libvirt_domain_free)

SpLibvirtDomain *sp_libvirt_define_xml(SpLibvirt *lv, const char *xml, GError **error);
SpLibvirtDomain *sp_libvirt_lookup_uuid(SpLibvirt *lv, const char *uuid, GError **error);
const char *sp_libvirt_domain_get_name(const SpLibvirtDomain *dom);
const char *sp_libvirt_domain_get_uuid(const SpLibvirtDomain *dom);
gboolean sp_libvirt_start(SpLibvirtDomain *dom, GError **error);
gboolean sp_libvirt_destroy(SpLibvirtDomain *dom, GError **error);
gboolean sp_libvirt_undefine(SpLibvirtDomain *dom, GError **error);
gboolean sp_libvirt_is_active(SpLibvirtDomain *dom, GError **error);
gboolean sp_libvirt_get_state(SpLibvirtDomain *dom, SpLibvirtState *state, int *reason,
                              GError **error);
char *sp_libvirt_agent_command(SpLibvirtDomain *dom, const char *json, int timeout_s,
                               GError **error);
char *sp_libvirt_hmp_command(SpLibvirtDomain *dom, const char *command, GError **error);
SpGuest *sp_libvirt_domain_get_guest(SpLibvirtDomain *dom, pid_t pid, GError **error);

/* ------------------------------------------------- where a URI leads */

/* Whether a URI's hypervisor is this host's, as its text tells. */
typedef enum {
    SP_LIBVIRT_PLACE_LOCAL,    /* no host (or localhost), no network transport */
    SP_LIBVIRT_PLACE_REMOTE,   /* another host, or a transport such as ssh, tls, tcp */
} SpLibvirtPlace;

gboolean sp_libvirt_uri_classify(const char *uri, SpLibvirtPlace *place, char **why,
                                 GError **error);
gboolean sp_libvirt_conf_parse(const char *text, char **uri_default, GStrv *aliases,
                               GError **error);
char *sp_libvirt_conf_alias(const char *const *aliases, const char *name);
gboolean sp_libvirt_uri_resolve(const char *uri, const char *env_uri, const char *conf_text,
                                char **resolved, SpLibvirtPlace *place, char **why,
                                GError **error);
gboolean sp_libvirt_default_place(const char *uri, char **resolved, SpLibvirtPlace *place,
                                  char **why, GError **error);
gboolean sp_libvirt_check_local(SpLibvirt *lv, GError **error);

/* The host's KSM knobs and figures that libvirt passes
 * (virNodeGetMemoryParameters); the others are left unsupported. */
gboolean sp_libvirt_get_ksm(SpLibvirt *lv, SpKsmState *state, GError **error);

/* ------------------------------------------------- events (samepaged) */

/**
 * sp_libvirt_event_loop_init:
 *
 * Drives libvirt's events from the GLib main loop (libvirt-glib); call it
 * once, before sp_libvirt_open(), in a program that runs a GMainLoop on
 * the default context.
 */
void sp_libvirt_event_loop_init(void);

typedef enum {
    SP_LIBVIRT_EVENT_STARTED,
    SP_LIBVIRT_EVENT_STOPPED,
    SP_LIBVIRT_EVENT_OTHER,     /* suspended, resumed, defined ... */
} SpLibvirtEvent;

typedef void (*SpLibvirtLifecycleFunc)(const char *name, const char *uuid, SpLibvirtEvent event,
                                       gpointer user_data);
/* The connection closed (libvirtd stopped, keepalive timeout); @reason is
 * one word: "error", "eof", "keepalive", "client". */
typedef void (*SpLibvirtClosedFunc)(const char *reason, gpointer user_data);

/**
 * sp_libvirt_watch:
 *
 * Calls @lifecycle for every domain lifecycle event and @closed when the
 * connection drops (with keepalive probes every 5 s), from the main loop.
 * After sp_libvirt_reconnect() call it again.  sp_libvirt_unwatch(), a
 * reconnect and sp_libvirt_free() remove the callbacks.
 */
gboolean sp_libvirt_watch(SpLibvirt *lv, SpLibvirtLifecycleFunc lifecycle,
                          SpLibvirtClosedFunc closed, gpointer user_data, GError **error);
void sp_libvirt_unwatch(SpLibvirt *lv);

/* The domain's live XML (virDomainGetXMLDesc), as a GLib string. */
char *sp_libvirt_get_xml(SpLibvirt *lv, const char *name, GError **error);
gboolean sp_libvirt_set_ksm(SpLibvirt *lv, const SpKsmSetting *settings, gsize n,
                            GError **error);

G_END_DECLS
