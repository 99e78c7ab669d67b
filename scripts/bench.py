#!/usr/bin/env python3
"""creature's benchmarks (run by scripts/bench inside the test namespace).

Each case runs creature (A) and the peer tool (B) alternately, A B A B ...,
after a warm-up, and reports median, min and max of each and the ratio of
medians (A / B: below 1 means creature is faster). Wall time and the peak
RSS of each measured process (GNU time) are recorded. Programs run with
argument vectors; no shell.

bench/results.md holds the rendered table and, in a trailing comment, the
data behind it: a run of some cases replaces only those cases' rows, so the
file always shows the latest measurement of every case (each row says when
it was taken and with how many pairs).
"""

import datetime
import http.server
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from xml.etree import ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = os.environ.get("CREATURE_BENCH_BIN") or os.path.join(ROOT, "target/release/creature")
GUEST = os.environ.get("CREATURE_TEST_GUEST", "/var/cache/creature-test/guest")
QUICK = "--quick" in sys.argv
GROUPS = ["startup", "list", "list1000", "create", "lxc-create", "boot", "shutdown", "exec", "start-all", "snapshot",
          "volumes", "secgroup", "hosts", "xen"]
CASES = [a for a in sys.argv[1:] if not a.startswith("--")]
PAIRS = 2 if QUICK else 5
RESULTS = os.path.join(ROOT, "bench/results-quick.md" if QUICK else "bench/results.md")
DATA_START, DATA_END = "<!-- bench-data", "-->"
TEMP = []  # every temporary directory, removed at exit whatever happens
CLEANUP = []  # functions run at exit (servers, machines outside TEMP)

# Why creature loses a case, when it does (ratio >= 1). A loss without a
# line here is reported as unexplained.
WHY_SLOWER = {
    "startup": "a few milliseconds each, mostly process start-up: loading the shared libraries. `creature "
               "--version` and `matrix` are answered by the front, which links neither libvirt nor liblxc; `list` "
               "needs the backends, so the front becomes the engine, which links both (virsh links libvirt, lxc-ls "
               "liblxc). A difference this size is within the run-to-run noise.",
    "lxc-create": "an overlay create is mostly the engine's start-up (about 13 ms, see the start-up rows: the loader "
                  "maps libvirt's and liblxc's shared libraries, lxc-copy only liblxc's), then a durable record in "
                  "the state database (4 fsyncs) and liblxc reading the new config back; lxc-copy -s writes a config "
                  "and two directories.",
    "exec": "about 12 to 20 ms per call, all of it before the attach: the front (about 1 ms) becomes "
            "creature-engine, and the engine's start-up is the rest (its loader maps libvirt's and liblxc's shared libraries and libvirt initializes, "
            "where lxc-attach links liblxc alone: see the start-up rows), then the machine's record from the state "
            "database (opened and checked). The attach itself is liblxc's in both, and a longer command shows the "
            "same fixed difference (the loop row).",
    "snapshot": "export: creature runs the same qemu-img convert, then reads the result once more for its sha256 (the "
                "image cache is content-addressed and checks what it holds: about 0.5 s per GiB with the CPU's SHA "
                "instructions) and records it. Snapshot create, where it loses at all, by milliseconds: creature's "
                "start-up and its record in the state database (see the start-up rows).",
    "volumes": "a few milliseconds per volume, all of it bookkeeping around the same libvirt call: creature's "
               "start-up, the volume's record and its holder checked and written in the state database before the "
               "attach (so two attaches racing cannot both win), the device names the machine uses read from its "
               "live and persistent definitions. Detach waits, like virsh, for the guest to let go.",
    "secgroup": "libvirt's redefinition is the same call for both and re-applies the filter to every NIC that uses "
                "it; creature adds its start-up, the rule's record in the state database and the group's filter "
                "rendered from it (the admin's XML was written before the clock started).",
    "xen": "dom0 runs under QEMU TCG, where each libvirt call over xen+tcp takes tens of milliseconds, so calls "
           "count, not work: creature's list asks for every domain's state, vCPUs, memory and CPU time (one "
           "virConnectGetAllDomainStats, which libxl answers domain by domain) and then which shut-off ones hold a "
           "managed-save image (a second call), where virsh list --all shows names and states only (-v: observe "
           "117 ms of 150); creature's create checks dom0's capabilities and finds the kernel and initrd already "
           "shipped (pool refresh and marker lookups) before the same define (-v: 96 ms against virsh's define).",
    "hosts": "about 0.13 s per migration around the same peer-to-peer libvirt call: creature's start-up and three "
             "connections (this host's state, the source, the destination) where virsh opens one, the checks before "
             "it (network, free memory, name, disabled host), a probe volume made on the source and looked up on the "
             "destination to learn whether they share the disk pool, the config drive checked by sha256 there, and "
             "after it the DHCP reservation moved between the two networks and the record updated. virsh's own "
             "spread between pairs (5.0-7.0 s) is wider than the difference.",
    "boot": "the time ends with the containers' own DHCP (busybox udhcpc, one second between attempts), "
            "which no starter can hurry.",
}

# --- measuring -----------------------------------------------------------------


class Group:
    """One group's rows and notes, as stored in results.md."""

    def __init__(self, name):
        self.name = name
        self.rows = []
        self.notes = []


CURRENT = None  # the Group being measured


def run(argv, env=None, check=True, quiet=True):
    """Run without timing."""
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise SystemExit(f"bench: {argv} failed: {r.stderr.decode(errors='replace')[-2000:]}")
    return r


RSS_FILE = None


def timed(argv, env=None):
    """(wall seconds, peak RSS KiB) of one process.

    The RSS comes from GNU time, which runs the process: a child forked from
    this Python process would count Python's own pages (the kernel carries
    the pre-exec peak into ru_maxrss), about 22 MiB whatever it runs. The
    wall time includes GNU time's start (a fraction of a millisecond), on
    both sides of every comparison."""
    global RSS_FILE
    if RSS_FILE is None:
        RSS_FILE = os.path.join(temp_dir("creature-bench-rss."), "rss")
    t = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", RSS_FILE, "--", *argv], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode(errors="replace")
    status = p.wait()
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"bench: {argv} exited {status}: {err[-2000:]}")
    with open(RSS_FILE) as f:
        return wall, int(f.read().split()[-1])


