/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sppolicy.c: a guest's samepage policy from its libvirt domain XML
 *
 * The XML comes from libvirt or, in the hook, from libvirtd on stdin; it
 * is still treated as outside input: bounded size, no network, no DTD,
 * no entity substitution, errors kept in the parser context (never printed
 * by libxml2 itself) and reported with their line.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-policy"

#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "samepage/sppolicy.h"

G_DEFINE_QUARK(sp-policy-error-quark, sp_policy_error)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)

static const char *const merge_names[] = {
    [SP_POLICY_MERGE_UNSET] = "unset",
    [SP_POLICY_MERGE_NO] = "no",
    [SP_POLICY_MERGE_YES] = "yes",
    [SP_POLICY_MERGE_REQUIRED] = "required",
};

const char *
sp_policy_merge_to_string(SpPolicyMerge m)
{
    if ((guint)m >= G_N_ELEMENTS(merge_names))
        return "invalid";
    return merge_names[m];
}

gboolean
sp_policy_merge_from_string(const char *s, SpPolicyMerge *out)
{
    if (!s)
        return FALSE;
    for (guint i = SP_POLICY_MERGE_NO; i < G_N_ELEMENTS(merge_names); i++) {
        if (strcmp(s, merge_names[i]) == 0) {
            *out = (SpPolicyMerge)i;
            return TRUE;
        }
    }
    return FALSE;
}

gboolean
sp_policy_group_valid(const char *s)
{
    size_t n;

    if (!s)
        return FALSE;
    n = strlen(s);
    if (n < 1 || n > 64)
        return FALSE;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return FALSE;
    }
    return TRUE;
}

void
sp_domain_policy_free(SpDomainPolicy *p)
{
    if (!p)
        return;
    g_free(p->name);
    g_free(p->uuid);
    g_free(p->group);
    g_free(p);
}

static gboolean
is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* The first child element of @parent called @name in no namespace. */
static xmlNode *
child_element(xmlNode *parent, const char *name)
{
    for (xmlNode *c = parent->children; c; c = c->next) {
        if (is_element(c, name) && !c->ns)
            return c;
    }
    return NULL;
}

/* The text of @n, trimmed, as a GLib string. */
static char *
element_text(xmlNode *n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s;

    if (!t)
        return g_strdup("");
    s = g_strstrip(g_strdup((const char *)t));
    xmlFree(t);
    return s;
}

/* Escapes for messages: the value may be anything. */
static char *
quote(const char *s)
{
    if (strlen(s) > 80) {
        g_autofree char *cut = g_strndup(s, 80);
        return g_strescape(cut, NULL);
    }
    return g_strescape(s, NULL);
}

static gboolean
read_policy(xmlNode *pol, SpDomainPolicy *p, GError **error)
{
    xmlChar *merge = xmlGetNoNsProp(pol, (const xmlChar *)"merge");
    xmlChar *group = xmlGetNoNsProp(pol, (const xmlChar *)"group");
    gboolean ok = TRUE;

    if (merge) {
        if (!sp_policy_merge_from_string((const char *)merge, &p->merge)) {
            g_autofree char *q = quote((const char *)merge);
            g_set_error(error, SP_POLICY_ERROR, SP_POLICY_ERROR_INVALID,
                        "domain XML line %ld: <policy merge=\"%s\">: unknown value "
                        "(expected yes, no or required)", xmlGetLineNo(pol), q);
            ok = FALSE;
        }
    } else {
        /* A policy element without merge= only names a group: the
         * configuration's default decides. */
        p->merge = SP_POLICY_MERGE_UNSET;
    }
    if (ok && group) {
        if (!sp_policy_group_valid((const char *)group)) {
            g_autofree char *q = quote((const char *)group);
            g_set_error(error, SP_POLICY_ERROR, SP_POLICY_ERROR_INVALID,
                        "domain XML line %ld: <policy group=\"%s\">: invalid group name "
                        "(1 to 64 of A-Z a-z 0-9 _ . -)", xmlGetLineNo(pol), q);
            ok = FALSE;
        } else {
            p->group = g_strdup((const char *)group);
        }
    }
    xmlFree(merge);
    xmlFree(group);
    return ok;
}

