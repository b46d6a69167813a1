#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Record the QMP transcripts in this directory from a real QEMU.

usage: record.py [OUTDIR]        (default: the directory of this script)

Each session starts its own qemu-system-x86_64 (TCG, no disk, paused with
-S), connects to its QMP socket, records every line QEMU sends ("S: ") and
every command sent ("C: ") byte for byte, then sends "quit" (not recorded)
and waits for that QEMU, by PID, to exit.  With --smaps it also prints the
VmFlags of the VMA that holds guest RAM after each merge change.
See README for the file format.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
BASE = ["-accel", "tcg", "-nodefaults", "-display", "none", "-S"]
DEFAULT = ["-machine", "pc,memory-backend=pc.ram",
           "-object", "memory-backend-ram,id=pc.ram,size=512M", "-m", "512"]
NUMA = ["-machine", "pc", "-m", "576",
        "-object", "memory-backend-ram,id=ram-node0,size=512M",
        "-object", "memory-backend-ram,id=mem1,size=64M,merge=off",
        "-numa", "node,nodeid=0,memdev=ram-node0",
        "-numa", "node,nodeid=1,memdev=mem1"]
NOMERGE = ["-machine", "pc,memory-backend=pc.ram,mem-merge=off",
           "-object", "memory-backend-ram,id=pc.ram,size=512M", "-m", "512"]


def hmp(line):
    return ("human-monitor-command", {"command-line": line})


def qom_get(path, prop):
    return ("qom-get", {"path": path, "property": prop})


def qom_set(path, prop, value):
    return ("qom-set", {"path": path, "property": prop, "value": value})


SESSIONS = [
    ("greeting.txt", "greeting and capabilities negotiation", DEFAULT, []),
    ("query-memdev.txt", "query-memdev, one backend pc.ram (as libvirt starts guests)",
     DEFAULT, [("query-memdev", None)]),
    ("query-memdev-numa.txt", "query-memdev, two NUMA nodes, mem1 with merge=off",
     NUMA, [("query-memdev", None), hmp("gpa2hva 0x0"), hmp("gpa2hva 0x20000000")]),
    ("query-memdev-mem-merge-off.txt", "query-memdev with -machine mem-merge=off",
     NOMERGE, [("query-memdev", None), qom_get("/objects/pc.ram", "merge")]),
    ("qom-list-objects.txt", "qom-list /objects and /objects/pc.ram",
     DEFAULT, [("qom-list", {"path": "/objects"}), ("qom-list", {"path": "/objects/pc.ram"})]),
    ("qom-merge.txt", "qom-get/qom-set merge on pc.ram",
     DEFAULT, [qom_get("/objects/pc.ram", "merge"), qom_set("/objects/pc.ram", "merge", False),
               qom_get("/objects/pc.ram", "merge"), qom_set("/objects/pc.ram", "merge", True),
               qom_get("/objects/pc.ram", "merge")]),
    ("gpa2hva.txt", "human-monitor-command gpa2hva, mapped and unmapped addresses",
     DEFAULT, [hmp("gpa2hva 0x0"), hmp("gpa2hva 0x100000"), hmp("gpa2hva 0x40000000")]),
    ("errors.txt", "error replies: missing object, missing property, unknown command, bad arguments",
     DEFAULT, [qom_get("/objects/nosuch", "merge"), qom_get("/objects/pc.ram", "nosuch"),
               ("no-such-command", None), qom_set("/objects/pc.ram", "merge", "yes"),
               hmp("gpa2hva")]),
    ("events.txt", "cont and stop: RESUME and STOP events",
     DEFAULT, [("cont", None), ("stop", None), ("query-status", None)]),
]


class Session:
    def __init__(self, path, pid):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.lines = []
        self.pid = pid

    def read_line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("QEMU closed the socket")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        text = line.decode()
        self.lines.append("S: " + text)
        return json.loads(text)

    def linger(self, seconds=0.2):
        """Record whatever else arrives (late events) for a moment."""
        self.sock.settimeout(seconds)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buf += data
        except socket.timeout:
            pass
        self.sock.settimeout(10)
        while b"\r\n" in self.buf:
            self.read_line()

    def execute(self, ident, command, args, record=True, linger=True):
        mark = len(self.lines)
        msg = {"execute": command}
        if args is not None:
            msg["arguments"] = args
        msg["id"] = ident
        text = json.dumps(msg, separators=(",", ":"))
        self.lines.append("C: " + text)
        self.sock.sendall(text.encode() + b"\n")
        while True:
            reply = self.read_line()
            if "event" not in reply:
                break
        if linger:
            self.linger()
        if not record:
            del self.lines[mark:]
        return reply


def smaps_flags(pid, hva):
    with open("/proc/%d/smaps" % pid) as f:
        cur = None
        for line in f:
            first = line.split()[0]
            if "-" in first and not first.endswith(":"):
                lo, hi = (int(x, 16) for x in first.split("-"))
                cur = (lo, hi)
            elif first == "VmFlags:" and cur and cur[0] <= hva < cur[1]:
                return "%x-%x (%d MiB): %s" % (cur[0], cur[1], (cur[1] - cur[0]) >> 20,
                                                line.split(":", 1)[1].strip())
    return "no VMA holds %#x" % hva


def run(name, what, machine, commands, outdir, check_smaps):
    tmp = tempfile.mkdtemp(prefix="sp-qmp-record-")
    sock = os.path.join(tmp, "qmp.sock")
    argv = [QEMU] + BASE + machine + ["-qmp", "unix:%s,server=on,wait=off" % sock]
    qemu = subprocess.Popen(argv)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        s = Session(sock, qemu.pid)
        s.read_line()
        s.execute(1, "qmp_capabilities", None)
        ident = 2
        for command, args in commands:
            reply = s.execute(ident, command, args)
            ident += 1
            if check_smaps and command in ("qom-set", "human-monitor-command"):
                hva = None
                r = s.execute(99, "human-monitor-command", {"command-line": "gpa2hva 0"},
                              record=False)
                hva = int(r["return"].split()[-1], 16)
                print("%s: after %s %s -> %s: VMA %s" % (name, command, json.dumps(args),
                      json.dumps(reply), smaps_flags(qemu.pid, hva)))
        if check_smaps and name.startswith("query-memdev"):
            r = s.execute(99, "human-monitor-command", {"command-line": "gpa2hva 0"},
                          record=False)
            hva = int(r["return"].split()[-1], 16)
            print("%s: %s" % (name, smaps_flags(qemu.pid, hva)))
        s.execute(100, "quit", None, record=False, linger=False)
        s.sock.close()
        header = ["# %s" % what,
                  "# QEMU: %s" % subprocess.run([QEMU, "--version"], capture_output=True,
                                                text=True).stdout.splitlines()[0],
                  "# argv: %s" % " ".join(a.replace(sock, "PATH") for a in argv[1:])]
        with open(os.path.join(outdir, name), "w") as f:
            f.write("\n".join(header + s.lines) + "\n")
    finally:
        try:
            qemu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
        for p in (sock,):
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(tmp)


def main():
    args = [a for a in sys.argv[1:] if a != "--smaps"]
    outdir = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    for name, what, machine, commands in SESSIONS:
        run(name, what, machine, commands, outdir, "--smaps" in sys.argv)


if __name__ == "__main__":
    main()
