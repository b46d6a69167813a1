/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-sppolicy.c: a guest's policy from domain XML: metadata present and
 * absent, other namespaces, <nosharepages/>, bad values, malformed and
 * hostile documents
 */
#include "config.h"

#include "sptest.h"
#include "samepage/sppolicy.h"

#define DOMAIN_HEAD \
    "<domain type='kvm'>\n" \
    "  <name>web1</name>\n" \
    "  <uuid>6f8e2a4c-1d3b-4e5f-9a7b-0c1d2e3f4a5b</uuid>\n" \
    "  <memory unit='KiB'>524288</memory>\n"
#define DOMAIN_TAIL \
    "  <os><type arch='x86_64'>hvm</type></os>\n" \
    "</domain>\n"

static SpDomainPolicy *
parse_ok(const char *xml)
{
    g_autoptr(GError) error = NULL;
    SpDomainPolicy *p = sp_domain_policy_from_xml(xml, &error);

    if (!p)
        print_error("unexpected error: %s\n", error->message);
    assert_non_null(p);
    assert_null(error);
    return p;
}

/* The error's message, which must contain every one of the NULL-ended
 * fragments. */
static void
parse_fails(const char *xml, int code, ...)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpDomainPolicy) p = sp_domain_policy_from_xml(xml, &error);
    va_list ap;
    const char *frag;

    assert_null(p);
    assert_non_null(error);
    assert_true(error->domain == SP_POLICY_ERROR);
    assert_int_equal(error->code, code);
    va_start(ap, code);
    while ((frag = va_arg(ap, const char *))) {
        if (!strstr(error->message, frag))
            print_error("message \"%s\" lacks \"%s\"\n", error->message, frag);
        assert_non_null(strstr(error->message, frag));
    }
    va_end(ap);
}

static void
test_metadata_absent(void **state)
{
    g_autoptr(SpDomainPolicy) p = parse_ok(DOMAIN_HEAD DOMAIN_TAIL);

    assert_string_equal(p->name, "web1");
    assert_string_equal(p->uuid, "6f8e2a4c-1d3b-4e5f-9a7b-0c1d2e3f4a5b");
    assert_int_equal(p->merge, SP_POLICY_MERGE_UNSET);
    assert_null(p->group);
    assert_false(p->nosharepages);
}

static void
test_metadata_present(void **state)
{
    static const char *const values[] = { "yes", "no", "required" };
    static const SpPolicyMerge want[] = {
        SP_POLICY_MERGE_YES, SP_POLICY_MERGE_NO, SP_POLICY_MERGE_REQUIRED,
    };

    for (guint i = 0; i < G_N_ELEMENTS(values); i++) {
        g_autofree char *xml = g_strdup_printf(
            DOMAIN_HEAD
            "  <metadata>\n"
            "    <sp:policy xmlns:sp='urn:samepage:policy:1' merge='%s' group='tenant-a.prod_1'/>\n"
            "  </metadata>\n" DOMAIN_TAIL, values[i]);
        g_autoptr(SpDomainPolicy) p = parse_ok(xml);

        assert_int_equal(p->merge, want[i]);
        assert_string_equal(p->group, "tenant-a.prod_1");
    }
}

/* A default namespace works as well as a prefix; an element without
 * merge= names only the group. */
static void
test_default_namespace_group_only(void **state)
{
    g_autoptr(SpDomainPolicy) p = parse_ok(
        DOMAIN_HEAD
        "  <metadata><policy xmlns='urn:samepage:policy:1' group='g1'/></metadata>\n"
        DOMAIN_TAIL);

    assert_int_equal(p->merge, SP_POLICY_MERGE_UNSET);
    assert_string_equal(p->group, "g1");
}

static void
test_other_namespaces_ignored(void **state)
{
    g_autoptr(SpDomainPolicy) p = parse_ok(
        DOMAIN_HEAD
        "  <metadata>\n"
        "    <other:policy xmlns:other='urn:someone:else' merge='bogus' group='!!'/>\n"
        "    <policy merge='also-bogus'/>\n"
        "    <sp:policy xmlns:sp='urn:samepage:policy:2' merge='nope'/>\n"
        "    <sp:policy xmlns:sp='urn:samepage:policy:1' merge='no'/>\n"
        "  </metadata>\n" DOMAIN_TAIL);

    assert_int_equal(p->merge, SP_POLICY_MERGE_NO);
    assert_null(p->group);
}

