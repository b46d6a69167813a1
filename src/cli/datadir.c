/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * datadir.c: where samepage finds its data and its guest image cache,
 * installed or run from its build tree (see datadir.h)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "datadir.h"

/*
 * TRUE when @dirs->exe lies inside @dirs->builddir: the program runs from
 * the tree it was built in, not from where `make install` put it.
 */
gboolean
sp_cli_data_dirs_uninstalled(const SpCliDataDirs *dirs)
{
    gsize n;

    if (!dirs->exe || !dirs->builddir || !*dirs->builddir)
        return FALSE;
    n = strlen(dirs->builddir);
    while (n > 1 && dirs->builddir[n - 1] == '/')
        n--;
    return strncmp(dirs->exe, dirs->builddir, n) == 0 && dirs->exe[n] == '/';
}

/* $SAMEPAGE_DATADIR; else the source tree's vm-images/ when uninstalled;
 * else $(pkgdatadir). */
char *
sp_cli_data_dirs_data(const SpCliDataDirs *dirs)
{
    if (dirs->env_datadir && *dirs->env_datadir)
        return g_strdup(dirs->env_datadir);
    if (sp_cli_data_dirs_uninstalled(dirs))
        return g_build_filename(dirs->srcdir, "vm-images", NULL);
    return g_strdup(dirs->pkgdatadir);
}

/* $SAMEPAGE_IMAGE_DIR; else the source tree's vm-images/cache when
 * uninstalled (where vm-images/build-image puts it); else the installed
 * cache directory. */
char *
sp_cli_data_dirs_images(const SpCliDataDirs *dirs)
{
    if (dirs->env_image_dir && *dirs->env_image_dir)
        return g_strdup(dirs->env_image_dir);
    if (sp_cli_data_dirs_uninstalled(dirs))
        return g_build_filename(dirs->srcdir, "vm-images", "cache", NULL);
    return g_strdup(dirs->image_cache);
}

/* Fills @dirs for this process; the caller frees @exe and @builddir. */
static void
sp_cli_data_dirs_here(SpCliDataDirs *dirs, char **exe, char **builddir)
{
    *exe = g_file_read_link("/proc/self/exe", NULL);
    /* /proc/self/exe is resolved: so must the build tree be to compare. */
    *builddir = realpath(SP_TOP_BUILDDIR, NULL);
    dirs->env_datadir = g_getenv("SAMEPAGE_DATADIR");
    dirs->env_image_dir = g_getenv("SAMEPAGE_IMAGE_DIR");
    dirs->exe = *exe;
    dirs->builddir = *builddir;
    dirs->srcdir = SP_TOP_SRCDIR;
    dirs->pkgdatadir = SP_PKGDATADIR;
    dirs->image_cache = SP_IMAGE_CACHE_DIR;
}

/* One of this program's directories, as @choose picks it from its places. */
static char *
sp_cli_dir_here(char *(*choose)(const SpCliDataDirs *dirs))
{
    SpCliDataDirs dirs = { 0 };
    g_autofree char *exe = NULL;
    char *builddir = NULL;
    char *dir;

    sp_cli_data_dirs_here(&dirs, &exe, &builddir);
    dir = choose(&dirs);
    free(builddir);
    return dir;
}

char *
sp_cli_data_dir(void)
{
    return sp_cli_dir_here(sp_cli_data_dirs_data);
}

char *
sp_cli_image_dir(void)
{
    return sp_cli_dir_here(sp_cli_data_dirs_images);
}
