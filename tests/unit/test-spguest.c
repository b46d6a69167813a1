/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SpGuest: regions placed from a recorded QMP transcript and a fake /proc,
 * ksm_stat parsing, and libvirt's pid lookup by -uuid.  SpLibvirt's
 * domains and connection on libvirt's in-process test driver.
 */
#include "config.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "samepage/spguest.h"
#include "samepage/spksm.h"
#include "samepage/splibvirt.h"
#include "../../src/lib/guest/spguestpriv.h"
#include "sptest.h"
#include "spqmpreplay.h"

static void
test_regions_numa(void **state)
{
    g_autofree char *proc = sp_test_data_path("proc/guest-numa");
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_autoptr(SpGuest) g = sp_guest_new("g1", 4242, replay_qmp("qmp/query-memdev-numa.txt"));
    g_autoptr(GError) error = NULL;
    const SpGuestRegion *node0, *mem1;

    assert_true(sp_guest_load_regions(g, host, &error));
    assert_int_equal(sp_guest_get_regions(g)->len, 2);
    node0 = sp_guest_find_region(g, "ram-node0");
    mem1 = sp_guest_find_region(g, "mem1");
    assert_non_null(node0);
    assert_non_null(mem1);
    /* Placed by QEMU's gpa2hva answers, not by size: the decoy 64 MiB VMA
     * below mem1 is left alone. */
    assert_int_equal(node0->hva, 0x7fb32be00000ULL);
    assert_int_equal(mem1->hva, 0x7fb327c00000ULL);
    assert_int_equal(node0->size, 512ULL << 20);
    assert_true(node0->merge);
    /* QEMU says merge=false, the kernel still scans it: both are shown. */
    assert_false(mem1->merge);
    assert_true(mem1->vma_mergeable);
    assert_int_equal(node0->backing, SP_BACKING_ANON_PRIVATE);
    assert_int_equal(node0->vma->ksm_kb, 40960);
    assert_int_equal(node0->vma->anon_huge_kb, 65536);
    assert_int_equal(node0->node_pages->len, 2);
    assert_int_equal(g_array_index(node0->node_pages, guint64, 0), 30000);
    assert_int_equal(g_array_index(node0->node_pages, guint64, 1), 2768);
}

static void
test_regions_gone(void **state)
{
    g_autofree char *proc = sp_test_data_path("proc/guest-numa");
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_autoptr(SpGuest) g = sp_guest_new("g2", 4243, replay_qmp("qmp/query-memdev-numa.txt"));
    g_autoptr(GError) error = NULL;

    /* QEMU answered, but its process is not in /proc (it died meanwhile). */
    assert_false(sp_guest_load_regions(g, host, &error));
    assert_true(g_error_matches(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS));
    assert_non_null(strstr(error->message, "g2"));
    assert_non_null(strstr(error->message, "4243"));
}

/* A backend as sp_guest_load_regions() leaves it: placed on the VMA
 * [start, end) at @hva, or not placed (end 0). */
static SpGuestRegion *
region(const char *id, guint64 size, guint64 hva, guint64 start, guint64 end, const char *perms)
{
    SpGuestRegion *r = g_new0(SpGuestRegion, 1);

    r->id = g_strdup(id);
    r->size = size;
    if (end) {
        r->hva = hva;
        r->vma = g_new0(SpVma, 1);
        r->vma->start = start;
        r->vma->end = end;
        g_strlcpy(r->vma->perms, perms, sizeof(r->vma->perms));
        r->vma->path = g_strdup("");
        r->vma->vmflags = g_new0(char *, 1);
    }
    return r;
}

/* The guest RAM as one VMA of its own (what the experiment's census
 * covers): the only placed backend of the guest's size, on exactly it. */
