/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmodel.c: a pure model of ksmd's full scans
 *
 * Theory of operation
 *
 * The input is what ksmd would walk: the pages that have an rmap_item, mm by
 * mm, each mm in address order, each page reduced to the id of its content
 * class ("klass") and three flags.  Contents never change, so a full scan
 * is decided by what the kernel remembers about each page, and that is all
 * this file keeps (mm/ksm.c names in brackets):
 *
 * - SpModelItem, 8 bytes per page: the class and flags, the state (no
 *   rmap_item yet; an item in no tree; UNSTABLE_FLAG; STABLE_FLAG; mapped to
 *   the zero page; item freed), whether oldchecksum holds the page's checksum
 *   (an item starts with oldchecksum 0 [get_next_rmap_item zeroes it]), and
 *   the smart-scan age and remaining_skips, both u8 as in struct
 *   ksm_rmap_item.
 *
 * - Per class, two guint32 (8 bytes): the newest stable node of that
 *   content, and the item it has in this pass's unstable tree.  The kernel
 *   sorts both trees by memcmp() of the page bytes; since pages of one class
 *   are equal and the trees are keyed by nothing else, "walk the tree to the
 *   node equal to this page" becomes "index by class".  The unstable array is
 *   set to "none" at the start of every pass [root_unstable_tree[nid] =
 *   RB_ROOT in scan_get_next_rmap_item]; the items keep UNSTABLE_FLAG, and so
 *   stay in pages_unshared, until they are next visited or skipped
 *   [remove_rmap_item_from_tree].
 *
 * - Stable nodes, 8 bytes each, in one array: rmap_hlist_len and the link to
 *   the next older node of the same content.  A content with one node has a
 *   regular node; with two or more it has a chain whose dups they are
 *   [stable_tree_insert, alloc_stable_node_chain]: the second node makes
 *   stable_node_chains +1 and stable_node_dups +2 (the old node turns into a
 *   dup), every further one dups +1.  Nodes are only made when two unstable
 *   pages merge, so a content has at most ceil(n/max_page_sharing) and at
 *   most n/2 of them; the array is allocated for that sum up front, exactly
 *   (a GArray would round its capacity up to a power of two).
 *
 * So the model holds 8 bytes per page, 8 per class, and 8 per possible
 * node, which is at most 4 more per page (all pages in pairs) and usually
 * far less; a pass touches each page once and each class array entry O(1)
 * times.
 *
 * A node is a sharing candidate while 0 < rmap_hlist_len < max_page_sharing
 * [is_page_sharing_candidate], and the search takes the candidate with the
 * largest rmap_hlist_len [stable_node_dup].  Here pages never change, so
 * items never leave the stable tree: a node is made only when no candidate
 * exists, which leaves at most one candidate per content, the newest node,
 * and the newest node is the one at the head of the list (a new dup goes to
 * the head of the chain [stable_node_chain_add_dup]).  So the search looks
 * at the head only, and stale dups, pruning and chain collapse cannot occur.
 *
 * One visit of a page, in scan order:
 * - item mapped to the zero page: the page is no longer anonymous, the walk
 *   passes its address and frees the item [get_next_rmap_item or
 *   remove_trailing_rmap_items → free_rmap_item]; rmap_items--, for good.
 * - no item yet: allocate one (rmap_items++, the mm's ksm_rmap_items++).
 * - STABLE item: its page is the KSM page of the node holding the item:
 *   pages_scanned++ and return [cmp_and_merge_page: rmap_item->head ==
 *   stable_node]; never aged, never skipped [should_skip_rmap_item:
 *   folio_test_ksm].
 * - smart_scan [should_skip_rmap_item, skip_age]: a = age, age = min(age+1,
 *   255); a < 3 → process; remaining_skips == 0 → remaining_skips =
 *   skip_age(a) and process; otherwise remaining_skips--, pages_skipped++,
 *   leave the unstable tree, and go on without pages_scanned++ [ksm_do_scan
 *   counts only cmp_and_merge_page calls].
 * - cmp_and_merge_page, 6.11+ (checksum_first): leave the tree; if the
 *   checksum differs from oldchecksum, store it and return (a volatile page
 *   always, any other page on its first visit unless its checksum is 0);
 *   with use_zero_pages an all-zero page is mapped to the zero page
 *   [try_to_merge_with_zero_page: ksm_zero_pages++ globally and per mm] and
 *   the visit ends; else stable search: a candidate → append.  6.6-6.10: the
 *   stable search comes first, so a page merges into a KSM page with room
 *   even on its first visit; only when there is none do the tree, checksum
 *   and zero-page steps follow [cmp_and_merge_page before d58a361b0350].
 *   A page the kernel could not lock or write-protect (-EBUSY, GUP pins)
 *   is not modelled: every merge tried succeeds.
 * - unstable step [unstable_tree_search_insert]: if this pass's tree holds
 *   an item of the class, the two pages merge [try_to_merge_two_pages]: the
 *   tree item leaves the tree (pages_unshared--), a node is made
 *   [stable_tree_insert], the tree item is appended first (pages_shared++,
 *   as the node was empty) and this one second (pages_sharing++)
 *   [stable_tree_append]; the mm of each item gets ksm_merging_pages++.
 *   Otherwise the item is inserted: UNSTABLE_FLAG, pages_unshared++.
 *
 * pages_volatile, general_profit and ksm_process_profit are computed when
 * read, from the sysfs *_show formulas.
 *
 * An mm may join later than the first pass (sp_model_set_mm_first_pass): it
 * models __ksm_enter() putting a new mm just behind the scan cursor, so that
 * its pages are first visited in the following pass.  Because items of such
 * an mm are younger, smart scan may skip them in other passes than the
 * rest, and two equal pages may meet only many passes later.  Convergence
 * therefore needs more than two quiet passes in that case (see
 * sp_model_converged()).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-model"

#include <string.h>

#include "samepage/spmodel.h"


#define SP_MODEL_NONE G_MAXUINT32        /* no node, no item */
#define SP_MODEL_PAGE_SIZE 4096          /* PAGE_SIZE, x86_64 */
#define SP_MODEL_RMAP_ITEM_SIZE 64       /* sizeof(struct ksm_rmap_item), x86_64 */
#define SP_MODEL_MAX_PAGE_SHARING G_MAXINT  /* ksm_max_page_sharing is an int */

/* should_skip_rmap_item(): ages below this are never skipped. */
#define SP_MODEL_SMART_MIN_AGE 3
/* From a processed visit at this age on, skip_age() is 8 every time: an item
 * is then processed once every SP_MODEL_SMART_PERIOD passes, for good. */
#define SP_MODEL_SMART_STEADY_AGE 13
#define SP_MODEL_SMART_PERIOD 9

/* SpModelItem.st: the SpModelState in the low bits, then two flags. */
#define SP_ITEM_STATE_MASK 0x07
#define SP_ITEM_ALLOCATED 0x08   /* an rmap_item exists (or existed: GONE) */
#define SP_ITEM_CSUM_SEEN 0x10   /* oldchecksum holds the page's checksum */

typedef struct {
    guint32 klass;
    guint8 flags;             /* SP_MODEL_PAGE_* */
    guint8 st;                /* SpModelState | SP_ITEM_* */
    guint8 age;               /* rmap_item->age */
    guint8 remaining_skips;   /* rmap_item->remaining_skips */
} SpModelItem;
G_STATIC_ASSERT(sizeof(SpModelItem) == 8);

typedef struct {
    guint32 len;    /* rmap_hlist_len */
    guint32 next;   /* the next older node of the same content, or NONE */
} SpModelNode;
G_STATIC_ASSERT(sizeof(SpModelNode) == 8);

typedef struct {
    guint64 first_pass;       /* the pass that first visits this mm (1-based) */
    guint64 rmap_items;       /* mm->ksm_rmap_items */
    guint64 merging_pages;    /* mm->ksm_merging_pages */
    guint64 zero_pages;       /* mm->ksm_zero_pages */
} SpModelMm;

/* What one pass did, for the convergence test. */
typedef struct {
    guint64 merges;           /* stable_tree_append() calls */
    guint64 zero_merges;
    guint64 freed;            /* rmap_items freed */
    guint64 allocated;        /* rmap_items allocated */
    guint64 skipped;          /* smart-scan skips */
    guint8 min_age;           /* smallest age of a non-KSM item after the visit */
} SpModelPassLog;

struct _SpModel {
    SpModelConfig cfg;
    SpModelItem *items;
    gsize n_pages;
    guint32 n_classes;
    guint32 *stable_head;     /* per class: newest stable node, or NONE */
    guint32 *unstable;        /* per class: item in this pass's unstable tree, or NONE */
    SpModelNode *nodes;
    gsize n_nodes;
    gsize nodes_cap;          /* sp_model_node_bound() */
    gsize *mm_first;          /* n_mm + 1 */
    SpModelMm *mms;
    guint n_mm;

    guint64 pages_shared;
    guint64 pages_sharing;
    guint64 pages_unshared;
    guint64 pages_skipped;
    guint64 pages_scanned;
    guint64 full_scans;
    guint64 stable_node_chains;
    guint64 stable_node_dups;
    guint64 ksm_zero_pages;
    guint64 rmap_items;
    guint64 pages_shared_zero;
    guint64 pages_sharing_zero;

    SpModelPassLog pass;      /* the pass running, then the last pass run */
    guint quiet_run;          /* consecutive passes without merge, zero merge, free */
    gboolean proof;           /* a pass of this quiet run processed every item */
};

G_DEFINE_QUARK(sp-model-error-quark, sp_model_error)

static inline void
sp_model_fill_none(guint32 *a, guint32 n)
{
    if (n)
        memset(a, 0xff, sizeof(guint32) * (gsize)n);
}

/**
 * sp_model_config_init:
 * @cfg: (out caller-allocates): the knobs
 *
 * Sets the kernel's defaults, with the 6.11+ order of the checksum gate.
 */
void
sp_model_config_init(SpModelConfig *cfg)
{
    g_return_if_fail(cfg != NULL);

    cfg->max_page_sharing = 256;
    cfg->use_zero_pages = FALSE;
    cfg->smart_scan = TRUE;
    cfg->checksum_first = TRUE;
}

static gboolean
sp_model_check_mm_first(gsize n_pages, const gsize *mm_first, guint n_mm, GError **error)
{
    if (!mm_first) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_MM, "mm_first is missing");
        return FALSE;
    }
    if (mm_first[0] != 0) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_MM,
                    "mm_first[0] is %" G_GSIZE_FORMAT ", not 0", mm_first[0]);
        return FALSE;
    }
    for (guint i = 0; i < n_mm; i++) {
        if (mm_first[i + 1] < mm_first[i]) {
            g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_MM,
                        "mm_first[%u] = %" G_GSIZE_FORMAT " is below mm_first[%u] = %"
                        G_GSIZE_FORMAT, i + 1, mm_first[i + 1], i, mm_first[i]);
            return FALSE;
        }
    }
    if (mm_first[n_mm] != n_pages) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_MM,
                    "mm_first[%u] is %" G_GSIZE_FORMAT ", not the page count %" G_GSIZE_FORMAT,
                    n_mm, mm_first[n_mm], n_pages);
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_model_check_flags(gsize i, guint8 flags, GError **error)
{
    const char *why = NULL;

    if (flags & ~SP_MODEL_PAGE_FLAGS_ALL)
        why = "unknown flag bits";
    else if ((flags & SP_MODEL_PAGE_VOLATILE) && (flags & SP_MODEL_PAGE_ZERO))
        why = "a volatile page cannot be known to be all zero";
    else if ((flags & SP_MODEL_PAGE_ZERO) && (flags & SP_MODEL_PAGE_CSUM0))
        why = "an all-zero page has the zero page's checksum, not 0";
    if (why) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_PAGE,
                    "page %" G_GSIZE_FORMAT ": flags 0x%x: %s", i, flags, why);
        return FALSE;
    }
    return TRUE;
}

