"""Profile the sidecar's GetState hot path: ``python -m bench.profile [--seconds 15]``.

Starts the real sidecar (Redis state store), drives GetState at C=16 from this process and
samples the sidecar with py-spy (not a project dependency: ``pip install py-spy==0.4.1``, in any
environment; pass its path with ``--py-spy``). Prints the functions with the most samples,
inclusive (the function or anything it called) and exclusive (the function itself).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.harness import channels
from bench.load import closed_loop
from bench.procs import Sidecar
from bench.run import KEYS, REDIS_STATE, get_state_op, seed_sidecar


def summarize(raw: Path, top: int) -> str:
    """Top frames of py-spy's raw (collapsed stacks) output, inclusive and exclusive."""
    inclusive: collections.Counter[str] = collections.Counter()
    exclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += count
        exclusive[frames[-1]] += count
    lines = [f"samples: {total}", "", "inclusive % | frame"]
    lines += [f"{100 * n / total:6.1f} | {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "exclusive % | frame"]
    lines += [f"{100 * n / total:6.1f} | {f}" for f, n in exclusive.most_common(top)]
    return "\n".join(lines)


async def drive(car: Sidecar, seconds: float) -> None:
    stubs = channels(car.address, 16)
    await seed_sidecar(stubs[0])
    result = await closed_loop(get_state_op(stubs, KEYS), 16, seconds, 1.0)
    print(f"GetState under profiling: {result.summary()['rps']:.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--sidecar-arg", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pylotto-profile-") as tmp:
        car = Sidecar(Path(tmp), REDIS_STATE, extra_args=args.sidecar_arg).start()
        raw = Path(tmp) / "getstate.raw"
        try:
            spy = subprocess.Popen([args.py_spy, "record", "--format", "raw", "--nonblocking",
                                    "-r", "200", "-d", str(int(args.seconds)), "-o", str(raw),
                                    "-p", str(car.pid)])
            import uvloop

            uvloop.run(drive(car, args.seconds))
            spy.wait(60)
        finally:
            car.stop()
        print(summarize(raw, args.top))


if __name__ == "__main__":
    main()
