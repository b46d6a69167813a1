/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * datadir.h: where samepage finds its data (experiment plans, the domain
 * template, the guest image recipe) and the guest image cache
 *
 * The way libvirt finds its resources: an installed program uses the
 * installed directories ($(pkgdatadir), $(localstatedir)/cache/samepage);
 * a program run from the build tree it was built in (tests, CI, the demo)
 * uses the source tree's vm-images/ and vm-images/cache instead, so that
 * nothing has to be installed to test it.  $SAMEPAGE_DATADIR and
 * $SAMEPAGE_IMAGE_DIR override both.
 */
#pragma once

#include <glib.h>

typedef struct {
    const char *env_datadir;     /* $SAMEPAGE_DATADIR, or NULL */
    const char *env_image_dir;   /* $SAMEPAGE_IMAGE_DIR, or NULL */
    const char *exe;             /* the running program's resolved path, or NULL */
    const char *builddir;        /* the build tree it was built in (resolved) */
    const char *srcdir;          /* the source tree it was built from */
    const char *pkgdatadir;      /* installed data, $(pkgdatadir) */
    const char *image_cache;     /* installed image cache, $(localstatedir)/cache/samepage */
} SpCliDataDirs;

gboolean sp_cli_data_dirs_uninstalled(const SpCliDataDirs *dirs);
char *sp_cli_data_dirs_data(const SpCliDataDirs *dirs);
char *sp_cli_data_dirs_images(const SpCliDataDirs *dirs);

/* The answers for this process: its environment, /proc/self/exe and the
 * directories configure chose. */
char *sp_cli_data_dir(void);
char *sp_cli_image_dir(void);
