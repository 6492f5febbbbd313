"""``python -m bench``: run the benchmark suite."""

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
