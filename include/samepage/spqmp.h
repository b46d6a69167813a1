/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spqmp.h: a client for QEMU's monitor protocol (QMP)
 *
 * SpQmp talks to one QEMU through a transport.  A transport is one of two
 * kinds:
 *
 *  - a stream (a UNIX socket, sp_qmp_socket_connect()): bytes both ways.
 *    SpQmp frames the lines, checks the greeting, negotiates capabilities,
 *    numbers its commands with an "id", matches replies by id and skips
 *    (optionally records) asynchronous events;
 *  - a command transport (libvirt's virDomainQemuMonitorCommand()): one
 *    command in, its reply out.  The other side owns the connection, the
 *    greeting, the ids and the events; SpQmp only builds the command and
 *    checks the reply.
 *
 * Every command goes through sp_qmp_execute(); the typed commands
 * (spqmpcmd.h) are thin wrappers around it and around their parsers, which
 * take json-c objects or strings and can be tested on their own.  One SpQmp serves one thread
 * at a time; traffic is logged with g_debug() in the domain "samepage-qmp".
 */
#pragma once

#include <sys/types.h>
#include <glib.h>
#include <json-c/json.h>

#include "samepage/spjson.h"

G_BEGIN_DECLS

#define SP_QMP_ERROR (sp_qmp_error_quark())
GQuark sp_qmp_error_quark(void);

typedef enum {
    /* The connection */
    SP_QMP_ERROR_CONNECT,            /* cannot connect: no socket, nobody listening */
    SP_QMP_ERROR_IO,                 /* read or write failed */
    SP_QMP_ERROR_CLOSED,             /* the peer closed the connection */
    SP_QMP_ERROR_TIMEOUT,            /* no complete message in time */
    SP_QMP_ERROR_PROTOCOL,           /* not JSON, not a QMP greeting/reply/event */
    SP_QMP_ERROR_BAD_REPLY,          /* a command's result has the wrong type or text */
    /* QMP error classes (QapiErrorClass) of an {"error": ...} reply */
    SP_QMP_ERROR_GENERIC,            /* GenericError, and classes we do not know */
    SP_QMP_ERROR_COMMAND_NOT_FOUND,  /* CommandNotFound */
    SP_QMP_ERROR_DEVICE_NOT_ACTIVE,  /* DeviceNotActive */
    SP_QMP_ERROR_DEVICE_NOT_FOUND,   /* DeviceNotFound: e.g. qom-get of a missing object */
    SP_QMP_ERROR_KVM_MISSING_CAP,    /* KVMMissingCap */
} SpQmpErrorCode;

/* The code of an {"error": {"class": ...}} reply; unknown classes are GENERIC. */
SpQmpErrorCode sp_qmp_error_code_from_class(const char *klass);

#define SP_QMP_DEFAULT_TIMEOUT_MS 30000

/*
 * What a peer can make SpQmp hold: one message (a line, its "\r\n" not
 * counted) of at most SP_QMP_MAX_LINE bytes, refused before more of it is
 * buffered (json-c takes about 40 bytes per byte of a worst-case line of
 * small numbers, so about 80 MiB); recorded events up to SP_QMP_MAX_EVENTS
 * of them and SP_QMP_MAX_EVENT_BYTES of messages, the oldest dropped first.
 */
#define SP_QMP_MAX_LINE (2 * 1024 * 1024)
#define SP_QMP_MAX_EVENTS 1024
#define SP_QMP_MAX_EVENT_BYTES (1024 * 1024)

/* ---------------------------------------------------------------- transports */

typedef struct _SpQmpTransport SpQmpTransport;

/*
 * A transport implements either send + receive (a stream) or command.
 * @deadline is in g_get_monotonic_time() microseconds: an operation still
 * waiting then fails with SP_QMP_ERROR_TIMEOUT.  Errors need not name the
 * transport: SpQmp prefixes its name.
 */
typedef struct {
    /* Stream: write all @len bytes. */
    gboolean (*send)(SpQmpTransport *self, const char *data, gsize len,
                     gint64 deadline, GError **error);
    /* Stream: read what is available, at most @size bytes (at least one, waiting
     * for it); 0 means the peer closed the connection, -1 an error. */
    gssize (*receive)(SpQmpTransport *self, char *buf, gsize size,
                      gint64 deadline, GError **error);
    /* Command: send one command (JSON text without "id"), return the reply text. */
    char *(*command)(SpQmpTransport *self, const char *command,
                     gint64 deadline, GError **error);
    /* Close the connection and free the transport, @name included. */
    void (*free)(SpQmpTransport *self);
} SpQmpTransportOps;

/* Implementations embed this as their first member. */
struct _SpQmpTransport {
    const SpQmpTransportOps *ops;
    char *name;                 /* for messages: a socket path, "domain NAME" */
};

/* A stream transport on QEMU's `-qmp unix:PATH,server=on,wait=off`. */
SpQmpTransport *sp_qmp_socket_connect(const char *path, GError **error);

/* ---------------------------------------------------------------- the client */

typedef struct _SpQmp SpQmp;

SpQmp *sp_qmp_new(SpQmpTransport *transport, guint timeout_ms, GError **error);
SpQmp *sp_qmp_connect_unix(const char *path, guint timeout_ms, GError **error);
pid_t sp_qmp_get_peer_pid(const SpQmp *qmp);
void sp_qmp_free(SpQmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpQmp, sp_qmp_free)

const char *sp_qmp_get_name(const SpQmp *qmp);
void sp_qmp_set_timeout(SpQmp *qmp, guint timeout_ms);
gboolean sp_qmp_get_version(const SpQmp *qmp, guint *major, guint *minor, guint *micro);

json_object *sp_qmp_execute(SpQmp *qmp, const char *command, json_object *arguments,
                            GError **error);

/* ---------------------------------------------------------------- events */

typedef struct {
    char *name;                 /* "STOP", "RESUME", ... */
    gint64 seconds;             /* QEMU's timestamp; -1 if it sent none */
    gint64 microseconds;
    json_object *data;          /* NULL if the event has no data */
    gsize size;                 /* bytes of the message as received */
} SpQmpEvent;

void sp_qmp_event_free(SpQmpEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpQmpEvent, sp_qmp_event_free)

/* Keep events that arrive while waiting for replies (off by default). */
void sp_qmp_set_record_events(SpQmp *qmp, gboolean record);
GPtrArray *sp_qmp_take_events(SpQmp *qmp);

/* ---------------------------------------------------------------- parsers */

json_object *sp_qmp_parse_reply(const char *text, GError **error);

G_END_DECLS

/* The typed commands and their parsers (for the callers that used to find
 * them here). */
#include "samepage/spqmpcmd.h"