/*
 * Checks the pages, using the two per-class arrays as scratch space: @first
 * gets the first page of each class, @count the number of pages of each.
 * The caller resets both afterwards.
 */
static gboolean
sp_model_check_pages(const SpModelPage *pages, gsize n_pages, guint32 n_classes,
                     guint32 *first, guint32 *count, GError **error)
{
    const guint8 content_flags = SP_MODEL_PAGE_ZERO | SP_MODEL_PAGE_CSUM0;

    for (gsize i = 0; i < n_pages; i++) {
        const SpModelPage *pg = &pages[i];
        guint32 k = pg->klass;

        if (pg->flags & SP_MODEL_PAGE_UNIQUE) {
            if (!sp_model_check_flags(i, pg->flags, error))
                return FALSE;
            continue;
        }
        if (k >= n_classes) {
            g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_PAGE,
                        "page %" G_GSIZE_FORMAT ": class %u is not below the class count %u",
                        i, k, n_classes);
            return FALSE;
        }
        if (!sp_model_check_flags(i, pg->flags, error))
            return FALSE;
        if (first[k] == SP_MODEL_NONE) {
            first[k] = (guint32)i;
        } else {
            const SpModelPage *f = &pages[first[k]];

            if ((pg->flags | f->flags) & SP_MODEL_PAGE_VOLATILE) {
                g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_PAGE,
                            "page %" G_GSIZE_FORMAT ": class %u is also page %u's, "
                            "but a volatile page's class must be its own", i, k, first[k]);
                return FALSE;
            }
            if ((pg->flags ^ f->flags) & content_flags) {
                g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_PAGE,
                            "page %" G_GSIZE_FORMAT ": flags 0x%x differ from those of page %u "
                            "(0x%x) in the zero or checksum-0 bit, yet both are class %u",
                            i, pg->flags, first[k], f->flags, k);
                return FALSE;
            }
        }
        count[k]++;
    }
    return TRUE;
}

