#!/usr/bin/env python3
"""Benchmark the build: cold and no-change build times, parallel against serial, and each
image's bytes against the plan. Figures for people, not a test: run it on a quiet machine.

    .venv/bin/python scripts/benchmark.py [--bases] [--skip-serial] [--v1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from sutra_deploy.units import mb  # noqa: E402


def timed_inv(*args: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT_DIR,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def sizes(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "invoke", "sizes", "--json", *args],
        cwd=PROJECT_DIR,
        check=False,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", action="store_true", help="also time remaking the base images")
    parser.add_argument("--skip-serial", action="store_true", help="skip the --jobs 1 cold build")
    parser.add_argument("--v1", action="store_true", help="also build v1 and compare against it")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    options = parser.parse_args()

    timings: list[list[str]] = []
    figures: dict = {}
    if options.bases:
        figures["base_images_seconds"] = timed_inv("base-images", "--force")
        timings.append(["base images (mmdebstrap, all four)", f"{figures['base_images_seconds']:.1f}"])
    timed_inv("base-images")  # never count making the bases in a build's time
    if not options.skip_serial:
        figures["cold_serial_seconds"] = timed_inv("build", "--no-cache", "--jobs", "1")
        timings.append(["cold build, --jobs 1", f"{figures['cold_serial_seconds']:.1f}"])
    figures["cold_parallel_seconds"] = timed_inv("build", "--no-cache", "--jobs", "2")
    timings.append(["cold build, --jobs 2", f"{figures['cold_parallel_seconds']:.1f}"])
    figures["no_change_seconds"] = timed_inv("build")
    timings.append(["rebuild, nothing changed", f"{figures['no_change_seconds']:.1f}"])
    if options.v1:
        figures["v1_cold_seconds"] = timed_inv("build", "--version", "v1", "--no-cache")
        timings.append(["v1 cold build", f"{figures['v1_cold_seconds']:.1f}"])
    print(tabulate(timings, headers=["Build", "Seconds"], colalign=("left", "right")))

    report = sizes("--baseline", "v1") if options.v1 else sizes()
    figures["sizes"] = report
    rows = [
        [
            s["name"],
            mb(s["old_bytes"]),
            mb(s["size_bytes"]),
            mb(s["target_bytes"]),
            f"{100 * s['size_bytes'] / s['target_bytes']:.0f}%",
            s["status"],
        ]
        for s in report["services"]
    ]
    rows.append(
        [
            "TOTAL",
            mb(report["old_total_bytes"]),
            mb(report["total_bytes"]),
            mb(sum(s["target_bytes"] for s in report["services"])),
            "",
            "",
        ]
    )
    print()
    print(
        tabulate(
            rows,
            headers=["Service", f"Old ({report['baseline']})", "New", "Plan target", "of target", "Status"],
        )
    )
    print(f"\nunique bytes across the images: {mb(report['unique_bytes'])}")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
