#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The libvirt hook (src/hook, samepage-hook(8)) under a real libvirtd that
# this test starts, with TCG guests: samepaged absent, then hung (a listener
# that accepts and never answers).  A normal guest always starts; with a
# hung samepaged it starts about 2 s later (the measured times are printed);
# a merge="required" guest is refused at prepare, with the hook's message
# in libvirtd's log.  Then a real samepaged (started here, stopped by
# PID): the hook's prepare, started and release requests reach it (its
# log shows them), each guest is marked as its policy says, with the delay
# from the hook's started request to the marking verified in smaps
# printed, and the merge="required" guest starts normally.
#
# libvirtd finds hooks when it starts, so the hook is installed as
# /etc/libvirt/hooks/qemu.d/samepage first.  The test skips if a libvirtd
# it did not start runs, or if that file, samepaged's socket or its
# configuration already exist (not ours to replace, or they would change
# what the hook does); at exit it removes exactly what it created.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/guest-lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/libvirt-lib.sh"

hook_bin=$SP_TOP_BUILDDIR/src/hook/samepage
SAMEPAGED=$SP_TOP_BUILDDIR/src/daemon/samepaged
hooks_dir=/etc/libvirt/hooks
hook=$hooks_dir/qemu.d/samepage
rundir=/run/samepage
sock=$rundir/samepaged.sock
conf=/etc/samepage/samepaged.conf

[ -x "$hook_bin" ] || sp_fail "$hook_bin is not built"
[ -x "$SAMEPAGED" ] || sp_fail "$SAMEPAGED is not built"
command -v jq >/dev/null || sp_skip "jq is not installed"
command -v libvirtd >/dev/null || sp_skip "libvirtd is not installed (build-aux/setup installs it)"
command -v python3 >/dev/null || sp_skip "python3 is not installed"
pid=$(pgrep -x libvirtd | head -1)
[ -z "$pid" ] || sp_skip "a libvirtd this test did not start runs (pid $pid): it would not see a hook installed now"
$SP_VIRSH uri >/dev/null 2>&1 && sp_skip "a libvirtd answers on qemu:///system: it would not see a hook installed now"
[ -e "$hook" ] || [ -L "$hook" ] && sp_skip "$hook exists and was not created by this test"
[ -e "$sock" ] || [ -L "$sock" ] && sp_skip "$sock exists (a samepaged runs?): the hook would talk to it"
[ -e "$conf" ] && sp_skip "$conf exists: its [daemon] socket would redirect the hook"

sp_ksm_save
sp_guest_image

# Install the hook, remembering what we created to remove exactly that.
remove_if_ours() {   # PATH INODE
    [ -f "$1" ] && [ "$(stat -c %i "$1")" = "$2" ] && rm -f "$1"
    return 0
}
if [ ! -d "$hooks_dir/qemu.d" ]; then
    mkdir -p "$hooks_dir/qemu.d" || sp_fail "cannot create $hooks_dir/qemu.d"
    sp_at_exit "rmdir '$hooks_dir/qemu.d' 2>/dev/null"
fi
install -m 0755 "$hook_bin" "$hook" || sp_fail "cannot install $hook"
sp_at_exit "remove_if_ours '$hook' $(stat -c %i "$hook")"
sp_log "installed $hook ($(stat -c %s "$hook") bytes)"

sp_libvirtd_start
[ -n "${_sp_libvirtd:-}" ] || sp_fail "libvirtd was not started by this test"
lvlog=$SP_TEST_TMP/libvirtd.log

# define_guest NAME [MERGE [nosharepages]]: a TCG guest, with <sp:policy
# merge=MERGE> when given; destroyed and undefined at exit.
define_guest() {
    local meta=
    [ -n "${2:-}" ] && meta="  <metadata>
    <sp:policy xmlns:sp=\"urn:samepage:policy:1\" merge=\"$2\"/>
  </metadata>"
    [ "${3:-}" = nosharepages ] && meta="$meta
  <memoryBacking><nosharepages/></memoryBacking>"
    sp_libvirt_define "$1" "$meta"
}

# timed VAR CMD...: run CMD, its status in $?, its seconds in VAR.
timed() {
    local _var=$1 _t0=$EPOCHREALTIME _rc
    shift
    "$@"
    _rc=$?
    printf -v "$_var" '%s' "$(awk -v a="$_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')"
    return $_rc
}

define_guest sp-hook-a
define_guest sp-hook-r required nosharepages
err=$SP_TEST_TMP/err

# ---- samepaged absent
timed t_absent $SP_VIRSH start sp-hook-a >/dev/null 2>"$err" \
    || sp_fail "samepaged absent: a normal guest did not start: $(cat "$err")"