/* Our namespace on an element outside <metadata> means nothing. */
static void
test_policy_outside_metadata_ignored(void **state)
{
    g_autoptr(SpDomainPolicy) p = parse_ok(
        DOMAIN_HEAD
        "  <devices><sp:policy xmlns:sp='urn:samepage:policy:1' merge='yes'/></devices>\n"
        DOMAIN_TAIL);

    assert_int_equal(p->merge, SP_POLICY_MERGE_UNSET);
}

static void
test_nosharepages(void **state)
{
    g_autoptr(SpDomainPolicy) p = parse_ok(
        DOMAIN_HEAD
        "  <memoryBacking><nosharepages/></memoryBacking>\n"
        "  <metadata><sp:policy xmlns:sp='urn:samepage:policy:1' merge='required'/></metadata>\n"
        DOMAIN_TAIL);
    g_autoptr(SpDomainPolicy) q = parse_ok(
        DOMAIN_HEAD "  <memoryBacking><hugepages/></memoryBacking>\n" DOMAIN_TAIL);

    assert_true(p->nosharepages);
    assert_int_equal(p->merge, SP_POLICY_MERGE_REQUIRED);
    assert_false(q->nosharepages);
}

static void
test_unknown_merge_value(void **state)
{
    parse_fails(DOMAIN_HEAD
                "  <metadata>\n"
                "    <sp:policy xmlns:sp='urn:samepage:policy:1' merge='Yes'/>\n"
                "  </metadata>\n" DOMAIN_TAIL,
                SP_POLICY_ERROR_INVALID, "line 6", "merge=\"Yes\"", "unknown value", NULL);
    parse_fails(DOMAIN_HEAD
                "  <metadata><sp:policy xmlns:sp='urn:samepage:policy:1' merge=''/></metadata>\n"
                DOMAIN_TAIL,
                SP_POLICY_ERROR_INVALID, "merge=\"\"", NULL);
}

static void
test_bad_group(void **state)
{
    g_autofree char *long_group = g_strnfill(65, 'a');
    g_autofree char *ok_group = g_strnfill(64, 'a');
    g_autofree char *xml_long = g_strdup_printf(
        DOMAIN_HEAD "<metadata><sp:policy xmlns:sp='urn:samepage:policy:1' group='%s'/></metadata>"
        DOMAIN_TAIL, long_group);
    g_autofree char *xml_ok = g_strdup_printf(
        DOMAIN_HEAD "<metadata><sp:policy xmlns:sp='urn:samepage:policy:1' group='%s'/></metadata>"
        DOMAIN_TAIL, ok_group);
    g_autoptr(SpDomainPolicy) p = parse_ok(xml_ok);

    assert_string_equal(p->group, ok_group);
    parse_fails(xml_long, SP_POLICY_ERROR_INVALID, "invalid group name", NULL);
    parse_fails(DOMAIN_HEAD
                "<metadata><sp:policy xmlns:sp='urn:samepage:policy:1' group='a b'/></metadata>"
                DOMAIN_TAIL, SP_POLICY_ERROR_INVALID, "group=\"a b\"", NULL);
    parse_fails(DOMAIN_HEAD
                "<metadata><sp:policy xmlns:sp='urn:samepage:policy:1' group=''/></metadata>"
                DOMAIN_TAIL, SP_POLICY_ERROR_INVALID, "invalid group name", NULL);
    parse_fails(DOMAIN_HEAD
                "<metadata><sp:policy xmlns:sp='urn:samepage:policy:1' group='x&#10;y'/></metadata>"
                DOMAIN_TAIL, SP_POLICY_ERROR_INVALID, "x\\ny", NULL);
}

static void
test_two_policies_refused(void **state)
{
    parse_fails(DOMAIN_HEAD
                "  <metadata>\n"
                "    <a:policy xmlns:a='urn:samepage:policy:1' merge='yes'/>\n"
                "    <b:policy xmlns:b='urn:samepage:policy:1' merge='no'/>\n"
                "  </metadata>\n" DOMAIN_TAIL,
                SP_POLICY_ERROR_INVALID, "second", "line 7", "line 6", NULL);
    parse_fails(DOMAIN_HEAD
                "  <metadata><a:rules xmlns:a='urn:samepage:policy:1'/></metadata>\n"
                DOMAIN_TAIL, SP_POLICY_ERROR_INVALID, "<rules>", NULL);
}