def seq(cmds, env=None):
    """Several processes as one measurement: summed time, largest RSS."""
    total, rss = 0.0, 0
    for c in cmds:
        w, r = timed(c, env)
        total += w
        rss = max(rss, r)
    return total, rss


def stats(xs):
    return [statistics.median(xs), min(xs), max(xs)]


def compare(case, a_label, a, b_label, b, setup=None, pairs=None):
    """a, b: functions returning (seconds, rss) for one run; setup() before each, untimed."""
    pairs = pairs or PAIRS
    def one(f, label, what):
        setup and setup()
        x, y = f()
        # Progress on stderr: a whole run takes half an hour.
        print(f"bench:   {what} {label}: {x:.3f}s", file=sys.stderr, flush=True)
        return x, y

    for f, label in ((a, a_label), (b, b_label)):  # warm-up: caches, first connections
        if f:
            one(f, label, "warm-up")
    aw, ar, bw, br = [], [], [], []
    for i in range(pairs):
        for f, label, w, r in ((a, a_label, aw, ar), (b, b_label, bw, br)):
            if not f:
                continue
            x, y = one(f, label, f"pair {i + 1}/{pairs}")
            w.append(x)
            r.append(y)
    row = {"case": case, "a": a_label, "b": b_label, "a_s": stats(aw), "a_rss": max(ar), "pairs": pairs,
           "date": datetime.date.today().isoformat()}
    if bw:
        row.update({"b_s": stats(bw), "b_rss": max(br), "ratio": statistics.median(aw) / statistics.median(bw)})
    CURRENT.rows.append(row)
    print(f"bench: {case}: {a_label} {row['a_s'][0]:.3f}s"
          + (f" vs {b_label} {row['b_s'][0]:.3f}s (x{row['ratio']:.2f})" if bw else ""), flush=True)


def creature(*args, state=None):
    env = dict(os.environ)
    if state:
        env["CREATURE_STATE_DIR"] = state
    return [C, *args], env


def temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o711)
    TEMP.append(d)
    return d


def state_dir():
    return temp_dir("creature-bench.")


def cr(state, *args, check=True):
    argv, env = creature(*args, state=state)
    return run(argv, env=env, check=check)


def cr_out(state, *args):
    argv, env = creature(*args, state=state)
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=True).stdout.decode()


def import_guest(state):
    cr(state, "image", "import", f"{GUEST}/vmlinuz", f"{GUEST}/initrd.img", "--name", "tiny-guest", "-q")


def wait_until(what, ok, limit=300, missing=None):
    """Poll ok(); on timeout, missing() names what is still not there."""
    deadline = time.monotonic() + limit
    while not ok():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what}: not done after {limit} s" + (f"; still waiting for {missing()}" if missing else ""))
        time.sleep(0.05)


# --- cases -----------------------------------------------------------------------

def case_startup():
    s = state_dir()
    for label, args in (("--version", ["--version"]), ("matrix", ["matrix"]), ("list (no machines)", ["list"])):
        argv, env = creature(*args, state=s)
        peer = {"--version": [["virsh", "--version"]], "matrix": None,
                "list (no machines)": [["virsh", "list", "--all"], ["lxc-ls", "-f"]]}[label]
        compare(
            f"start-up: creature {label}",
            f"creature {label}",
            lambda: timed(argv, env),
            " + ".join(" ".join(p) for p in peer) if peer else "-",
            (lambda: seq(peer)) if peer else None,
            pairs=PAIRS * 4,
        )
    # What the libraries alone cost: the engine, and an empty C program linked with them.
    work = temp_dir("creature-bench-empty.")
    src, exe = os.path.join(work, "empty.c"), os.path.join(work, "empty-lvirt-llxc")
    with open(src, "w") as f:
        f.write("int main(void) { return 0; }\n")
    run(["cc", "-O2", src, "-o", exe, "-Wl,--no-as-needed", "-lvirt", "-llxc"])
    argv, env = creature("--version", state=s)
    engine = [os.path.join(os.path.dirname(argv[0]), "creature-engine"), "--version"]
    compare(
        "start-up: the engine (linked with libvirt and liblxc) against an empty program linked with them",
        "creature-engine --version",
        lambda: timed(engine, env),
        "empty main() linked with -lvirt -llxc",
        lambda: timed([exe]),
        pairs=PAIRS * 4,
    )


LIST_STATE = None


def list_setup(vms, cts):
    """vms VMs (defined, not started) and cts running containers, made by creature."""
    global LIST_STATE
    if LIST_STATE is None:
        LIST_STATE = state_dir()
        import_guest(LIST_STATE)
        cr(LIST_STATE, "net", "create", "bench", "--subnet", "10.90.0.0/16", "-q")
    s = LIST_STATE
    have = json.loads(cr_out(s, "list", "--format", "json"))
    have_vms = sum(1 for r in have if r["backend"] == "qemu")
    have_cts = sum(1 for r in have if r["backend"] == "lxc")
    for i in range(have_vms, vms):
        cr(s, "create", f"bvm-{i}", "-t", "tiny", "-q")
    for i in range(have_cts, cts):
        cr(s, "launch", f"bct-{i}", "-t", "lxc-busybox", "--network", "bench", "-q")
    return s


def case_list(vms):
    s = list_setup(vms, 30)
    peer = [["virsh", "list", "--all"], ["lxc-ls", "-f"]]
    for fmt in ("table", "json"):
        argv, env = creature("list", "--format", fmt, state=s)
        compare(
            f"list: {vms} VMs (defined) + 30 containers (running), --format {fmt}",
            f"creature list --format {fmt}",
            lambda: timed(argv, env),
            "virsh list --all + lxc-ls -f",
            lambda: seq(peer),
        )
    CURRENT.notes.append("creature's table has more columns than virsh's (backend, record, reserved IP, template); "
                         "the peer's time is `virsh list --all` and `lxc-ls -f` together, as a sysadmin needs both.")