sp_log "samepaged absent: sp-hook-a started in $t_absent s"
timed t_stop $SP_VIRSH destroy sp-hook-a >/dev/null 2>"$err" || sp_fail "destroy: $(cat "$err")"
sp_log "samepaged absent: sp-hook-a destroyed in $t_stop s"

timed t_refused $SP_VIRSH start sp-hook-r >/dev/null 2>"$err" \
    && sp_fail "samepaged absent: the merge=required guest started"
sp_log "samepaged absent: sp-hook-r refused in $t_refused s; virsh says: $(tr '\n' ' ' <"$err")"
grep -q 'refusing to start guest "sp-hook-r"' "$err" || sp_fail "virsh's error lacks the hook's message"
grep -q 'merge="required"' "$err" || sp_fail "virsh's error does not say why"
line=$(grep 'refusing to start guest "sp-hook-r"' "$lvlog" | tail -1)
[ -n "$line" ] || sp_fail "libvirtd's log ($lvlog) lacks the hook's message"
sp_log "libvirtd's log: ${line:0:400}"
[ "$($SP_VIRSH domstate sp-hook-r)" = "shut off" ] || sp_fail "sp-hook-r is not shut off"

# ---- samepaged hung: accepts, reads nothing, never answers
if [ ! -d "$rundir" ]; then
    mkdir -m 0755 "$rundir" || sp_fail "cannot create $rundir"
    sp_at_exit "rmdir '$rundir' 2>/dev/null"
fi
sp_at_exit "rm -f '$sock'"
accepted=$SP_TEST_TMP/accepted
sp_spawn hung python3 -c '
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o600)
s.listen(16)
held = []
with open(log, "a", buffering=1) as f:
    while True:
        c, _ = s.accept()
        held.append(c)            # never read, never answer, never close
        f.write("accepted\n")
' "$sock" "$accepted"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || sp_fail "the hung listener did not create $sock"
sp_log "a hung samepaged listens on $sock (pid $hung)"

timed t_hung $SP_VIRSH start sp-hook-a >/dev/null 2>"$err" \
    || sp_fail "samepaged hung: a normal guest did not start: $(cat "$err")"
extra=$(awk -v a="$t_hung" -v b="$t_absent" 'BEGIN { printf "%.2f", a - b }')
n=$(wc -l <"$accepted" 2>/dev/null || echo 0)
sp_log "samepaged hung: sp-hook-a started in $t_hung s ($extra s more than with samepaged absent; the hook connected $n times)"
[ "$n" -ge 2 ] || sp_fail "the hook connected $n times at a start (want prepare and started)"
awk -v e="$extra" 'BEGIN { exit !(e >= 1.5 && e < 4.0) }' \
    || sp_fail "a hung samepaged cost $extra s at a start (want about 2.25: prepare 2 s + started 0.25 s)"
[ "$($SP_VIRSH domstate sp-hook-a)" = running ] || sp_fail "sp-hook-a is not running"
timed t_stop_hung $SP_VIRSH destroy sp-hook-a >/dev/null 2>"$err" || sp_fail "destroy: $(cat "$err")"
sp_log "samepaged hung: sp-hook-a destroyed in $t_stop_hung s (stopped and release wait 0.25 s each)"

timed t_refused_hung $SP_VIRSH start sp-hook-r >/dev/null 2>"$err" \
    && sp_fail "samepaged hung: the merge=required guest started"
sp_log "samepaged hung: sp-hook-r refused in $t_refused_hung s"
grep -q 'no reply in time' "$err" || sp_fail "unclear refusal: $(cat "$err")"
awk -v t="$t_refused_hung" 'BEGIN { exit !(t >= 1.9 && t < 5.0) }' \
    || sp_fail "the refusal took $t_refused_hung s (want about 2)"

