"""pylotto benchmark suite: ``python -m bench`` (or ``make bench``); see docs/performance.md."""