def case_create():
    s = state_dir()
    work = temp_dir("creature-bench-img.")
    import_guest(s)
    images = {}
    for name, size, data in (("small", "10M", "10M"), ("large", "10G", "1G")):
        path = os.path.join(work, f"{name}.qcow2")
        run(["qemu-img", "create", "-q", "-f", "qcow2", path, size])
        run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0xaa 0 {data}", path])
        cr(s, "image", "import", path, "--name", f"img-{name}", "-q")
        images[name] = path
    CURRENT.notes.append(
        "the large image is a qcow2 of 10 GiB virtual size holding 1 GiB of data; the small one 10 MiB. "
        "virt-install gets a copy of the image made with `cp --sparse=always` (the manual way: a machine must not "
        "write into the shared image), counted in its time.")
    n = [0]

    def clean():
        # The previous copies are not needed any more: keep the disk small.
        for old in os.listdir(work):
            if old.startswith("vi-"):
                run(["virsh", "-c", "qemu:///system", "undefine", old[:-6]], check=False)
                os.remove(os.path.join(work, old))

    for name in ("small", "large"):
        def a(name=name):
            n[0] += 1
            argv, env = creature("create", f"cv-{n[0]}", "-t", "tiny", "--set", f"disk.0.source.image=img-{name}", "-q",
                                 state=s)
            return timed(argv, env)

        def b(name=name):
            n[0] += 1
            disk = os.path.join(work, f"vi-{n[0]}.qcow2")
            return seq([
                ["cp", "--sparse=always", images[name], disk],
                ["virt-install", "--connect", "qemu:///system", "--name", f"vi-{n[0]}", "--virt-type", "qemu",
                 "--memory", "256", "--vcpus", "1", "--import", "--disk", f"path={disk},format=qcow2",
                 "--network", "none", "--graphics", "none", "--osinfo", "detect=on,require=off",
                 "--noautoconsole", "--noreboot"],
            ])

        compare(f"create from the {name} image", "creature create", a, "cp + virt-install --import", b, setup=clean)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_mirror():
    """The two Release files lxc-create -t debian asks for, on the namespace's loopback."""
    root = os.environ["CREATURE_BENCH_MIRROR"]
    handler = lambda *a, **k: QuietHandler(*a, directory=root, **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    CLEANUP.append(srv.shutdown)
    return f"http://127.0.0.1:{srv.server_address[1]}"


def case_lxc_create():
    src = os.environ["CREATURE_BENCH_DEBIAN_STATE"]
    s = state_dir()
    # The packages were downloaded outside the namespace: copy just them in
    # (the first, warm-up create builds the tree from them).
    for key in os.listdir(os.path.join(src, "images/rootfs")):
        os.makedirs(os.path.join(s, "images/rootfs", key), exist_ok=True)
        shutil.copy(os.path.join(src, "images/rootfs", key, "debs.tgz"), os.path.join(s, "images/rootfs", key, "debs.tgz"))
    mirror = serve_mirror()
    made = []  # (kind, name) of the previous run's container, removed before the next

    def clean():
        while made:
            kind, name = made.pop()
            if kind == "creature":
                cr(s, "delete", name, "--yes")
            else:
                run(["lxc-destroy", "-n", name])

    CLEANUP.append(clean)
    n = [0]

    def a(unprivileged, overlay=False):
        n[0] += 1
        name = f"cd-{n[0]}"
        made.append(("creature", name))
        argv, env = creature("create", name, "-t", "lxc-debian",
                             "--set", f"rootfs.unprivileged={'true' if unprivileged else 'false'}",
                             "--set", f"rootfs.overlay={'true' if overlay else 'false'}", "-q", state=s)
        return timed(argv, env)

    def lxc_create():
        n[0] += 1
        name = f"lc-{n[0]}"
        made.append(("lxc", name))
        return timed(["lxc-create", "-n", name, "-t", "debian", "--", "-r", "bookworm", f"--mirror={mirror}/debian",
                      f"--security-mirror={mirror}/debian-security"])

    # lxc-copy's source: a privileged Debian container made once by lxc-create.
    run(["lxc-create", "-n", "ld-src", "-t", "debian", "--", "-r", "bookworm", f"--mirror={mirror}/debian",
         f"--security-mirror={mirror}/debian-security"])
    CLEANUP.append(lambda: run(["lxc-destroy", "-n", "ld-src"], check=False))

    def lxc_copy(*snapshot):
        n[0] += 1
        name = f"lc-{n[0]}"
        made.append(("lxc", name))
        return timed(["lxc-copy", "-n", "ld-src", "-N", name, *snapshot])

    compare("container create (Debian bookworm, from cache), privileged", "creature create -t lxc-debian",
            lambda: a(False), "lxc-create -t debian", lxc_create, setup=clean)
    compare("container create (Debian bookworm, from cache), privileged", "creature create -t lxc-debian",
            lambda: a(False), "lxc-copy", lxc_copy, setup=clean)
    compare("container create (Debian bookworm, from cache), unprivileged", "creature create -t lxc-debian",
            lambda: a(True), "-", None, setup=clean)
    compare("container create (Debian bookworm, overlay on the cache), privileged",
            "creature create -t lxc-debian --set rootfs.overlay=true", lambda: a(False, True),
            "lxc-copy -s -B overlay", lambda: lxc_copy("-s", "-B", "overlay"), setup=clean)
    compare("container create (Debian bookworm, overlay on the cache), unprivileged",
            "creature create -t lxc-debian --set rootfs.overlay=true", lambda: a(True, True), "-", None, setup=clean)
    clean()
    CURRENT.notes.append(
        "lxc-create -t debian copies its cached tree (rsync) and configures it, but first asks the mirror for two "
        "Release files; the namespace has no way out, so they are served on its loopback (a real mirror is slower).")
    CURRENT.notes.append(
        "creature's shipped lxc-debian is unprivileged: its cache holds a tree already shifted to the id range, so "
        "an unprivileged create costs what a privileged one does. lxc-create and lxc-copy make privileged containers; "
        "an unprivileged lxc-create -t debian is not supported by the template.")
    CURRENT.notes.append(
        "the copying rows: every tool copies the whole tree (about 300 MB), so these times follow the disk's write "
        "speed and vary from run to run; the alternation gives both sides the same disk. The overlay rows copy "
        "nothing: creature makes two empty directories and the hostname over its cached tree, lxc-copy -s -B "
        "overlay does the same over the source container's rootfs, and both then cost what their set-up costs.")


BOOT = None


def boot_setup():
    """30 busybox containers (autostart enabled) and 5 VMs on one network."""
    global BOOT
    if BOOT:
        return BOOT
    s = state_dir()
    import_guest(s)
    cr(s, "net", "create", "boot", "--subnet", "10.91.0.0/16", "-q")
    cts = [f"boot-{i}" for i in range(30)]
    vms = [f"bootvm-{i}" for i in range(5)]
    for c in cts:
        cr(s, "create", c, "-t", "lxc-busybox", "--network", "boot", "-q")
        cr(s, "autostart", "enable", c, "-q")
        # lxc-autostart's own switch, for the peer run.
        with open(f"/var/lib/lxc/{c}/config", "a") as f:
            f.write("lxc.start.auto = 1\n")
    for v in vms:
        cr(s, "create", v, "-t", "tiny", "--network", "boot", "-q")
    BOOT = (s, cts, vms)
    return BOOT


GUESTS_LIST = "/var/lib/libvirt/libvirt-guests"


def lxc_state(c):
    return subprocess.run(["lxc-info", "-n", c, "-sH"], stdout=subprocess.PIPE).stdout.decode().strip()


def ct_leased(c):
    out = subprocess.run(["lxc-info", "-n", c, "-iH"], stdout=subprocess.PIPE).stdout.decode()
    return "10.91." in out


def kill_containers(cts):
    """Stop these containers at once (untimed set-up between runs)."""
    for c in cts:
        run(["lxc-stop", "-n", c, "-k"], check=False)


def timed_until(what, ok, cmds, env=None):
    """(seconds, peak RSS) from running cmds until ok() holds, not until they return."""
    t = time.perf_counter()
    _, rss = seq(cmds, env)
    wait_until(what, ok)
    return time.perf_counter() - t, rss


def case_boot():
    s, cts, vms = boot_setup()

    def all_stopped():
        kill_containers(cts)

    def until_leases(start_argv, env=None):
        return timed_until("every container's lease", lambda: all(ct_leased(c) for c in cts), [start_argv], env)

    a_argv, a_env = creature("autostart", "run", "-q", state=s)
    compare("boot 30 containers until each has its DHCP lease", "creature autostart run",
            lambda: until_leases(a_argv, a_env), "lxc-autostart", lambda: until_leases(["lxc-autostart"]),
            setup=all_stopped)
    all_stopped()
    CURRENT.notes.append("the time runs until `lxc-info -iH` shows every container's address from the network's "
                         "dnsmasq, not until the command returns.")


def case_exec():
    """One command in a running container: creature exec against lxc-attach."""
    s = state_dir()
    cr(s, "launch", "bexec", "-t", "lxc-busybox", "-q")
    CLEANUP.append(lambda: cr(s, "delete", "bexec", "--force", "--yes", "-q", check=False))
    argv, env = creature("exec", "bexec", "--", "true", state=s)
    compare("exec `true` in a running container", "creature exec -- true", lambda: timed(argv, env),
            "lxc-attach -n bexec -- true", lambda: timed(["lxc-attach", "-n", "bexec", "--", "true"]),
            pairs=PAIRS * 4)
    argv, env = creature("exec", "bexec", "--", "sh", "-c", "i=0; while [ $i -lt 1000 ]; do i=$((i+1)); done", state=s)
    compare("exec a 1000-step shell loop in a running container", "creature exec", lambda: timed(argv, env),
            "lxc-attach", lambda: timed(["lxc-attach", "-n", "bexec", "--", "sh", "-c",
                                         "i=0; while [ $i -lt 1000 ]; do i=$((i+1)); done"]),
            pairs=PAIRS * 2)
    CURRENT.notes.append("both attach through liblxc (creature calls its attach API, lxc-attach is its tool); the "
                         "difference is process start-up and creature's record lookup in its state database.")


def case_start_all():
    """30 stopped containers started: creature start --all against a loop of lxc-start."""
    s, cts, _ = boot_setup()

    def all_stopped():
        kill_containers(cts)

    def until_running(cmds, env=None):
        return timed_until("every container running", lambda: all(lxc_state(c) == "RUNNING" for c in cts), cmds, env)

    a_argv, a_env = creature("start", "--all", "--backend", "lxc", "-q", state=s)
    compare("start 30 stopped containers", "creature start --all --backend lxc",
            lambda: until_running([a_argv], a_env), "for c in ...; do lxc-start -n $c; done",
            lambda: until_running([["lxc-start", "-n", c] for c in cts]), setup=all_stopped)
    all_stopped()
    CURRENT.notes.append("creature starts 8 at a time (--parallel, default 8) and waits for each to be running; "
                         "the loop starts one after the other, as a shell loop does. Both end when every container "
                         "is RUNNING.")


def case_snapshot():
    """Snapshots of running guests: creature against virsh's own snapshot verbs; export against qemu-img convert."""
    s = state_dir()
    import_guest(s)
    for m in ("bsn-c", "bsn-v", "bsn-i"):
        cr(s, "create", m, "-t", "tiny", "--set", "disk.0.size=64MiB", "-q")
        cr(s, "start", m, "-q")
        CLEANUP.append(lambda m=m: cr(s, "delete", m, "--force", "--yes", "-q", check=False))
    n = [0]

    def a():
        n[0] += 1
        argv, env = creature("snapshot", "create", "bsn-c", f"c{n[0]}", "-q", state=s)
        return timed(argv, env)

    def b():
        n[0] += 1
        return timed(["virsh", "-q", "snapshot-create-as", "bsn-v", f"v{n[0]}", "--disk-only", "--atomic",
                      "--no-metadata"])

    compare("snapshot a running guest's disk", "creature snapshot create", a,
            "virsh snapshot-create-as --disk-only --atomic --no-metadata", b)
    cr(s, "snapshot", "create", "bsn-c", "warm", "--memory", "-q")
    run(["virsh", "-q", "snapshot-create-as", "bsn-i", "warm"])
    argv, env = creature("snapshot", "revert", "bsn-c", "warm", "--yes", "-q", state=s)
    compare("revert a running guest to a snapshot with its memory", "creature snapshot revert (external)",
            lambda: timed(argv, env), "virsh snapshot-revert (internal)",
            lambda: timed(["virsh", "-q", "snapshot-revert", "bsn-i", "warm"]))
    CURRENT.notes.append(
        "libvirt 9.0 (Debian 12) cannot revert external snapshots, so the revert peer is virsh's internal snapshot "
        "(disk and memory inside the qcow2) of a like guest: both bring back a running 256 MiB guest's memory and disk.")

    work = temp_dir("creature-bench-export.")
    big = os.path.join(work, "big.qcow2")
    run(["qemu-img", "create", "-q", "-f", "qcow2", big, "2G"])
    run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xaa 0 1G", big])
    cr(s, "image", "import", big, "--name", "img-big", "-q")
    os.remove(big)
    cr(s, "create", "bsn-x", "-t", "tiny", "--set", "disk.0.source.image=img-big", "-q")
    CLEANUP.append(lambda: cr(s, "delete", "bsn-x", "--force", "--yes", "-q", check=False))
    disk = os.path.join(s, "disks", "bsn-x-disk0.qcow2")

    def clean():
        for f in os.listdir(work):
            os.remove(os.path.join(work, f))
        while exported:
            cr(s, "image", "rm", exported.pop(), "-q")

    exported = []

    def ea():
        n[0] += 1
        exported.append(f"x{n[0]}")
        argv, env = creature("snapshot", "export", "bsn-x", "--image", f"x{n[0]}", "-q", state=s)
        return timed(argv, env)

    def eb():
        return timed(["qemu-img", "convert", "-O", "qcow2", disk, os.path.join(work, "out.qcow2")])

    compare("export a disk holding 1 GiB as an image", "creature snapshot export", ea,
            "qemu-img convert -O qcow2", eb, setup=clean)
    CURRENT.notes.append("the exported machine is stopped; creature's export is qemu-img convert into the image "
                         "cache, then a sha256 of the result and its record.")


def case_volumes():
    """10 volumes hot-plugged into a running guest and out again: creature against virsh attach-disk/detach-disk."""
    s = state_dir()
    import_guest(s)
    for m in ("bvol-c", "bvol-v"):
        cr(s, "create", m, "-t", "tiny", "--set", "disk.0.size=16MiB", "-q")
        cr(s, "start", m, "-q")
        CLEANUP.append(lambda m=m: cr(s, "delete", m, "--force", "--yes", "-q", check=False))
        log = os.path.join(s, "logs", f"{m}.serial.log")
        wait_until(f"{m} booted", lambda: os.path.exists(log)
                   and "creature-test-guest: guest agent on" in open(log, errors="replace").read())
    vols = {"c": [f"c{i}" for i in range(10)], "v": [f"v{i}" for i in range(10)]}
    for v in vols["c"] + vols["v"]:
        cr(s, "volume", "create", v, "--size", "16MiB", "-q")
    targets = [f"vd{chr(ord('b') + i)}" for i in range(10)]
    attached = {"c": False, "v": False}

    def c_attach():
        return seq([creature("volume", "attach", "bvol-c", v, "-q", state=s)[0] for v in vols["c"]],
                   creature(state=s)[1])

    def c_detach():
        return seq([creature("volume", "detach", "bvol-c", v, "-q", state=s)[0] for v in vols["c"]],
                   creature(state=s)[1])

    def v_attach():
        return seq([["virsh", "-q", "attach-disk", "bvol-v", os.path.join(s, "volumes", f"{v}.qcow2"), t,
                     "--subdriver", "qcow2", "--live", "--config"] for v, t in zip(vols["v"], targets)])

    def v_detach():
        return seq([["virsh", "-q", "detach-disk", "bvol-v", t, "--live", "--config"] for t in targets])

    def to(want):
        def setup():
            for k, on, off in (("c", c_attach, c_detach), ("v", v_attach, v_detach)):
                if attached[k] != want:
                    (on if want else off)()
                    attached[k] = want
        return setup

    def mark(k, f, now):
        def run_it():
            r = f()
            attached[k] = now
            return r
        return run_it

    compare("attach 10 volumes to a running guest", "creature volume attach", mark("c", c_attach, True),
            "virsh attach-disk --live --config", mark("v", v_attach, True), setup=to(False))
    compare("detach 10 volumes from a running guest", "creature volume detach", mark("c", c_detach, False),
            "virsh detach-disk --live --config", mark("v", v_detach, False), setup=to(True))
    CURRENT.notes.append("creature records each attachment in its state database and checks the holder first; "
                         "both unplug live and from the definition, and both wait for the guest to let go "
                         "(libvirt waits up to 5 s for the device's removal before it returns).")


def case_secgroup():
    """A rule added to a group of 50 running containers: creature against the same filter defined by hand."""
    n = 10 if QUICK else 50
    s = state_dir()
    cr(s, "net", "create", "bsg", "--subnet", "10.92.0.0/16", "-q")
    cr(s, "secgroup", "create", "bench", "-q")
    cr(s, "secgroup", "create", "byhand", "-q")
    cts = [f"bsg-{i}" for i in range(n)]
    for i, c in enumerate(cts):
        # Half in each group: the same 25 NICs follow each filter.
        group = "bench" if i % 2 == 0 else "byhand"
        cr(s, "create", c, "-t", "lxc-busybox", "--network", "bsg", "--set", f'security_groups=["{group}"]', "-q")
    CLEANUP.append(lambda: cr(s, "delete", *cts, "--force", "--yes", "-q", check=False))
    cr(s, "start", "--all", "--backend", "lxc", "-q")
    wait_until("every container running", lambda: all(lxc_state(c) == "RUNNING" for c in cts))
    scope = subprocess.run(["virsh", "-q", "nwfilter-list"], stdout=subprocess.PIPE).stdout.decode()
    byhand = next(line.split()[1] for line in scope.splitlines() if line.split()[1].endswith(".sg.byhand"))
    base = subprocess.run(["virsh", "nwfilter-dumpxml", byhand], stdout=subprocess.PIPE,
                          check=True).stdout.decode()
    ports = iter(range(1000, 2000))
    xml_file = os.path.join(s, "byhand.xml")

    def by_creature():
        argv, env = creature("secgroup", "rule", "add", "bench", "--direction", "in", "--proto", "tcp",
                             "--port", str(next(ports)), "-q", state=s)
        return timed(argv, env)

    def by_hand():
        # What an admin would write: the filter as it is, plus one rule.
        doc = ElementTree.fromstring(base)
        rule = ElementTree.SubElement(doc, "rule", action="accept", direction="in", priority="500")
        ElementTree.SubElement(rule, "tcp", dstportstart=str(next(ports)))
        ElementTree.ElementTree(doc).write(xml_file)
        return timed(["virsh", "-q", "nwfilter-define", xml_file])

    compare(f"add a rule to a group of {n // 2} running containers", "creature secgroup rule add", by_creature,
            "virsh nwfilter-define (the group's XML, edited)", by_hand)
    CURRENT.notes.append("each side's group holds half of the containers; both return when libvirt has re-applied "
                         "the filter to every one of their veths' bindings.")


def case_hosts():
    """Two more libvirt hosts (scripts/libvirt-host): list across them, and a live migration there and back."""
    n = 10 if QUICK else 50
    script = os.path.join(ROOT, "scripts/libvirt-host")
    hosts = {"bha": "10.199.0.41", "bhb": "10.199.0.42"}
    uris = {}
    for h, addr in hosts.items():
        uris[h] = subprocess.run([script, "start", h, addr], stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        CLEANUP.append(lambda h=h: run([script, "stop", h], check=False))
    s = state_dir()
    import_guest(s)
    for h in hosts:
        cr(s, "host", "add", h, uris[h], "-q")
        for i in range(n):
            cr(s, "--host", h, "create", f"{h}-{i}", "-t", "tiny", "-q")
    for fmt in ("table", "json"):
        argv, env = creature("list", "--format", fmt, state=s)
        compare(
            f"list across two hosts, {n} VMs (defined) on each, --format {fmt}",
            f"creature list --format {fmt}",
            lambda: timed(argv, env),
            "virsh -c A list --all + virsh -c B list --all",
            lambda: seq([["virsh", "-c", uris[h], "list", "--all"] for h in hosts]),
        )
    CURRENT.notes.append("creature asks the two hosts and this one at the same time (this one has none of these "
                         "machines) and adds its records; the peer asks the two hosts one after the other.")
    # One guest booted on bha, moved live to bhb and back by each tool.
    cr(s, "--host", "bha", "create", "mig", "-t", "tiny", "-q")
    cr(s, "start", "mig", "-q")
    wait_until("the guest's agent", lambda: "guest agent on" in cr_out(s, "log", "mig"))
    a, b = uris["bha"], uris["bhb"]

    def by_creature():
        t1, r1 = timed(*creature("migrate", "mig", "--to", "bhb", "-q", state=s))
        t2, r2 = timed(*creature("migrate", "mig", "--to", "bha", "-q", state=s))
        return t1 + t2, max(r1, r2)

    def by_virsh():
        flags = ["--live", "--p2p", "--persistent", "--undefinesource"]
        return seq([["virsh", "-c", a, "migrate", *flags, "mig", b], ["virsh", "-c", b, "migrate", *flags, "mig", a]])

    compare("live migration of a running 256 MiB guest to another host and back", "creature migrate (twice)",
            by_creature, "virsh migrate --live --p2p --persistent --undefinesource (twice)", by_virsh)
    CURRENT.notes.append("both run libvirt's peer-to-peer live migration of the same guest; creature first checks the "
                         "destination (network, memory, name), probes whether the hosts share the disk pool, moves "
                         "the DHCP reservation and network filters, and updates its record.")
    CLEANUP.append(lambda: cr(s, "delete", "mig", "--force", "--yes", "-q", check=False))


def case_xen():
    """The Xen host (scripts/xen-host: Xen 4.17 and a PV dom0 under QEMU TCG): list and create of PV machines
    there, against virsh on the same xen+tcp URI."""
    import xml.etree.ElementTree as ET
    n = 5 if QUICK else 20
    script = os.path.join(ROOT, "scripts/xen-host")
    uri = subprocess.run([script, "start", "26519"], stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    CLEANUP.append(lambda: run([script, "stop"], check=False))
    s = state_dir()
    import_guest(s)
    cr(s, "host", "add", "bx", uri, "-q")
    for i in range(n):
        cr(s, "--host", "bx", "create", f"bx-{i}", "-t", "tiny-xen", "-q")
    for fmt in ("table", "json"):
        argv, env = creature("--host", "bx", "list", "--format", fmt, state=s)
        compare(
            f"list on the Xen host, {n} PV machines (defined), --format {fmt}",
            f"creature --host bx list --format {fmt}",
            lambda: timed(argv, env),
            "virsh -c xen+tcp://... list --all",
            lambda: seq([["virsh", "-c", uri, "list", "--all"]]),
        )
    # The same domain for virsh to define: creature's own, renamed, without its UUID.
    xml = subprocess.run(["virsh", "-c", uri, "dumpxml", "bx-0"], stdout=subprocess.PIPE, check=True).stdout
    work = temp_dir("creature-bench-xen.")
    made = {"creature": 0, "virsh": 0}

    def by_creature():
        made["creature"] += 1
        return timed(*creature("--host", "bx", "create", f"bxc-{made['creature']}", "-t", "tiny-xen", "-q", state=s))

    def by_virsh():
        made["virsh"] += 1
        dom = ET.fromstring(xml)
        dom.find("name").text = f"bxv-{made['virsh']}"
        dom.remove(dom.find("uuid"))
        path = os.path.join(work, f"bxv-{made['virsh']}.xml")
        ET.ElementTree(dom).write(path)
        return seq([["virsh", "-c", uri, "define", path]])

    compare("create a PV machine on the Xen host (kernel and initrd already in dom0)", "creature create -t tiny-xen",
            by_creature, "virsh define (the same domain XML)", by_virsh)
    CURRENT.notes.append("dom0 runs under QEMU TCG, so every libvirt call there is slow, and both tools reach it "
                         "over the same xen+tcp connection; the machines are creature's tiny-xen PV domains, "
                         "defined, not running.")


def case_shutdown():
    s, cts, vms = boot_setup()
    guests = temp_dir("creature-bench-lg.")
    script = os.path.join(guests, "libvirt-guests.sh")

    def guests_script(parallel):
        text = open("/usr/lib/libvirt/libvirt-guests.sh").read()
        # Its defaults as the bench knows them: changed ones stop the bench.
        for default in ('URIS="default"', 'ON_SHUTDOWN="shutdown"', "PARALLEL_SHUTDOWN=0"):
            if default not in text:
                raise SystemExit(f"bench: libvirt-guests.sh has no {default!r}: its defaults changed")
        text = text.replace('URIS="default"', 'URIS="qemu:///system"')
        text = text.replace("PARALLEL_SHUTDOWN=0", f"PARALLEL_SHUTDOWN={parallel}")
        open(script, "w").write(text)
        os.chmod(script, 0o755)

    def boots(v):
        """{boot id: leased} of every boot in the VM's serial log."""
        # The log keeps earlier boots (and virtlogd may rotate it), so a boot
        # is told apart by the boot id the guest prints, not by a line count.
        argv, env = creature("log", v, state=s)
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        seen, last = {}, None
        # Exit 4: no log yet (the machine has never run), so no boot either.
        for line in r.stdout.decode(errors="replace").splitlines() if r.returncode == 0 else []:
            if "creature-test-guest: booted " in line:
                last = line.split("booted ", 1)[1].strip()
                seen[last] = False
            elif "creature-test-guest: lease eth0" in line and last:
                seen[last] = True
        return seen

    def vm_state(v):
        r = subprocess.run(["virsh", "-c", "qemu:///system", "domstate", v], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        return r.stdout.decode(errors="replace").strip()

    def all_running():
        # Booted and listening (the guest's acpid starts before it asks for
        # its lease): both tools then stop machines that can hear them.
        before = {v: set(boots(v)) for v in vms}
        # libvirt-guests.sh's stop does nothing while the list of guests to
        # restore from the last stop exists; its start at boot removes it.
        if os.path.exists(GUESTS_LIST):
            os.remove(GUESTS_LIST)
        for c in cts:
            run(["lxc-start", "-n", c], check=False)
        for v in vms:
            # Every machine was stopped by the run before: a start that fails is the bench's fault.
            run(["virsh", "-c", "qemu:///system", "start", v])

        def vm_up(v):
            return any(leased for boot, leased in boots(v).items() if boot not in before[v])

        wait_until("every machine up",
                   lambda: all(ct_leased(c) for c in cts) and all(vm_up(v) for v in vms),
                   missing=lambda: [c for c in cts if not ct_leased(c)]
                   + [f"{v} ({vm_state(v)}; boots {len(boots(v))}, before {len(before[v])})"
                      for v in vms if not vm_up(v)])

    def must_be_down(who, measured):
        """A run counts only when every machine is down when it returns."""
        up = [c for c in cts if lxc_state(c) != "STOPPED"] + [v for v in vms if vm_state(v) != "shut off"]
        if up:
            raise SystemExit(f"bench: {who} returned with machines still up: {up}")
        return measured

    stop_argv, stop_env = creature("autostop", "run", "-q", state=s)
    for parallel in (0, 5):
        guests_script(parallel)
        label = "libvirt-guests defaults" if parallel == 0 else "libvirt-guests PARALLEL_SHUTDOWN=5"
        compare(f"shut down 30 containers + 5 VMs ({label})", "creature autostop run",
                lambda: must_be_down("creature autostop run", timed(stop_argv, stop_env)),
                f"lxc-autostart -s + libvirt-guests.sh stop ({'sequential' if parallel == 0 else 'parallel 5'})",
                lambda: must_be_down("the peer", seq([["lxc-autostart", "-s"], [script, "stop"]])), setup=all_running)
    CURRENT.notes.append(
        "libvirt-guests.sh is Debian's script with URIS=qemu:///system and ON_SHUTDOWN=shutdown; creature stops "
        "containers and VMs by priority batches, here one batch of 35. Every machine has booted (VMs: a DHCP "
        "lease after a new boot id in the serial log) before each run, and a run counts only if every machine is "
        "down when it returns.")
    CURRENT.notes.append(
        "libvirt-guests.sh stop does nothing while /var/lib/libvirt/libvirt-guests (the guests to restore, written "
        "by the last stop) exists; its start at boot removes the file, so the bench removes it before each run.")
    CURRENT.notes.append(
        "the peer's time is mostly lxc-autostart -s, which stops the containers one after another (a busybox "
        "container takes about 2.3 s to stop: its init's own shutdown); PARALLEL_SHUTDOWN only speeds up the "
        "libvirt-guests part, 5 VMs.")
    CURRENT.notes.append(
        "a stop that comes while a guest still boots is lost by the guest (no ACPI handler yet); creature repeats it "
        "every 5 s, libvirt-guests waits out its SHUTDOWN_TIMEOUT (300 s). That case is kept out of this table "
        "by waiting for the boot.")


# --- the report -------------------------------------------------------------------

def versions():
    def v(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode().strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001 - a missing tool is reported, not fatal
            return f"unavailable ({e})"
    return {
        "creature": v([C, "--version"]),
        "virsh": v(["virsh", "--version"]),
        "libvirtd": v(["libvirtd", "--version"]),
        "lxc": v(["lxc-ls", "--version"]),
        "qemu": v(["qemu-system-x86_64", "--version"]),
        "virt-install": v(["virt-install", "--version"]),
        "kernel": platform.release(),
    }


def machine():
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{os.cpu_count()} CPUs ({cpu}), {int(mem) // 1024} MiB memory"


def load():
    """The groups stored in results.md (none in quick mode: quick runs start afresh)."""
    if QUICK or not os.path.exists(RESULTS):
        return {}
    text = open(RESULTS).read()
    if DATA_START not in text:
        return {}
    body = text.split(DATA_START, 1)[1].split(DATA_END, 1)[0]
    return json.loads(body)


def render(data):
    fmt = lambda s: f"{s[0]:.3f}s ({s[1]:.3f}-{s[2]:.3f})"  # noqa: E731
    lines = [
        "# Benchmark results",
        "",
        "<!-- Written by scripts/bench; do not edit. A run of some cases replaces their rows only. -->",
        "",
        "Each case: a warm-up, then alternating pairs (creature, peer, creature, peer, ...); median (min-max) "
        "of wall time, largest peak RSS. Ratio = creature's median / the peer's: below 1, creature is faster. "
        "Peak RSS comes from GNU time since 2026-12-04 (the start-up and exec rows); rows measured before show "
        "about 22 MiB for nearly every process, the benchmark's own Python process counted in (the kernel keeps "
        "the pre-exec peak), and are too high by that much.",
        "",
        "| case | creature | peer | pairs | creature time | peer time | ratio | creature RSS | peer RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    losses = []
    for g in GROUPS:
        for r in data.get(g, {}).get("rows", []):
            lines.append(
                f"| {r['case']} | `{r['a']}` | `{r['b']}` | {r['pairs']} | {fmt(r['a_s'])} | "
                + (f"{fmt(r['b_s'])} | {r['ratio']:.2f} | " if "b_s" in r else "- | - | ")
                + f"{r['a_rss'] // 1024} MiB | "
                + (f"{r['b_rss'] // 1024} MiB |" if r.get("b_rss") else "- |")
            )
            if r.get("ratio", 0) >= 1.0:
                losses.append((g, r))
    if losses:
        lines += ["", "## Where creature is slower", ""]
        for g, r in losses:
            why = WHY_SLOWER.get(g)
            if why is None:
                print(f"bench: creature loses {r['case']!r} and WHY_SLOWER has no line on it", file=sys.stderr)
                why = "not explained yet."
            lines.append(f"- {r['case']} (x{r['ratio']:.2f}): {why}")
    lines += ["", "## Notes", ""]
    for g in GROUPS:
        for n in data.get(g, {}).get("notes", []):
            lines.append(f"- {g}: {n}")
    lines += ["", "## Machines and versions", ""]
    seen = {}
    for g in GROUPS:
        if g in data:
            key = json.dumps([data[g]["machine"], data[g]["versions"]], sort_keys=True)
            seen.setdefault(key, []).append((g, data[g]["date"]))
    for key, groups in seen.items():
        m, v = json.loads(key)
        lines.append(f"- {', '.join(f'{g} ({d})' for g, d in groups)}: {m}; "
                     + "; ".join(f"{k} {val}" for k, val in v.items()))
    lines += ["", DATA_START, json.dumps(data, indent=1, sort_keys=True), DATA_END, ""]
    return "\n".join(lines)


def main():
    want = CASES or ([] if "--render" in sys.argv else GROUPS)
    unknown = [c for c in want if c not in GROUPS]
    if unknown:
        raise SystemExit(f"bench: no case {', '.join(unknown)}; the cases are {' '.join(GROUPS)}")
    data = load()
    if "--render" in sys.argv:  # rewrite results.md from its data, measuring nothing
        with open(RESULTS, "w") as f:
            f.write(render(data))
        return
    meta = {"machine": machine(), "versions": versions(), "date": datetime.date.today().isoformat()}
    run_case = {
        "startup": case_startup,
        "xen": case_xen,
        "list": lambda: case_list(200),
        "list1000": lambda: case_list(1000 if not QUICK else 300),
        "create": case_create,
        "lxc-create": case_lxc_create,
        "boot": case_boot,
        "shutdown": case_shutdown,
        "exec": case_exec,
        "start-all": case_start_all,
        "snapshot": case_snapshot,
        "volumes": case_volumes,
        "secgroup": case_secgroup,
        "hosts": case_hosts,
    }
    global CURRENT
    try:
        for g in GROUPS:
            if g not in want:
                continue
            CURRENT = Group(g)
            run_case[g]()
            data[g] = {"rows": CURRENT.rows, "notes": CURRENT.notes, **meta}
            # Written after every group: an interrupted run keeps what it measured.
            with open(RESULTS, "w") as f:
                f.write(render(data))
    finally:
        for f in reversed(CLEANUP):
            try:
                f()
            except BaseException as e:  # noqa: BLE001 - clean up the rest anyway
                print(f"bench: cleanup: {e}", file=sys.stderr)
        for d in TEMP:
            shutil.rmtree(d, ignore_errors=True)
    print(f"bench: wrote {RESULTS}")


if __name__ == "__main__":
    main()
