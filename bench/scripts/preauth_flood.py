#!/usr/bin/env python3
"""Opens N connections to a ring port, each claiming a 16 MiB frame and sending 15 MiB of it before any handshake,
and prints the node's RSS before, at its peak (sampled every 50 ms) and 3 s after (docs/BENCHMARKS.md).

usage: preauth_flood.py HOST PORT CONNECTIONS PID   (PID: the node's process, for /proc/PID/status)
"""
import socket
import struct
import sys
import threading
import time

host, port, count, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def rss_mb():
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


peak = [rss_mb()]
stop = [False]
sent = [0]
closed = [0]
lock = threading.Lock()


def sample():
    while not stop[0]:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.05)


def attack():
    s = socket.create_connection((host, port))
    try:
        s.sendall(struct.pack(">I", 16 * 1024 * 1024))
        chunk = b"\0" * 65536
        for _ in range(240):
            s.sendall(chunk)
            with lock:
                sent[0] += len(chunk)
    except OSError:
        with lock:
            closed[0] += 1
    finally:
        s.close()


before = rss_mb()
sampler = threading.Thread(target=sample)
sampler.start()
attackers = [threading.Thread(target=attack) for _ in range(count)]
for a in attackers:
    a.start()
for a in attackers:
    a.join()
time.sleep(3)
stop[0] = True
sampler.join()
print(f"connections={count} bytes_accepted_by_kernel={sent[0]} closed_by_node={closed[0]} "
      f"rss_before_mb={before} rss_peak_mb={peak[0]} rss_after_3s_mb={rss_mb()}")