static void
test_ram_vma(void **state)
{
    g_autoptr(GPtrArray) regions = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_region_free);
    guint64 mib = 1 << 20, s = 0, e = 0;
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;

    g_ptr_array_add(regions, region("mem1", 64 * mib, 0x1000000, 0x1000000, 0x1000000 + 64 * mib,
                                    "rw-p"));
    g_ptr_array_add(regions, region("pc.ram", 512 * mib, 0x7f0000000000, 0x7f0000000000,
                                    0x7f0000000000 + 512 * mib, "rw-p"));
    assert_true(sp_guest_pick_ram_vma(regions, 512 * mib, &s, &e, NULL));
    assert_true(s == 0x7f0000000000 && e == 0x7f0000000000 + 512 * mib);
    /* A backend of that size that was not placed does not count. */
    s = e = 0;
    g_ptr_array_add(regions, region("dimm0", 512 * mib, 0, 0, 0, ""));
    assert_true(sp_guest_pick_ram_vma(regions, 512 * mib, &s, &e, NULL));
    assert_true(s == 0x7f0000000000);
    /* The address inside a VMA that is not the RAM's own. */
    g_autoptr(GPtrArray) inside = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_region_free);
    g_ptr_array_add(inside, region("mem1", 64 * mib, 0x1000000 + 4096, 0x1000000,
                                   0x1000000 + 64 * mib, "rw-p"));
    assert_false(sp_guest_pick_ram_vma(inside, 64 * mib, &s, &e, &e1));
    assert_non_null(strstr(e1->message, "not a VMA of its own"));
    /* Nothing placed of that size. */
    g_autoptr(GPtrArray) none = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_region_free);
    g_ptr_array_add(none, region("pc.ram", 512 * mib, 0, 0, 0, ""));
    assert_false(sp_guest_pick_ram_vma(none, 512 * mib, &s, &e, &e2));
    assert_non_null(strstr(e2->message, "no VMA holds the guest RAM"));
    /* Two candidates by size: ambiguous. */
    g_ptr_array_add(regions, region("mem2", 512 * mib, 0x7f8000000000, 0x7f8000000000,
                                    0x7f8000000000 + 512 * mib, "rw-p"));
    assert_false(sp_guest_pick_ram_vma(regions, 512 * mib, &s, &e, &e3));
    assert_non_null(strstr(e3->message, "2 memory backends"));
}

static void
test_ksm_stat(void **state)
{
    g_autofree char *proc = sp_test_data_path("proc/guest-numa");
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_autoptr(GError) error = NULL;
    SpKsmStat k;

    assert_true(sp_ksm_stat_read(host, 4242, &k, &error));
    assert_int_equal(k.ksm_rmap_items, 34816);
    assert_int_equal(k.ksm_zero_pages, 12);
    assert_int_equal(k.ksm_merging_pages, 10496);
    assert_int_equal(k.ksm_process_profit, 40763392);
    assert_int_equal(k.ksm_merge_any, 0);
    assert_int_equal(k.ksm_mergeable, 1);

    /* An older kernel: no zero pages line, no yes/no lines. */
    assert_true(sp_proc_parse_ksm_stat("ksm_rmap_items 5\nksm_merging_pages 2\n", &k, &error));
    assert_int_equal(k.ksm_zero_pages, -1);
    assert_int_equal(k.ksm_merge_any, -1);
    assert_int_equal(k.ksm_merging_pages, 2);

    const char *bad[] = { "ksm_rmap_items lots\n", "ksm_merge_any: maybe\n", "justoneword\n" };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        assert_false(sp_proc_parse_ksm_stat(bad[i], &k, &e));
        assert_non_null(e);
    }
    assert_false(sp_ksm_stat_read(host, 999, &k, &error));
    assert_true(g_error_matches(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS));
}

/* The JSON of `samepage regions --json` and `samepage list --json` for the
 * guest of tests/data/proc/guest-numa: every field from QMP, smaps and
 * numa_maps, in the order printed. */
