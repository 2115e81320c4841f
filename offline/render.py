"""Offline render: run __main__.py under Pulumi's mock runtime and write what it would create.

    python -m offline.render [--stack dev] [--models PATH] [--out build] [--format text|markdown|json]

Writes build/<stack>/k8s/<kind>-<namespace>-<name>.yaml, build/<stack>/cloud.yaml and build/<stack>/plan.json,
then prints the plan. Exit 0 on success; exit 2 with the problems on bad input, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pulumi
import yaml

from . import report
from .mockrun import ROOT, Registered, Run, reveal, run_program

TOP_LEVEL_ORDER = ("apiVersion", "kind", "metadata")


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def k8s_document(resource: Registered) -> dict[str, Any]:
    """A Kubernetes object as the program builds it: apiVersion, kind, metadata first, then sorted keys."""
    body = _sorted(reveal(resource.inputs))
    head = {k: body.pop(k) for k in TOP_LEVEL_ORDER if k in body}
    return {**head, **body}


def k8s_filename(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc['kind'].lower()}-{meta.get('namespace') or '_'}-{meta['name']}.yaml"


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True)


def write(run: Run, stack: str, out: Path) -> Path:
    """Write the render of one run into out/<stack>, replacing what was there."""
    target = out / stack
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stack}-", dir=out))
    try:
        (staging / "k8s").mkdir()
        seen: dict[str, str] = {}
        for resource in run.k8s_objects():
            doc = k8s_document(resource)
            name = k8s_filename(doc)
            if name in seen:
                raise RuntimeError(f"two resources ({seen[name]}, {resource.name}) write the same object {name}")
            seen[name] = resource.name
            (staging / "k8s" / name).write_text(_dump(doc), encoding="utf-8")
        cloud = [{"type": r.type, "name": r.name, "inputs": _sorted(reveal(r.inputs)), **r.options()}
                 for r in sorted(run.resources, key=lambda r: (r.type, r.name))
                 if not r.is_k8s_object and (r.custom or r.remote)]
        (staging / "cloud.yaml").write_text(_dump({"resources": cloud}), encoding="utf-8")
        outputs = reveal(run.outputs)
        plan_doc = {"stack": stack, "plan": outputs.get("plan"),
                    "outputs": {k: v for k, v in outputs.items() if k != "plan"}}
        (staging / "plan.json").write_text(json.dumps(_sorted(plan_doc), indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml supplies the config")
    parser.add_argument("--models", help="models file to use instead of the stack's inference:modelsFile")
    parser.add_argument("--out", default="build", help="output directory (default: build)")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    args = parser.parse_args(argv)

    overrides = {"inference:modelsFile": str(Path(args.models).resolve())} if args.models else {}
    try:
        run = run_program(args.stack, ROOT, overrides)
    except pulumi.RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    target = write(run, args.stack, Path(args.out))
    plan = reveal(run.outputs)["plan"]
    if args.format == "json":
        print((target / "plan.json").read_text(encoding="utf-8"), end="")
    elif args.format == "markdown":
        print(report.markdown(plan, args.stack), end="")
    else:
        print(report.text(plan))
        print(f"\nwrote {len(run.k8s_objects())} Kubernetes objects and "
              f"{sum(1 for r in run.resources if not r.is_k8s_object and (r.custom or r.remote))} other resources "
              f"to {target}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
