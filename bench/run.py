"""Scaling benchmark: run the real program under the mocks for N synthetic models and write a Markdown report.

    venv/bin/python bench/run.py [--sizes 10 100 500] [--stack dev prod] [--repeats 3] [--out build/bench.md]

Every measurement runs in a fresh subprocess; the report's top says what is measured and how. The committed
bench/RESULTS.md is only rewritten when you pass it as --out.
"""

from __future__ import annotations

import argparse
import collections
import copy
import datetime
import gc
import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.catalog import GPU_MEMORY_GIB, INSTANCE_TYPES  # noqa: E402
from inference.engines import ENGINES  # noqa: E402
from inference.plan.placement import pack_nodes  # noqa: E402

BENCH_ENGINES = ("vllm", "sglang", "tgi")
TP_SIZES = (1, 2, 4)
AUTOSCALE_TARGETS = {"queue": 5, "running": 32}  # metric -> per-replica target
NODE_LIMIT = 1000  # the config's maxNodes bound
FSX_STEP_GIB = 2400
LINEAR_TOLERANCE = 0.15  # growth over the smallest size may differ from a line's by this share
# Sizes below the largest run this many times --repeats: their runs are short, so load from elsewhere on the machine
# moves their medians most, and the linearity check divides by their differences.
SHORT_REPEATS = 3

BASELINE = '''"""Baseline: one explicit Kubernetes provider and {count} plain ConfigMaps, nothing else."""

import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider("k8s", render_yaml_to_directory="rendered/baseline")
opts = pulumi.ResourceOptions(provider=provider)
for i in range({count}):
    k8s.core.v1.ConfigMap(f"cm-{{i}}", metadata={{"name": f"cm-{{i}}", "namespace": "default"}},
                          data={{"index": str(i)}}, opts=opts)
'''


# ---------------------------------------------------------------- input generation

