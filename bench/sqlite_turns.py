"""Two processes writing one SQLite file: ``python -m bench.sqlite_turns [--seconds 3]``.

Each process commits ``BEGIN IMMEDIATE`` / upsert of 1 KB / (0.2 ms held, as a transaction
spread over a few hops to the database thread) / ``COMMIT`` in a loop on one WAL file in
/dev/shm (or the temporary folder), first with SQLite's busy handler alone (5 s timeout), then
with an ``flock`` on ``<file>.writer`` taken around each transaction, as
:class:`pylotto.components._backends.sqlite_file.WriterTurns` does. Reported: commits per
second (both processes) and the longest a transaction waited, for one process and for two.
"""

from __future__ import annotations

import argparse
import fcntl
import multiprocessing
import os
import sqlite3
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path


def _writer(path: str, seconds: float, turns: bool, out: Queue[tuple[int, float]]) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=5)
    fd = os.open(path + ".writer", os.O_RDWR | os.O_CREAT, 0o600) if turns else -1
    done, worst = 0, 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        if turns:
            fcntl.flock(fd, fcntl.LOCK_EX)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (done % 100, b"x" * 1024))
        time.sleep(0.0002)
        db.execute("COMMIT")
        if turns:
            fcntl.flock(fd, fcntl.LOCK_UN)
        done += 1
        worst = max(worst, time.perf_counter() - began)
    out.put((done, worst))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlite_turns", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=str(shm) if shm.is_dir() else None))
    path = str(folder / "turns.db")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    spawn = multiprocessing.get_context("spawn")
    print(f"load average {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    for turns in (False, True):
        for count in (1, 2):
            out: Queue[tuple[int, float]] = spawn.Queue()
            procs = [spawn.Process(target=_writer, args=(path, args.seconds, turns, out))
                     for _ in range(count)]
            for proc in procs:
                proc.start()
            results = [out.get(timeout=args.seconds + 30) for _ in procs]
            for proc in procs:
                proc.join()
            print(f"{'flock turns' if turns else 'busy handler'}, {count} process(es): "
                  f"{sum(r[0] for r in results) / args.seconds:.0f} commits/s, longest wait "
                  f"{max(r[1] for r in results) * 1e3:.0f} ms")
    for name in os.listdir(folder):
        os.remove(folder / name)
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