SpDomainPolicy *
sp_domain_policy_from_xml(const char *xml, GError **error)
{
    g_autoptr(SpDomainPolicy) p = g_new0(SpDomainPolicy, 1);
    g_autoptr(xmlParserCtxt) ctxt = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *root, *n, *pol = NULL;
    size_t len;

    g_return_val_if_fail(xml != NULL, NULL);
    len = strlen(xml);
    if (len > SP_POLICY_XML_MAX) {
        g_set_error(error, SP_POLICY_ERROR, SP_POLICY_ERROR_TOO_LARGE,
                    "domain XML of %zu bytes is over the limit of %d bytes",
                    len, SP_POLICY_XML_MAX);
        return NULL;
    }

    xmlInitParser();
    ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        g_set_error_literal(error, SP_POLICY_ERROR, SP_POLICY_ERROR_XML,
                            "domain XML: cannot create an XML parser");
        return NULL;
    }
    doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        g_autofree char *msg = g_strstrip(g_strdup(e && e->message ? e->message
                                                                    : "unknown error"));
        g_set_error(error, SP_POLICY_ERROR, SP_POLICY_ERROR_XML,
                    "domain XML line %d: malformed: %s", e ? e->line : 0, msg);
        return NULL;
    }

    if (doc->intSubset || doc->extSubset) {
        g_set_error_literal(error, SP_POLICY_ERROR, SP_POLICY_ERROR_XML,
                            "domain XML: a document type declaration is not accepted");
        return NULL;
    }
    root = xmlDocGetRootElement(doc);
    if (!root || !is_element(root, "domain") || root->ns) {
        g_set_error(error, SP_POLICY_ERROR, SP_POLICY_ERROR_XML,
                    "domain XML: the root element is <%s>, not <domain>",
                    root ? (const char *)root->name : "(none)");
        return NULL;
    }

    n = child_element(root, "name");
    if (n)
        p->name = element_text(n);
    if (!p->name || !*p->name) {
        g_set_error_literal(error, SP_POLICY_ERROR, SP_POLICY_ERROR_XML,
                            "domain XML: <domain> has no <name>");
        return NULL;
    }
    n = child_element(root, "uuid");
    if (n) {
        p->uuid = element_text(n);
        if (!*p->uuid)
            g_clear_pointer(&p->uuid, g_free);
    }

    n = child_element(root, "memoryBacking");
    if (n && child_element(n, "nosharepages"))
        p->nosharepages = TRUE;

    n = child_element(root, "metadata");
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || !c->ns || !c->ns->href ||
            strcmp((const char *)c->ns->href, SP_POLICY_XML_NS) != 0)
            continue;
        if (!is_element(c, "policy")) {
            g_set_error(error, SP_POLICY_ERROR, SP_POLICY_ERROR_INVALID,
                        "domain XML line %ld: unknown element <%s> in namespace %s "
                        "(expected <policy>)", xmlGetLineNo(c), (const char *)c->name,
                        SP_POLICY_XML_NS);
            return NULL;
        }
        if (pol) {
            g_set_error(error, SP_POLICY_ERROR, SP_POLICY_ERROR_INVALID,
                        "domain XML line %ld: a second samepage <policy> element "
                        "(the first is on line %ld)", xmlGetLineNo(c), xmlGetLineNo(pol));
            return NULL;
        }
        pol = c;
    }
    if (pol && !read_policy(pol, p, error))
        return NULL;
    return g_steal_pointer(&p);
}

gboolean
sp_policy_decide(const SpDomainPolicy *p, gboolean merge_default, char **reason)
{
    gboolean merge;
    char *why;

    switch (p->merge) {
    case SP_POLICY_MERGE_REQUIRED:
        merge = TRUE;
        why = g_strdup(p->nosharepages
                       ? "policy merge=required (overrides <nosharepages/>)"
                       : "policy merge=required");
        break;
    case SP_POLICY_MERGE_YES:
        merge = !p->nosharepages;
        why = g_strdup(p->nosharepages
                       ? "<nosharepages/> in the domain XML (policy merge=yes does not "
                         "override it; merge=required would)"
                       : "policy merge=yes");
        break;
    case SP_POLICY_MERGE_NO:
        merge = FALSE;
        why = g_strdup("policy merge=no");
        break;
    case SP_POLICY_MERGE_UNSET:
    default:
        merge = merge_default && !p->nosharepages;
        if (p->nosharepages)
            why = g_strdup("<nosharepages/> in the domain XML and no samepage policy");
        else
            why = g_strdup_printf("no samepage policy in the metadata: [policy] merge = %s",
                                  merge_default ? "yes" : "no");
        break;
    }
    if (reason)
        *reason = why;
    else
        g_free(why);
    return merge;
}
