#!/usr/bin/env python3
"""How long a synced write waits on this machine's disk, with nothing of ours running.

Overwrites a 64 MiB file in place (written and synced beforehand, so its size never changes, as
a WAL that starts over), 8 KiB `pwrite` + `fdatasync` every 2 ms, and prints p50 / p99 / max and
every wait over 20 ms with its second. `grow` adds a thread that appends 256 KiB to another file
and fsyncs it every 250 ms (as the checkpointer grows the database file). docs/performance.md,
issue 16 fifth round, has the figures.

    python3 tests/benches/disk_sync.py alone 20
    python3 tests/benches/disk_sync.py grow 20

Files go to $TMPDIR (default /tmp)/huiliu-disk-sync and are removed at the end.
"""
import os
import shutil
import sys
import tempfile
import threading
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "alone"
if mode not in ("alone", "grow"):
    sys.exit("usage: disk_sync.py alone|grow [seconds]")
dur = float(sys.argv[2]) if len(sys.argv) > 2 else 20
d = os.path.join(tempfile.gettempdir(), "huiliu-disk-sync"); os.makedirs(d, exist_ok=True)
wal = os.path.join(d, "wal"); db = os.path.join(d, "db")
size = 64 << 20
with open(wal, "wb") as f:
    f.write(b"\0" * size); f.flush(); os.fsync(f.fileno())
if os.path.exists(db): os.remove(db)
stop = False
def grower():
    fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    buf = os.urandom(4096 * 64)
    while not stop:
        os.write(fd, buf); os.fsync(fd); time.sleep(0.25)
    os.close(fd)
if mode == "grow":
    t = threading.Thread(target=grower); t.start()
fd = os.open(wal, os.O_WRONLY)
buf = os.urandom(8192); off = 0; lat = []; stalls = []
t0 = time.time()
while time.time() - t0 < dur:
    s = time.perf_counter()
    os.pwrite(fd, buf, off); os.fdatasync(fd)
    e = (time.perf_counter() - s) * 1000
    lat.append(e)
    if e > 20: stalls.append((round(time.time() - t0, 2), round(e, 1)))
    off = (off + 8192) % size
    time.sleep(0.002)
stop = True
if mode == "grow":
    t.join()
lat.sort()
print(mode, "n", len(lat), "p50 %.2f p99 %.2f max %.1f" % (lat[len(lat)//2], lat[int(len(lat)*0.99)], lat[-1]), "stalls>20ms", stalls)
shutil.rmtree(d)
