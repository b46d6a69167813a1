/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-workload.c: bench-controller's workloads: the dupmem processes
 * with designed duplication (tests/integration/dupmem), cloned guests
 * under plain QEMU (no libvirt) on qcow2 overlays of the cached image,
 * and a hog of unique memory; each spawned with an argv and killed by
 * pid.  Every child also gets SIGTERM should the bench die
 * (PR_SET_PDEATHSIG).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bench-workload.h"

#define PAGES_PER_MIB 256u
#define GUEST_READY_MARKER "SAMEPAGE-GUEST-READY"

static double
now_s(void)
{
    return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

static void
guest_free(gpointer data)
{
    BenchGuest *g = data;

    g_free(g->overlay);
    g_free(g->serial);
    g_free(g->log);
    g_free(g);
}

void
bench_workload_init(BenchWorkload *w)
{
    w->children = g_array_new(FALSE, FALSE, sizeof(pid_t));
    w->guests = g_ptr_array_new_with_free_func(guest_free);
}

void
bench_workload_clear(BenchWorkload *w)
{
    bench_workload_kill(w);
    g_clear_pointer(&w->children, g_array_unref);
    g_clear_pointer(&w->guests, g_ptr_array_unref);
}

static void
child_setup(gpointer data)
{
    const int *log_fd = data;

    /* the workload goes with the bench, however the bench goes */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (log_fd && *log_fd >= 0) {
        dup2(*log_fd, STDOUT_FILENO);
        dup2(*log_fd, STDERR_FILENO);
    }
}

static void
forget_child(BenchWorkload *w, pid_t pid)
{
    for (guint i = 0; i < w->children->len; i++) {
        if (g_array_index(w->children, pid_t, i) == pid) {
            g_array_remove_index(w->children, i);
            return;
        }
    }
}

/* SIGTERM, then SIGKILL after 5 s; reaped. */
static void
stop_pid(pid_t pid)
{
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

static gboolean
wait_ready_for(BenchWorkload *w, pid_t pid, const char *ready, double timeout, GError **error)
{
    double t0 = now_s();

    while (!*w->interrupted && now_s() - t0 < timeout) {
        g_autofree char *text = NULL;
        int status;

        if (g_file_get_contents(ready, &text, NULL, NULL) && atoi(text) == pid)
            return TRUE;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            forget_child(w, pid);
            if (pid == w->hog)
                w->hog = 0;
            g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                        "dupmem %d exited before it was ready (status %d)", (int)pid, status);
            return FALSE;
        }
        w->wait(w->wait_data, 0.1);
    }
    g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "dupmem %d: %s", (int)pid,
                *w->interrupted ? "interrupted" : "not ready in time");
    return FALSE;
}

gboolean
bench_workload_wait_ready(BenchWorkload *w, pid_t pid, const char *ready, GError **error)
{
    return wait_ready_for(w, pid, ready, 120, error);
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
    if (w->hog > 0)
        kill(w->hog, SIGTERM);
    for (guint i = 0; i < w->children->len; i++)
        stop_pid(g_array_index(w->children, pid_t, i));
    g_array_set_size(w->children, 0);
    if (w->hog > 0)
        stop_pid(w->hog);
    w->hog = 0;
    for (guint i = 0; i < w->guests->len; i++) {
        BenchGuest *g = w->guests->pdata[i];
        g_unlink(g->overlay);
        g_unlink(g->serial);
        g_unlink(g->log);
    }
    g_ptr_array_set_size(w->guests, 0);
}

void
bench_workload_kill_hog(BenchWorkload *w)
{
    if (w->hog <= 0)
        return;
    kill(w->hog, SIGTERM);
    stop_pid(w->hog);
    w->hog = 0;
}

/* ------------------------------------------------------------ guests */

char *
bench_workload_image_dir(const char *srcdir, char **why)
{
    const char *env = g_getenv("SAMEPAGE_IMAGE_DIR");
    g_autofree char *dir = env && *env ? g_strdup(env)
                                       : g_build_filename(srcdir, "vm-images", "cache", NULL);
    const char *const files[] = { "base.qcow2", "vmlinuz", "initrd.img" };
    const char *const tools[] = { "qemu-system-x86_64", "qemu-img" };

    for (guint i = 0; i < G_N_ELEMENTS(tools); i++) {
        g_autofree char *path = g_find_program_in_path(tools[i]);
        if (!path) {
            *why = g_strdup_printf("%s is not installed (build-aux/setup installs it)", tools[i]);
            return NULL;
        }
    }
    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(dir, files[i], NULL);
        if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
            *why = g_strdup_printf("no guest image: %s is missing (vm-images/build-image makes "
                                   "it; SAMEPAGE_IMAGE_DIR names another cache)", path);
            return NULL;
        }
    }
    return g_steal_pointer(&dir);
}