# ---- a real samepaged on the hook's default socket (started here, by PID)
kill "$hung"
wait "$hung" 2>/dev/null
rm -f "$sock"
sdconf=$SP_TEST_TMP/samepaged.conf
sdlog=$SP_TEST_TMP/samepaged.log
cat > "$sdconf" <<CONF
[libvirt]
uri = qemu:///system
[policy]
merge = no
[daemon]
socket = $sock
CONF
sp_spawn sdpid bash -c 'exec "$1" --config "$2" --debug >"$3" 2>&1' _ "$SAMEPAGED" "$sdconf" "$sdlog"
status() { "$SAMEPAGE" status --json --socket "$sock"; }
for _ in $(seq 100); do status >/dev/null 2>&1 && break; sleep 0.1; done
status >/dev/null 2>"$err" || { cat "$sdlog"; sp_fail "samepaged does not answer: $(cat "$err")"; }
sp_log "samepaged up (pid $sdpid) on $sock"
gfield() { status | jq -r --arg d "$1" ".guests[] | select(.domain == \$d) | .$2"; }
# log_ms PATTERN: the time of day (ms) of the first log line matching PATTERN.
log_ms() {
    grep -m1 -E "$1" "$sdlog" | sed -E 's/^[^ ]* ?[^ ]*: ([0-9]{2}):([0-9]{2}):([0-9]{2}\.[0-9]+): .*/\1 \2 \3/' \
        | awk '{ printf "%d", ($1 * 3600 + $2 * 60 + $3) * 1000 }'
}
# started_with_daemon NAME WANT(true|false): virsh start; the hook's
# requests in samepaged's log; the marking WANT verified by samepaged and
# in smaps; the delay from the hook's "started" request to the verified
# marking, from the times in samepaged's log.  QEMU marks a guest's RAM
# itself unless <nosharepages/>: with [policy] merge = no, sp-hook-a
# (no metadata) is unmarked; sp-hook-r (merge="required", <nosharepages/>)
# is marked.
started_with_daemon() {
    local name=$1 want=$2 t_start i hook_ms mark_ms yn=no
    [ "$want" = true ] && yn=yes
    timed t_start $SP_VIRSH start "$name" >/dev/null 2>"$err" \
        || sp_fail "samepaged up: $name did not start: $(cat "$err")"
    for i in $(seq 600); do
        [ "$(gfield "$name" marked)" = "$want" ] && [ "$(gfield "$name" mark_delay_s)" != null ] && break
        sleep 0.05
    done
    [ "$(gfield "$name" marked)" = "$want" ] || { tail -20 "$sdlog"; sp_fail "$name: marked is not $want"; }
    [ "$(sp_libvirt_mg_in_smaps "$name")" = $yn ] || sp_fail "$name: mg in smaps is not $yn"
    grep -q "hook: $name prepare begin" "$sdlog" || sp_fail "samepaged's log lacks the hook's prepare for $name"
    grep -q "hook: $name started begin" "$sdlog" || sp_fail "samepaged's log lacks the hook's started for $name"
    hook_ms=$(log_ms "hook: $name started begin")
    mark_ms=$(log_ms "guest $name: (marked mergeable|unmarked|already).*in smaps")
    [ -n "$hook_ms" ] && [ -n "$mark_ms" ] || sp_fail "$name: no times in samepaged's log"
    sp_log "samepaged up: $name started in $t_start s; from the hook's started request to the" \
           "marking verified in smaps: $(( mark_ms - hook_ms )) ms (samepaged: $(gfield "$name" mark_delay_s) s" \
           "from the first start it saw); reason: $(gfield "$name" reason)"
    grep -E "hook: $name |guest $name: (started|decision|marked|unmarked|already|.* job took)" "$sdlog" \
        | sed 's/^/# log: /'
    [ $(( mark_ms - hook_ms )) -ge 0 ] || sp_fail "$name: marked before the hook's request?"
    up_delays+="$name $(( mark_ms - hook_ms )) ms, "
}
up_delays=
started_with_daemon sp-hook-a false
started_with_daemon sp-hook-r true
[ "$($SP_VIRSH domstate sp-hook-r)" = running ] || sp_fail "sp-hook-r is not running"

# release: the hook's request reaches samepaged when the guest stops.
for name in sp-hook-a sp-hook-r; do
    timed t_stop_up $SP_VIRSH destroy "$name" >/dev/null 2>"$err" || sp_fail "destroy: $(cat "$err")"
    for _ in $(seq 100); do grep -q "hook: $name release end" "$sdlog" && break; sleep 0.05; done
    grep "hook: $name release end" "$sdlog" | sed 's/^/# log: /' | grep . \
        || sp_fail "samepaged's log lacks the hook's release for $name"
    [ "$(status | jq --arg d "$name" '[.guests[] | select(.domain == $d)] | length')" = 0 ] \
        || sp_fail "$name stopped but samepaged still lists it"
    sp_log "samepaged up: $name destroyed in $t_stop_up s; release logged by samepaged"
done
sp_term_wait "$sdpid" "samepaged" "$sdlog"
wait "$sdpid"
grep -q "samepaged: exit 0" "$sdlog" || { tail "$sdlog"; sp_fail "samepaged did not exit cleanly"; }
grep -q "AddressSanitizer\|runtime error" "$sdlog" && { cat "$sdlog"; sp_fail "sanitizer report"; }

sp_log "figures: absent start $t_absent s, hung start $t_hung s (+$extra s), required refused in $t_refused s (absent) / $t_refused_hung s (hung), destroy $t_stop s / $t_stop_hung s;"\
       "samepaged up: hook's started request to verified marking: ${up_delays%, }"
echo "PASS: hook"
