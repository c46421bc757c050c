"""Stage 2 of the guest: the agent script that runs as PID 1 after ``switch_root``.

Rules (see also :mod:`harness`):

* It is bash from the host (the guest's ``/`` is the host's, read-only under a tmpfs overlay).
* Order: fresh ``/run``, ``/dev/pts``, ``/dev/shm``; the guest kernel's modules bind-mounted at
  ``/lib/modules/<version>`` (``/lib`` -> ``usr/lib`` on Debian 12); loopback up (the only
  network: QEMU has ``-nic none``); optionally udevd; then
  ``ready`` is written (``<uname -r> <uptime>``) and the command loop starts.
* The loop scans ``$W/cmd`` when woken (a newline from the host on ``/dev/ttyS1``, or a job
  ending) and at least once a second (``read -t`` on a FIFO: no process per tick).
  A new ``<n>.sh`` becomes a background job (a subshell running ``bash <n>.sh``, then waking
  the loop) with its own process group (``set -m``), stdout
  and stderr to ``<n>.out``/``<n>.err``; when it has exited, its status goes to ``<n>.rc``.
  ``<n>.kill`` makes the agent SIGKILL the job's process group. ``$W/shutdown`` ends the
  loop: ``sync`` and power off through ``/proc/sysrq-trigger`` (``o``), which QEMU, started with
  ``-no-reboot``, turns into its exit.
* PID 1 must never exit (the kernel would panic), so the script ends in ``sleep``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .kernels import KernelPaths

__all__ = ["agent_script", "systemd_agent", "write_agent"]

# udevd from Debian's udev .deb (dpkg -x, never installed on the host). udevadm is multi-call:
# run as "systemd-udevd" it is the daemon. No coldplug: `udevadm trigger` of every device costs
# 10-30 s under TCG and the harness only promises hotplug events; tests that need coldplug run
# `udevadm trigger --action=add ...; udevadm settle` themselves.
_UDEV = r"""
mkdir -p /usr/lib/udev /usr/lib/systemd /etc/udev/rules.d
mount --bind {root}/lib/udev /usr/lib/udev
ln -sf {root}/bin/udevadm /usr/bin/udevadm
ln -sf {root}/bin/udevadm /usr/lib/systemd/systemd-udevd
echo "udev-start $(cut -d' ' -f1 /proc/uptime)" >> "$W/boot.log"
/usr/lib/systemd/systemd-udevd --daemon --resolve-names=never >/run/udevd.log 2>&1
udevadm control --ping --timeout=60
echo "udev-ready $(cut -d' ' -f1 /proc/uptime)" >> "$W/boot.log"
"""


def agent_script(*, work: str, pybin: str, kernel: KernelPaths, udev_root: Path | None) -> str:
    """Return the stage-2 script for one guest.

    Args:
        work: the work folder's path in the guest (same as on the host).
        pybin: directory of the host's ``python3``, put first on the guest's ``PATH``.
        kernel: the booted kernel (its modules are bind-mounted).
        udev_root: where ``udev`` was unpacked (``dpkg -x``), or None for no udevd.
    """
    udev = ""
    if udev_root is not None:
        udev = _UDEV.format(root=shlex.quote(str(udev_root)))
    path = f"{pybin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return _AGENT.format(
        path=shlex.quote(path),
        work=shlex.quote(work),
        moddir=shlex.quote(str(kernel.modules_dir)),
        kver=shlex.quote(kernel.version),
        udev=udev,
    ) + _LOOP


def systemd_agent(*, work: str, ready_timeout: float) -> tuple[str, str]:
    """Return (script, unit) for a guest that boots a Debian system with systemd as PID 1.

    The agent is then an ordinary service, ``udriver-test-agent.service`` (stage 1 installs
    and enables it): systemd has mounted ``/run``, ``/dev/pts`` and the rest, udevd is the
    system's own, and the loop starts once ``systemctl is-system-running --wait`` says the
    boot is over ("running", or "degraded" when some unit failed: the harness reports
    which in ``boot.log`` and lets the tests judge).
    """
    setup = _SYSTEMD_SETUP.format(
        path=shlex.quote("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        work=shlex.quote(work), timeout=int(ready_timeout))
    unit = _SYSTEMD_UNIT.format(script=f"{work}/agent.sh")
    return setup + _LOOP, unit


def write_agent(workdir: Path, kernel: KernelPaths, *, booted: bool, ready_timeout: float,
                udev_root: Path | None) -> None:
    """Write the agent into the work folder ``workdir`` (mounted at the same path in the guest).

    ``booted``: a Debian system with systemd as PID 1 (``agent.sh`` and its unit); else
    :func:`agent_script` with the host's Python first on ``PATH``.
    """
    work = str(workdir)
    if booted:
        script, unit = systemd_agent(work=work, ready_timeout=ready_timeout)
        (workdir / "agent.sh").write_text(script)
        (workdir / "udriver-test-agent.service").write_text(unit)
        return
    pybin = str(Path(sys.executable).parent)
    (workdir / "agent.sh").write_text(
        agent_script(work=work, pybin=pybin, kernel=kernel, udev_root=udev_root))


_SYSTEMD_UNIT = """[Unit]
Description=udriver test harness agent (runs the host's commands)
After=systemd-udevd.service local-fs.target
[Service]
Type=simple
ExecStart=/bin/bash {script}
# The jobs' own process groups are the agent's business; stopping the agent stops them.
KillMode=control-group
"""

_SYSTEMD_SETUP = r"""
export PATH={path} HOME=/root LANG=C.UTF-8 TERM=dumb
W={work}
C="$W/cmd"
echo "stage2 $(cut -d' ' -f1 /proc/uptime)" >> "$W/boot.log"
state=$(timeout {timeout} systemctl is-system-running --wait 2>&1)
echo "system $state $(cut -d' ' -f1 /proc/uptime)" >> "$W/boot.log"
systemctl --failed --no-legend --plain >> "$W/boot.log" 2>&1
"""

_AGENT = r"""
export PATH={path} HOME=/root LANG=C.UTF-8 TERM=dumb
W={work}
C="$W/cmd"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mkdir -p /usr/lib/modules/{kver}
mount --bind {moddir} /usr/lib/modules/{kver}
hostname udriver-guest
ip link set lo up  # loopback only: QEMU runs with -nic none
echo "stage2 $(cut -d' ' -f1 /proc/uptime)" >> "$W/boot.log"
{udev}
"""

_LOOP = r"""
# Wake-ups all arrive as newlines on one FIFO (fd 8), which the loop sleeps on for at most 1 s:
# from the host via ttyS1 (raw, no echo back, no carrier needed) relayed by `cat`, and from
# each job's wrapper when the job ends. A CHLD trap would not do: bash defers traps until
# `read -t` returns.
mkfifo /run/agent.fifo
exec 8<>/run/agent.fifo
stty -F /dev/ttyS1 raw -echo clocal 2>/dev/null && { cat /dev/ttyS1 >&8 2>/dev/null & }
declare -A started running
# Job control: every background job is its own process group (pgid = pid), so a kill
# reaches everything the command started, without an extra setsid exec per command.
set -m
echo "$(uname -r) $(cut -d' ' -f1 /proc/uptime)" > "$W/ready.tmp"
mv "$W/ready.tmp" "$W/ready"
while :; do
    for f in "$C"/*.sh; do
        [ -e "$f" ] || continue
        id=${f##*/}
        id=${id%.sh}
        [ -n "${started[$id]}" ] && continue
        started[$id]=1
        ( bash "$f" </dev/null >"$C/$id.out" 2>"$C/$id.err" 8>&-; r=$?; echo >&8; exit $r ) &
        running[$id]=$!
    done
    nap=1
    for id in "${!running[@]}"; do
        p=${running[$id]}
        # A killed job's wrapper dies too and cannot wake us: look again soon.
        [ -e "$C/$id.kill" ] && kill -KILL -- "-$p" 2>/dev/null && nap=0.05
        kill -0 "$p" 2>/dev/null && continue
        wait "$p"
        echo $? > "$C/$id.rc"  # one small write, after .out/.err are closed
        unset "running[$id]"
    done
    [ -e "$W/shutdown" ] && break
    read -t "$nap" -u 8 _
done
sync
echo o > /proc/sysrq-trigger
sleep 30
"""
