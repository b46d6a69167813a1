# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by integration tests that boot guests, after lib.sh.  Provides:
#   sp_guest_image                 build the guest image if needed (cached by
#                                  vm-images/build-image) or SKIP saying why;
#                                  sets SP_IMAGE_DIR
#   sp_guest_overlay FILE          qcow2 overlay on $SP_IMAGE_DIR/base.qcow2
#   sp_guest_start NAME [OPT...]   overlay + bare QEMU in the background (under
#                                  sp_spawn: stopped by PID at exit); OPTs go to
#                                  sp_qemu_args (vm-images/qemu-args).  Call it
#                                  directly, not in $(...): the test shell must
#                                  be QEMU's parent
#   sp_guest_pid NAME              QEMU's PID
#   sp_guest_path NAME WHAT        disk, serial, qga, qmp, log or dir
#   sp_guest_wait_ready NAME [S]   wait for SAMEPAGE-GUEST-READY on ttyS0
#                                  (default $SP_GUEST_BOOT_TIMEOUT, 180 s);
#                                  FAIL with the serial log's tail; sets
#                                  SP_GUEST_BOOT_SECONDS
#   sp_guest_wait_agent NAME [S]   guest-ping the guest agent until it answers
#   sp_qmp NAME JSON...            run QMP commands; prints each reply (one
#                                  line); status 1 if one is an error, 2 if
#                                  QEMU did not answer
#   sp_hmp NAME COMMAND            HMP through human-monitor-command; prints
#                                  the answer text
#   sp_qga NAME JSON...            like sp_qmp, for the guest agent
#   sp_guest_quit NAME [S]         QMP quit; wait (default 30 s) for QEMU to
#                                  exit and reap it; FAIL if it does not
#   sp_guest_domain_xml NAME DISK SERIAL_LOG [MIB] [VCPUS]
#                                  vm-images/domain.xml.in filled in, on stdout
#
# Accelerator: TCG unless SP_ACCEL=kvm.  This lab's /dev/kvm (PVM) cannot
# boot a stock Debian kernel (docs/host-lab.md), and a failed KVM boot costs
# the whole boot timeout, so we do not probe; a host with working KVM can
# set SP_ACCEL=kvm.
#
# QMP and the guest agent are spoken to through socat, one connection per
# call, kept open until every reply has arrived (QEMU drops requests still
# queued when a client half-closes).  Each request carries an "id"; replies
# are matched by it, so events and stale replies are skipped.

: "${SP_GUEST_BOOT_TIMEOUT:=180}"
SP_GUEST_READY_MARKER=SAMEPAGE-GUEST-READY
. "$SP_TOP_SRCDIR/vm-images/qemu-args"

declare -gA _sp_guest_pid=() _sp_guest_t0=()

sp_guest_image() {
    local tool out rc t0=$EPOCHREALTIME
    for tool in qemu-system-x86_64 qemu-img socat jq; do
        command -v "$tool" >/dev/null || sp_skip "$tool is not installed (build-aux/setup installs it)"
    done
    SP_IMAGE_DIR=${SAMEPAGE_IMAGE_DIR:-$SP_TOP_SRCDIR/vm-images/cache}
    export SAMEPAGE_IMAGE_DIR=$SP_IMAGE_DIR
    out=$("$SP_TOP_SRCDIR/vm-images/build-image" 2>&1)
    rc=$?
    sed 's/^/# /' <<<"$out"
    case $rc in
        0) ;;
        3) sp_skip "cannot build the guest image: $(grep 'cannot build here' <<<"$out" | sed 's/.*cannot build here: //')" ;;
        *) sp_fail "vm-images/build-image failed (exit $rc); see its output above" ;;
    esac
    sp_log "guest image ready in $(_sp_since "$t0") s ($SP_IMAGE_DIR)"
}

sp_guest_overlay() {
    qemu-img create -q -f qcow2 -b "$SP_IMAGE_DIR/base.qcow2" -F qcow2 "$1" \
        || sp_fail "cannot create the overlay $1"
}

_sp_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

sp_guest_path() {
    local d=$SP_TEST_TMP/guest-$1
    case $2 in
        dir) echo "$d" ;;
        disk) echo "$d/disk.qcow2" ;;
        serial) echo "$d/serial.log" ;;
        qga) echo "$d/qga.sock" ;;
        qmp) echo "$d/qmp.sock" ;;
        log) echo "$d/qemu.log" ;;
        *) sp_fail "sp_guest_path: unknown '$2'" ;;
    esac
}

sp_guest_pid() { echo "${_sp_guest_pid[$1]}"; }

