#!/usr/bin/env python3
"""creature's benchmarks (run by scripts/bench inside the test namespace).

Each case runs creature (A) and the peer tool (B) alternately, A B A B ...,
after a warm-up, and reports median, min and max of each and the ratio of
medians (A / B: below 1 means creature is faster). Wall time and the peak
RSS of each measured process (os.wait4) are recorded. Programs run with
argument vectors; no shell.
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = os.path.join(ROOT, "target/release/creature")
GUEST = os.environ.get("CREATURE_TEST_GUEST", "/var/cache/creature-test/guest")
QUICK = "--quick" in sys.argv
CASES = [a for a in sys.argv[1:] if not a.startswith("--")]
PAIRS = 2 if QUICK else 5
ROWS = []
NOTES = []
TEMP = []  # every temporary directory, removed at exit whatever happens


def run(argv, env=None, check=True, quiet=True):
    """Run without timing."""
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise SystemExit(f"bench: {argv} failed: {r.stderr.decode(errors='replace')[-2000:]}")
    return r


def timed(argv, env=None):
    """(wall seconds, peak RSS KiB) of one process."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {argv} exited {os.waitstatus_to_exitcode(status)}: {err[-2000:]}")
    return wall, ru.ru_maxrss


def seq(cmds, env=None):
    """Several processes as one measurement: summed time, largest RSS."""
    total, rss = 0.0, 0
    for c in cmds:
        w, r = timed(c, env)
        total += w
        rss = max(rss, r)
    return total, rss


def stats(xs):
    return statistics.median(xs), min(xs), max(xs)


def compare(case, a_label, a, b_label, b, setup=None, pairs=None, warmup=True, rss=True):
    """a, b: functions returning (seconds, rss) for one run; setup() before each."""
    pairs = pairs or PAIRS
    if warmup:
        for f in (a, b):
            if f:
                setup and setup()
                f()
    aw, ar, bw, br = [], [], [], []
    for _ in range(pairs):
        for f, w, r in ((a, aw, ar), (b, bw, br)):
            if not f:
                continue
            setup and setup()
            x, y = f()
            w.append(x)
            r.append(y)
    row = {"case": case, "a": a_label, "b": b_label, "a_s": stats(aw), "a_rss": max(ar) if ar else None}
    if bw:
        row.update({"b_s": stats(bw), "b_rss": max(br), "ratio": statistics.median(aw) / statistics.median(bw)})
    row["rss"] = rss
    ROWS.append(row)
    print(f"bench: {case}: {a_label} {row['a_s'][0]:.3f}s" + (f" vs {b_label} {row['b_s'][0]:.3f}s (x{row['ratio']:.2f})" if bw else ""), flush=True)


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


def import_guest(state):
    cr(state, "image", "import", f"{GUEST}/vmlinuz", f"{GUEST}/initrd.img", "--name", "tiny-guest", "-q")


# --- cases -----------------------------------------------------------------