static void
test_malformed(void **state)
{
    parse_fails(DOMAIN_HEAD "  <metadata>\n" DOMAIN_TAIL,
                SP_POLICY_ERROR_XML, "malformed", "line ", NULL);
    parse_fails("", SP_POLICY_ERROR_XML, "malformed", NULL);
    parse_fails("not xml at all", SP_POLICY_ERROR_XML, "malformed", NULL);
    parse_fails("<network><name>x</name></network>", SP_POLICY_ERROR_XML, "<network>", NULL);
    parse_fails("<domain><uuid>u</uuid></domain>", SP_POLICY_ERROR_XML, "no <name>", NULL);
    parse_fails("<x:domain xmlns:x='urn:x'><name>a</name></x:domain>",
                SP_POLICY_ERROR_XML, "not <domain>", NULL);
}

/* An entity bomb, an external entity, a document far over the limit and a
 * deep nest: refused or parsed without harm, never expanded. */
static void
test_hostile(void **state)
{
    GString *big;
    GString *deep;
    g_autoptr(GError) error = NULL;
    SpDomainPolicy *p;

    parse_fails("<?xml version='1.0'?>\n"
                "<!DOCTYPE domain [\n"
                "  <!ENTITY a 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'>\n"
                "  <!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\n"
                "  <!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>\n"
                "  <!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>\n"
                "]>\n"
                "<domain><name>&d;</name></domain>\n",
                SP_POLICY_ERROR_XML, "domain XML", NULL);
    parse_fails("<?xml version='1.0'?>\n"
                "<!DOCTYPE domain [ <!ENTITY x SYSTEM 'file:///etc/passwd'> ]>\n"
                "<domain><name>&x;</name></domain>\n",
                SP_POLICY_ERROR_XML, "document type", NULL);

    big = g_string_new(DOMAIN_HEAD "<description>");
    while (big->len <= SP_POLICY_XML_MAX)
        g_string_append(big, "0123456789abcdef");
    g_string_append(big, "</description>" DOMAIN_TAIL);
    parse_fails(big->str, SP_POLICY_ERROR_TOO_LARGE, "over the limit", NULL);
    g_string_free(big, TRUE);

    /* libxml2 refuses nesting deeper than 256 without XML_PARSE_HUGE. */
    deep = g_string_new("<domain><name>d</name>");
    for (int i = 0; i < 5000; i++)
        g_string_append(deep, "<x>");
    for (int i = 0; i < 5000; i++)
        g_string_append(deep, "</x>");
    g_string_append(deep, "</domain>");
    p = sp_domain_policy_from_xml(deep->str, &error);
    assert_null(p);
    assert_int_equal(error->code, SP_POLICY_ERROR_XML);
    g_string_free(deep, TRUE);

    /* A NUL-free binary blob. */
    parse_fails("\x01\x02\xff\xfe<domain>", SP_POLICY_ERROR_XML, "malformed", NULL);
}

static void
test_merge_strings(void **state)
{
    SpPolicyMerge m = SP_POLICY_MERGE_UNSET;

    assert_true(sp_policy_merge_from_string("yes", &m));
    assert_int_equal(m, SP_POLICY_MERGE_YES);
    assert_true(sp_policy_merge_from_string("no", &m));
    assert_int_equal(m, SP_POLICY_MERGE_NO);
    assert_true(sp_policy_merge_from_string("required", &m));
    assert_int_equal(m, SP_POLICY_MERGE_REQUIRED);
    m = SP_POLICY_MERGE_YES;
    assert_false(sp_policy_merge_from_string("unset", &m));
    assert_false(sp_policy_merge_from_string("YES", &m));
    assert_false(sp_policy_merge_from_string("", &m));
    assert_false(sp_policy_merge_from_string(NULL, &m));
    assert_int_equal(m, SP_POLICY_MERGE_YES);
    assert_string_equal(sp_policy_merge_to_string(SP_POLICY_MERGE_UNSET), "unset");
    assert_string_equal(sp_policy_merge_to_string(SP_POLICY_MERGE_REQUIRED), "required");
    assert_string_equal(sp_policy_merge_to_string((SpPolicyMerge)99), "invalid");
    assert_true(sp_policy_group_valid("a"));
    assert_false(sp_policy_group_valid("a/b"));
    assert_false(sp_policy_group_valid(NULL));
}