BenchGuest *
bench_workload_start_guest(BenchWorkload *w, const char *image_dir, guint index, guint mib,
                           GError **error)
{
    g_autofree char *base = g_build_filename(image_dir, "base.qcow2", NULL);
    g_autofree char *kernel = g_build_filename(image_dir, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(image_dir, "initrd.img", NULL);
    g_autofree char *name = g_strdup_printf("bench-guest-%u", index);
    g_autofree char *a_mem = g_strdup_printf("memory-backend-ram,id=pc.ram,size=%uM", mib);
    g_autofree char *a_m = g_strdup_printf("%u", mib);
    g_autofree char *a_drive = NULL, *a_serial = NULL, *img_err = NULL;
    const char *accel = g_strcmp0(g_getenv("SP_ACCEL"), "kvm") == 0 ? "kvm" : "tcg";
    BenchGuest *g = g_new0(BenchGuest, 1);
    int status = 0, fd;
    GPid pid;

    g->index = index;
    g->ready = -1;
    g->overlay = g_strdup_printf("%s/%s.qcow2", w->tmpdir, name);
    g->serial = g_strdup_printf("%s/%s.serial", w->tmpdir, name);
    g->log = g_strdup_printf("%s/%s.log", w->tmpdir, name);
    /* in the list at once: whatever happens next, kill() deletes its files */
    g_ptr_array_add(w->guests, g);
    {
        char *argv[] = { (char *)"qemu-img", (char *)"create", (char *)"-q", (char *)"-f",
                         (char *)"qcow2", (char *)"-b", base, (char *)"-F", (char *)"qcow2",
                         g->overlay, NULL };
        if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                          NULL, NULL, NULL, &img_err, &status, error))
            return NULL;
        if (!g_spawn_check_wait_status(status, NULL)) {
            g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                        "qemu-img cannot create the overlay %s: %s", g->overlay,
                        g_strstrip(img_err));
            return NULL;
        }
    }
    a_drive = g_strdup_printf("file=%s,if=virtio,format=qcow2", g->overlay);
    a_serial = g_strdup_printf("file:%s", g->serial);
    fd = open(g->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", g->log,
                    g_strerror(e));
        return NULL;
    }
    {
        /* vm-images/qemu-args' machine, without the sockets */
        char *argv[] = { (char *)"qemu-system-x86_64", (char *)"-name", name,
                         (char *)"-no-user-config", (char *)"-nodefaults", (char *)"-display",
                         (char *)"none", (char *)"-accel", (char *)accel, (char *)"-machine",
                         (char *)"pc,memory-backend=pc.ram", (char *)"-object", a_mem,
                         (char *)"-m", a_m, (char *)"-smp", (char *)"1", (char *)"-kernel",
                         kernel, (char *)"-initrd", initrd, (char *)"-append",
                         (char *)"root=/dev/vda rw console=ttyS0", (char *)"-drive", a_drive,
                         (char *)"-serial", a_serial, NULL };
        gboolean ok = g_spawn_async(NULL, argv, NULL, G_SPAWN_SEARCH_PATH |
                                    G_SPAWN_DO_NOT_REAP_CHILD, child_setup, &fd, &pid, error);
        close(fd);
        if (!ok)
            return NULL;
    }
    g->pid = pid;
    g->started = now_s();
    g_array_append_val(w->children, pid);
    return g;
}

gboolean
bench_workload_poll_guests(BenchWorkload *w, guint *n_ready, GError **error)
{
    *n_ready = 0;
    for (guint i = 0; i < w->guests->len; i++) {
        BenchGuest *g = w->guests->pdata[i];
        g_autofree char *text = NULL;
        gsize len = 0;
        int status;

        if (g->ready < 0 && g_file_get_contents(g->serial, &text, &len, NULL) &&
            g_strstr_len(text, (gssize)len, GUEST_READY_MARKER))
            g->ready = now_s();
        if (g->ready >= 0)
            (*n_ready)++;
        if (g->pid > 0 && waitpid(g->pid, &status, WNOHANG) == g->pid) {
            g_autofree char *log = NULL;
            forget_child(w, g->pid);
            g->pid = 0;
            g_file_get_contents(g->log, &log, NULL, NULL);
            g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                        "guest %u: QEMU exited (status %d)%s%s", g->index, status,
                        log && *log ? ": " : "", log ? g_strstrip(log) : "");
            return FALSE;
        }
    }
    return TRUE;
}

/* ------------------------------------------------------------ the hog */

gboolean
bench_workload_start_hog(BenchWorkload *w, guint64 pages, GError **error)
{
    g_autofree char *ready = g_strdup_printf("%s/ready-hog", w->tmpdir);
    g_autofree char *a_pages = g_strdup_printf("--pages=%" G_GUINT64_FORMAT, pages);
    g_autofree char *a_ready = g_strdup_printf("--ready-file=%s", ready);
    /* every page unique (a tag and a stream of its own), none zero, and
     * no --mergeable: KSM never sees it */
    char *argv[] = { (char *)w->dupmem, a_pages, (char *)"--cross=0", (char *)"--groups=0",
                     (char *)"--zero=0", (char *)"--volatile=0", (char *)"--instance=4242",
                     (char *)"--seed=99", a_ready, NULL };
    GPid pid;

    g_unlink(ready);
    if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                       child_setup, NULL, &pid, error))
        return FALSE;
    w->hog = pid;
    if (!wait_ready_for(w, pid, ready, 600, error)) {
        g_prefix_error(error, "the hog: ");
        return FALSE;
    }
    return TRUE;
}