# Runs in the child sp_spawn forks: exec keeps $! = QEMU's PID.
_sp_guest_exec() {
    local log=$1
    shift
    exec "$@" > "$log" 2>&1 < /dev/null
}

sp_guest_start() {
    local name=$1 argv=() qpid
    shift
    local dir; dir=$(sp_guest_path "$name" dir)
    [ -n "${SP_IMAGE_DIR:-}" ] || sp_fail "sp_guest_start: call sp_guest_image first"
    mkdir -p "$dir" || sp_fail "cannot create $dir"
    [ ${#dir} -lt 96 ] || sp_fail "$dir is too long for UNIX socket paths"
    sp_guest_overlay "$(sp_guest_path "$name" disk)"
    sp_qemu_args argv --name "$name" --image-dir "$SP_IMAGE_DIR" \
        --disk "$(sp_guest_path "$name" disk)" --serial "$(sp_guest_path "$name" serial)" \
        --qga "$(sp_guest_path "$name" qga)" --qmp "$(sp_guest_path "$name" qmp)" "$@" \
        || sp_fail "bad guest options: $*"
    printf '%q ' "${argv[@]}" > "$dir/cmdline"
    _sp_guest_t0[$name]=$EPOCHREALTIME
    # (sp_spawn has a local "pid": pass it another name.)
    sp_spawn qpid _sp_guest_exec "$(sp_guest_path "$name" log)" "${argv[@]}"
    _sp_guest_pid[$name]=$qpid
    sp_log "guest $name: QEMU pid $qpid (${SP_ACCEL:-tcg}), $dir"
}

_sp_guest_alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The serial log without terminal colours, last N lines.
_sp_guest_serial_tail() {
    tail -n "${2:-25}" "$(sp_guest_path "$1" serial)" 2>/dev/null \
        | sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/\r$//; s/^/#   /'
}

sp_guest_wait_ready() {
    local name=$1 timeout=${2:-$SP_GUEST_BOOT_TIMEOUT}
    local pid=${_sp_guest_pid[$1]} serial; serial=$(sp_guest_path "$1" serial)
    local deadline=$((SECONDS + timeout))
    while ! grep -qa "$SP_GUEST_READY_MARKER" "$serial" 2>/dev/null; do
        if ! _sp_guest_alive "$pid"; then
            sed 's/^/#   /' "$(sp_guest_path "$name" log)"
            _sp_guest_serial_tail "$name"
            sp_fail "guest $name: QEMU (pid $pid) exited during boot (its output and the serial log above)"
        fi
        if [ $SECONDS -ge $deadline ]; then
            _sp_guest_serial_tail "$name"
            sp_fail "guest $name: no $SP_GUEST_READY_MARKER on the serial console after $timeout s (serial log tail above)"
        fi
        sleep 0.5
    done
    SP_GUEST_BOOT_SECONDS=$(_sp_since "${_sp_guest_t0[$name]}")
    sp_log "guest $name: ready after $SP_GUEST_BOOT_SECONDS s"
}

# Write a line to FD without dying of SIGPIPE if the reader (socat) is gone,
# e.g. when nobody listens on the socket.  Not in a subshell: bash does not
# pass coprocess descriptors to subshells.
_sp_write_nopipe() {
    local saved rc
    saved=$(trap -p PIPE)
    trap '' PIPE
    { printf '%s\n' "$2" 1>&"$1"; } 2>/dev/null
    rc=$?
    if [ -n "$saved" ]; then eval "$saved"; else trap - PIPE; fi
    return $rc
}

# _sp_json_talk SOCK GREETING TIMEOUT JSON...: one connection to a QMP-style
# server; with GREETING=1 read the greeting and negotiate capabilities first.
# Prints the reply to each JSON request; returns 0, 1 (an error reply) or 2
# (no connection, or no reply within TIMEOUT seconds).
_sp_json_talk() {
    local sock=$1 greeting=$2 timeout=$3
    shift 3
    local in out cpid line req id got rc=0 n=0 deadline
    [ -S "$sock" ] || { echo "no socket $sock" >&2; return 2; }
    coproc _SP_JSON { exec socat - "UNIX-CONNECT:$sock" 2>/dev/null; }
    in=${_SP_JSON[1]} out=${_SP_JSON[0]} cpid=$_SP_JSON_PID
    deadline=$((SECONDS + timeout))
    if [ "$greeting" = 1 ]; then
        if ! IFS= read -r -t "$timeout" line <&"$out" || [[ $line != *'"QMP"'* ]]; then
            echo "no QMP greeting on $sock" >&2
            rc=2
        else
            set -- '{"execute":"qmp_capabilities"}' "$@"
        fi
    fi
    while [ $rc -ne 2 ] && [ $# -gt 0 ]; do
        req=$1
        shift
        n=$((n + 1))
        id="sp-$$-$RANDOM-$n"
        req=$(jq -c --arg id "$id" '. + {id: $id}' <<<"$req") \
            || { echo "not a JSON object: $1" >&2; rc=2; break; }
        if ! _sp_write_nopipe "$in" "$req"; then
            echo "cannot write to $sock" >&2
            rc=2
            break
        fi
        got=""
        while [ -z "$got" ]; do
            local left=$((deadline - SECONDS))
            if [ $left -le 0 ] || ! IFS= read -r -t "$left" line <&"$out"; then
                echo "no reply on $sock to $req" >&2
                rc=2
                break
            fi
            got=$(jq -c --arg id "$id" 'select(type == "object" and .id == $id) | del(.id)' \
                      <<<"${line%$'\r'}" 2>/dev/null)
        done
        [ -n "$got" ] || break
        # The capabilities reply is ours, not the caller's.
        if [ "$greeting" = 1 ] && [ $n -eq 1 ]; then
            [[ $got == '{"return":{}}' ]] || { echo "qmp_capabilities: $got" >&2; rc=2; }
            continue
        fi
        echo "$got"
        if [[ $got == *'"error"'* ]] && jq -e 'has("error")' <<<"$got" >/dev/null; then
            echo "error reply on $sock: $got" >&2
            rc=1
        fi
    done
    { exec {in}>&- {out}<&-; } 2>/dev/null
    kill "$cpid" 2>/dev/null
    wait "$cpid" 2>/dev/null
    return $rc
}

sp_qmp() {
    local name=$1
    shift
    _sp_json_talk "$(sp_guest_path "$name" qmp)" 1 30 "$@"
}

sp_qga() {
    local name=$1
    shift
    _sp_json_talk "$(sp_guest_path "$name" qga)" 0 10 "$@"
}

sp_hmp() {
    local reply
    reply=$(sp_qmp "$1" "$(jq -nc --arg c "$2" '{execute: "human-monitor-command", arguments: {"command-line": $c}}')") \
        || return
    jq -r '.return' <<<"$reply" | tr -d '\r'
}

sp_guest_wait_agent() {
    local name=$1 timeout=${2:-60} t0=$EPOCHREALTIME
    local deadline=$((SECONDS + timeout))
    until sp_qga "$name" '{"execute":"guest-ping"}' > /dev/null 2>&1; do
        _sp_guest_alive "${_sp_guest_pid[$name]}" || sp_fail "guest $name: QEMU exited while waiting for the guest agent"
        [ $SECONDS -lt $deadline ] || sp_fail "guest $name: the guest agent did not answer guest-ping within $timeout s"
        sleep 1
    done
    sp_log "guest $name: guest agent answers (after $(_sp_since "$t0") s more)"
}

sp_guest_quit() {
    local name=$1 timeout=${2:-30} pid=${_sp_guest_pid[$1]} rc t0=$EPOCHREALTIME
    # The reply to quit may be lost when QEMU closes the socket: ignore it.
    sp_qmp "$name" '{"execute":"quit"}' > /dev/null 2>&1 || true
    local deadline=$((SECONDS + timeout))
    while _sp_guest_alive "$pid"; do
        [ $SECONDS -lt $deadline ] || sp_fail "guest $name: QEMU (pid $pid) still runs $timeout s after quit"
        sleep 0.2
    done
    wait "$pid"
    rc=$?
    [ $rc -eq 0 ] || sp_fail "guest $name: QEMU exited with status $rc after quit"
    sp_log "guest $name: QEMU exited $(_sp_since "$t0") s after quit"
}

sp_guest_domain_xml() {
    local name=$1 disk=$2 serial=$3 mib=${4:-512} vcpus=${5:-1}
    local dir=${SP_IMAGE_DIR:-$SP_TOP_SRCDIR/vm-images/cache} uuid mac
    uuid=$(cat /proc/sys/kernel/random/uuid)
    mac=$(printf '52:54:00:%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))
    sed -e "s|@NAME@|$name|g" -e "s|@UUID@|$uuid|g" -e "s|@MAC@|$mac|g" \
        -e "s|@DISK@|$disk|g" -e "s|@KERNEL@|$dir/vmlinuz|g" -e "s|@INITRD@|$dir/initrd.img|g" \
        -e "s|@MEMORY_MIB@|$mib|g" -e "s|@VCPUS@|$vcpus|g" -e "s|@SERIAL_LOG@|$serial|g" \
        "$SP_TOP_SRCDIR/vm-images/domain.xml.in"
}