def gpu_pools(pools: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """GPU type -> the stack's pools providing it, in config order (the planner takes the first that fits)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for pool in pools:
        out.setdefault(INSTANCE_TYPES[pool["instanceType"]].gpu_type, []).append(pool)
    return out


def synthetic_model(i: int, offered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Model number i: the same for every N (seeded by i), valid, and fitting its GPUs."""
    rng = random.Random(i)
    engine = BENCH_ENGINES[i % len(BENCH_ENGINES)]
    gpu = sorted(offered)[(i // len(BENCH_ENGINES)) % len(offered)]
    largest = max(INSTANCE_TYPES[p["instanceType"]].gpus for p in offered[gpu])
    tp = rng.choice([t for t in TP_SIZES if t <= largest])
    # Weights that leave the engine any room for a KV cache (its budget with no weights, per GPU, times TP).
    usable = tp * ENGINES[engine].kv_budget_gib(GPU_MEMORY_GIB[gpu], 0, tp)
    out: dict[str, Any] = {"name": f"m{i:04d}-{engine}"}
    if rng.random() < 0.5:
        out["source"] = f"hf://bench-org/model-{i}"
        out["revision"] = hashlib.sha1(str(i).encode()).hexdigest()
    else:
        out["source"] = f"s3://bench-weights/models/model-{i}"
        out["revision"] = f"v{i % 7 + 1}"
    out.update(engine=engine, sizeGiB=round(rng.uniform(0.2, 0.8) * usable, 1), gpu={"type": gpu, "count": tp})
    if ENGINES[engine].image is None:  # TGI: no published image runs as non-root; a site builds its own
        out["image"] = f"registry.example.com/{engine}-nonroot:1.0"
    if rng.random() < 0.5:
        out["replicas"] = rng.choice([1, 2])
    else:
        metric = rng.choice([m for m in AUTOSCALE_TARGETS if m in ENGINES[engine].metrics])
        out["autoscaling"] = {"minReplicas": 1, "maxReplicas": rng.choice([2, 3]), "metric": metric,
                              "target": AUTOSCALE_TARGETS[metric]}
    out.update(contextWindow=8192, batchSize=32)
    return out


def max_replicas(model: dict[str, Any]) -> int:
    return model["autoscaling"]["maxReplicas"] if "autoscaling" in model else model["replicas"]


def stack_config(stack: str, models: list[dict[str, Any]]) -> dict[str, Any]:
    """The real stack's config with maxNodes and the cache grown to fit `models` (and a spare node per pool)."""
    cfg = copy.deepcopy(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"])
    cfg["inference:modelsFile"] = "models.yaml"
    pools = cfg["inference:nodePools"]
    demand: dict[str, list[int]] = collections.defaultdict(list)
    offered = gpu_pools(pools)
    for m in models:
        count = m["gpu"]["count"]
        pool = next(p for p in offered[m["gpu"]["type"]] if INSTANCE_TYPES[p["instanceType"]].gpus >= count)
        demand[pool["name"]].extend([count] * (max_replicas(m) + 1))  # + its surge replica (rollout surge)
    for pool in pools:
        need = pack_nodes(demand[pool["name"]], INSTANCE_TYPES[pool["instanceType"]].gpus) + 1
        if need > NODE_LIMIT:
            sys.exit(f"{len(models)} models need {need} nodes in pool {pool['name']}, above the limit {NODE_LIMIT}")
        pool["maxNodes"] = max(pool["maxNodes"], need)
    sizes = [m["sizeGiB"] for m in models]
    need_gib = math.ceil(sum(sizes) + max(sizes))
    cache = cfg.get("inference:cache", {})
    if "sizeGiB" in cache:
        cache["sizeGiB"] = max(cache["sizeGiB"], need_gib)
    if "storageGiB" in cache:
        cache["storageGiB"] = max(cache["storageGiB"], math.ceil(need_gib / FSX_STEP_GIB) * FSX_STEP_GIB)
    return cfg


def write_program(root: Path, stack: str, n: int | list[dict[str, Any]]) -> None:
    """A scratch project like tests/conftest.py's Project: the real __main__.py, a stack file, a models file of
    n synthetic models (or of the models given)."""
    root.mkdir(parents=True)
    (root / "__main__.py").symlink_to(ROOT / "__main__.py")
    offered = gpu_pools(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]["inference:nodePools"])
    models = [synthetic_model(i, offered) for i in range(n)] if isinstance(n, int) else n
    config = stack_config(stack, models)
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    (root / "models.yaml").write_text(yaml.safe_dump({"models": models}, sort_keys=False))


def write_baseline(root: Path, stack: str, count: int) -> None:
    root.mkdir(parents=True)
    (root / "__main__.py").write_text(BASELINE.format(count=count))
    (root / f"Pulumi.{stack}.yaml").write_text("config: {}\n")


# ---------------------------------------------------------------- the measured child

def child(root: Path, stack: str, preload: Path | None, dump_modules: Path | None, gc_off: bool) -> None:
    """Import, then time run_program alone; print one JSON line of measurements."""
    from offline.mockrun import run_program

    for name in json.loads(preload.read_text()) if preload else []:
        parts = name.split(".")
        # The SDKs register submodules lazily (pulumi._utils.lazy_import): load each registered ancestor first (any
        # attribute but __name__, __path__ and the like does), or importing a child into a still-lazy package
        # would shadow the package's class of the same name (apiextensions.CustomResource) with the module.
        for prefix in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if prefix in sys.modules:
                getattr(sys.modules[prefix], "_bench_force_load", None)
        if name not in sys.modules:
            importlib.import_module(name)
    before = set(sys.modules)
    gc_s, gc_runs, gc_started = [0.0, 0.0, 0.0], [0, 0, 0], [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:  # time in the cyclic collector and runs, per generation
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_s[info["generation"]] += time.perf_counter() - gc_started[0]
            gc_runs[info["generation"]] += 1

    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gc.callbacks.append(on_gc)
    if gc_off:  # shows what the program's own work costs without CPython's cyclic collector
        gc.disable()
    wall = time.perf_counter()
    run = run_program(stack, root)
    wall = time.perf_counter() - wall
    gc.callbacks.remove(on_gc)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dump_modules:
        # In import order, leaving out the SDKs' lazy stubs that nothing loaded (loading them costs 100s of MiB).
        loaded = [name for name, mod in sys.modules.items() if name not in before and "Lazy" not in type(mod).__name__]
        dump_modules.write_text(json.dumps(loaded))
    names = collections.Counter((r.type, r.name) for r in run.resources)
    print(json.dumps({
        "wall_s": wall, "gc_s": sum(gc_s), "gc_full_runs": gc_runs[2], "rss_kib": rss, "rss_before_kib": rss_before,
        "resources": len(run.resources),
        "by_type": collections.Counter(r.type for r in run.resources),
        "duplicates": sorted(f"{t} {n}" for (t, n), c in names.items() if c > 1),
        "invokes": len(run.invokes), "invoke_tokens": sorted({t for t, _ in run.invokes}),
        "imported_during_run": len(set(sys.modules) - before),
    }))


def measure(root: Path, stack: str, preload: Path | None = None, dump_modules: Path | None = None,
            gc_off: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(root), "--stack", stack]
    if gc_off:
        cmd.append("--gc-off")
    if preload:
        cmd += ["--preload", str(preload)]
    if dump_modules:
        cmd += ["--dump-modules", str(dump_modules)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"measurement failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["duplicates"]:
        sys.exit(f"duplicate (type, name) in {root}: {result['duplicates'][:5]}")
    return result


# ---------------------------------------------------------------- statistics

def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b*x: (a, b, R^2)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, 1 - ss_res / ss_tot if ss_tot else 1.0


def marginal(stack: str, scratch: Path) -> dict[str, int]:
    """Registrations one more fixed-replica model adds, per source scheme: a run with two such models minus one."""
    offered = gpu_pools(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]["inference:nodePools"])
    out = {}
    for scheme in ("hf", "s3"):
        counts = []
        for n in (1, 2):
            models = []
            for i in range(n):
                m = synthetic_model(0, offered)  # the same engine and pool for both: no new pool-wide object
                m.pop("autoscaling", None)
                m["replicas"] = 1
                m["name"] = f"m{i}-vllm"
                m["source"] = f"hf://bench-org/model-{i}" if scheme == "hf" else f"s3://bench-weights/model-{i}"
                models.append(m)
            root = scratch / f"{stack}-{scheme}-{n}"
            write_program(root, stack, models)
            counts.append(measure(root, stack)["resources"])
        out[scheme] = counts[1] - counts[0]
    return out


def bench_stack(stack: str, sizes: list[int], repeats: int, scratch: Path) -> dict[str, Any]:
    # Modules the program imports while it runs (lazy SDK submodules, pulumi_aws) are imported by every child
    # before the clock starts, so the timings hold the program's work and no import time.
    probe = scratch / f"{stack}-probe"
    write_program(probe, stack, 12)
    preload = scratch / f"{stack}-modules.json"
    measure(probe, stack, dump_modules=preload)
    rows = []
    for n in sizes:
        program, baseline = scratch / f"{stack}-{n}", scratch / f"{stack}-{n}-baseline"
        write_program(program, stack, n)
        runs, base_runs, gc_off_runs = [], [], []
        started = time.perf_counter()
        # Interleaved, so load from elsewhere on the machine hits both alike.
        for _ in range(repeats if n == sizes[-1] else repeats * SHORT_REPEATS):
            runs.append(measure(program, stack, preload))
            if not base_runs:
                write_baseline(baseline, stack, runs[0]["resources"] - 1)  # + its provider = same total
            base_runs.append(measure(baseline, stack, preload))
            gc_off_runs.append(measure(program, stack, preload, gc_off=True))
        for key in ("resources", "invokes", "by_type"):
            assert all(r[key] == runs[0][key] for r in runs), f"{key} differs between repeats at N={n}"
        assert base_runs[0]["resources"] == runs[0]["resources"], "baseline registered a different total"
        row = {
            "n": n, "resources": runs[0]["resources"],
            "by_type": runs[0]["by_type"], "invokes": runs[0]["invokes"], "invoke_tokens": runs[0]["invoke_tokens"],
            "wall_s": statistics.median(r["wall_s"] for r in runs), "walls": [r["wall_s"] for r in runs],
            "gc_s": statistics.median(r["gc_s"] for r in runs),
            "gc_full_runs": statistics.median(r["gc_full_runs"] for r in runs),
            "gc_off_s": statistics.median(r["wall_s"] for r in gc_off_runs),
            "base_gc_s": statistics.median(r["gc_s"] for r in base_runs),
            "rss_mib": statistics.median(r["rss_kib"] for r in runs) / 1024,
            "rss_before_mib": statistics.median(r["rss_before_kib"] for r in runs) / 1024,
            "base_wall_s": statistics.median(r["wall_s"] for r in base_runs),
            "base_rss_mib": statistics.median(r["rss_kib"] for r in base_runs) / 1024,
            "imported_during_run": max(r["imported_during_run"] for r in runs),
            "elapsed_s": time.perf_counter() - started,
        }
        print(f"{stack} N={n}: {row['resources']} resources, {row['invokes']} invokes, "
              f"program {row['wall_s']:.2f}s (runs {', '.join(f'{w:.2f}' for w in row['walls'])}), "
              f"of which GC {row['gc_s']:.2f}s, GC off {row['gc_off_s']:.2f}s, "
              f"baseline {row['base_wall_s']:.2f}s (GC {row['base_gc_s']:.2f}s), "
              f"peak RSS {row['rss_mib']:.0f} MiB, {row['imported_during_run']} imports in the timed span, "
              f"{row['elapsed_s']:.0f}s elapsed", flush=True)
        rows.append(row)
    return {"stack": stack, "rows": rows, "marginal": marginal(stack, scratch)}


# ---------------------------------------------------------------- report

def linear(ns: list[int], ts: list[float]) -> dict[str, Any]:
    """Fit t = a + b*N and compare growth over the smallest size with what a line gives."""
    a, b, r2 = fit(ns, ts)
    out: dict[str, Any] = {"a": a, "b": b, "r2": r2}
    by_n = dict(zip(ns, ts, strict=True))
    if 100 in by_n and 500 in by_n:
        out["ratio_500_100"] = by_n[500] / by_n[100]
    lo, hi = ns[0], ns[-1]
    out["hi"] = hi
    if len(ns) > 2:  # increments over the smallest size cancel the fixed cost: a line gives (hi - lo) / (mid - lo)
        mid = ns[-2]
        out["increment"] = ((by_n[hi] - by_n[lo]) / (by_n[mid] - by_n[lo]), (hi - lo) / (mid - lo), mid)
        out["linear"] = r2 >= 0.99 and abs(out["increment"][0] / out["increment"][1] - 1) <= LINEAR_TOLERANCE
    else:
        out["linear"] = r2 >= 0.99
    return out


def describe(name: str, f: dict[str, Any], lo: int) -> str:
    text = f"{name} = {f['a']:.3f} s + {f['b'] * 1000:.2f} ms x N, R^2 = {f['r2']:.4f}"
    if "ratio_500_100" in f:
        text += f"; t(500)/t(100) = {f['ratio_500_100']:.2f}"
    if "increment" in f:
        inc, expect, mid = f["increment"]
        text += f"; (t({f['hi']}) - t({lo})) / (t({mid}) - t({lo})) = {inc:.2f} (a line: {expect:.2f})"
    return text + (" -> linear" if f["linear"] else " -> NOT linear")


def markdown(results: list[dict[str, Any]], sizes: list[int], repeats: int, command: str, total_s: float,
             load: tuple[float, ...]) -> str:
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpuinfo = Path("/proc/cpuinfo")
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")), "") if cpuinfo.exists() else platform.processor()
    lines = [
        "# Scaling benchmark",
        "",
        "What it measures. For each stack and each size N, `bench/run.py` generates N synthetic, valid models",
        "(engines vllm/sglang/tgi in turn; each GPU type the stack's node pools provide; fixed replicas or autoscaled",
        "on the queue or running metric; tensor parallel 1/2/4 where the pool's instance has the GPUs; hf:// and",
        "s3:// sources; weights 20-80% of what leaves the engine room for a KV cache). Model i is seeded by i, so the",
        "models of a smaller N are a prefix of a larger one's. The stack config is the real `Pulumi.<stack>.yaml` with",
        "each pool's `maxNodes` raised to the packed demand at max replicas and surge replicas plus a spare node, and",
        "the cache grown to hold all weights plus the largest model (FSx `storageGiB` in steps of 2400). These go into",
        "a scratch project (a symlink to the real `__main__.py`, as `tests/conftest.py` does), and",
        "`offline.mockrun.run_program` runs",
        "it under the same Pulumi mocks as the tests and the render.",
        "",
        "Every measurement is a fresh subprocess. The child first imports the modules the program imports while it",
        "runs (recorded once per stack by a probe run), so the timed span, `run_program` alone, holds no interpreter",
        "start and no import. **time**: wall time of that span, median of the repeats (all repeats listed).",
        "**GC**: the part of it spent in CPython's cyclic garbage collector (`gc.callbacks`); **time, GC off**: the",
        "same run in another child with `gc.disable()` for the timed span (the program's own work). **peak RSS**: the",
        "child's `ru_maxrss` (interpreter + imports + run); **RSS before**: the same just before the run.",
        "**baseline**: a bare Pulumi program (one explicit Kubernetes provider and plain `ConfigMap`s, as many as",
        "make the program's total of registrations) run by the same `run_program` under the same `RecordingMocks` /",
        "`RecordingMonitor`, timed the same way, interleaved with the program's repeats. The monitor stands in for",
        "the engine, another process in a real run: for plain data it reads each registration once and echoes the",
        "request's own encoding (`offline/mockrun.py`), so the timed span holds the SDK's work, not a mock's",
        "re-encoding of every value. **ratio**: program time /",
        "baseline time. **resources**: every registration (components, provider, Kubernetes and AWS objects) but",
        "the stack; **invokes**: `len(run.invokes)`.",
        "",
        "## Machine",
        "",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- nproc: {os.cpu_count()} ({cpu})",
        f"- Python {platform.python_version()} on {platform.system()} {platform.release()}; pulumi "
        f"{version('pulumi')}, pulumi-kubernetes {version('pulumi-kubernetes')}, pulumi-aws {version('pulumi-aws')}",
        f"- load average (1 min) at the start and end: {load[0]:.2f}, {os.getloadavg()[0]:.2f} (other work on the"
        " machine shows here)",
        f"- repeats: {repeats} at N = {sizes[-1]} and {repeats * SHORT_REPEATS} at the smaller sizes (short runs, "
        "where load from elsewhere moves a median most), for the program, its GC-off run and the baseline "
        f"(the whole bench took {total_s / 60:.1f} min)",
        "",
        "Reproduce, from the project root:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    for result in results:
        stack, rows = result["stack"], result["rows"]
        ns = [r["n"] for r in rows]
        fits = {key: linear(ns, [r[key] for r in rows]) for key in ("wall_s", "gc_off_s", "base_wall_s")}
        mem_a, mem_b, mem_r2 = fit(ns, [r["rss_mib"] for r in rows])
        res_a, res_b, _ = fit(ns, [r["resources"] for r in rows])
        invokes = sorted({r["invokes"] for r in rows})
        tokens = sorted({t for r in rows for t in r["invoke_tokens"]})
        lines += [
            f"## Stack `{stack}`",
            "",
            "| N | resources | per model | invokes | time (s) | runs (s) | GC (s) | full GCs | time, GC off (s) "
            "| baseline (s) | baseline GC (s) | ratio | peak RSS (MiB) | RSS before (MiB) | baseline RSS (MiB) |",
            "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['n']} | {r['resources']} | {r['resources'] / r['n']:.2f} | {r['invokes']} | {r['wall_s']:.3f} "
                f"| {' / '.join(f'{w:.2f}' for w in r['walls'])} | {r['gc_s']:.3f} | {r['gc_full_runs']:.0f} "
                f"| {r['gc_off_s']:.3f} | {r['base_wall_s']:.3f} | {r['base_gc_s']:.3f} "
                f"| {r['wall_s'] / r['base_wall_s']:.2f} | {r['rss_mib']:.0f} | {r['rss_before_mib']:.0f} "
                f"| {r['base_rss_mib']:.0f} |")
        lines += [
            "",
            f"- **Invokes**: {', '.join(map(str, invokes))} at every N"
            f" ({'constant' if len(invokes) == 1 else 'NOT constant'}; {', '.join(tokens) or 'no invoke'}).",
            f"- **Time**: {describe('time', fits['wall_s'], ns[0])}.",
            f"- **Time, GC off**: {describe('time', fits['gc_off_s'], ns[0])}.",
            f"- **Baseline**: {describe('time', fits['base_wall_s'], ns[0])}.",
            f"- **Program / baseline at N = {rows[-1]['n']}**: {rows[-1]['wall_s'] / rows[-1]['base_wall_s']:.2f} "
            f"(GC off: the program {rows[-1]['gc_off_s']:.2f} s against the baseline's {rows[-1]['base_wall_s']:.2f} s"
            f" with GC on).",
            f"- **Registrations one more fixed-replica model adds**: {result['marginal']['hf']} for an hf:// source, "
            f"{result['marginal']['s3']} for an s3:// source (a second model of an engine and pool already in use;"
            " on prod an s3:// source adds its bucket role, its policy and its Pod Identity association).",
            f"- **Per model**: {fits['wall_s']['b'] * 1000:.1f} ms ({fits['gc_off_s']['b'] * 1000:.1f} ms with GC off) "
            f"against {fits['base_wall_s']['b'] * 1000:.1f} ms for the baseline's as many ConfigMaps; "
            f"{res_b:.2f} registrations (resources = {res_a:.1f} + {res_b:.2f} x N; how many per model depends on the",
            "  mix of autoscaled models).",
            f"- **Memory**: peak RSS = {mem_a:.0f} MiB + {mem_b * 1024:.0f} KiB x N (R^2 = {mem_r2:.4f}).",
            f"- Modules imported inside the timed span: {max(r['imported_during_run'] for r in rows)} "
            "(0: the timings hold no import).",
            f"- Resources by type at N = {ns[-1]}: "
            + ", ".join(f"{t} {c}" for t, c in sorted(rows[-1]["by_type"].items(), key=lambda kv: (-kv[1], kv[0])))
            + ".",
            f"- **Verdict**: {verdict(rows, fits, invokes)}",
            "",
        ]
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]], fits: dict[str, dict[str, Any]], invokes: list[int]) -> str:
    """The checks in one sentence each: constant invokes, linear time, and where any excess growth comes from."""
    lo, hi = rows[0], rows[-1]
    out = ["Invokes constant." if len(invokes) == 1 else "Invokes GROW with N."]
    if fits["wall_s"]["linear"]:
        out.append("Time grows linearly.")
    elif fits["gc_off_s"]["linear"]:
        out.append(
            f"Time grows faster than linear only through CPython's cyclic GC: with GC off the same runs are linear; "
            f"full collections go from {lo['gc_full_runs']:.0f} at N = {lo['n']} to {hi['gc_full_runs']:.0f} at "
            f"N = {hi['n']}, each scanning a heap that grows with N (every resource, its outputs and its recorded "
            f"inputs stay alive for the whole run), so GC takes {lo['gc_s'] / lo['wall_s']:.0%} of the time at "
            f"N = {lo['n']} and {hi['gc_s'] / hi['wall_s']:.0%} at N = {hi['n']}; the baseline shows the same "
            f"({hi['base_gc_s'] / hi['base_wall_s']:.0%} at N = {hi['n']}): it is the Pulumi SDK under CPython, "
            "not the program.")
    else:
        out.append("The program's own work (GC off) grows faster than linear: profile it.")
    return " ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__.split("\n\n")[0],
        epilog="Example: venv/bin/python bench/run.py --sizes 10 100 500 --stack dev prod --out bench/RESULTS.md")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500], metavar="N",
                        help="numbers of synthetic models, at least two (default: 10 100 500)")
    parser.add_argument("--stack", nargs="+", default=["dev", "prod"], metavar="STACK",
                        help="stacks whose Pulumi.<stack>.yaml is the base config (default: dev prod)")
    parser.add_argument("--repeats", type=int, default=3, metavar="K",
                        help="runs of the program, its GC-off run and the baseline at the largest size, "
                        f"{SHORT_REPEATS} times as many at the smaller ones; the median is reported (default: 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.md", metavar="PATH",
                        help="where to write the Markdown report (default: build/bench.md; the committed results "
                        "are bench/RESULTS.md)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--preload", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dump-modules", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--gc-off", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.stack[0], args.preload, args.dump_modules, args.gc_off)
        return
    sizes = sorted(set(args.sizes))
    if len(sizes) < 2:
        parser.error("--sizes needs at least two sizes to fit a line")
    out = args.out.resolve()
    out = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    command = (f"venv/bin/python bench/run.py --sizes {' '.join(map(str, sizes))} --stack {' '.join(args.stack)} "
               f"--repeats {args.repeats} --out {out}")
    scratch = Path(tempfile.mkdtemp(prefix="inference-bench-"))
    started, load = time.perf_counter(), os.getloadavg()
    try:
        results = [bench_stack(stack, sizes, args.repeats, scratch) for stack in args.stack]
    finally:
        shutil.rmtree(scratch)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(results, sizes, args.repeats, command, time.perf_counter() - started, load))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
