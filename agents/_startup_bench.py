"""How long ``multigrain`` takes to start: fresh processes per command, beside a bare interpreter."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

BASELINE = "python -c pass"
COMMANDS = ("--help", "docs", "stats")
_RUN_CLI = "from agents.cli import main; main()"


def _seconds(argv: Sequence[str], *, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure_startup(*, runs: int = 5, commands: Sequence[str] = COMMANDS) -> dict[str, dict[str, float]]:
    """Median, fastest and slowest seconds of ``runs`` fresh processes per command, on an empty index."""
    programs = {BASELINE: [sys.executable, "-c", "pass"]}
    programs |= {f"multigrain {c}": [sys.executable, "-c", _RUN_CLI, *c.split()] for c in commands}
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="multigrain-startup-") as home:
        env = {**os.environ, "MULTIGRAIN_HOME": home}
        for name, argv in programs.items():
            times = [_seconds(argv, env=env) for _ in range(runs)]
            results[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
    return results


def startup_table(results: dict[str, dict[str, float]]) -> str:
    """The measurements as aligned text lines, each with its time beyond the bare interpreter."""
    baseline = results[BASELINE]["median_s"]
    width = max(len(name) for name in results)
    lines = [f"{'command'.ljust(width)}  median   min      max      beyond python"]
    for name, t in results.items():
        beyond = t["median_s"] - baseline
        lines.append(
            f"{name.ljust(width)}  {t['median_s']:.3f}s  {t['min_s']:.3f}s  {t['max_s']:.3f}s  {beyond:+.3f}s"
        )
    return "\n".join(lines)
