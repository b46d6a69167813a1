/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * samepage-hook.c: the libvirt QEMU hook, installed as
 * $(libvirthookdir)/qemu.d/samepage
 *
 *   samepage DOMAIN OPERATION SUBOP EXTRA < domain.xml
 *
 * Tells samepaged about a guest's prepare, start, stop and release (see
 * hook.h) and exits at once; never calls back into libvirt.  Exit status 0,
 * except 1 at prepare/begin for a guest with merge="required" when
 * samepaged cannot be reached.  Messages go to stderr, which libvirtd logs.
 *
 * Environment (tests): SAMEPAGE_SOCKET names the control socket,
 * SAMEPAGE_RUNDIR replaces /run, SAMEPAGE_CONFIG replaces the configuration
 * file (whose [daemon] socket is read when it is readable).
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "hook.h"

#ifndef SP_HOOK_CONFIG_FILE
#define SP_HOOK_CONFIG_FILE "/etc/samepage/samepaged.conf"
#endif

int
main(int argc, char **argv)
{
    gint64 deadline = g_get_monotonic_time() + SP_HOOK_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
    const char *domain, *operation, *phase, *config_file;
    g_autoptr(GKeyFile) config = NULL;
    g_autoptr(SpDomainPolicy) policy = NULL;
    g_autoptr(GError) policy_error = NULL;
    g_autoptr(GError) daemon_error = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *socket_path = NULL;
    g_autofree char *line = NULL;
    g_autofree char *reply = NULL;
    g_autofree char *refusal = NULL;
    g_autofree char *message = NULL;
    gboolean delivered = FALSE;
    SpHookAction action;
    int status;

    if (argc < 4) {
        fprintf(stderr, "samepage: usage: %s DOMAIN OPERATION SUBOP [EXTRA] "
                "(a libvirt QEMU hook; the domain XML on stdin)\n", argv[0]);
        return 0;
    }
    domain = argv[1];
    operation = argv[2];
    phase = argv[3];
    if (!sp_hook_action(operation, phase, &action))
        return 0;       /* not ours: stdin unread, libvirt copes */

    if (action.read_xml) {
        if (sp_hook_read_fd(STDIN_FILENO, SP_POLICY_XML_MAX, deadline, &xml, &policy_error))
            policy = sp_domain_policy_from_xml(xml, &policy_error);
    }

    config_file = g_getenv("SAMEPAGE_CONFIG");
    if (!config_file || !*config_file)
        config_file = SP_HOOK_CONFIG_FILE;
    config = g_key_file_new();
    if (!g_key_file_load_from_file(config, config_file, G_KEY_FILE_NONE, NULL))
        g_clear_pointer(&config, g_key_file_unref);   /* absent or unreadable: defaults */
    socket_path = sp_hook_socket_path(g_getenv("SAMEPAGE_SOCKET"), config,
                                      g_getenv("SAMEPAGE_RUNDIR"));

    if (action.forward) {
        line = sp_hook_request_line(domain, policy ? policy->uuid : NULL, operation, phase);
        gboolean sent;

        if (sp_hook_talk(socket_path, line, deadline, action.reply_ms, &sent, &reply,
                         &daemon_error))
            delivered = sp_hook_parse_reply(reply, &refusal);
    }
    status = sp_hook_verdict(&action, domain, policy,
                             policy_error ? policy_error->message : NULL, delivered,
                             daemon_error ? daemon_error->message : refusal,
                             socket_path, &message);
    if (message)
        fprintf(stderr, "%s\n", message);
    return status;
}
