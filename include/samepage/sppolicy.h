/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sppolicy.h: a guest's samepage policy, read from its libvirt domain XML
 *
 * The policy sits in the domain's <metadata> in samepage's namespace:
 *
 *   <metadata>
 *     <sp:policy xmlns:sp="urn:samepage:policy:1" merge="yes" group="web"/>
 *   </metadata>
 *
 * merge is yes, no or required; group names a trust group (guests of
 * different groups are never mergeable at once unless the configuration
 * allows mixing).  The parser also reports <memoryBacking><nosharepages/>,
 * which the daemon honours unless merge="required".  Pure: a string in, a
 * struct out; nothing here talks to libvirt.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SP_POLICY_XML_NS "urn:samepage:policy:1"

/* Domain XML larger than this is refused (libvirt's own are a few KiB). */
#define SP_POLICY_XML_MAX (4 * 1024 * 1024)

#define SP_POLICY_ERROR (sp_policy_error_quark())
GQuark sp_policy_error_quark(void);

typedef enum {
    SP_POLICY_ERROR_XML,        /* not well-formed XML, or not a <domain> */
    SP_POLICY_ERROR_INVALID,    /* a value samepage does not accept */
    SP_POLICY_ERROR_TOO_LARGE,  /* over SP_POLICY_XML_MAX */
} SpPolicyError;

typedef enum {
    SP_POLICY_MERGE_UNSET = 0,  /* no policy element: the configuration decides */
    SP_POLICY_MERGE_NO,
    SP_POLICY_MERGE_YES,
    SP_POLICY_MERGE_REQUIRED,   /* mergeable even with <nosharepages/> */
} SpPolicyMerge;

typedef struct {
    char *name;                 /* <name> */
    char *uuid;                 /* <uuid>, or NULL */
    SpPolicyMerge merge;        /* from <metadata><policy xmlns=NS merge=.../>; UNSET if absent */
    char *group;                /* group="...", or NULL */
    gboolean nosharepages;      /* <memoryBacking><nosharepages/> */
} SpDomainPolicy;

/**
 * sp_domain_policy_from_xml:
 * @xml: a libvirt domain XML document (virDomainGetXMLDesc, or a hook's stdin)
 * @error: return location for an error
 *
 * Elements of other namespaces in <metadata> are ignored.  Malformed XML,
 * a document type declaration, a second samepage policy element, an
 * unknown merge value or a group name outside [A-Za-z0-9_.-]{1,64} give an
 * SP_POLICY_ERROR naming what and where (the line, for XML errors).
 *
 * Returns: (transfer full): the policy, or NULL with @error set
 */
SpDomainPolicy *sp_domain_policy_from_xml(const char *xml, GError **error);
void sp_domain_policy_free(SpDomainPolicy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDomainPolicy, sp_domain_policy_free)

/* "unset", "no", "yes", "required" */
const char *sp_policy_merge_to_string(SpPolicyMerge m);
/* Accepts "yes", "no", "required" (exactly); FALSE for anything else. */
gboolean sp_policy_merge_from_string(const char *s, SpPolicyMerge *out);
/* TRUE if @s is a valid trust group name: [A-Za-z0-9_.-]{1,64}. */
gboolean sp_policy_group_valid(const char *s);

/**
 * sp_policy_decide:
 * @p: a guest's policy
 * @merge_default: the configuration's [policy] merge, for guests without one
 * @reason: (out) (transfer full) (optional): why, one phrase for the log
 *
 * Whether the guest's RAM should be mergeable, before trust groups: its
 * policy, else the default; <nosharepages/> wins over merge=yes and the
 * default, merge=required wins over <nosharepages/>.
 */
gboolean sp_policy_decide(const SpDomainPolicy *p, gboolean merge_default, char **reason);

G_END_DECLS
