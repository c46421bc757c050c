"""Guest-side scripts of the e1000e VM tests (plain Python run by the guest's python3)."""

from __future__ import annotations

# Helpers shared by the scripts: the kernel NIC's packet socket and stamped frames.
COMMON = r'''
import json, os, socket, struct, sys, time
from udriver.runtime import Device
from udriver_e1000e import Nic, generate, sink

ETH_P = 0x88B5

def mac(text):
    return bytes.fromhex(text.replace(":", ""))

def kernel_socket(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P))
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
    s.bind((ifname, 0))
    return s

def stamped(dst, src, seq, size=60):
    return (dst + src + struct.pack("!H", ETH_P) + struct.pack("<Q", seq) + b"UDRV").ljust(size, b"\0")

def counter(ifname, name):
    return int(open(f"/sys/class/net/{ifname}/statistics/{name}").read())
'''

DIRECT = COMMON + r'''
bdf, ifname, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
kmac = mac(open(f"/sys/class/net/{ifname}/address").read().strip())
out = {}
with Device(bdf) as dev:
    for mode in ("msix", "poll"):
        r = out[mode] = {}
        nic = Nic(dev, irq=mode, itr=8000)
        nic.start()
        for _ in range(300):
            if nic.link_up:
                break
            time.sleep(0.01)
        r["probe"] = {"mac": nic.mac_str, "source": nic.mac_source, "nvm": nic.nvm_mac().hex(":"),
                      "link": nic.link_up, "speed": nic.speed}
        r["irq_lines"] = sorted(l.split()[-1] for l in open("/proc/interrupts") if f"({bdf})" in l)
        ks = kernel_socket(ifname)
        # udriver -> kernel: the C generator, paced; the kernel's packet socket collects.
        before = counter(ifname, "rx_packets")
        gen = generate(nic, kmac, size=60, batch=16, count=n, rate=20000)
        time.sleep(0.5)
        ks.settimeout(0.5)
        seqs = []
        try:
            while True:
                f = ks.recv(2048)
                if f[6:12] == nic.mac and f[22:26] == b"UDRV":
                    seqs.append(struct.unpack("<Q", f[14:22])[0])
        except socket.timeout:
            pass
        r["to_kernel"] = {"gen": gen.summary(), "seqs_ok": seqs == list(range(n)),
                          "received": len(seqs), "kernel_rx_delta": counter(ifname, "rx_packets") - before}
        # kernel -> udriver: a child process sends through the kernel NIC, the C sink counts.
        before = counter(ifname, "tx_packets")
        pid = os.fork()
        if pid == 0:
            try:
                time.sleep(0.3)
                for seq in range(n):
                    ks.send(stamped(nic.mac, kmac, seq))
                    if seq % 32 == 31:
                        time.sleep(0.002)
            finally:
                os._exit(0)
        res = sink(nic, batch=32, count=n, seconds=30)
        os.waitpid(pid, 0)
        r["from_kernel"] = {"sink": res.summary(), "kernel_tx_delta": counter(ifname, "tx_packets") - before}
        # Receive filters (10.2.5.1 RCTL, MTA): which frames the kernel sends get through.
        def probe(dst, tag):
            ks.send(dst + kmac + struct.pack("!H", ETH_P) + tag.ljust(46, b"\0"))
            t = time.monotonic()
            while time.monotonic() - t < 0.5:
                if any(f[14:14 + len(tag)] == tag for f in nic.recv()):
                    return True
                nic.wait_rx(0.05)
            return False
        m1, m2, other = mac("01:00:5e:7f:00:01"), mac("01:00:5e:7f:00:02"), mac("52:54:00:99:99:99")
        f = r["filters"] = {}
        f["unicast_own"] = probe(nic.mac, b"u-own")
        f["broadcast"] = probe(b"\xff" * 6, b"bcast")
        f["multicast_unjoined"] = probe(m1, b"m1-out")
        nic.set_multicast([m1])
        f["multicast_joined"] = probe(m1, b"m1-in")
        f["multicast_other_group"] = probe(m2, b"m2-out")
        nic.set_allmulti(True)
        f["multicast_allmulti"] = probe(m2, b"m2-all")
        f["unicast_other"] = probe(other, b"u-other")
        nic.set_promiscuous(True)
        f["unicast_other_promisc"] = probe(other, b"u-promisc")
        nic.set_promiscuous(False)
        nic.set_allmulti(False)
        f["unicast_other_after"] = probe(other, b"u-after")
        r["stats"] = nic.read_stats()
        r["rings"] = nic.counters()
        nic.stop()
        ks.close()
print(json.dumps(out))
'''

LINK = COMMON + r'''
bdf, mode, marker = sys.argv[1], sys.argv[2], sys.argv[3]
events = []
with Device(bdf) as dev:
    nic = Nic(dev, irq=mode)
    nic.start()
    for _ in range(300):
        if nic.link_up:
            break
        time.sleep(0.01)
    events.append(("start", nic.link_up))
    open(marker, "w").write("ready\n")
    t0 = time.monotonic()
    while len(events) < 3 and time.monotonic() - t0 < 60:
        up = nic.wait_link_change(1.0)
        if up is not None:
            events.append(("change", up, nic.link_up))
            open(marker, "a").write(f"{up}\n")
    nic.stop()
print(json.dumps({"events": events, "link_changes": nic.link_changes}))
'''

SENDER = COMMON + r'''
ifname, dst, seconds = sys.argv[1], mac(sys.argv[2]), float(sys.argv[3])
ks = kernel_socket(ifname)
kmac = mac(open(f"/sys/class/net/{ifname}/address").read().strip())
seq, t0 = 0, time.monotonic()
while time.monotonic() - t0 < seconds:
    for _ in range(16):
        ks.send(stamped(dst, kmac, seq))
        seq += 1
    time.sleep(0.002)
print(json.dumps({"sent": seq}))
'''

# TCP: the receiver listens, hashes what arrives and prints {"bytes", "sha256"}.
TCP_RECV = r'''
import hashlib, json, socket, sys
port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(1)
open(sys.argv[2], "w").write("listening\n")
conn, _ = srv.accept()
h, n, buf = hashlib.sha256(), 0, bytearray(1 << 20)
view = memoryview(buf)
while True:
    k = conn.recv_into(view)
    if not k:
        break
    h.update(view[:k])
    n += k
print(json.dumps({"bytes": n, "sha256": h.hexdigest()}))
'''

# TCP: the sender sends `mib` MiB of seeded pseudo-random data and prints the same.
TCP_SEND = r'''
import hashlib, json, random, socket, struct, sys, time
host, port, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = bytearray(random.Random(11).randbytes(1 << 20))
h, n = hashlib.sha256(), 0
s = socket.create_connection((host, port), timeout=60)
t0 = time.monotonic()
for i in range(mib):
    block[:8] = struct.pack("<Q", i)
    h.update(block)
    s.sendall(block)
    n += len(block)
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "seconds": time.monotonic() - t0}))
'''

# UDP: `n` datagrams, paced; the receiver counts until 2 s of silence.
UDP_SEND = r'''
import json, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(i.to_bytes(4, "little") * 16, (host, port))
    if i % 50 == 49:
        time.sleep(0.005)
print(json.dumps({"sent": n}))
'''

UDP_RECV = r'''
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
s.bind(("0.0.0.0", int(sys.argv[1])))
open(sys.argv[2], "w").write("listening\n")
s.settimeout(20)
got = 0
try:
    while True:
        s.recv(2048)
        got += 1
        s.settimeout(2)
except socket.timeout:
    pass
print(json.dumps({"received": got}))
'''
