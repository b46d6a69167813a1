/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guests.c: finding the guests a command names
 *
 * A guest is named by its libvirt domain name (over -c URI), or, for QEMU
 * without libvirt, by --qmp SOCKET: samepage's own QMP client, and the
 * QEMU pid from the socket's peer credentials.
 */
#include "config.h"

#include "cli.h"
#include "samepage/splibvirt.h"

SpGuest *
sp_cli_open_guest(const SpCliGlobal *global, SpLibvirt **lv, const SpHost *host,
                  const char *name, const char *qmp_socket, GError **error)
{
    if (qmp_socket) {
        SpQmp *qmp = sp_qmp_connect_unix(qmp_socket, 0, error);
        pid_t pid;

        if (!qmp)
            return NULL;
        pid = sp_qmp_get_peer_pid(qmp);
        if (pid <= 0) {
            g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS,
                        "%s: cannot tell which process serves this socket", qmp_socket);
            sp_qmp_free(qmp);
            return NULL;
        }
        return sp_guest_new(qmp_socket, pid, qmp);
    }
    if (!*lv && !(*lv = sp_libvirt_open(global->uri, error)))
        return NULL;
    return sp_libvirt_get_guest(*lv, host, name, error);
}
