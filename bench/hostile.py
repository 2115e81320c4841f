"""Refused-input benchmark: peak memory and time of the offline render on hostile and broken models files.

    venv/bin/python bench/hostile.py OUT.md [--repeats 3]

Each case is written to a scratch directory and rendered by `python -m offline.render --stack dev --models FILE`
in a fresh subprocess; its peak RSS is the child's own `ru_maxrss` (os.wait4) and its time the wall time of the
whole process (interpreter start and imports included). Every case must exit 2, write nothing, and stay under
the budgets of issue 15: 300 MiB and 10 s. The script exits 1 when a case misses one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_RSS_MIB = 300
MAX_SECONDS = 10.0
MODEL = "  - {{name: m{i}, source: hf://o/r, sizeGiB: 1, gpu: {{type: l40s}}, replicas: 1{extra}}}\n"


def models(n: int, extra: str = "") -> str:
    return "models:\n" + "".join(MODEL.format(i=i, extra=extra) for i in range(n))


def fill_to(size: int, head: str, line: str) -> str:
    """`head` and as many copies of `line` as fit in `size` bytes."""
    return head + line * ((size - len(head)) // len(line))


CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "env-50mb": ("one 50 MB env value", lambda: (models(1, ", env: {A: '") + "x" * 50_000_000 + "'}\n").encode()),
    "engineargs-50mb": ("one 50 MB engineArgs entry",
                        lambda: (models(1, ", engineArgs: ['") + "x" * 50_000_000 + "']}\n").encode()),
    "max-file-many-models": ("a file just under 1 MiB of 20,000 broken models",
                             lambda: fill_to(1024 * 1024 - 200, "models:\n",
                                             "  - {name: Bad_Name, sizeGiB: x, gpu: {type: v100}}\n").encode()),
    "max-file-broken-models": ("a file just under 1 MiB: 1,000 models of 1 KiB, each with three errors",
                               lambda: ("models:\n" + "".join(
                                   f"  - {{nam: m{i}, source: hf://o/r, sizeGiB: 1, gpu: {{type: v100}}, replicas: 1, "
                                   f"engineArgs: ['{'y' * 900}']}}\n" for i in range(1000))).encode()),
    "thousand-broken-models": ("1,000 models, each with two errors",
                               lambda: models(1000, ", engine: nope, batchSize: -1").encode()),
    "flow-nesting": ("500,000 levels of flow nesting", lambda: ("models: " + "[" * 500_000 + "]" * 500_000).encode()),
    "block-nesting": ("700 levels of block nesting",
                      lambda: ("models:\n" + "".join("  " * i + "-\n" for i in range(1, 700))).encode()),
    "billion-laughs": ("alias bomb: 9 levels of 10 aliases each", lambda: (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
    ).encode()),
    "alias-text-bomb": ("a 64 KiB value repeated by 200 aliases in one model's engineArgs", lambda: (
        models(1, ", engineArgs: [&c '" + "x" * 65_000 + "'" + ", *c" * 200 + "]")).encode()),
    "defaults-fanout": ("a 60 KiB defaults env value merged into 1,000 models with one error each", lambda: (
        "defaults: {env: {BIG: '" + "x" * 60_000 + "'}}\n" + models(1000, ", batchSize: 0")).encode()),
    "too-many-models": ("1,001 valid models", lambda: models(1001).encode()),
    "terminal-escapes": ("1,000 model names full of terminal escapes",
                         lambda: models(1000).replace("name: m", "name: \"\\e[2J\\e]0;x\\a").replace(
                             ", source", "\", source").encode()),
}


def measure(path: Path, scratch: Path) -> tuple[int, float, float, bool]:
    """(exit code, peak RSS MiB, seconds, wrote nothing) of one render of the models file at `path`."""
    out = scratch / "out"
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "offline.render", "--stack", "dev", "--models", str(path),
                              "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss / 1024, seconds, not out.exists()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="Markdown file to write the results to")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for key, (what, build) in CASES.items():
            path = Path(tmp) / "models.yaml"
            path.write_bytes(build())  # not held while the child runs: a forked child starts with our RSS
            size = path.stat().st_size
            runs = [measure(path, Path(tmp)) for _ in range(args.repeats)]
            codes = {r[0] for r in runs}
            rss, secs = max(r[1] for r in runs), statistics.median(r[2] for r in runs)
            passed = codes == {2} and all(r[3] for r in runs) and rss < MAX_RSS_MIB and secs < MAX_SECONDS
            ok &= passed
            rows.append(f"| `{key}` | {what} | {size / 2**20:.2f} | {','.join(map(str, sorted(codes)))} | "
                        f"{rss:.0f} | {secs:.2f} | {'yes' if passed else '**no**'} |")
            print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    args.out.write_text("\n".join([
        "# Refused-input benchmark", "",
        "What it measures: `bench/hostile.py` writes each hostile or broken models file below to a scratch directory "
        "and runs `python -m offline.render --stack dev --models FILE --out DIR` on it in a fresh subprocess. "
        "**peak RSS** is the child's own `ru_maxrss` (`os.wait4`), the highest of the repeats; **time** is the wall "
        "time of the whole process (interpreter start and imports included), the median of the repeats. A case "
        f"passes when every repeat exits 2, writes nothing, and stays under {MAX_RSS_MIB} MiB and {MAX_SECONDS:g} s "
        "(issue 15).", "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; nproc {os.cpu_count()}; Python "
        f"{platform.python_version()} on {platform.system()} {platform.release()}; load average {load:.2f}; "
        f"repeats {args.repeats}", "",
        "Reproduce from the project root: `venv/bin/python bench/hostile.py bench/HOSTILE.md`", "",
        "| case | input | file MiB | exit | peak RSS MiB | time s | passes |", "|---|---|---|---|---|---|---|",
        *rows, ""]), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