def case_startup():
    s = state_dir()
    for label, args in (("--version", ["--version"]), ("matrix", ["matrix"]), ("list (no machines)", ["list"])):
        argv, env = creature(*args, state=s)
        peer = {"--version": [["virsh", "--version"]], "matrix": None, "list (no machines)": [["virsh", "list", "--all"], ["lxc-ls", "-f"]]}[label]
        compare(
            f"start-up: creature {label}",
            f"creature {label}",
            lambda: timed(argv, env),
            " + ".join(" ".join(p) for p in peer) if peer else "-",
            (lambda: seq(peer)) if peer else None,
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


def cr_out(state, *args):
    argv, env = creature(*args, state=state)
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=True).stdout.decode()


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
    NOTES.append("create: the large image is a qcow2 of 10 GiB virtual size holding 1 GiB of data; the small one 10 MiB. "
                 "virt-install gets a copy of the image made with `cp --sparse=always` (the manual way: a machine must not write into the shared image), counted in its time.")
    n = [0]

    for name in ("small", "large"):
        def a(name=name):
            n[0] += 1
            argv, env = creature("create", f"cv-{n[0]}", "-t", "tiny", "--set", f"disk.0.source.image=img-{name}", "-q", state=s)
            return timed(argv, env)

        def b(name=name):
            n[0] += 1
            disk = os.path.join(work, f"vi-{n[0]}.qcow2")
            # The previous copy is not needed any more: keep the disk small.
            for old in os.listdir(work):
                if old.startswith("vi-") and old != os.path.basename(disk):
                    run(["virsh", "-c", "qemu:///system", "undefine", old[:-6]], check=False)
                    os.remove(os.path.join(work, old))
            return seq([
                ["cp", "--sparse=always", images[name], disk],
                ["virt-install", "--connect", "qemu:///system", "--name", f"vi-{n[0]}", "--virt-type", "qemu", "--memory", "256",
                 "--vcpus", "1", "--import", "--disk", f"path={disk},format=qcow2", "--network", "none", "--graphics", "none",
                 "--osinfo", "detect=on,require=off", "--noautoconsole", "--noreboot"],
            ])

        compare(f"create from the {name} image", "creature create", a, "cp + virt-install --import", b)


def case_lxc_create():
    src = os.environ.get("CREATURE_BENCH_DEBIAN_STATE")
    s = state_dir()
    # The packages were downloaded outside the namespace: copy just them in
    # (the first, warm-up create builds the tree from them).
    for key in os.listdir(os.path.join(src, "images/rootfs")):
        os.makedirs(os.path.join(s, "images/rootfs", key), exist_ok=True)
        shutil.copy(os.path.join(src, "images/rootfs", key, "debs.tgz"), os.path.join(s, "images/rootfs", key, "debs.tgz"))
    n = [0]

    def a():
        n[0] += 1
        argv, env = creature("create", f"cd-{n[0]}", "-t", "lxc-debian", "-q", state=s)
        return timed(argv, env)

    # The peer: lxc-copy of an existing Debian container (made here by
    # creature, privileged, from the same packages).
    cr(s, "create", "ld-src", "-t", "lxc-debian", "--set", "rootfs.unprivileged=false", "-q")

    def c():
        n[0] += 1
        return timed(["lxc-copy", "-n", "ld-src", "-N", f"lc-{n[0]}"])

    compare("container create (Debian, from cache)", "creature create -t lxc-debian", a, "lxc-copy", c)
    NOTES.append("container create: `lxc-create -t debian` checks the release against the mirror on every create, "
                 "so it cannot run in the offline benchmark namespace; the offline peer is `lxc-copy` of an existing "
                 "Debian container.")
    NOTES.append("container create: creature's lxc-debian is unprivileged (a cached tree already shifted to the id range is copied); "
                 "lxc-create and lxc-copy make privileged containers.")


