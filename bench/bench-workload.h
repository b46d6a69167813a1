/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-workload.h: the processes bench-controller runs as its workloads,
 * started with an argv (never a shell) and stopped by pid.
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
    GArray *children;           /* pid_t: the workload's processes, alive */
} BenchWorkload;

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
/* SIGTERM, then SIGKILL after 5 s, each by pid; reaped. */
void bench_workload_kill(BenchWorkload *w);