static void
test_regions_json(void **state)
{
    g_autofree char *proc = sp_test_data_path("proc/guest-numa");
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_autoptr(SpGuest) g = sp_guest_new("g1", 4242, replay_qmp("qmp/query-memdev-numa.txt"));
    g_autoptr(GError) error = NULL;
    SpKsmStat k;
    guint64 ram;
    guint nr, nm;

    assert_true(sp_guest_load_regions(g, host, &error));
    assert_true(sp_ksm_stat_read(host, 4242, &k, &error));
    g_autoptr(json_object) o = sp_guest_regions_to_json(g, &k);
    g_autoptr(json_object) node0 = sp_guest_region_to_json(sp_guest_find_region(g, "ram-node0"));
    assert_string_equal(json_object_to_json_string_ext(node0, JSON_C_TO_STRING_PLAIN),
        "{\"id\":\"ram-node0\",\"size_bytes\":536870912,\"merge\":true,\"share\":false,"
        "\"policy\":\"default\",\"host_nodes\":[],\"hva\":\"0x7fb32be00000\","
        "\"hva_end\":\"0x7fb34be00000\",\"vmflags\":\"rd wr mr mw me dc ac hg mg\","
        "\"mergeable\":true,\"backing\":\"anonymous\",\"rss_kib\":131072,"
        "\"anon_huge_kib\":65536,\"ksm_kib\":40960,\"swap_kib\":0,\"locked_kib\":0,"
        "\"node_pages\":[30000,2768]}");
    assert_string_equal(json_object_get_string(json_object_object_get(o, "domain")), "g1");
    assert_int_equal(json_object_get_int(json_object_object_get(o, "pid")), 4242);
    json_object *regions = json_object_object_get(o, "regions");
    assert_int_equal(json_object_array_length(regions), 2);
    for (guint i = 0; i < 2; i++) {
        json_object *r = json_object_array_get_idx(regions, i);
        const SpGuestRegion *want = g_ptr_array_index(sp_guest_get_regions(g), i);
        assert_string_equal(json_object_get_string(json_object_object_get(r, "id")), want->id);
    }
    assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "ksm_stat"),
                                                       JSON_C_TO_STRING_PLAIN),
                        "{\"ksm_rmap_items\":34816,\"ksm_zero_pages\":12,"
                        "\"ksm_merging_pages\":10496,\"ksm_process_profit\":40763392}");

    /* A backend with no host mapping found: hva null, nothing of a VMA. */
    SpGuestRegion lone = { .id = (char *)"dimm1", .size = 1 << 20, .merge = TRUE };
    g_autoptr(json_object) l = sp_guest_region_to_json(&lone);
    assert_string_equal(json_object_to_json_string_ext(l, JSON_C_TO_STRING_PLAIN),
                        "{\"id\":\"dimm1\",\"size_bytes\":1048576,\"merge\":true,\"share\":false,"
                        "\"policy\":null,\"host_nodes\":[],\"hva\":null}");

    /* list: 576 MiB in two backends, both scanned by the kernel. */
    sp_guest_get_summary(g, &ram, &nr, &nm);
    assert_int_equal(ram, 576ULL << 20);
    assert_int_equal(nr, 2);
    assert_int_equal(nm, 2);
    g_autoptr(json_object) sum = sp_guest_summary_to_json(g, &k);
    assert_string_equal(json_object_to_json_string_ext(sum, JSON_C_TO_STRING_PLAIN),
                        "{\"domain\":\"g1\",\"pid\":4242,\"ram_bytes\":603979776,\"regions\":2,"
                        "\"regions_marked\":2,\"ksm_stat\":{\"ksm_rmap_items\":34816,"
                        "\"ksm_zero_pages\":12,\"ksm_merging_pages\":10496,"
                        "\"ksm_process_profit\":40763392}}");

    /* Before its regions are loaded a guest has none. */
    g_autoptr(SpGuest) empty = sp_guest_new("g0", 1, NULL);
    sp_guest_get_summary(empty, &ram, &nr, &nm);
    assert_int_equal(ram, 0);
    assert_int_equal(nr, 0);
    g_autoptr(json_object) eo = sp_guest_regions_to_json(empty, &k);
    assert_int_equal(json_object_array_length(json_object_object_get(eo, "regions")), 0);
}

/* A one-connection QMP server on a socket: greeting, then one reply. */
typedef struct {
    char *dir;
    char *path;
    int fd;
} QmpServer;

static gpointer
qmp_server_thread(gpointer data)
{
    QmpServer *s = data;
    int c = accept(s->fd, NULL, NULL);
    char buf[512];
    const char *greeting = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
                           "\"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n";
    const char *reply = "{\"return\": {}}\r\n";
    gsize got = 0;

    if (c < 0)
        return NULL;
    if (write(c, greeting, strlen(greeting)) < 0)
        goto out;
    /* Wait for qmp_capabilities (one line), answer it. */
    while (got < sizeof(buf) - 1) {
        gssize n = read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            goto out;
        got += n;
        if (memchr(buf, '\n', got))
            break;
    }
    if (write(c, reply, strlen(reply)) < 0)
        goto out;
    /* Stay open until the client closes. */
    while (read(c, buf, sizeof(buf)) > 0)
        ;
out:
    close(c);
    return NULL;
}

static void
test_open_qmp_socket(void **state)
{
    QmpServer s = { 0 };
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_autoptr(GError) error = NULL;
    GThread *t;

    s.dir = g_dir_make_tmp("samepage-test-XXXXXX", NULL);
    s.path = g_build_filename(s.dir, "qmp.sock", NULL);
    g_strlcpy(addr.sun_path, s.path, sizeof(addr.sun_path));
    s.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s.fd >= 0);
    assert_int_equal(bind(s.fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(s.fd, 1), 0);
    t = g_thread_new("fake-qmp", qmp_server_thread, &s);

    /* The peer is this very process: the guest is named by the socket. */
    SpGuest *g = sp_guest_open_qmp_socket(s.path, &error);
    if (!g)
        fail_msg("%s", error->message);
    assert_string_equal(sp_guest_get_name(g), s.path);
    assert_int_equal(sp_guest_get_pid(g), getpid());
    assert_non_null(sp_guest_get_qmp(g));
    assert_int_equal(sp_guest_get_regions(g)->len, 0);
    sp_guest_free(g);
    g_thread_join(t);
    close(s.fd);

    /* Nothing listens any more: QMP's error, naming the socket. */
    assert_null(sp_guest_open_qmp_socket(s.path, &error));
    assert_true(g_error_matches(error, SP_QMP_ERROR, SP_QMP_ERROR_CONNECT));
    assert_non_null(strstr(error->message, s.path));
    sp_test_remove_tree(s.dir);
    g_free(s.path);
    g_free(s.dir);
}

