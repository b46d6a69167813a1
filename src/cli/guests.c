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
    if (qmp_socket)
        return sp_guest_open_qmp_socket(qmp_socket, error);
    return sp_libvirt_open_guest(lv, global->uri, host, name, error);
}
