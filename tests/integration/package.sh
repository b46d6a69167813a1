#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian packages (debian/), built as a Debian admin or buildd would:
# the source is this build's `make distdir` (what `make dist` ships),
# dpkg-buildpackage -us -uc -b builds samepage and samepaged (with
# DEB_BUILD_OPTIONS=nocheck: make check has run already), lintian judges
# them (no error allowed; the warnings and infos are printed), and, unless
# samepage is installed on this host already, they are installed with
# dpkg -i, run (samepage --version and help, samepaged --help, the libvirt
# hook at /etc/libvirt/hooks/qemu.d/samepage, the unit verified), purged,
# and the host is checked to hold nothing of them any more.
#
# It installs into /usr and /etc: run it under the integration lock like
# the other tests.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"

for tool in dpkg-buildpackage dh lintian dpkg-deb; do
    command -v "$tool" >/dev/null \
        || sp_skip "$tool is not installed (build-aux/debian-packages: dpkg-dev, debhelper, lintian)"
done
# The build dependencies (debian/control) must be there: dpkg-checkbuilddeps
# names what is missing.
( cd "$SP_TOP_SRCDIR" && dpkg-checkbuilddeps -B ) > "$SP_TEST_TMP/builddeps.log" 2>&1 \
    || sp_skip "build dependencies missing: $(cat "$SP_TEST_TMP/builddeps.log")"

# ---------------------------------------------------------------- build
version=$(dpkg-parsechangelog -l "$SP_TOP_SRCDIR/debian/changelog" -S Version)
src=$SP_TEST_TMP/samepage-$version
# This test runs under make: its jobserver is not ours.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$SP_TOP_BUILDDIR" distdir distdir="$src" \
    > "$SP_TEST_TMP/distdir.log" 2>&1 || { cat "$SP_TEST_TMP/distdir.log"; sp_fail "make distdir failed"; }
[ -f "$src/debian/rules" ] || sp_fail "make distdir does not ship debian/"
start=$EPOCHREALTIME
( cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL DEB_BUILD_OPTIONS="nocheck parallel=2" \
      dpkg-buildpackage -us -uc -b ) > "$SP_TEST_TMP/build.log" 2>&1 || {
    tail -n 40 "$SP_TEST_TMP/build.log"
    sp_fail "dpkg-buildpackage -us -uc -b failed (the end of its log above)"
}
sp_log "dpkg-buildpackage -us -uc -b: $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
changes=$SP_TEST_TMP/samepage_${version}_$(dpkg --print-architecture).changes
debs=()
for p in samepage samepaged; do
    deb=$SP_TEST_TMP/${p}_${version}_$(dpkg --print-architecture).deb
    [ -f "$deb" ] || sp_fail "dpkg-buildpackage made no $deb"
    debs+=("$deb")
    sp_log "$(basename "$deb"): $(dpkg-deb -c "$deb" | awk '$1 !~ /^d/' | wc -l) files"
done

# ---------------------------------------------------------------- lintian
lintian --display-info --pedantic "$changes" > "$SP_TEST_TMP/lintian.log" 2>&1
grep -E '^[EWIPX]: ' "$SP_TEST_TMP/lintian.log" | sed 's/^/# lintian: /'
count() { grep -c "^$1: " "$SP_TEST_TMP/lintian.log"; }
sp_log "lintian: $(count E) errors, $(count W) warnings, $(count I) infos, $(count P) pedantic"
[ "$(count E)" -eq 0 ] || sp_fail "lintian found errors (above)"

# ---------------------------------------------------------------- install
for p in samepage samepaged; do
    if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
        sp_skip "the packages built and lintian has no error, but $p is installed on this host: not installing over it"
    fi
done
# What the packages could leave: everything under these, before and after.
snapshot() {
    find /etc /usr /lib /var/lib /var/cache /run -xdev \
        \( -path /var/lib/dpkg -o -path /var/cache/man -o -path /var/cache/debconf \
           -o -path /var/lib/apt -o -path /var/cache/apt -o -path /run/libvirt \
           -o -path '/run/samepage-*' -o -path /var/lib/libvirt \) -prune -o -print 2>/dev/null | sort
}
snapshot > "$SP_TEST_TMP/before"
sp_at_exit "dpkg --purge samepaged samepage >/dev/null 2>&1"
dpkg -i "${debs[@]}" > "$SP_TEST_TMP/install.log" 2>&1 \
    || { cat "$SP_TEST_TMP/install.log"; sp_fail "dpkg -i failed"; }