/*
 * The most stable nodes the pages can ever need: a content of c pages gets
 * at most one node per 2 pages (each node has >= 2 items) and at most
 * ceil(c / max_page_sharing) (only the newest node is ever not full).
 */
static gsize
sp_model_node_bound(const guint32 *count, guint32 n_classes, guint max_page_sharing)
{
    gsize bound = 0;

    for (guint32 k = 0; k < n_classes; k++) {
        gsize c = count[k];
        gsize by_pairs = c / 2;
        gsize by_fill = c / max_page_sharing + (c % max_page_sharing ? 1 : 0);

        bound += MIN(by_pairs, by_fill);
    }
    return bound;
}

/**
 * sp_model_new:
 * @cfg: the knobs (copied)
 * @pages: (array length=n_pages): the pages that have an rmap_item, in scan
 *   order: mm by mm, each mm in address order
 * @n_classes: the number of content classes; every klass is below it
 * @mm_first: (array length=n_mm+1): index of each mm's first page, with
 *   mm_first[n_mm] == @n_pages
 * @n_mm: the number of mms (processes)
 *
 * Validates the whole input before anything is allocated for it: the knob
 * ranges, mm_first, each page's class and flags (a volatile page must have a
 * class of its own, and the pages of a class must agree on the zero and
 * checksum-0 flags, since their contents are the same).  The pages are
 * copied.  Every mm is first visited in pass 1; see
 * sp_model_set_mm_first_pass() for later ones.
 *
 * Returns: (transfer full): the model before its first pass, or %NULL.
 */
