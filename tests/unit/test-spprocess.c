/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spprocess.c: processes held by a pidfd, with real child processes
 */
#include "config.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "samepage/spprocess.h"
#include "sptest.h"

static pid_t
spawn_sleeper(void)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

/* A child that has exited and been reaped: its pid is free for the kernel
 * to give to anyone.  A signal through the pidfd fails with GONE (ESRCH);
 * nothing else is signalled. */
static void
test_signal_after_exit(void **state)
{
    pid_t pid = spawn_sleeper();
    g_autoptr(GError) error = NULL;
    g_autoptr(SpProcess) proc = sp_process_open(pid, &error);
    int status;

    assert_non_null(proc);
    assert_int_equal(sp_process_get_pid(proc), pid);
    assert_false(sp_process_has_exited(proc));
    /* Signal 0 checks that it can be signalled. */
    assert_true(sp_process_signal(proc, 0, &error));

    assert_true(sp_process_signal(proc, SIGKILL, &error));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(sp_process_has_exited(proc));

    assert_false(sp_process_signal(proc, SIGTERM, &error));
    assert_true(g_error_matches(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_GONE));
    assert_non_null(strstr(error->message, "No such process"));
    g_clear_error(&error);
    /* Stopping what has exited is done at once. */
    assert_true(sp_process_stop(proc, 10, 10, &error));
}

/* SIGTERM ignored: SIGKILL follows; the child is gone at the end. */
static void
test_stop(void **state)
{
    pid_t pid = fork();
    g_autoptr(GError) error = NULL;
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGTERM, SIG_IGN);
        for (;;)
            pause();
    }
    g_usleep(50 * 1000);   /* let it ignore SIGTERM */
    g_autoptr(SpProcess) proc = sp_process_open(pid, &error);
    assert_non_null(proc);
    assert_true(sp_process_stop(proc, 200, 2000, &error));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void
test_open_errors(void **state)
{
    pid_t pid = spawn_sleeper();
    g_autoptr(GError) error = NULL;
    int status;

    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* Reaped: no such process (unless the kernel gave the pid away since,
     * which it does not do at once). */
    assert_null(sp_process_open(pid, &error));
    assert_true(g_error_matches(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_GONE));
    g_clear_error(&error);
    assert_null(sp_process_open(0, &error));
    assert_true(g_error_matches(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_FAILED));
}

static void
test_parse_status(void **state)
{
    SpProcessStatus st;
    g_autoptr(GError) error = NULL;

    assert_true(sp_process_parse_status("Name:\tqemu-system-x86\nUmask:\t0002\nState:\tS "
                                        "(sleeping)\nTgid:\t4242\nPid:\t4242\nPPid:\t1\n"
                                        "Uid:\t64055\t64055\t64055\t64055\nGid:\t107\t107\t107"
                                        "\t107\n", &st, &error));
    assert_int_equal(st.ppid, 1);
    assert_int_equal(st.uid[0], 64055);
    assert_int_equal(st.uid[3], 64055);

    const char *bad[] = { "Name:\tx\nPPid:\t1\n", "Uid:\t0\t0\t0\t0\n", "PPid:\t1\nUid:\t0\t0\n",
                          "PPid:\tone\nUid:\t0\t0\t0\t0\n", "PPid:\t1\nUid:\t0\t-1\t0\t0\n", "" };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        assert_false(sp_process_parse_status(bad[i], &st, &e));
        assert_true(g_error_matches(e, SP_PROCESS_ERROR, SP_PROCESS_ERROR_PARSE));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_after_exit),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_parse_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