/* Unmarking a guest: its ksm_merging_pages (10496 in the fake ksm_stat)
 * plus 10% must fit in MemAvailable. */
static void
test_unmerge_check(void **state)
{
    g_autofree char *proc = sp_test_tree_new("proc/guest-numa");
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_autoptr(SpGuest) g = sp_guest_new("g1", 4242, NULL);
    g_autoptr(SpGuest) gone = sp_guest_new("g2", 4243, NULL);
    guint64 need = 10496ULL * sysconf(_SC_PAGESIZE);
    g_autofree char *short_of = NULL, *enough = NULL;

    need += need / 10;
    short_of = g_strdup_printf("MemTotal: 99999999 kB\nMemAvailable: %" G_GUINT64_FORMAT " kB\n",
                               need / 1024 - 1);
    enough = g_strdup_printf("MemTotal: 99999999 kB\nMemAvailable: %" G_GUINT64_FORMAT " kB\n",
                             need / 1024 + 1);
    {   /* no meminfo: MemAvailable unknown, nothing merged may be unmerged */
        g_autoptr(GError) error = NULL;
        assert_false(sp_guest_unmerge_check(g, host, &error));
        assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_MEMORY));
        assert_true(g_str_has_prefix(error->message, "guest g1: unmerging 10496 merged pages"));
    }
    sp_test_write(proc, "meminfo", short_of);
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_guest_unmerge_check(g, host, &error));
        assert_true(g_error_matches(error, SP_KSM_ERROR, SP_KSM_ERROR_MEMORY));
    }
    sp_test_write(proc, "meminfo", enough);
    {
        g_autoptr(GError) error = NULL;
        assert_true(sp_guest_unmerge_check(g, host, &error));
        assert_null(error);
        /* The process is gone: ksm_stat's error. */
        assert_false(sp_guest_unmerge_check(gone, host, &error));
        assert_true(g_error_matches(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS));
    }
    /* Nothing merged: nothing to cover, whatever the memory. */
    sp_test_write(proc, "meminfo", "MemTotal: 1 kB\nMemAvailable: 0 kB\n");
    sp_test_write(proc, "4242/ksm_stat", "ksm_rmap_items 0\nksm_merging_pages 0\n");
    {
        g_autoptr(GError) error = NULL;
        assert_true(sp_guest_unmerge_check(g, host, &error));
    }
    sp_test_remove_tree(proc);
}

static void
test_cmdline_uuid(void **state)
{
    const char cmd[] = "qemu-system-x86_64\0-name\0guest=g1,debug-threads=on\0-uuid\0"
                       "0a3f5d1e-1111-2222-3333-444455556666\0-m\0512";
    gsize len = sizeof(cmd) - 1;

    assert_true(sp_cmdline_has_uuid(cmd, len, "0a3f5d1e-1111-2222-3333-444455556666"));
    assert_true(sp_cmdline_has_uuid(cmd, len, "0A3F5D1E-1111-2222-3333-444455556666"));
    assert_false(sp_cmdline_has_uuid(cmd, len, "0a3f5d1e-1111-2222-3333-444455556667"));
    assert_false(sp_cmdline_has_uuid(cmd, len, "0a3f5d1e"));
    /* "-uuid" as the last word, or a uuid not after -uuid, does not count. */
    const char tail[] = "qemu\0-name\00a3f5d1e-1111-2222-3333-444455556666\0-uuid";
    assert_false(sp_cmdline_has_uuid(tail, sizeof(tail) - 1, "0a3f5d1e-1111-2222-3333-444455556666"));
}