G_STATIC_ASSERT(sizeof(SpModelPage) == sizeof(SpModelItem));
G_STATIC_ASSERT(G_STRUCT_OFFSET(SpModelPage, klass) == G_STRUCT_OFFSET(SpModelItem, klass));
G_STATIC_ASSERT(G_STRUCT_OFFSET(SpModelPage, flags) == G_STRUCT_OFFSET(SpModelItem, flags));

static SpModel *
sp_model_new_internal(const SpModelConfig *cfg, const SpModelPage *pages, SpModelPage *take,
                      gsize n_pages, guint32 n_classes, const gsize *mm_first, guint n_mm,
                      GError **error)
{
    g_autoptr(SpModel) m = NULL;

    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!cfg) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_CONFIG, "the configuration is missing");
        return NULL;
    }
    if (cfg->max_page_sharing < 2 || cfg->max_page_sharing > SP_MODEL_MAX_PAGE_SHARING) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_CONFIG,
                    "max_page_sharing %u is out of range [2, %d]",
                    cfg->max_page_sharing, SP_MODEL_MAX_PAGE_SHARING);
        return NULL;
    }
    if (n_pages >= SP_MODEL_NONE) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_PAGE,
                    "%" G_GSIZE_FORMAT " pages are more than the model indexes (%u)",
                    n_pages, SP_MODEL_NONE - 1);
        return NULL;
    }
    if (n_pages > 0 && !pages) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_PAGE,
                    "%" G_GSIZE_FORMAT " pages announced but none given", n_pages);
        return NULL;
    }
    if (!sp_model_check_mm_first(n_pages, mm_first, n_mm, error))
        return NULL;

    m = g_new0(SpModel, 1);
    m->cfg = *cfg;
    m->cfg.use_zero_pages = !!cfg->use_zero_pages;
    m->cfg.smart_scan = !!cfg->smart_scan;
    m->cfg.checksum_first = !!cfg->checksum_first;
    m->n_pages = n_pages;
    m->n_classes = n_classes;
    m->n_mm = n_mm;
    m->stable_head = g_new(guint32, n_classes);
    m->unstable = g_new0(guint32, n_classes);
    sp_model_fill_none(m->stable_head, n_classes);

    if (!sp_model_check_pages(pages, n_pages, n_classes, m->stable_head, m->unstable, error))
        return NULL;

    m->nodes_cap = sp_model_node_bound(m->unstable, n_classes, cfg->max_page_sharing);
    m->nodes = g_new(SpModelNode, m->nodes_cap);
    sp_model_fill_none(m->stable_head, n_classes);
    sp_model_fill_none(m->unstable, n_classes);

    if (take) {
        /* The caller's array becomes the items: same size and layout, the
         * padding after flags holds the state, age and skips. */
        m->items = (SpModelItem *)(void *)take;
        for (gsize i = 0; i < n_pages; i++) {
            m->items[i].st = SP_MODEL_STATE_NONE;
            m->items[i].age = 0;
            m->items[i].remaining_skips = 0;
        }
    } else {
        m->items = g_new(SpModelItem, n_pages);
        for (gsize i = 0; i < n_pages; i++) {
            m->items[i] = (SpModelItem){
                .klass = pages[i].klass,
                .flags = pages[i].flags,
                .st = SP_MODEL_STATE_NONE,
            };
        }
    }
    m->mm_first = g_memdup2(mm_first, sizeof(gsize) * ((gsize)n_mm + 1));
    m->mms = g_new0(SpModelMm, n_mm);
    for (guint i = 0; i < n_mm; i++)
        m->mms[i].first_pass = 1;
    m->pass.min_age = G_MAXUINT8;
    return g_steal_pointer(&m);
}

