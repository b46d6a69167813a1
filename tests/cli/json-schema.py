#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
json-schema.py: every samepage command's --json against data/samepage.schema.json

Runs each command that needs no guest and no root against fake roots (a
copy of tests/data/sysfs-6.18, a procfs with meminfo and stat, libvirt's
test driver, a state directory with a killed experiment's journal, an
image file, samepaged on a socket of its own) and validates what it
prints, and its exit status, with python3-jsonschema.  regions and mark
need a running QEMU: tests/integration/guest-boot.sh and libvirt-guests.sh
validate theirs (sp_json_valid in tests/integration/lib.sh).

It also checks that the schema refuses what the conventions forbid (a
number as a string, a "yes" for a boolean, a bare array, a key without
its unit), so that a schema accepting anything would fail here.

Run by `make check` (TEST_EXTENSIONS .py); exit 77 (SKIP) with the reason
when python3-jsonschema is not installed.

json-schema.py --validate FILE ("-": stdin) validates one document and
says what is wrong with it (exit 1): the integration tests' sp_json_valid.
"""
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed (build-aux/debian-packages lists it)")
    sys.exit(77)

SRCDIR = os.environ.get("SP_TOP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("SP_TOP_BUILDDIR") or os.getcwd()
SAMEPAGE = os.path.join(BUILDDIR, "src", "cli", "samepage")
SAMEPAGED = os.path.join(BUILDDIR, "src", "daemon", "samepaged")
SCHEMA_PATH = os.path.join(SRCDIR, "data", "samepage.schema.json")

with open(SCHEMA_PATH) as f:
    SCHEMA = json.load(f)
jsonschema.Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

failures = []
seen = set()


def problems(doc):
    return sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))


def explain(errors):
    return "; ".join("%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)",
                                 e.message[:300]) for e in errors[:5])


def fail(msg):
    print("FAIL: " + msg)
    failures.append(msg)


def run(env, *args, want_rc=0, check=None):
    """Runs samepage ARGS --json; validates stdout and the exit status."""
    argv = [SAMEPAGE] + list(args)
    name = " ".join(args)
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != want_rc:
        fail("%s: exit status %d, expected %d; stderr: %s" % (name, p.returncode, want_rc,
                                                            p.stderr.strip()[-500:]))
        return None
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        fail("%s: stdout is not one JSON document (%s): %r" % (name, e, p.stdout[:300]))
        return None
    errors = problems(doc)
    if errors:
        fail("%s: violates the schema: %s" % (name, explain(errors)))
        return None
    if check:
        why = check(doc)
        if why:
            fail("%s: %s" % (name, why))
            return None
    seen.add(doc["command"])
    print("ok: samepage %s (exit %d): a valid \"%s\" document" % (name, p.returncode,
                                                               doc["command"]))
    return doc


def must_refuse(what, doc):
    """The schema must reject @doc: otherwise it checks nothing."""
    if VALIDATOR.is_valid(doc):
        fail("the schema accepts %s" % what)
    else:
        print("ok: the schema refuses %s" % what)


def fake_roots(tmp):
    sysfs = os.path.join(tmp, "sys")
    shutil.copytree(os.path.join(SRCDIR, "tests", "data", "sysfs-6.18"), sysfs)
    procfs = os.path.join(tmp, "proc")
    os.makedirs(procfs)
    samples = os.path.join(SRCDIR, "tests", "data", "proc", "samples")
    shutil.copy(os.path.join(samples, "meminfo"), os.path.join(procfs, "meminfo"))
    shutil.copy(os.path.join(samples, "proc-stat"), os.path.join(procfs, "stat"))
    state = os.path.join(tmp, "state")
    os.makedirs(os.path.join(state, "experiments"))
    rundir = os.path.join(tmp, "run")
    os.makedirs(rundir)
    env = dict(os.environ)
    env.update({
        "SAMEPAGE_SYSFS": sysfs,
        "SAMEPAGE_PROCFS": procfs,
        "SAMEPAGE_RUNDIR": rundir,
        "SAMEPAGE_STATE_DIR": state,
        "SAMEPAGE_IMAGE_DIR": os.path.join(tmp, "no-images"),
        "SAMEPAGE_SOCKET": os.path.join(tmp, "no-daemon.sock"),
        "LIBVIRT_DEFAULT_URI": "test:///default",
        "LC_ALL": "C.UTF-8",
    })
    return env, sysfs


def ksm_knob(sysfs, name, value):
    with open(os.path.join(sysfs, "kernel", "mm", "ksm", name), "w") as f:
        f.write("%s\n" % value)


def main():
    tmp = tempfile.mkdtemp(prefix="samepage-json-")
    try:
        check_commands(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_commands(tmp):
    env, sysfs = fake_roots(tmp)

    # ksm, ksm set, ksm numa (dry run, the switch, nothing to do)
    run(env, "ksm", "--json",
        check=lambda d: None if d["ksm"]["pages_to_scan"] == 100 else "pages_to_scan is not 100")
    run(env, "ksm", "set", "pages_to_scan=200", "advisor_mode=none", "run=1", "--json",
        check=lambda d: None if d["changes"][0] == {"key": "pages_to_scan", "before": 100,
                                                    "after": 200} else "changes: %s" % d["changes"])
    run(env, "ksm", "numa", "--merge-across-nodes", "0", "--dry-run", "--json",
        check=lambda d: None if d["after"] is None and d["dry_run"] else "a dry run has an after")
    run(env, "ksm", "numa", "--merge-across-nodes", "0", "--timeout", "5", "--json",
        check=lambda d: None if d["after"]["merge_across_nodes"] == 0 else "not switched")
    run(env, "ksm", "numa", "--merge-across-nodes", "0", "--json",
        check=lambda d: None if d["nothing_to_do"] else "nothing_to_do is false")

    # estimate: an image with zero-filled, duplicated and unique pages
    image = os.path.join(tmp, "memory.img")
    with open(image, "wb") as f:
        f.write(bytes(4096) * 4 + b"A" * 4096 * 3 + os.urandom(4096 * 2))
    run(env, "estimate", "--image", image, "--passes", "1", "--json",
        check=lambda d: None if d["processes"][0]["pid"] is None and d["pages_sharing"] > 0
        else "an image's pid is not null, or nothing is shared")

    # list and doctor on libvirt's test driver: its domain "test" has no
    # QEMU process, which is an error about that guest (data), not the run.
    run(env, "list", "--json",
        check=lambda d: None if d["guests"] and d["guests"][0]["domain"] == "test"
        and d["guests"][0]["error"] else "the unreadable guest is not listed with its error")
    ksm_knob(sysfs, "run", 0)
    run(env, "doctor", "--no-estimate", "--json", want_rc=3,
        check=lambda d: None if d["errors"] >= 1 and any(
            f["code"] == "ksm-stopped" for f in d["findings"]) else "no ksm-stopped error")

    # experiment clean: nothing to do, then a killed experiment's journal
    run(env, "experiment", "clean", "--json",
        check=lambda d: None if d["cleaned"] == 0 and d["experiments"] == [] else "not empty")
    shutil.copy(os.path.join(SRCDIR, "tests", "data", "journal", "journal.json"),
                os.path.join(env["SAMEPAGE_STATE_DIR"], "experiments", "001-1.json"))
    run(env, "experiment", "clean", "--dry-run", "--json",
        check=lambda d: None if d["cleaned"] == 1 and d["experiments"][0]["actions"]
        else "the killed experiment is not reported")
    os.unlink(os.path.join(env["SAMEPAGE_STATE_DIR"], "experiments", "001-1.json"))

    # experiment run without a guest image: it fails, and says why in JSON
    plan = os.path.join(SRCDIR, "vm-images", "plans", "default.ini")
    run(env, "experiment", "run", plan, "--output", os.path.join(tmp, "out"), "--json",
        want_rc=1,
        check=lambda d: None if not d["complete"] and "image" in (d["error"] or "")
        else "error: %r" % d["error"])

    check_status(tmp, env)

    # What the conventions forbid, the schema refuses.
    doc = run(env, "ksm", "set", "pages_to_scan=300", "--json")
    if doc:
        bad = copy.deepcopy(doc)
        bad["changes"][0]["after"] = "300"
        must_refuse("a number as a string (ksm set's after \"300\")", bad)
        must_refuse("a bare array (ksm set's changes)", doc["changes"])
        bad = copy.deepcopy(doc)
        del bad["format"]
        must_refuse("a document without its format", bad)
        bad = copy.deepcopy(doc)
        bad["format"] = 2
        must_refuse("format 2", bad)
    must_refuse("mark's mergeable_before \"yes\"", {
        "format": 1, "command": "mark", "domain": "g", "pid": 1, "merge": True,
        "regions": [{"id": "pc.ram", "mergeable_before": "yes", "mergeable": True,
                     "vmflags": "rd wr mg"}]})
    must_refuse("a region's size without its unit", {
        "format": 1, "command": "regions", "domain": "g", "pid": 1,
        "ksm_stat": {"ksm_rmap_items": 0, "ksm_zero_pages": 0, "ksm_merging_pages": 0,
                     "ksm_process_profit": 0},
        "regions": [{"id": "pc.ram", "size": 1048576, "merge": True, "share": False,
                     "policy": None, "host_nodes": [], "hva": None}]})
    must_refuse("a listed guest without error or figures", {
        "format": 1, "command": "list", "guests": [{"domain": "g"}]})

    documented = set(SCHEMA["properties"]["command"]["enum"])
    untested = documented - seen - {"regions", "mark"}
    if untested:
        fail("documented but not run here: %s" % ", ".join(sorted(untested)))


def check_status(tmp, env):
    """samepaged with the fake roots, libvirt's test driver and a socket
    of its own; status --json against it."""
    sock = os.path.join(tmp, "samepaged.sock")
    conf = os.path.join(tmp, "samepaged.conf")
    with open(conf, "w") as f:
        f.write("[libvirt]\nuri = test:///default\n[daemon]\nsocket = %s\n" % sock)
    log = open(os.path.join(tmp, "samepaged.log"), "w+")
    daemon = subprocess.Popen([SAMEPAGED, "--config", conf, "--dry-run"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if os.path.exists(sock) or daemon.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.exists(sock):
            log.seek(0)
            fail("samepaged did not make its socket (exit %s): %s" % (daemon.poll(),
                                                                     log.read()[-800:]))
            return
        run(env, "status", "--json", "--socket", sock,
            check=lambda d: None if d["ok"] and d["daemon"]["dry_run"] else "not samepaged's")
        # list shows samepaged's view of each guest when it answers.
        lenv = dict(env, SAMEPAGE_SOCKET=sock)
        run(lenv, "list", "--json")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def validate_one(path):
    text = sys.stdin.read() if path == "-" else open(path).read()
    try:
        doc = json.loads(text)
    except ValueError as e:
        print("not one JSON document (%s): %r" % (e, text[:300]))
        sys.exit(1)
    errors = problems(doc)
    if errors:
        print("violates %s: %s" % (SCHEMA_PATH, explain(errors)))
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--validate":
        validate_one(sys.argv[2])
    main()
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("all %d documented commands but regions and mark validated "
          "(those need a guest: tests/integration)" % (len(seen)))
