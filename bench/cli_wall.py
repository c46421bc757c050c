#!/usr/bin/env python3
"""Whole-process wall time of `udriver devices`, `status` and `search` vs `lspci -nnk`.

Issue 13, acceptance 6: users run these interactively and from scripts, next to lspci,
so each is timed the way a shell runs it (fork + exec of the installed `udriver` console
script, until exit), on this machine's own PCI devices, against `lspci -nnk` on the same
machine, medians of `--runs` runs, interleaved so load changes hit every command alike.

The client has one repository configured: a signed repository of `--drivers` drivers
(default 100,000) over `--vendors` vendors in the repository core's layout
(bench/repo_synthetic.py via bench/resolve.py), plus one real published driver for each
local device's vendor, served on 127.0.0.1. Its metadata cache is filled once by an
online `udriver search`; then:

- `devices`: every local device with its installed and available driver;
- `status`: installed drivers and device records (needs no repository);
- `search VVVV:DDDD` for a local device: online (a timestamp check over loopback HTTP,
  as a user's run does) and `--offline` (cached metadata only).

One untimed round runs first: the first run after new metadata takes the full TUF path
and records its answers in the client's derived lookup (`udriver.client._lookup`); the
timed runs are the ones a user gets every time after. Two reference rows, not goals,
show what the interpreter alone costs here: `python -I -S -c pass` (no site) and
`python -c pass` (with site: this environment's .pth files and editable finders).

How udriver is installed matters as much as udriver itself, so the command timed is
the one a user's install runs, not this checkout's development venv:

- a fresh venv (no system site-packages) whose `udriver` is the console script pip
  writes for the `udriver = udriver.cli:run` entry point, with this checkout's
  toolkit/ and the directories holding udriver's dependencies as plain path entries
  (a .pth file of directory names): what `pip install udriver` gives, without this
  development environment's editable-install finders and site hooks, which are run
  by every Python start-up here (see the `python -c pass` rows) and by no user's;
- byte-compiled, as pip and dh_python3 leave an install: PYTHONDONTWRITEBYTECODE is
  dropped and the untimed round writes the bytecode (to a cache directory of the run,
  PYTHONPYCACHEPREFIX), so no timed run compiles a module.

`--udriver PATH` times another `udriver` instead (the .deb's /usr/bin/udriver, or
.venv/bin/udriver of the checkout).

Goal: each at most 5x lspci's median. Prints a table; exit status 1 if a goal is missed.

    python3 bench/cli_wall.py [--drivers 100000] [--vendors 2000] [--runs 10] [--udriver PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 5.0
ROOT = Path(__file__).resolve().parent.parent


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _time(cmd: list[str], env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall time of one run; its CPU time (user + system) is appended to `cpu`."""
    c, t = _cpu(), time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       check=False, timeout=300)
    wall = time.perf_counter() - t
    if cpu is not None:
        cpu.append(_cpu() - c)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}): "
                         f"{r.stderr.decode(errors='replace')[-2000:]}")
    return wall


