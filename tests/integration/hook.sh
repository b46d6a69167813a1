#!/bin/bash
# The libvirt hook (src/hook, samepage-hook(8)) under a real libvirtd that
# this test starts, with TCG guests: samepaged absent, then hung (a listener
# that accepts and never answers).  A normal guest always starts; with a
# hung samepaged it starts about 2 s later (the measured times are printed);
# a merge="required" guest is refused at prepare, with the hook's message
# in libvirtd's log.
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
hooks_dir=/etc/libvirt/hooks
hook=$hooks_dir/qemu.d/samepage
rundir=/run/samepage
sock=$rundir/samepaged.sock
conf=/etc/samepage/samepaged.conf

[ -x "$hook_bin" ] || sp_fail "$hook_bin is not built"
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

# define_guest NAME [MERGE]: a TCG guest, with <sp:policy merge=MERGE> when
# given; destroyed and undefined at exit.
define_guest() {
    local meta=
    [ -n "${2:-}" ] && meta="  <metadata>
    <sp:policy xmlns:sp=\"urn:samepage:policy:1\" merge=\"$2\"/>
  </metadata>"
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
define_guest sp-hook-r required
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

sp_log "figures: absent start $t_absent s, hung start $t_hung s (+$extra s), required refused in $t_refused s (absent) / $t_refused_hung s (hung), destroy $t_stop s / $t_stop_hung s"
echo "PASS: hook"