SpModel *
sp_model_new(const SpModelConfig *cfg, const SpModelPage *pages, gsize n_pages,
             guint32 n_classes, const gsize *mm_first, guint n_mm, GError **error)
{
    return sp_model_new_internal(cfg, pages, NULL, n_pages, n_classes, mm_first, n_mm, error);
}

/**
 * sp_model_new_take:
 * @pages: (transfer full): as for sp_model_new(), allocated with g_malloc();
 *   the model uses the array itself for its items, so a large scan needs
 *   no second copy.  Freed by the model, also when this fails.
 *
 * Like sp_model_new(), without copying the pages.
 */
SpModel *
sp_model_new_take(const SpModelConfig *cfg, SpModelPage *pages, gsize n_pages,
                  guint32 n_classes, const gsize *mm_first, guint n_mm, GError **error)
{
    SpModel *m = sp_model_new_internal(cfg, pages, pages, n_pages, n_classes, mm_first, n_mm,
                                       error);
    if (!m)
        g_free(pages);
    return m;
}

/* The class and flags given for a page. */
guint32
sp_model_page_class(const SpModel *m, gsize page)
{
    g_return_val_if_fail(page < m->n_pages, SP_MODEL_NONE);
    return m->items[page].klass;
}

guint8
sp_model_page_flags(const SpModel *m, gsize page)
{
    g_return_val_if_fail(page < m->n_pages, 0);
    return m->items[page].flags;
}

/**
 * sp_model_free:
 * @m: (nullable): a model
 */
void
sp_model_free(SpModel *m)
{
    if (!m)
        return;
    g_free(m->items);
    g_free(m->stable_head);
    g_free(m->unstable);
    g_free(m->nodes);
    g_free(m->mm_first);
    g_free(m->mms);
    g_free(m);
}

/**
 * sp_model_set_mm_first_pass:
 * @m: a model
 * @mm: which mm
 * @first_pass: the pass (1-based: full_scans + 1 while it runs) that visits
 *   the mm's pages for the first time
 *
 * Makes an mm join late, as a process does that calls MADV_MERGEABLE or
 * PR_SET_MEMORY_MERGE while ksmd is in pass @first_pass - 1: __ksm_enter()
 * puts the mm just behind the scan cursor, so ksmd reaches it in the next
 * pass.  Its place in the scan order stays the one given to sp_model_new().
 * Until then the mm has no rmap_items.  Fails if the mm was visited already
 * or @first_pass is not a pass still to come.
 */
gboolean
sp_model_set_mm_first_pass(SpModel *m, guint mm, guint64 first_pass, GError **error)
{
    g_return_val_if_fail(m != NULL, FALSE);

    if (mm >= m->n_mm) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_MM,
                    "mm %u does not exist (there are %u)", mm, m->n_mm);
        return FALSE;
    }
    if (m->mms[mm].first_pass <= m->full_scans) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_STATE,
                    "mm %u was already visited in pass %" G_GUINT64_FORMAT,
                    mm, m->mms[mm].first_pass);
        return FALSE;
    }
    if (first_pass <= m->full_scans) {
        g_set_error(error, SP_MODEL_ERROR, SP_MODEL_ERROR_STATE,
                    "pass %" G_GUINT64_FORMAT " is not to come: %" G_GUINT64_FORMAT
                    " passes were run", first_pass, m->full_scans);
        return FALSE;
    }
    m->mms[mm].first_pass = first_pass;
    return TRUE;
}

static inline SpModelState
sp_model_item_state(const SpModelItem *it)
{
    return it->st & SP_ITEM_STATE_MASK;
}

static inline void
sp_model_item_set_state(SpModelItem *it, SpModelState state)
{
    it->st = (guint8)((it->st & ~SP_ITEM_STATE_MASK) | (guint)state);
}

static inline SpModelNode *
sp_model_node(SpModel *m, guint32 idx)
{
    return &m->nodes[idx];
}