/* The samples in tests/data/policy (also the fuzz seeds). */
static void
test_data_files(void **state)
{
    g_autofree char *p1 = sp_test_data_path("policy/domain-required-nosharepages.xml");
    g_autofree char *p2 = sp_test_data_path("policy/domain-plain.xml");
    g_autofree char *x1 = NULL, *x2 = NULL;
    g_autoptr(SpDomainPolicy) a = NULL;
    g_autoptr(SpDomainPolicy) b = NULL;

    assert_true(g_file_get_contents(p1, &x1, NULL, NULL));
    assert_true(g_file_get_contents(p2, &x2, NULL, NULL));
    a = parse_ok(x1);
    b = parse_ok(x2);
    assert_string_equal(a->name, "db1");
    assert_int_equal(a->merge, SP_POLICY_MERGE_REQUIRED);
    assert_string_equal(a->group, "tenant-a");
    assert_true(a->nosharepages);
    assert_string_equal(b->name, "web1");
    assert_string_equal(b->uuid, "568280eb-21a8-4c3f-b61f-a404b93f0944");
    assert_int_equal(b->merge, SP_POLICY_MERGE_UNSET);
    assert_false(b->nosharepages);
}

static SpDomainPolicy
policy(SpPolicyMerge merge, gboolean nosharepages)
{
    SpDomainPolicy p = { .name = (char *)"g", .merge = merge, .nosharepages = nosharepages };
    return p;
}

/* The per-guest decision: every merge value, with and without
 * <nosharepages/>, under both defaults. */
static void
test_decide(void **state)
{
    static const struct {
        SpPolicyMerge merge;
        gboolean nosharepages, merge_default, want;
        const char *reason;
    } cases[] = {
        { SP_POLICY_MERGE_UNSET, FALSE, TRUE, TRUE, "[policy] merge = yes" },
        { SP_POLICY_MERGE_UNSET, FALSE, FALSE, FALSE, "[policy] merge = no" },
        { SP_POLICY_MERGE_UNSET, TRUE, TRUE, FALSE, "<nosharepages/>" },
        { SP_POLICY_MERGE_YES, FALSE, FALSE, TRUE, "policy merge=yes" },
        { SP_POLICY_MERGE_YES, TRUE, TRUE, FALSE, "merge=required would" },
        { SP_POLICY_MERGE_NO, FALSE, TRUE, FALSE, "policy merge=no" },
        { SP_POLICY_MERGE_NO, TRUE, TRUE, FALSE, "policy merge=no" },
        { SP_POLICY_MERGE_REQUIRED, FALSE, FALSE, TRUE, "policy merge=required" },
        { SP_POLICY_MERGE_REQUIRED, TRUE, FALSE, TRUE, "overrides <nosharepages/>" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        SpDomainPolicy p = policy(cases[i].merge, cases[i].nosharepages);
        g_autofree char *reason = NULL;
        gboolean got = sp_policy_decide(&p, cases[i].merge_default, &reason);

        if (got != cases[i].want || !strstr(reason, cases[i].reason))
            print_error("case %u: %d \"%s\"\n", i, got, reason);
        assert_int_equal(got, cases[i].want);
        assert_non_null(strstr(reason, cases[i].reason));
        assert_int_equal(sp_policy_decide(&p, cases[i].merge_default, NULL), got);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_absent),
        cmocka_unit_test(test_metadata_present),
        cmocka_unit_test(test_default_namespace_group_only),
        cmocka_unit_test(test_other_namespaces_ignored),
        cmocka_unit_test(test_policy_outside_metadata_ignored),
        cmocka_unit_test(test_nosharepages),
        cmocka_unit_test(test_unknown_merge_value),
        cmocka_unit_test(test_bad_group),
        cmocka_unit_test(test_two_policies_refused),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_merge_strings),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_data_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
