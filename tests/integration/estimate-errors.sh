#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# samepage estimate on bad input: a clear one-line error naming the pid,
# file or option, a non-zero exit, and never a crash or a silent answer.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"

DUPMEM=$SP_TEST_BINDIR/dupmem
[ -x "$DUPMEM" ] || sp_fail "$DUPMEM is not built"
err=$SP_TEST_TMP/err

# expect CODE PATTERN CMD...: CMD exits CODE and its stderr matches PATTERN
expect() {
    local code=$1 pattern=$2 rc; shift 2
    "$@" >/dev/null 2>"$err"; rc=$?
    [ $rc -eq "$code" ] || sp_fail "'$*' exited $rc, want $code: $(cat "$err")"
    grep -qE -- "$pattern" "$err" || sp_fail "'$*': unclear error: $(cat "$err")"
    [ "$(grep -c 'samepage: error:' "$err")" -ge 1 ] || sp_fail "'$*': no 'samepage: error:' line"
    sp_log "ok: $* -> $code: $(grep 'samepage: error:' "$err" | head -n 1)"
}

# A pid that does not exist (pid_max + 1 cannot exist).
nopid=$(( $(cat /proc/sys/kernel/pid_max) + 1 ))
expect 1 "pid $nopid" "$SAMEPAGE" estimate --pid $nopid
expect 2 "'abc' is not a process id" "$SAMEPAGE" estimate --pid abc
expect 2 "--passes must be between" "$SAMEPAGE" estimate --pid 1 --passes 0
expect 2 "--interval must be between" "$SAMEPAGE" estimate --pid 1 --interval -1
expect 2 "--max-page-sharing must be at least 2" "$SAMEPAGE" estimate --pid 1 --max-page-sharing 1
expect 2 "--use-zero-pages must be 0 or 1" "$SAMEPAGE" estimate --pid 1 --use-zero-pages 2
expect 2 "--kernel-profile must be" "$SAMEPAGE" estimate --pid 1 --kernel-profile 5.4
expect 2 "give at least one DOMAIN, --all, --qmp, --pid or --image" "$SAMEPAGE" estimate
expect 2 "Unknown option" "$SAMEPAGE" estimate --pid 1 --frobnicate

# Image files: odd size, missing, a directory.
head -c 5000 /dev/zero > "$SP_TEST_TMP/odd.raw"
expect 1 "odd.raw: size 5000 bytes is not a whole number of 4096-byte pages" \
    "$SAMEPAGE" estimate --image "$SP_TEST_TMP/odd.raw"
expect 1 "cannot open image $SP_TEST_TMP/nothing.raw" "$SAMEPAGE" estimate --image "$SP_TEST_TMP/nothing.raw"
expect 1 "is not a regular file" "$SAMEPAGE" estimate --image "$SP_TEST_TMP"

# A process we may not read: run samepage as an unprivileged user.
sp_spawn victim "$DUPMEM" --pages 2048 --cross 1000 --ready-file "$SP_TEST_TMP/ready-v"
for _ in $(seq 100); do [ -s "$SP_TEST_TMP/ready-v" ] && break; sleep 0.1; done
if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    expect 1 "pid $victim.*(needs root|Permission denied|not permitted)" \
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$SAMEPAGE" estimate --pid "$victim" --what-if
else
    sp_log "no setpriv or no user nobody: the privilege case is not checked"
fi

# A process that exits in the middle of a multi-pass scan: a partial
# result, flagged, exit 1, and the figures of what was read.
sp_spawn dying "$DUPMEM" --pages 4096 --cross 2000 --mergeable --ready-file "$SP_TEST_TMP/ready-d"
for _ in $(seq 100); do [ -s "$SP_TEST_TMP/ready-d" ] && break; sleep 0.1; done
( sleep 1.5; kill -TERM "$dying" ) &
killer=$!
"$SAMEPAGE" estimate --pid "$dying" --passes 3 --interval 1 --json > "$SP_TEST_TMP/out.json" 2>"$err"
rc=$?
wait "$killer"
[ $rc -eq 1 ] || sp_fail "estimate of a process that exits mid-scan exited $rc, want 1"
grep -q "partial" "$err" || sp_fail "no partial-result error: $(cat "$err")"
sp_json_valid "estimate (partial)" "$(cat "$SP_TEST_TMP/out.json")"
[ "$(jq -r .partial "$SP_TEST_TMP/out.json")" = true ] || sp_fail "JSON not flagged partial"
jq -r '.processes[0].partial_reason' "$SP_TEST_TMP/out.json" | grep -q "pid $dying exited during the scan" \
    || sp_fail "partial_reason does not name the pid: $(jq -c .processes "$SP_TEST_TMP/out.json")"
sp_log "ok: exit mid-scan -> partial: $(jq -r '.processes[0].partial_reason' "$SP_TEST_TMP/out.json")"