/* The mm that holds page @p (an mm may be empty). */
static guint
sp_model_mm_of(const SpModel *m, gsize p)
{
    guint lo = 0, hi = m->n_mm;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;

        if (m->mm_first[mid + 1] <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* remove_rmap_item_from_tree(): STABLE items never get here (pages do not change). */
static inline void
sp_model_remove_from_tree(SpModel *m, gsize p, SpModelItem *it)
{
    if (sp_model_item_state(it) != SP_MODEL_STATE_UNSTABLE)
        return;
    sp_model_item_set_state(it, SP_MODEL_STATE_NONE);
    m->pages_unshared--;
    /* rb_erase only if it was inserted in this pass; else the tree was reset. */
    if (!(it->flags & SP_MODEL_PAGE_UNIQUE) && m->unstable[it->klass] == p)
        m->unstable[it->klass] = SP_MODEL_NONE;
}

/* skip_age() */
static inline guint8
sp_model_skip_age(guint8 age)
{
    if (age <= 3)
        return 1;
    if (age <= 5)
        return 2;
    if (age <= 8)
        return 4;
    return 8;
}

/* should_skip_rmap_item(), for a page that is not a KSM page. */
static gboolean
sp_model_should_skip(SpModel *m, gsize p, SpModelItem *it)
{
    guint8 age = it->age;
    gboolean skip = FALSE;

    if (age != G_MAXUINT8)
        it->age++;
    if (age >= SP_MODEL_SMART_MIN_AGE) {
        if (!it->remaining_skips) {
            it->remaining_skips = sp_model_skip_age(age);
        } else {
            it->remaining_skips--;
            m->pages_skipped++;
            m->pass.skipped++;
            sp_model_remove_from_tree(m, p, it);
            skip = TRUE;
        }
    }
    m->pass.min_age = MIN(m->pass.min_age, it->age);
    return skip;
}

/*
 * The checksum gate: TRUE if the checksum equals oldchecksum.  The stored
 * checksum is the page's own from its first visit on, and oldchecksum
 * starts as 0; a volatile page has a new checksum at every visit.
 */
static inline gboolean
sp_model_checksum_unchanged(SpModelItem *it)
{
    gboolean first = !(it->st & SP_ITEM_CSUM_SEEN);

    it->st |= SP_ITEM_CSUM_SEEN;
    if (first)
        return (it->flags & SP_MODEL_PAGE_CSUM0) != 0;
    return !(it->flags & SP_MODEL_PAGE_VOLATILE);
}

/* try_to_merge_with_zero_page(): TRUE if the page now maps the zero page. */
static inline gboolean
sp_model_try_zero_page(SpModel *m, guint mm, SpModelItem *it)
{
    if (!m->cfg.use_zero_pages || !(it->flags & SP_MODEL_PAGE_ZERO))
        return FALSE;
    sp_model_item_set_state(it, SP_MODEL_STATE_ZERO_MERGED);
    m->ksm_zero_pages++;
    m->mms[mm].zero_pages++;
    m->pass.zero_merges++;
    return TRUE;
}

/* stable_tree_search(): the sharing candidate of the class, or NONE. */
static inline guint32
sp_model_stable_search(SpModel *m, const SpModelItem *it)
{
    guint32 head;
    const SpModelNode *n;

    if (it->flags & SP_MODEL_PAGE_UNIQUE)
        return SP_MODEL_NONE;
    head = m->stable_head[it->klass];
    if (head == SP_MODEL_NONE)
        return SP_MODEL_NONE;
    /* Every older node is full (see the top of this file). */
    n = sp_model_node(m, head);
    if (n->len > 0 && n->len < m->cfg.max_page_sharing)
        return head;
    return SP_MODEL_NONE;
}

/* stable_tree_insert(): a new regular node, or a new dup of the chain. */
static guint32
sp_model_stable_insert(SpModel *m, guint32 klass)
{
    SpModelNode node = { .len = 0, .next = m->stable_head[klass] };
    guint32 idx = (guint32)m->n_nodes;

    /* sp_model_node_bound() is a proven upper bound. */
    g_assert(m->n_nodes < m->nodes_cap);

    if (node.next != SP_MODEL_NONE) {
        if (sp_model_node(m, node.next)->next == SP_MODEL_NONE) {
            /* alloc_stable_node_chain(): the regular node becomes a dup. */
            m->stable_node_chains++;
            m->stable_node_dups++;
        }
        m->stable_node_dups++;
    }
    m->nodes[m->n_nodes++] = node;
    m->stable_head[klass] = idx;
    return idx;
}

/* stable_tree_append() */
static void
sp_model_append(SpModel *m, guint mm, SpModelItem *it, guint32 idx)
{
    SpModelNode *n = sp_model_node(m, idx);
    guint zero = (it->flags & SP_MODEL_PAGE_ZERO) ? 1 : 0;

    if (n->len++ == 0) {
        m->pages_shared++;
        m->pages_shared_zero += zero;
    } else {
        m->pages_sharing++;
        m->pages_sharing_zero += zero;
    }
    sp_model_item_set_state(it, SP_MODEL_STATE_STABLE);
    m->mms[mm].merging_pages++;
    m->pass.merges++;
}

/* unstable_tree_search_insert() and, on a match, try_to_merge_two_pages(). */
static void
sp_model_unstable_step(SpModel *m, guint mm, gsize p, SpModelItem *it)
{
    guint32 klass = it->klass;
    guint32 t;
    SpModelItem *tree_it;
    guint32 node;

    if (it->flags & SP_MODEL_PAGE_UNIQUE) {
        /* Inserted, and nothing will ever find it. */
        sp_model_item_set_state(it, SP_MODEL_STATE_UNSTABLE);
        m->pages_unshared++;
        return;
    }
    t = m->unstable[klass];
    if (t == SP_MODEL_NONE) {
        sp_model_item_set_state(it, SP_MODEL_STATE_UNSTABLE);
        m->pages_unshared++;
        m->unstable[klass] = (guint32)p;
        return;
    }
    tree_it = &m->items[t];
    g_assert(t != p && sp_model_item_state(tree_it) == SP_MODEL_STATE_UNSTABLE);
    sp_model_remove_from_tree(m, t, tree_it);
    node = sp_model_stable_insert(m, klass);
    sp_model_append(m, sp_model_mm_of(m, t), tree_it, node);
    sp_model_append(m, mm, it, node);
}

/* cmp_and_merge_page() for a page that is not a KSM page. */
static void
sp_model_cmp_and_merge(SpModel *m, guint mm, gsize p, SpModelItem *it)
{
    guint32 node;

    if (m->cfg.checksum_first) {
        sp_model_remove_from_tree(m, p, it);
        if (!sp_model_checksum_unchanged(it))
            return;
        if (sp_model_try_zero_page(m, mm, it))
            return;
        node = sp_model_stable_search(m, it);
    } else {
        node = sp_model_stable_search(m, it);
        sp_model_remove_from_tree(m, p, it);
        if (node == SP_MODEL_NONE) {
            if (!sp_model_checksum_unchanged(it))
                return;
            if (sp_model_try_zero_page(m, mm, it))
                return;
        }
    }
    if (node != SP_MODEL_NONE) {
        sp_model_append(m, mm, it, node);
        return;
    }
    sp_model_unstable_step(m, mm, p, it);
}

/* One step of scan_get_next_rmap_item() plus cmp_and_merge_page(). */
static inline void
sp_model_visit(SpModel *m, guint mm, gsize p)
{
    SpModelItem *it = &m->items[p];

    switch (sp_model_item_state(it)) {
    case SP_MODEL_STATE_GONE:
        return;
    case SP_MODEL_STATE_ZERO_MERGED:
        /* Not anonymous any more: the walk passes it and frees its item. */
        sp_model_item_set_state(it, SP_MODEL_STATE_GONE);
        m->rmap_items--;
        m->mms[mm].rmap_items--;
        m->pass.freed++;
        return;
    case SP_MODEL_STATE_STABLE:
        m->pages_scanned++;
        return;
    case SP_MODEL_STATE_NONE:
        if (!(it->st & SP_ITEM_ALLOCATED)) {
            it->st |= SP_ITEM_ALLOCATED;
            it->age = 0;
            it->remaining_skips = 0;
            m->rmap_items++;
            m->mms[mm].rmap_items++;
            m->pass.allocated++;
        }
        break;
    case SP_MODEL_STATE_UNSTABLE:
        break;
    }
    if (m->cfg.smart_scan && sp_model_should_skip(m, p, it))
        return;
    m->pages_scanned++;
    sp_model_cmp_and_merge(m, mm, p, it);
}

/**
 * sp_model_run_pass:
 * @m: a model
 *
 * Runs one full scan: the unstable tree starts empty, every mm due by now is
 * visited page by page, and full_scans goes up by one.
 */
void
sp_model_run_pass(SpModel *m)
{
    guint64 pass = m->full_scans + 1;
    gboolean quiet;

    g_return_if_fail(m != NULL);

    memset(&m->pass, 0, sizeof(m->pass));
    m->pass.min_age = G_MAXUINT8;
    sp_model_fill_none(m->unstable, m->n_classes);

    for (guint mm = 0; mm < m->n_mm; mm++) {
        if (m->mms[mm].first_pass > pass)
            continue;
        for (gsize p = m->mm_first[mm]; p < m->mm_first[mm + 1]; p++)
            sp_model_visit(m, mm, p);
    }
    m->full_scans = pass;

    quiet = !m->pass.merges && !m->pass.zero_merges && !m->pass.freed;
    if (!quiet || m->pass.allocated) {
        m->proof = FALSE;
    } else if (!m->pass.skipped) {
        /* Every live item was processed with its checksum settled. */
        m->proof = TRUE;
    }
    m->quiet_run = quiet ? m->quiet_run + 1 : 0;
}

/*
 * Whether no further pass can change anything.  The rule is two consecutive
 * passes without a merge, a zero-page merge or a freed rmap_item, after at
 * least two passes; then:
 * - no mm still to join, and no item allocated in the last pass (its page
 *   has not been compared yet);
 * - proof that the quiet passes compared every page: a quiet pass in which
 *   no item was skipped or new.  Each content then has at most one unmerged
 *   page and no node with room, so nothing can merge later.  When all mms
 *   join in pass 1 all items age together and such a pass always comes
 *   within the first four, so this adds nothing to the two-pass rule.
 * - failing that (late mms, smart scan: items skipped in different passes
 *   may never all be compared in one pass), the skip pattern must have
 *   become periodic (every item past SP_MODEL_SMART_STEADY_AGE) and a whole
 *   period of passes must have been quiet: later passes repeat it.
 */
static gboolean
sp_model_converged(const SpModel *m)
{
    if (m->full_scans < 2 || m->quiet_run < 2 || m->pass.allocated)
        return FALSE;
    for (guint mm = 0; mm < m->n_mm; mm++) {
        if (m->mms[mm].first_pass > m->full_scans)
            return FALSE;
    }
    if (m->proof)
        return TRUE;
    return m->quiet_run >= SP_MODEL_SMART_PERIOD &&
           m->pass.min_age >= SP_MODEL_SMART_STEADY_AGE + SP_MODEL_SMART_PERIOD;
}

/**
 * sp_model_run_until_converged:
 * @m: a model
 * @max_passes: the most passes to run in this call
 * @converged: (out) (optional): whether the model converged
 *
 * Runs passes until two consecutive passes made no merge, no zero-page merge
 * and freed no rmap_item, with at least two passes run in all (and the
 * further conditions that late mms need, see sp_model_converged()), or
 * until @max_passes passes were run.
 *
 * Returns: the number of passes run by this call.
 */
guint
sp_model_run_until_converged(SpModel *m, guint max_passes, gboolean *converged)
{
    guint n = 0;

    g_return_val_if_fail(m != NULL, 0);

    while (n < max_passes && !sp_model_converged(m)) {
        sp_model_run_pass(m);
        n++;
    }
    if (converged)
        *converged = sp_model_converged(m);
    return n;
}

/**
 * sp_model_get_counters:
 * @m: a model
 * @out: (out caller-allocates): the figures after the last pass
 *
 * pages_volatile and general_profit are derived as the kernel's sysfs show
 * functions do: max(0, rmap_items - shared - sharing - unshared), and
 * (pages_sharing + ksm_zero_pages) * 4096 - rmap_items * 64.
 */
void
sp_model_get_counters(const SpModel *m, SpModelCounters *out)
{
    guint64 accounted;

    g_return_if_fail(out != NULL);
    memset(out, 0, sizeof(*out));
    g_return_if_fail(m != NULL);

    out->pages_shared = m->pages_shared;
    out->pages_sharing = m->pages_sharing;
    out->pages_unshared = m->pages_unshared;
    accounted = m->pages_shared + m->pages_sharing + m->pages_unshared;
    out->pages_volatile = m->rmap_items > accounted ? m->rmap_items - accounted : 0;
    out->pages_skipped = m->pages_skipped;
    out->pages_scanned = m->pages_scanned;
    out->full_scans = m->full_scans;
    out->stable_node_chains = m->stable_node_chains;
    out->stable_node_dups = m->stable_node_dups;
    out->ksm_zero_pages = m->ksm_zero_pages;
    out->rmap_items = m->rmap_items;
    out->general_profit = (gint64)(m->pages_sharing + m->ksm_zero_pages) * SP_MODEL_PAGE_SIZE -
                          (gint64)m->rmap_items * SP_MODEL_RMAP_ITEM_SIZE;
    out->pages_shared_zero = m->pages_shared_zero;
    out->pages_sharing_zero = m->pages_sharing_zero;
}

/**
 * sp_model_get_mm_counters:
 * @m: a model
 * @mm: which mm
 * @out: (out caller-allocates): its /proc/PID/ksm_stat figures
 *
 * ksm_merging_pages counts every stable rmap_item of the mm, the first of a
 * KSM page included, so the sum over mms is pages_shared + pages_sharing.
 */
void
sp_model_get_mm_counters(const SpModel *m, guint mm, SpModelMmCounters *out)
{
    const SpModelMm *s;

    g_return_if_fail(out != NULL);
    memset(out, 0, sizeof(*out));
    g_return_if_fail(m != NULL && mm < m->n_mm);

    s = &m->mms[mm];
    out->ksm_rmap_items = s->rmap_items;
    out->ksm_merging_pages = s->merging_pages;
    out->ksm_zero_pages = s->zero_pages;
    out->ksm_process_profit = (gint64)(s->merging_pages + s->zero_pages) * SP_MODEL_PAGE_SIZE -
                              (gint64)s->rmap_items * SP_MODEL_RMAP_ITEM_SIZE;
}

/**
 * sp_model_page_state:
 * @m: a model
 * @page: index of the page in the input
 *
 * Returns: what the kernel knows of the page after the last pass.
 */
SpModelState
sp_model_page_state(const SpModel *m, gsize page)
{
    g_return_val_if_fail(m != NULL && page < m->n_pages, SP_MODEL_STATE_NONE);
    return sp_model_item_state(&m->items[page]);
}
