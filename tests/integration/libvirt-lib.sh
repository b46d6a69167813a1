# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by integration tests that need libvirtd (after lib.sh, guest-lib.sh).
#   sp_libvirtd_start        use the running libvirtd, or start virtlogd and
#                            libvirtd in the foreground as our children (no
#                            systemd here), stopped by PID at exit
#   sp_libvirt_define NAME [XML]
#                            define a guest from vm-images with XML added
#                            before </domain>; removed at exit
#   sp_libvirt_guest NAME [nosharepages]
#                            define and start a guest from vm-images (TCG,
#                            512 MiB) on its own overlay; destroyed and
#                            undefined at exit
#   sp_libvirt_mg_in_smaps NAME
#                            yes/no: the pc.ram VMA of the running guest
#                            has mg in its smaps VmFlags

SP_VIRSH="virsh -q -c qemu:///system"

sp_libvirtd_start() {
    command -v libvirtd >/dev/null || sp_skip "libvirtd is not installed (build-aux/setup installs it)"
    if $SP_VIRSH uri >/dev/null 2>&1; then
        sp_log "using the libvirtd already running"
        return 0
    fi
    local i
    # exec keeps the pid: the daemon itself is our child, logging to files.
    if ! pgrep -x virtlogd >/dev/null; then
        sp_spawn _sp_virtlogd bash -c 'exec virtlogd >"$1" 2>&1' _ "$SP_TEST_TMP/virtlogd.log"
    fi
    sp_spawn _sp_libvirtd bash -c 'exec libvirtd >"$1" 2>&1' _ "$SP_TEST_TMP/libvirtd.log"
    for i in $(seq 100); do
        $SP_VIRSH uri >/dev/null 2>&1 && break
        kill -0 "$_sp_libvirtd" 2>/dev/null || sp_fail "libvirtd exited at start"
        sleep 0.1
    done
    $SP_VIRSH uri >/dev/null 2>&1 || sp_fail "libvirtd did not answer within 10 s"
    sp_log "libvirtd started (pid $_sp_libvirtd)"
}

_sp_libvirt_remove() {
    $SP_VIRSH destroy "$1" >/dev/null 2>&1
    $SP_VIRSH undefine "$1" >/dev/null 2>&1
    return 0
}

# sp_libvirt_define NAME [XML]: define (not start) a guest from vm-images
# (TCG, 512 MiB) on its own overlay, XML added before </domain>;
# destroyed and undefined at exit.
sp_libvirt_define() {
    local name=$1 extra=${2:-} dir xml
    dir=$SP_TEST_TMP/lv-$name
    mkdir -p "$dir"
    chmod 755 "$SP_TEST_TMP" "$dir"
    # libvirt chowns disks (and their backing file) to libvirt-qemu: give
    # each guest its own copy of the base image and kernel.
    cp "$SP_IMAGE_DIR/base.qcow2" "$SP_IMAGE_DIR/vmlinuz" "$SP_IMAGE_DIR/initrd.img" "$dir/"
    qemu-img create -q -f qcow2 -b "$dir/base.qcow2" -F qcow2 "$dir/disk.qcow2" \
        || sp_fail "cannot create the overlay for $name"
    xml=$(SP_IMAGE_DIR=$dir sp_guest_domain_xml "$name" "$dir/disk.qcow2" "$dir/serial.log")
    if [ -n "$extra" ]; then
        xml=${xml/<\/domain>/$extra
<\/domain>}
    fi
    printf '%s\n' "$xml" > "$dir/domain.xml"
    _sp_libvirt_remove "$name"
    sp_at_exit "_sp_libvirt_remove $name"
    $SP_VIRSH define "$dir/domain.xml" >/dev/null || sp_fail "virsh define $name failed"
}

sp_libvirt_guest() {
    local extra=
    [ "${2:-}" = nosharepages ] && extra='  <memoryBacking><nosharepages/></memoryBacking>'
    sp_libvirt_define "$1" "$extra"
    $SP_VIRSH start "$1" >/dev/null || sp_fail "virsh start $1 failed"
}

# sp_libvirt_wait_agent NAME: guest-ping through libvirt until it answers.
sp_libvirt_wait_agent() {
    local name=$1 t0=$EPOCHREALTIME i
    for i in $(seq 360); do
        if $SP_VIRSH qemu-agent-command "$name" '{"execute":"guest-ping"}' >/dev/null 2>&1; then
            sp_log "guest $name: agent answers after $(_sp_since "$t0") s"
            return 0
        fi
        sleep 0.5
    done
    sp_fail "guest $name: the guest agent did not answer within 180 s"
}

sp_libvirt_mg_in_smaps() {
    local pid hva
    pid=$(cat "/run/libvirt/qemu/$1.pid")
    hva=$("$SAMEPAGE" regions "$1" --json | jq -r '.regions[] | select(.id == "pc.ram") | .hva')
    awk -v a="${hva#0x}" '$1 ~ "^"a"-" {f=1} f && /^VmFlags:/ {print; exit}' "/proc/$pid/smaps" \
        | grep -qw mg && echo yes || echo no
}
