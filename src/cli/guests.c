/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guests.c: which host a command acts on, and finding the guests it names
 *
 * A command either acts on this host (its /sys/kernel/mm/ksm, /proc, the
 * memory of its QEMU processes) or through libvirt, on the host of the URI
 * (-c, else libvirt's default: $LIBVIRT_DEFAULT_URI, libvirt.conf's
 * uri_default).  A command of the first kind given a URI that leads to
 * another host says so and stops, before connecting; the table is in
 * samepage(1).
 *
 * A guest is named by its libvirt domain name, or, for QEMU without
 * libvirt, by --qmp SOCKET: samepage's own QMP client, and the QEMU pid
 * from the socket's peer credentials.
 */
#include "config.h"

#include <unistd.h>

#include "cli.h"
#include "samepage/splibvirt.h"

/*
 * Where the URI in effect leads, told without connecting: @global's -c,
 * else (@use_default) libvirt's default; without -c and !@use_default,
 * this host.  Prints the error and returns FALSE for a URI that is neither
 * a URI nor an alias.
 */
gboolean
sp_cli_uri_place(const SpCliGlobal *global, const char *command, gboolean use_default,
                 SpLibvirtPlace *place, char **uri, char **why)
{
    g_autoptr(GError) error = NULL;

    *uri = NULL;
    *why = NULL;
    *place = SP_LIBVIRT_PLACE_LOCAL;
    if (!global->uri && !use_default)
        return TRUE;
    if (!sp_libvirt_default_place(global->uri, uri, place, why, &error)) {
        sp_cli_error("%s: %s", command, error->message);
        return FALSE;
    }
    return TRUE;
}

/*
 * For a command that acts on this host: SP_EXIT_OK when the URI in effect
 * (see sp_cli_uri_place()) leads here; otherwise the error, naming the URI,
 * where it leads and @what the command needs of this host, and
 * SP_EXIT_USAGE.  Nothing is connected to.
 */
int
sp_cli_require_local(const SpCliGlobal *global, const char *command, gboolean use_default,
                     const char *what)
{
    g_autofree char *uri = NULL;
    g_autofree char *why = NULL;
    SpLibvirtPlace place;

    if (!sp_cli_uri_place(global, command, use_default, &place, &uri, &why))
        return SP_EXIT_USAGE;
    if (place == SP_LIBVIRT_PLACE_LOCAL)
        return SP_EXIT_OK;
    sp_cli_error("%s: %s is remote (%s), but %s %s on this host: run samepage "
                 "there, or give a local URI (-c qemu:///system)", command, uri, why, command,
                 what);
    return SP_EXIT_USAGE;
}

/*
 * With -r, a command that changes something stops here: SP_EXIT_USAGE and
 * the error, naming @change.
 */
int
sp_cli_refuse_readonly(const SpCliGlobal *global, const char *command, const char *change)
{
    if (!global->readonly)
        return SP_EXIT_OK;
    sp_cli_error("%s: -r/--readonly was given, and %s %s", command, command, change);
    return SP_EXIT_USAGE;
}

/*
 * The libvirt connection of -c (NULL: libvirt's default), read-only with
 * -r, asking for credentials when there is a terminal to ask on.  With
 * @need_local the URI libvirt connected to (an alias or the default
 * resolved) must lead to this host (SP_LIBVIRT_ERROR_REMOTE otherwise).
 */
SpLibvirt *
sp_cli_open_libvirt(const SpCliGlobal *global, gboolean need_local, GError **error)
{
    g_autoptr(SpLibvirt) lv = sp_libvirt_open_full(global->uri, sp_cli_libvirt_flags(global),
                                                   error);

    if (!lv || (need_local && !sp_libvirt_check_local(lv, error)))
        return NULL;
    return g_steal_pointer(&lv);
}

guint
sp_cli_libvirt_flags(const SpCliGlobal *global)
{
    guint flags = 0;

    if (global->readonly)
        flags |= SP_LIBVIRT_OPEN_READONLY;
    if (isatty(STDIN_FILENO))
        flags |= SP_LIBVIRT_OPEN_ASK;
    return flags;
}

SpGuest *
sp_cli_open_guest(const SpCliGlobal *global, SpLibvirt **lv, const SpHost *host,
                  const char *name, const char *qmp_socket, GError **error)
{
    if (qmp_socket)
        return sp_guest_open_qmp_socket(qmp_socket, error);
    if (!*lv && !(*lv = sp_cli_open_libvirt(global, TRUE, error)))
        return NULL;
    return sp_libvirt_get_guest(*lv, host, name, error);
}