sp_log "dpkg -i samepage samepaged: installed"

out=$(samepage --version) || sp_fail "the installed samepage --version failed"
[ "$(command -v samepage)" = /usr/bin/samepage ] || sp_fail "samepage is not /usr/bin/samepage"
[ "$out" = "samepage $version" ] || sp_fail "samepage --version says '$out', the package is $version"
sp_log "samepage --version: $out"
samepage help > "$SP_TEST_TMP/help" || sp_fail "the installed samepage help failed"
grep -q "experiment" "$SP_TEST_TMP/help" || sp_fail "samepage help does not list experiment"
env -u SAMEPAGE_DATADIR -u SAMEPAGE_IMAGE_DIR samepage help experiment > "$SP_TEST_TMP/help-exp"
grep -qF "/usr/share/samepage/domain.xml.in" "$SP_TEST_TMP/help-exp" \
    || sp_fail "the installed samepage does not take its template from /usr/share/samepage"
grep -qF "/var/cache/samepage)" "$SP_TEST_TMP/help-exp" \
    || sp_fail "the installed samepage does not take its images from /var/cache/samepage"
[ -f /usr/share/samepage/domain.xml.in ] && [ -x /usr/share/samepage/build-image ] \
    && [ -f /usr/share/samepage/plans/default.ini ] || sp_fail "samepage's data is not in /usr/share/samepage"
grep -q "^installed_cache='/var/cache/samepage'" /usr/share/samepage/build-image \
    || sp_fail "the installed build-image does not default to /var/cache/samepage"
/usr/sbin/samepaged --help > "$SP_TEST_TMP/samepaged-help" || sp_fail "samepaged --help failed"
grep -q -- "--config" "$SP_TEST_TMP/samepaged-help" || sp_fail "samepaged --help does not mention --config"
sp_log "samepage help, samepage help experiment (/usr/share/samepage, /var/cache/samepage), samepaged --help: ok"

hook=/etc/libvirt/hooks/qemu.d/samepage
[ -x "$hook" ] || sp_fail "$hook is not installed or not executable"
sp_log "hook: $hook -> $(readlink -f "$hook") ($(stat -L -c %a "$hook"))"
# As libvirtd runs it, at a guest's end, with no samepaged to tell: it
# must return 0 at once.
xml="<domain type='kvm'><name>sp-pkg</name><uuid>6f8e2a4c-1d3b-4e5f-9a7b-0c1d2e3f4a5b</uuid></domain>"
SAMEPAGE_SOCKET=$SP_TEST_TMP/no-daemon.sock timeout 10 "$hook" sp-pkg release end - <<<"$xml" \
    > "$SP_TEST_TMP/hook.log" 2>&1 || { cat "$SP_TEST_TMP/hook.log"; sp_fail "the installed hook failed"; }
dpkg-query -W -f='${Conffiles}\n' samepaged | grep -q "^ /etc/samepage/samepaged.conf " \
    || sp_fail "/etc/samepage/samepaged.conf is not a conffile of samepaged"
[ -f /lib/systemd/system/samepaged.service ] || sp_fail "samepaged.service is not installed"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /lib/systemd/system/samepaged.service > "$SP_TEST_TMP/verify.log" 2>&1 \
        || { cat "$SP_TEST_TMP/verify.log"; sp_fail "systemd-analyze verify samepaged.service failed"; }
    sp_log "systemd-analyze verify samepaged.service: ok"
fi

# What samepage makes at run time, as build-image and experiments would:
# the purge removes it.
mkdir -p /var/cache/samepage /var/lib/samepage/experiments
touch /var/cache/samepage/stamp /var/lib/samepage/experiments/journal

# ---------------------------------------------------------------- purge
dpkg --purge samepaged samepage > "$SP_TEST_TMP/purge.log" 2>&1 \
    || { cat "$SP_TEST_TMP/purge.log"; sp_fail "dpkg --purge failed"; }
for p in samepage samepaged; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$' \
        && sp_fail "$p is still known to dpkg after the purge"
done
snapshot > "$SP_TEST_TMP/after"
if ! diff "$SP_TEST_TMP/before" "$SP_TEST_TMP/after" > "$SP_TEST_TMP/left"; then
    sed 's/^/# /' "$SP_TEST_TMP/left"
    sp_fail "the purge left the host different from before the install (above: < gone, > left)"
fi
sp_log "dpkg --purge: nothing left of them under /etc /usr /lib /var/lib /var/cache /run"