/* numa_maps: the line of the mapping, its N<node>=<pages> words. */
static void
test_parse_numa_maps(void **state)
{
    const char *text = "7f0000000000 default anon=3 N0=1 N1=2 kernelpagesize_kB=4\n"
                       "7f1000000000 bind:1 anon=5 N1=5 N2000=7 Nx=1 N3=\n";
    g_autoptr(GArray) a = sp_guest_parse_numa_maps(text, G_GUINT64_CONSTANT(0x7f0000000000));
    g_autoptr(GArray) b = sp_guest_parse_numa_maps(text, G_GUINT64_CONSTANT(0x7f1000000000));
    g_autoptr(GArray) c = sp_guest_parse_numa_maps(text, 0x1000);

    (void)state;
    assert_int_equal(a->len, 2);
    assert_int_equal(g_array_index(a, guint64, 0), 1);
    assert_int_equal(g_array_index(a, guint64, 1), 2);
    /* Node 2000 is past the 1024 nodes kept; bad words are skipped. */
    assert_int_equal(b->len, 2);
    assert_int_equal(g_array_index(b, guint64, 1), 5);
    assert_int_equal(c->len, 0);

    /* Printed twice (it changed while the file was read): the later record. */
    g_autoptr(GArray) d = sp_guest_parse_numa_maps(
        "7f0000000000 default anon=3 N0=3 kernelpagesize_kB=4\n"
        "7f0000000000 default anon=9 N0=4 N1=5 kernelpagesize_kB=4\n", G_GUINT64_CONSTANT(0x7f0000000000));
    assert_int_equal(d->len, 2);
    assert_int_equal(g_array_index(d, guint64, 0), 4);
    assert_int_equal(g_array_index(d, guint64, 1), 5);
}

#define UUID "0a3f5d1e-1111-2222-3333-444455556666"

/* A fake /proc entry: a process with a command line and an owner. */
static void
fake_process(const char *proc, pid_t pid, const char *uuid, uid_t uid)
{
    g_autofree char *dir = g_strdup_printf("%s/%d", proc, (int)pid);
    g_autofree char *cmd = g_strdup_printf("/usr/bin/qemu-system-x86_64%c-name%cguest=g1%c"
                                           "-uuid%c%s%c-m%c512%c", 0, 0, 0, 0, uuid, 0, 0, 0);
    gsize len = strlen("/usr/bin/qemu-system-x86_64") + strlen("-name") + strlen("guest=g1") +
        strlen("-uuid") + strlen(uuid) + strlen("-m") + strlen("512") + 7;
    g_autofree char *cmdline = g_build_filename(dir, "cmdline", NULL);
    g_autofree char *status = g_build_filename(dir, "status", NULL);
    g_autofree char *st = g_strdup_printf("Name:\tqemu-system-x86\nPid:\t%d\nPPid:\t1\n"
                                          "Uid:\t%u\t%u\t%u\t%u\n", (int)pid, uid, uid, uid, uid);

    assert_int_equal(g_mkdir_with_parents(dir, 0755), 0);
    assert_true(g_file_set_contents(cmdline, cmd, len, NULL));
    assert_true(g_file_set_contents(status, st, -1, NULL));
}

static GArray *
owners(uid_t a, uid_t b)
{
    GArray *o = g_array_new(FALSE, FALSE, sizeof(uid_t));
    g_array_append_val(o, a);
    g_array_append_val(o, b);
    return o;
}

/* Any local user can start a process with "-uuid <the domain's uuid>": one
 * that belongs to neither root nor libvirt's QEMU user is refused. */
static void
test_find_qemu_owner(void **state)
{
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autofree char *run = g_dir_make_tmp("samepage-run-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent-sys", proc);
    g_autoptr(GArray) o = owners(0, 64055);
    g_autoptr(GError) error = NULL;

    sp_host_set_run_root(host, run);
    fake_process(proc, 100, UUID, 54321);
    fake_process(proc, 150, "0a3f5d1e-0000-0000-0000-000000000000", 64055);
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 0);
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_REFUSED));
    assert_non_null(strstr(error->message, "pid 100"));
    assert_non_null(strstr(error->message, "uid 54321"));
    g_clear_error(&error);

    /* libvirt's own QEMU beside it (a higher pid) is the one found. */
    fake_process(proc, 4242, UUID, 64055);
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 4242);
    assert_null(error);

    /* Nothing at all. */
    assert_int_equal(sp_libvirt_find_qemu(host, "g2", "0a3f5d1e-9999-2222-3333-444455556666", o,
                                          &error), 0);
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID));
    sp_test_remove_tree(proc);
    sp_test_remove_tree(run);
}

/* Two processes of QEMU's users with the uuid: libvirt's pid file
 * (<run>/libvirt/qemu/NAME.pid, qemu:///system) says which; without it the
 * lookup refuses to guess. */
