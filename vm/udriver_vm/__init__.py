"""udriver's VM harness: boot a Debian kernel under QEMU (TCG) with an IOMMU; run commands in it.

Installed editable next to udriver (``pip install -e vm``; ``.ci/setup`` does it); the tests,
``examples/demo.py`` and the benchmarks in ``bench/`` import it like any other package. It is
not part of the udriver wheel nor of its .debs. Modules:

* :mod:`.harness` -- :class:`~.harness.Guest` and its errors; :mod:`.kernels` -- the cached
  guest kernels (``python3 -m udriver_vm.kernels fetch|show``); :mod:`.capabilities` -- the
  kernel x feature table of docs/kernels.md (``python3 -m udriver_vm.capabilities``).
* :mod:`.system` -- a Debian 12/13 root with udriver's .debs installed, booted with systemd
  (``python3 -m udriver_vm.system build``); :mod:`.chroot` and :mod:`.debs` -- the minbase
  chroot and udriver's own .debs it is made of; :mod:`.treeserver` -- static HTTP of a tree.
* :mod:`.hotplug`, :mod:`.nvme`, :mod:`.net`, :mod:`.net_scripts`, :mod:`.wheels`,
  :mod:`.state` -- what the hotplug, NVMe and e1000e tests and benchmarks do in a guest.
* :mod:`.repofactory`, :mod:`.fakewheels`, :mod:`.tufrepo` -- test factories (wheels and
  .debs in milliseconds, a python-tuf repository without udriver_repo) that the hotplug
  guests, the repository and client tests and the benchmarks share.

The guest runs the host's own checkout (found by ``_paths.checkout_root``) and Python.

API::

    from udriver_vm.harness import Guest

    with Guest(kernel="6.1", devices=["edu"], root_ports=2, mem_mb=1024,
               qemu_args=[], udev=False) as g:
        r = g.run("udriver --version", timeout=60)   # bash script, as root, cwd /, env=, cwd=
        r.rc, r.stdout, r.stderr          # r.check() raises GuestCommandError if rc != 0
        job = g.run_bg("sleep 5")         # job.pid (guest pid), job.wait(timeout) -> result,
        job.kill()                        #   job.poll() -> result or None
        g.qmp("device_add", driver="edu", bus="rp1", id="edu1")   # -> QMP reply dict
        g.wait_qmp_event("DEVICE_DELETED", device="edu1")           # after device_del
        g.qmp_events()                    # QMP events received so far (and forgets them)
        g.edu_bdfs()                      # ["0000:00:03.0", ...] read from the guest's /sys
        g.dmesg()                         # guest kernel log so far
        g.workdir                         # host Path of a folder shared read-write...
        g.guest_workdir                   # ...and its path in the guest (the SAME path string)
        g.kernel_version                  # guest `uname -r`
        g.boot_seconds                    # QEMU start -> first command possible
        g.console()                       # serial console so far (also g.console_log)
        g.reset_devices()                 # unplug hot-added devices, unbind every edu
        g.drop_caches()                   # see host files changed after the guest read them
        g.udev_reload()                   # udev=True: after writing /etc/udev/rules.d/*
        g.hotplug_nvme(path, "nvme1", bus="rp1")  # QEMU nvme backed by host file `path`

    ``Guest(nvme=[path, ...])`` attaches one QEMU ``nvme`` controller per host file at boot
    (``-drive file=PATH,if=none,format=raw`` + ``-device nvme,serial=udrv000N``), ids
    ``nvme0``, ``nvme1``... on the root bus, each in its own IOMMU group.

The pytest fixtures ``guest``, ``guest_61``, ``guest_612``, ``vm_pool`` are in
``tests/vm/_fixtures.py``.

The guest (the rules :class:`Guest` keeps):

* ``-accel tcg`` always (``/dev/kvm`` here is a nested PVM that cannot run a stock kernel),
  ``-machine q35``, ``-device intel-iommu,intremap=on`` before any other device, ``-nic none``,
  the uncompressed ``vmlinux`` via its PVH entry, kernel cmdline ``intel_iommu=on``.
* The host's ``/`` is the read-only lower layer of an overlayfs with a tmpfs upper layer, so the
  guest sees the checkout, the host's ``python3`` and the editable udriver install at the same
  paths, and its writes (``/etc/udriver``, ``/var/lib/udriver``, ``/tmp``...) never reach the
  host. ``/run`` and ``/dev/shm`` are fresh tmpfs; the kernel's own modules are bind-mounted at
  ``/lib/modules/$(uname -r)``, so ``modprobe`` works; the host's kmod honours the softdep, so
  ``modprobe vfio-pci`` also loads ``vfio_iommu_type1`` (checked on 6.1 and 6.12; only busybox
  modprobe needs it loaded explicitly). ``PATH`` starts with the directory of the host's
  ``python3`` (so ``python3`` and the ``udriver`` console script are the host's). Only ``lo``
  exists, and it is up.
* The host root is mounted with 9p ``cache=loose`` (about 2x faster Python start-up): files the
  guest already read do not change in the guest when the host rewrites them. Put per-test files
  in ``g.workdir`` (no caching) or call ``g.drop_caches()``; ``host_cache="none"`` turns it off.
* The work folder is a writable 9p share mounted at the same path as on the host. Commands are
  files ``cmd/<n>.sh`` in it; the agent loop (stage 2, ``agent.sh``, bash as PID 1) looks at
  ``cmd/`` when the host sends a newline on the guest's ``ttyS1`` (a QEMU socket chardev) and
  at least every second (an idle guest costs <1 % of a host core, instead of ~11 % when
  polling every 50 ms), runs each command as a job in its own process group (``set -m``), and
  writes ``<n>.out``, ``<n>.err``, ``<n>.pid`` and finally ``<n>.rc``.
* Every wait has a timeout. A command that times out is killed (its process group) and raises
  :class:`GuestTimeout`. If QEMU dies, :class:`GuestDied` carries the tail of the console.
* Exit: the agent flushes and powers off through ``/proc/sysrq-trigger``; QEMU is killed if it
  has not exited after 15 s. The run folder (console log ``console.log``, QEMU command line,
  the shared work folder) is deleted after a clean exit and kept, with its path logged, after an
  exception or when ``UDRIVER_VM_KEEP=1``; kept folders older than two days are pruned at the
  next boot.
* ``root_ports=N`` adds ``pcie-root-port`` ids ``rp1..rpN`` (chassis 1..N) for hotplug with
  ``g.qmp("device_add", driver="edu", bus="rp1", id="edu1")`` and ``device_del``.
* ``udev=True`` starts ``systemd-udevd`` (unpacked from Debian's ``udev`` .deb by
  :mod:`.kernels`, nothing installed on the host) after ``switch_root``, with the package's
  default rules, and waits until it answers. There is NO coldplug: devices present at boot get
  no ``add`` event unless a test runs ``udevadm trigger --action=add ...; udevadm settle``.
  Write rules to ``/etc/udev/rules.d`` in the guest with ``g.run`` and call ``g.udev_reload()``.
"""

from __future__ import annotations

__all__: list[str] = []  # the package holds modules only; import from them