def case_boot_shutdown():
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

    def all_stopped():
        for c in cts:
            run(["lxc-stop", "-n", c, "-k"], check=False)
        for v in vms:
            run(["virsh", "-c", "qemu:///system", "destroy", v], check=False)

    def leased():
        for c in cts:
            out = subprocess.run(["lxc-info", "-n", c, "-iH"], stdout=subprocess.PIPE).stdout.decode()
            if "10.91." not in out:
                return False
        return True

    def until_leases(start_argv, env=None):
        t = time.perf_counter()
        p = subprocess.Popen(start_argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        while not leased():
            time.sleep(0.05)
        return time.perf_counter() - t, ru.ru_maxrss

    a_argv, a_env = creature("autostart", "run", "-q", state=s)
    compare("boot 30 containers until each has its DHCP lease", "creature autostart run", lambda: until_leases(a_argv, a_env),
            "lxc-autostart", lambda: until_leases(["lxc-autostart"]), setup=all_stopped, pairs=max(2, PAIRS // 2))

    # Shutdown: 30 containers and 5 VMs running.
    guests = temp_dir("creature-bench-lg.")
    script = os.path.join(guests, "libvirt-guests.sh")

    def guests_script(parallel):
        text = open("/usr/lib/libvirt/libvirt-guests.sh").read()
        text = text.replace("URIS=default", "URIS=qemu:///system").replace("ON_SHUTDOWN=suspend", "ON_SHUTDOWN=shutdown")
        text = text.replace("PARALLEL_SHUTDOWN=0", f"PARALLEL_SHUTDOWN={parallel}")
        open(script, "w").write(text)
        os.chmod(script, 0o755)

    def all_running():
        for c in cts:
            run(["lxc-start", "-n", c], check=False)
        for v in vms:
            run(["virsh", "-c", "qemu:///system", "start", v], check=False)
        time.sleep(4)  # let the guests boot so a graceful shutdown can work

    stop_argv, stop_env = creature("autostop", "run", "-q", state=s)
    for parallel in (0, 5):
        guests_script(parallel)
        label = "libvirt-guests defaults" if parallel == 0 else "libvirt-guests PARALLEL_SHUTDOWN=5"
        compare(f"shut down 30 containers + 5 VMs ({label})", "creature autostop run", lambda: timed(stop_argv, stop_env),
                f"lxc-autostart -s + libvirt-guests.sh stop ({'sequential' if parallel == 0 else 'parallel 5'})",
                lambda: seq([["lxc-autostart", "-s"], [script, "stop"]]), setup=all_running, pairs=max(2, PAIRS // 2))
    NOTES.append("shutdown: libvirt-guests.sh is Debian's script with URIS=qemu:///system and ON_SHUTDOWN=shutdown; "
                 "creature stops containers and VMs by priority batches, here one batch of 35.")


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


def report():
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Benchmark results",
        "",
        "<!-- Written by scripts/bench. Numbers move with the machine; commit them with the change that moves them. -->",
        "",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), {int(mem) // 1024} MiB memory. "
        f"Each case: a warm-up, then {PAIRS} alternating pairs (fewer for boot/shutdown); median (min-max). "
        "Ratio = creature's median / the peer's: below 1, creature is faster.",
        "",
        "| case | creature | peer | creature time | peer time | ratio | creature RSS | peer RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        fmt = lambda s: f"{s[0]:.3f}s ({s[1]:.3f}-{s[2]:.3f})"
        lines.append(
            f"| {r['case']} | `{r['a']}` | `{r['b']}` | {fmt(r['a_s'])} | "
            + (f"{fmt(r['b_s'])} | {r['ratio']:.2f} | " if "b_s" in r else "- | - | ")
            + f"{r['a_rss'] // 1024 if r['a_rss'] else '-'} MiB | "
            + (f"{r['b_rss'] // 1024} MiB |" if r.get("b_rss") else "- |")
        )
    lines += ["", "## Notes", ""] + [f"- {n}" for n in NOTES] + ["", "## Versions", ""]
    lines += [f"- {k}: {v}" for k, v in versions().items()]
    lines.append("")
    out = os.path.join(ROOT, "bench/results.md" if not QUICK else "bench/results-quick.md")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print(f"bench: wrote {out}")


def main():
    try:
        cases()
    finally:
        for d in TEMP:
            shutil.rmtree(d, ignore_errors=True)


def cases():
    want = set(CASES) or {"startup", "list", "list1000", "create", "lxc-create", "boot", "shutdown"}
    if "startup" in want:
        case_startup()
    if "list" in want:
        case_list(200)
    if "list1000" in want:
        case_list(1000 if not QUICK else 300)
    if "create" in want:
        case_create()
    if "lxc-create" in want:
        case_lxc_create()
    if "boot" in want or "shutdown" in want:
        case_boot_shutdown()
    report()


if __name__ == "__main__":
    main()