static void
test_find_qemu_two(void **state)
{
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autofree char *run = g_dir_make_tmp("samepage-run-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent-sys", proc);
    g_autoptr(GArray) o = owners(0, 64055);
    g_autoptr(GError) error = NULL;

    sp_host_set_run_root(host, run);
    fake_process(proc, 300, UUID, 0);
    fake_process(proc, 4242, UUID, 64055);
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 0);
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_AMBIGUOUS));
    assert_non_null(strstr(error->message, "300"));
    assert_non_null(strstr(error->message, "4242"));
    g_clear_error(&error);

    g_autofree char *piddir = g_build_filename(run, "libvirt", "qemu", NULL);
    assert_int_equal(g_mkdir_with_parents(piddir, 0755), 0);
    sp_test_write(run, "libvirt/qemu/g1.pid", "4242\n");
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 4242);
    assert_null(error);
    sp_test_write(run, "libvirt/qemu/g1.pid", "300");
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 300);

    /* A pid file naming a process of another user, or one without the
     * uuid, is not believed. */
    fake_process(proc, 500, UUID, 54321);
    sp_test_write(run, "libvirt/qemu/g1.pid", "500\n");
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 0);
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_AMBIGUOUS));
    g_clear_error(&error);
    fake_process(proc, 600, "0a3f5d1e-0000-0000-0000-000000000000", 0);
    sp_test_write(run, "libvirt/qemu/g1.pid", "600\n");
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 0);
    g_clear_error(&error);
    sp_test_write(run, "libvirt/qemu/g1.pid", "garbage\n");
    assert_int_equal(sp_libvirt_find_qemu(host, "g1", UUID, o, &error), 0);
    sp_test_remove_tree(proc);
    sp_test_remove_tree(run);
}

/* A real child stands for QEMU (the fake /proc entry carries its pid): it
 * is opened with a pidfd, and a signal through it reaches the child. */
static void
test_open_qemu_live(void **state)
{
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autofree char *run = g_dir_make_tmp("samepage-run-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent-sys", proc);
    g_autoptr(GArray) o = owners(0, geteuid());
    g_autoptr(GError) error = NULL;
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    sp_host_set_run_root(host, run);
    fake_process(proc, pid, UUID, geteuid());
    g_autoptr(SpProcess) qemu = sp_libvirt_open_qemu(host, "g1", UUID, o, &error);
    if (!qemu)
        fail_msg("%s", error->message);
    assert_int_equal(sp_process_get_pid(qemu), pid);
    assert_true(sp_process_stop(qemu, 1000, 1000, &error));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

    /* Exited: the fake /proc still shows it, but opening it fails. */
    assert_null(sp_libvirt_open_qemu(host, "g1", UUID, o, &error));
    assert_non_null(error);
    sp_test_remove_tree(proc);
    sp_test_remove_tree(run);
}

/* ------------------------------------------------------------- SpLibvirt */

#define LV_UUID "5b1e0c2a-7d3f-4e8a-9c61-0f2d4b6a8e10"
#define LV_MISSING "00000000-1111-2222-3333-444444444444"

static const char lv_domain_xml[] =
    "<domain type='test'>\n"
    "  <name>sp-lv-1</name>\n"
    "  <uuid>" LV_UUID "</uuid>\n"
    "  <memory unit='MiB'>64</memory>\n"
    "  <os><type>hvm</type></os>\n"
    "</domain>\n";

/* A domain's life: define, start, state, destroy, undefine; then its UUID
 * is unknown: SP_LIBVIRT_ERROR_NO_DOMAIN. */
