/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-workload.c: bench-controller's workloads: the dupmem processes
 * with designed duplication (tests/integration/dupmem), spawned with an
 * argv and killed by pid.  Every child also gets SIGTERM should the bench
 * die (PR_SET_PDEATHSIG).
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bench-workload.h"

#define PAGES_PER_MIB 256u

static double
now_s(void)
{
    return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

void
bench_workload_init(BenchWorkload *w)
{
    w->children = g_array_new(FALSE, FALSE, sizeof(pid_t));
}

void
bench_workload_clear(BenchWorkload *w)
{
    bench_workload_kill(w);
    g_clear_pointer(&w->children, g_array_unref);
}

static void
child_setup(gpointer data)
{
    (void)data;
    /* the workload goes with the bench, however the bench goes */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

pid_t
bench_workload_spawn_dupmem(BenchWorkload *w, guint instance, char **ready, GError **error)
{
    guint64 pages = (guint64)w->mib * PAGES_PER_MIB;
    g_autofree char *a_pages = g_strdup_printf("--pages=%" G_GUINT64_FORMAT, pages);
    g_autofree char *a_cross = g_strdup_printf("--cross=%" G_GUINT64_FORMAT, pages / 2);
    g_autofree char *a_groups = g_strdup_printf("--groups=%" G_GUINT64_FORMAT, pages / 10 / 4);
    g_autofree char *a_zero = g_strdup_printf("--zero=%" G_GUINT64_FORMAT, pages / 20);
    g_autofree char *a_inst = g_strdup_printf("--instance=%u", instance);
    g_autofree char *a_ready = NULL;
    GPid pid;

    *ready = g_strdup_printf("%s/ready-%u", w->tmpdir, instance);
    g_unlink(*ready);
    a_ready = g_strdup_printf("--ready-file=%s", *ready);
    {
        char *argv[] = { (char *)w->dupmem, a_pages, a_cross, a_groups, (char *)"--group-size=4",
                         a_zero, (char *)"--volatile=0", a_inst, (char *)"--seed=7",
                         (char *)"--mergeable", a_ready, NULL };
        if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                           G_SPAWN_STDOUT_TO_DEV_NULL, child_setup, NULL, &pid, error))
            return 0;
    }
    g_array_append_val(w->children, pid);
    return pid;
}

gboolean
bench_workload_wait_ready(BenchWorkload *w, pid_t pid, const char *ready, GError **error)
{
    double t0 = now_s();

    while (!*w->interrupted && now_s() - t0 < 120) {
        g_autofree char *text = NULL;
        int status;

        if (g_file_get_contents(ready, &text, NULL, NULL) && atoi(text) == pid)
            return TRUE;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            for (guint i = 0; i < w->children->len; i++)
                if (g_array_index(w->children, pid_t, i) == pid)
                    g_array_remove_index(w->children, i);
            g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                        "dupmem %d exited before it was ready (status %d)", (int)pid, status);
            return FALSE;
        }
        w->wait(w->wait_data, 0.1);
    }
    g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "dupmem %d: %s", (int)pid,
                *w->interrupted ? "interrupted" : "not ready after 120 s");
    return FALSE;
}

gboolean
bench_workload_start_one(BenchWorkload *w, guint instance, GError **error)
{
    g_autofree char *ready = NULL;
    pid_t pid = bench_workload_spawn_dupmem(w, instance, &ready, error);

    return pid > 0 && bench_workload_wait_ready(w, pid, ready, error);
}

gboolean
bench_workload_is_child(const BenchWorkload *w, pid_t pid)
{
    for (guint j = 0; j < w->children->len; j++) {
        if (g_array_index(w->children, pid_t, j) == pid)
            return TRUE;
    }
    return FALSE;
}

void
bench_workload_kill(BenchWorkload *w)
{
    if (!w->children)
        return;
    for (guint i = 0; i < w->children->len; i++)
        kill(g_array_index(w->children, pid_t, i), SIGTERM);
    for (guint i = 0; i < w->children->len; i++) {
        pid_t pid = g_array_index(w->children, pid_t, i);
        double t0 = now_s();
        while (waitpid(pid, NULL, WNOHANG) == 0) {
            if (now_s() - t0 > 5) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                break;
            }
            g_usleep(20000);
        }
    }
    g_array_set_size(w->children, 0);
}