def _install(venv: Path) -> Path:
    """`udriver` in a fresh venv, as pip installs it (module docstring); its path."""
    import importlib.util
    import site

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    deps = []
    for name in ("tuf", "securesystemslib", "urllib3", "packaging", "cryptography", "nacl",
                 "requests", "installer"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            deps.append(str(Path(next(iter(spec.submodule_search_locations))).parent))
    lib = Path(site.getsitepackages([str(venv)])[0])
    lines = [str(ROOT / "toolkit"), *dict.fromkeys(deps)]
    (lib / "udriver-bench.pth").write_text("\n".join(lines) + "\n")
    script = venv / "bin" / "udriver"
    # What pip (pypa/installer) writes for a console_scripts entry point.
    script.write_text(f"#!{venv / 'bin' / 'python3'}\n# -*- coding: utf-8 -*-\nimport re\n"
                      "import sys\nfrom udriver.cli import run\nif __name__ == '__main__':\n"
                      "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                      "    sys.exit(run())\n")
    script.chmod(0o755)
    return script


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drivers", type=int, default=100_000)
    ap.add_argument("--vendors", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--udriver", metavar="PATH",
                    help="the udriver command to time (default: an install in a fresh venv)")
    args = ap.parse_args(argv)
    lspci = shutil.which("lspci")
    if lspci is None:
        print("needs lspci (pciutils)", file=sys.stderr)
        return 2
    if args.udriver and not Path(args.udriver).exists():
        print(f"no such command: {args.udriver}", file=sys.stderr)
        return 2

    from resolve import _generate_core  # the 100k-driver repository of bench/resolve.py

    from udriver.client import local_devices
    from udriver_vm.tufrepo import Server

    work = Path(tempfile.mkdtemp(prefix="udriver-cliwall-"))
    env = dict(os.environ, UDRIVER_CONFIG_DIR=str(work / "etc"),
               UDRIVER_STATE_DIR=str(work / "var"), UDRIVER_RUN_DIR=str(work / "run"),
               PYTHONPYCACHEPREFIX=str(work / "pycache"))
    for name in ("UDRIVER_SYSFS_ROOT", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"):
        env.pop(name, None)
    udriver = args.udriver or str(_install(work / "venv"))
    local = {bdf: str(alias) for bdf, alias in local_devices(Path("/")).items()}
    if not local:
        print("no PCI devices on this machine", file=sys.stderr)
        return 2
    t = time.perf_counter()
    public, root, patterns = _generate_core(work / "repo", args.drivers, args.vendors, local)
    gen = time.perf_counter() - t
    first = next(iter(local.values()))
    query = f"{first[5:13][-4:]}:{first[14:22][-4:]}".lower()
    server = Server(public)
    try:
        subprocess.run([udriver, "repo", "add", "bench", server.url, "--root", str(root)],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        t = time.perf_counter()
        subprocess.run([udriver, "search", query], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fills the metadata cache
        fill = time.perf_counter() - t
        cmds = {"lspci -nnk": [lspci, "-nnk"],
                "udriver devices": [udriver, "devices"],
                "udriver status": [udriver, "status"],
                f"udriver search {query}": [udriver, "search", query],
                f"udriver search --offline {query}": [udriver, "search", "--offline", query]}
        python = str(Path(udriver).parent / "python3")
        refs = {"(python -I -S -c pass)": [sys.executable, "-I", "-S", "-c", "pass"],
                "(python -c pass, dev venv)": [sys.executable, "-c", "pass"]}
        if Path(python).exists() and Path(python).parent != Path(sys.executable).parent:
            refs["(python -c pass, udriver's)"] = [python, "-c", "pass"]
        for cmd in cmds.values():  # the untimed round (see the module docstring)
            _time(cmd, env)
        cmds.update(refs)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        cpus: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                times[name].append(_time(cmd, env, cpus[name]))
    finally:
        server.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["lspci -nnk"]
    print(f"repository: {args.drivers:,} drivers over {args.vendors:,} vendors "
          f"({len(patterns):,} patterns), generated in {gen:.1f} s; cache filled by one "
          f"online search in {fill:.2f} s; {len(local)} local PCI devices")
    cbase = max(statistics.median(cpus["lspci -nnk"]), 1e-3)
    print(f"\n{'command':40} {'median':>9} {'min':>9} {'x lspci':>8}  {'goal <= ' + str(GOAL) + 'x':12}"
          f" {'cpu':>7} {'x lspci':>8}")
    ok = True
    for name, m in med.items():
        ratio = m / base
        verdict = "" if not name.startswith("udriver") else ("ok" if ratio <= GOAL
                                                             else "MISSED")
        ok &= verdict != "MISSED"
        cpu = statistics.median(cpus[name])
        print(f"{name:40} {m * 1e3:>6.0f} ms {min(times[name]) * 1e3:>6.0f} ms "
              f"{ratio:>7.1f}x  {verdict:12} {cpu * 1e3:>4.0f} ms {cpu / cbase:>7.1f}x")
    print(f"\n(medians of {args.runs} runs each, whole processes, interleaved; cpu: user + "
          f"system time of the process, less sensitive to a loaded machine than wall time; "
          f"udriver: {udriver}; dev venv python: {sys.executable})")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