static void
test_libvirt_domain_life(void **state)
{
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(SpLibvirtDomain) dom = NULL;
    g_autoptr(SpLibvirtDomain) again = NULL;
    g_autoptr(GError) error = NULL;
    SpLibvirtState st = SP_LIBVIRT_STATE_NOSTATE;
    int reason = -1;

    lv = sp_libvirt_open("test:///default", &error);
    if (!lv)
        fail_msg("%s", error->message);
    assert_string_equal(sp_libvirt_get_uri(lv), "test:///default");
    assert_true(sp_libvirt_is_alive(lv));

    dom = sp_libvirt_define_xml(lv, lv_domain_xml, &error);
    if (!dom)
        fail_msg("%s", error->message);
    assert_string_equal(sp_libvirt_domain_get_name(dom), "sp-lv-1");
    assert_string_equal(sp_libvirt_domain_get_uuid(dom), LV_UUID);
    assert_false(sp_libvirt_is_active(dom, &error));
    assert_null(error);
    assert_true(sp_libvirt_get_state(dom, &st, &reason, &error));
    assert_int_equal(st, SP_LIBVIRT_STATE_SHUTOFF);

    assert_true(sp_libvirt_start(dom, &error));
    assert_null(error);
    assert_true(sp_libvirt_is_active(dom, &error));
    assert_true(sp_libvirt_get_state(dom, &st, &reason, &error));
    assert_int_equal(st, SP_LIBVIRT_STATE_RUNNING);
    /* Started twice: refused, with libvirt's reason. */
    assert_false(sp_libvirt_start(dom, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED));
    assert_true(*error->message);
    g_clear_error(&error);

    /* The same domain by its UUID. */
    again = sp_libvirt_lookup_uuid(lv, LV_UUID, &error);
    if (!again)
        fail_msg("%s", error->message);
    assert_string_equal(sp_libvirt_domain_get_name(again), "sp-lv-1");
    assert_true(sp_libvirt_is_active(again, NULL));

    assert_true(sp_libvirt_destroy(dom, &error));
    assert_false(sp_libvirt_is_active(dom, NULL));
    assert_true(sp_libvirt_get_state(again, &st, &reason, &error));
    assert_int_equal(st, SP_LIBVIRT_STATE_SHUTOFF);
    assert_false(sp_libvirt_destroy(dom, &error));
    assert_non_null(error);
    g_clear_error(&error);
    assert_true(sp_libvirt_undefine(dom, &error));
    assert_null(error);

    /* Gone: its handles fail, its UUID is unknown. */
    assert_false(sp_libvirt_undefine(again, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN));
    g_clear_error(&error);
    assert_false(sp_libvirt_get_state(again, &st, &reason, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN));
    g_clear_error(&error);
    assert_null(sp_libvirt_lookup_uuid(lv, LV_UUID, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN));
    g_clear_error(&error);
    assert_null(sp_libvirt_lookup_uuid(lv, LV_MISSING, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN));
    g_clear_error(&error);
    assert_null(sp_libvirt_lookup_uuid(lv, "not-a-uuid", &error));
    assert_non_null(error);
    g_clear_error(&error);
}

/* XML libvirt refuses, and what the test driver cannot do (a guest agent,
 * the human monitor): NULL with libvirt's message, never a crash. */
static void
test_libvirt_domain_refused(void **state)
{
    g_autoptr(SpLibvirt) lv = sp_libvirt_open("test:///default", NULL);
    g_autoptr(SpLibvirtDomain) dom = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *reply = NULL;

    assert_non_null(lv);
    assert_null(sp_libvirt_define_xml(lv, "<domain type='test'><name>x", &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED));
    assert_true(*error->message);
    g_clear_error(&error);

    dom = sp_libvirt_define_xml(lv, lv_domain_xml, &error);
    if (!dom)
        fail_msg("%s", error->message);
    assert_true(sp_libvirt_start(dom, &error));
    reply = sp_libvirt_agent_command(dom, "{\"execute\": \"guest-ping\"}", 1, &error);
    assert_null(reply);
    assert_true(error && error->domain == SP_LIBVIRT_ERROR && *error->message);
    g_clear_error(&error);
    reply = sp_libvirt_hmp_command(dom, "gpa2hva 0", &error);
    assert_null(reply);
    assert_true(error && error->domain == SP_LIBVIRT_ERROR && *error->message);
    g_clear_error(&error);
    assert_true(sp_libvirt_destroy(dom, NULL));
    assert_true(sp_libvirt_undefine(dom, NULL));
}

/* A defined domain as an SpGuest (the experiment's clones): its name, the
 * pid it was given, and QMP through libvirt, which the test driver cannot
 * do: loading its regions fails with libvirt's message, and the guest
 * outlives its domain handle (it holds its own reference). */
static void
test_libvirt_domain_guest(void **state)
{
    g_autoptr(SpLibvirt) lv = sp_libvirt_open("test:///default", NULL);
    g_autoptr(SpLibvirtDomain) dom = NULL;
    g_autoptr(SpGuest) guest = NULL;
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;

    assert_non_null(lv);
    dom = sp_libvirt_define_xml(lv, lv_domain_xml, &error);
    if (!dom)
        fail_msg("%s", error->message);
    assert_true(sp_libvirt_start(dom, &error));
    guest = sp_libvirt_domain_get_guest(dom, 4242, &error);
    if (!guest)
        fail_msg("%s", error->message);
    assert_string_equal(sp_guest_get_name(guest), "sp-lv-1");
    assert_int_equal(sp_guest_get_pid(guest), 4242);
    assert_true(sp_libvirt_destroy(dom, NULL));
    assert_true(sp_libvirt_undefine(dom, NULL));
    g_clear_pointer(&dom, sp_libvirt_domain_free);
    assert_false(sp_guest_load_regions(guest, host, &error));
    assert_true(error && *error->message);
    assert_non_null(strstr(error->message, "sp-lv-1"));
}

/* A connection: an unknown URI is a CONNECT error naming it; a reconnect
 * to the same URI; once that fails, calls say "not connected". */
