/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-workload.h: the processes bench-controller runs as its workloads,
 * started with an argv (never a shell) and stopped by pid: dupmem
 * processes with designed duplication, cloned guests under plain QEMU
 * (qcow2 overlays on the cached guest image), and a memory hog.
 *
 * A BenchWorkload keeps the pids of everything it started; the caller
 * runs its main loop through @wait while a start is awaited, so signals
 * and the controller's ticks go on meanwhile, and sets *@interrupted to
 * stop waiting.
 */
#pragma once

#include <sys/types.h>

#include <glib.h>

typedef struct {
    /* the caller's */
    const char *dupmem;         /* tests/integration/dupmem */
    const char *tmpdir;         /* ready files */
    guint mib;                  /* per dupmem process */
    const gboolean *interrupted;
    void (*wait)(gpointer data, double seconds);
    gpointer wait_data;
    /* state */
    GArray *children;           /* pid_t: the workload's processes, alive (guests' QEMU too) */
    GPtrArray *guests;          /* BenchGuest */
    pid_t hog;                  /* 0: none */
} BenchWorkload;

typedef struct {
    guint index;
    pid_t pid;                  /* QEMU; 0 once gone */
    char *overlay;              /* qcow2 on the image's base.qcow2, deleted at the end */
    char *serial;               /* ttyS0, where readiness shows */
    char *log;                  /* QEMU's own output */
    double started;             /* monotonic seconds */
    double ready;               /* monotonic seconds; < 0: booting */
} BenchGuest;

void bench_workload_init(BenchWorkload *w);
void bench_workload_clear(BenchWorkload *w);

/* dupmem number @instance, --mib MiB with the bench's designed duplication;
 * *@ready: the file its pid appears in once it is ready.  0 on failure. */
pid_t bench_workload_spawn_dupmem(BenchWorkload *w, guint instance, char **ready,
                                  GError **error);
/* Until @ready holds @pid (120 s at most); a process that exits first is
 * forgotten and reported. */
gboolean bench_workload_wait_ready(BenchWorkload *w, pid_t pid, const char *ready,
                                   GError **error);
/* Both of the above. */
gboolean bench_workload_start_one(BenchWorkload *w, guint instance, GError **error);
gboolean bench_workload_is_child(const BenchWorkload *w, pid_t pid);
/* SIGTERM, then SIGKILL after 5 s, each by pid; reaped.  The guests'
 * overlays and logs are deleted, the hog killed too. */
void bench_workload_kill(BenchWorkload *w);

/* The cached guest image: $SAMEPAGE_IMAGE_DIR, else @srcdir/vm-images/cache,
 * with base.qcow2, vmlinuz and initrd.img, and QEMU installed.  NULL, with
 * *@why set, when something is missing. */
char *bench_workload_image_dir(const char *srcdir, char **why);
/* Guest @index: an overlay in the tmpdir, then QEMU (TCG unless
 * $SP_ACCEL=kvm, @mib MiB of RAM, QEMU's default mem-merge=on: the RAM is
 * registered with KSM) with the argv the integration tests use
 * (vm-images/qemu-args).  It boots in the background. */
BenchGuest *bench_workload_start_guest(BenchWorkload *w, const char *image_dir, guint index,
                                       guint mib, GError **error);
/* Notes which guests are ready (SAMEPAGE-GUEST-READY on their serial
 * console); FALSE when a QEMU exited.  *@n_ready: the guests ready. */
gboolean bench_workload_poll_guests(BenchWorkload *w, guint *n_ready, GError **error);
/* A dupmem of @pages unique, non-zero pages, never registered with KSM,
 * written before this returns (600 s at most). */
gboolean bench_workload_start_hog(BenchWorkload *w, guint64 pages, GError **error);
/* The hog alone, by pid (the pressure released). */
void bench_workload_kill_hog(BenchWorkload *w);