static void
test_libvirt_connection(void **state)
{
    g_autofree char *tmp = g_dir_make_tmp("samepage-libvirt-XXXXXX", NULL);
    g_autofree char *node = g_build_filename(tmp, "node.xml", NULL);
    g_autofree char *uri = g_strdup_printf("test://%s", node);
    g_autofree char *missing = g_strdup_printf("test://%s/none.xml", tmp);
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(SpLibvirtDomain) dom = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) running = NULL;

    assert_null(sp_libvirt_open(missing, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT));
    assert_non_null(strstr(error->message, missing));
    g_clear_error(&error);

    sp_test_write(tmp, "node.xml", "<node>\n"
                  "  <domain type='test'>\n"
                  "    <name>sp-lv-node</name>\n"
                  "    <uuid>" LV_UUID "</uuid>\n"
                  "    <memory unit='MiB'>64</memory>\n"
                  "    <os><type>hvm</type></os>\n"
                  "  </domain>\n"
                  "</node>\n");
    lv = sp_libvirt_open(uri, &error);
    if (!lv)
        fail_msg("%s", error->message);
    assert_string_equal(sp_libvirt_get_uri(lv), uri);
    assert_true(sp_libvirt_is_alive(lv));
    assert_true(sp_libvirt_reconnect(lv, &error));
    assert_true(sp_libvirt_is_alive(lv));
    assert_string_equal(sp_libvirt_get_uri(lv), uri);
    dom = sp_libvirt_lookup_uuid(lv, LV_UUID, &error);
    if (!dom)
        fail_msg("%s", error->message);
    assert_string_equal(sp_libvirt_domain_get_name(dom), "sp-lv-node");
    running = sp_libvirt_list_running(lv, &error);
    assert_non_null(running);
    assert_true(g_strv_contains((const char *const *)running, "sp-lv-node"));

    /* The URI stops working: the reconnect fails and leaves no connection. */
    sp_test_remove_tree(tmp);
    assert_false(sp_libvirt_reconnect(lv, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT));
    g_clear_error(&error);
    assert_false(sp_libvirt_is_alive(lv));
    assert_null(sp_libvirt_lookup_uuid(lv, LV_UUID, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT));
    assert_non_null(strstr(error->message, uri));
    g_clear_error(&error);
    assert_null(sp_libvirt_define_xml(lv, lv_domain_xml, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT));
    g_clear_error(&error);
    assert_null(sp_libvirt_list_running(lv, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT));
    /* A handle of the old connection outlives it. */
    assert_string_equal(sp_libvirt_domain_get_uuid(dom), LV_UUID);
}

/* A guest by domain name on a connection opened the first time it is needed
 * (libvirt's test driver: its domain "test" runs no QEMU here). */
static void
test_libvirt_open_guest(void **state)
{
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent-proc");
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(SpLibvirt) none = NULL;
    SpLibvirt *first;

    {
        g_autoptr(GError) error = NULL;
        assert_null(sp_libvirt_open_guest(&lv, "test:///default", host, "test", &error));
        assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID));
        assert_non_null(strstr(error->message, "'test'"));
        assert_non_null(lv);
        assert_string_equal(sp_libvirt_get_uri(lv), "test:///default");
    }
    first = lv;
    {   /* the same connection again; a domain it does not know */
        g_autoptr(GError) error = NULL;
        assert_null(sp_libvirt_open_guest(&lv, "test:///default", host, "sp-no-such", &error));
        assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN));
        assert_ptr_equal(lv, first);
    }
    {   /* no connection: the connection's error, and still none */
        g_autoptr(GError) error = NULL;
        assert_null(sp_libvirt_open_guest(&none, "test:///nonexistent/samepage-none.xml", host,
                                          "test", &error));
        assert_non_null(error);
        assert_true(error->domain == SP_LIBVIRT_ERROR);
        assert_null(none);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_numa_maps),
        cmocka_unit_test(test_regions_numa),
        cmocka_unit_test(test_regions_gone),
        cmocka_unit_test(test_ram_vma),
        cmocka_unit_test(test_ksm_stat),
        cmocka_unit_test(test_regions_json),
        cmocka_unit_test(test_open_qmp_socket),
        cmocka_unit_test(test_unmerge_check),
        cmocka_unit_test(test_cmdline_uuid),
        cmocka_unit_test(test_find_qemu_owner),
        cmocka_unit_test(test_find_qemu_two),
        cmocka_unit_test(test_open_qemu_live),
        cmocka_unit_test(test_libvirt_domain_life),
        cmocka_unit_test(test_libvirt_domain_refused),
        cmocka_unit_test(test_libvirt_domain_guest),
        cmocka_unit_test(test_libvirt_connection),
        cmocka_unit_test(test_libvirt_open_guest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
