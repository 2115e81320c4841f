"""Offline render: run __main__.py under Pulumi's mock runtime and write what it would create.

    python -m offline.render [--stack dev] [--models PATH] [--out build] [--format text|markdown|json]

Writes build/<stack>/k8s/<kind>-<namespace>-<name>.yaml, build/<stack>/cloud.yaml and build/<stack>/plan.json,
then prints the plan. Exit 0 on success; exit 2 with the problems on bad input, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pulumi
import yaml

from inference.errors import InputError, Problem, quote

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


MARKER = ".inference-render"  # in every render directory: lists the files that render wrote
# etcd stores at most 1.5 MiB per request by default (etcd docs, "System limits": --max-request-bytes); the API
# server adds metadata and managedFields to what it stores, so an object must stay well below.
MAX_OBJECT_BYTES = 1024 * 1024


class RenderError(Exception):
    """The render cannot write where it was asked to, or built an object the API server would refuse."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _documents(run: Run, stack: str) -> dict[str, str]:
    """Every file of the render (path relative to the render directory -> text), objects size-checked."""
    files: dict[str, str] = {}
    seen: dict[str, str] = {}
    for resource in run.k8s_objects():
        doc = k8s_document(resource)
        name = k8s_filename(doc)
        if name in seen:
            raise RuntimeError(f"two resources ({seen[name]}, {resource.name}) write the same object {name}")
        seen[name] = resource.name
        size = len(json.dumps(doc, separators=(",", ":")).encode())
        if size > MAX_OBJECT_BYTES:
            raise RenderError(Problem(f"{stack}: {doc['kind']} {doc['metadata'].get('name')}", (
                f"the rendered object is {size} bytes, over the limit of {MAX_OBJECT_BYTES} bytes (etcd stores at "
                "most 1.5 MiB per object); shorten the engineArgs or env that fill it")))
        files[f"k8s/{name}"] = _dump(doc)
    cloud = [{"type": r.type, "name": r.name, "inputs": _sorted(reveal(r.inputs)), **r.options()}
             for r in sorted(run.resources, key=lambda r: (r.type, r.name))
             if not r.is_k8s_object and (r.custom or r.remote)]
    files["cloud.yaml"] = _dump({"resources": cloud})
    outputs = reveal(run.outputs)
    plan_doc = {"stack": stack, "plan": outputs.get("plan"),
                "outputs": {k: v for k, v in outputs.items() if k != "plan"}}
    files["plan.json"] = json.dumps(_sorted(plan_doc), indent=2) + "\n"
    return files


def _refuse(target: Path, why: str) -> RenderError:
    return RenderError(Problem(str(target), f"{why}; the render replaces only a directory an earlier render wrote "
                                            f"(it holds {MARKER}): move it away or choose another --out",
                               field="--out"))


def _earlier_render(target: Path) -> list[str]:
    """The files of the earlier render at `target` (to remove), or [] when nothing is there; refuses anything else."""
    if not os.path.lexists(target):
        return []
    if target.is_symlink():
        raise _refuse(target, "is a symbolic link, and the render never follows links out of --out")
    if not target.is_dir():
        raise _refuse(target, "exists and is not a directory")
    marker = target / MARKER
    try:
        listed = json.loads(marker.read_text(encoding="utf-8"))["files"] if marker.is_file() and \
            not marker.is_symlink() else None
    except (OSError, ValueError, KeyError, TypeError):
        listed = None
    if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
        raise _refuse(target, f"exists and is not a render (no readable {MARKER})")
    ours = {*listed, MARKER}
    found: list[str] = []
    for root, dirs, names in os.walk(target):  # never follows symbolic links
        rel = Path(root).relative_to(target)
        for d in dirs:
            if (Path(root) / d).is_symlink():
                names.append(d)  # a link to a directory: unrelated, whatever it points at
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
        found += [(rel / n).as_posix() for n in names]
    unrelated = sorted(f for f in found if f not in ours or (target / f).is_symlink())
    if unrelated:
        shown = ", ".join(unrelated[:5]) + (f" and {len(unrelated) - 5} more" if len(unrelated) > 5 else "")
        raise _refuse(target, f"holds files an earlier render did not write ({shown})")
    return found


def write(run: Run, stack: str, out: Path) -> Path:
    """Write the render of one run into out/<stack>, replacing an earlier render there (and nothing else)."""
    target = out / stack
    files = _documents(run, stack)
    old = _earlier_render(target)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stack}-", dir=out))
    try:
        (staging / "k8s").mkdir()
        for rel, text in files.items():
            (staging / rel).write_text(text, encoding="utf-8")
        (staging / MARKER).write_text(json.dumps({"stack": stack, "files": sorted(files)}, indent=2) + "\n",
                                      encoding="utf-8")
        if old or target.exists():
            for rel in old:
                (target / rel).unlink()
            for directory in sorted({(target / rel).parent for rel in old}, key=lambda p: -len(p.parts)):
                if directory != target:
                    directory.rmdir()
            target.rmdir()
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _print_errors(error: InputError, fmt: str, stack: str) -> None:
    """Errors in the chosen format: text on stderr; JSON and Markdown on stdout, where the plan would be."""
    if fmt == "json":
        print(json.dumps({"stack": stack, "errors": [p.to_data() for p in error.shown],
                          "count": len(error.problems), "omitted": error.omitted}, indent=2))
    elif fmt == "markdown":
        print(report.errors_markdown(error, stack), end="")
    else:
        print(f"error: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml supplies the config")
    parser.add_argument("--models", help="models file to use instead of the stack's inference:modelsFile")
    parser.add_argument("--out", default="build", help="output directory (default: build)")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    args = parser.parse_args(argv)

    def fail(error: InputError) -> int:
        _print_errors(error, args.format, args.stack)
        return 2

    if args.models and not Path(args.models).is_file():
        return fail(InputError([Problem("command line", f"models file {quote(args.models)} not found (a path from the "
                                                        "current directory)", field="--models")]))
    overrides = {"inference:modelsFile": str(Path(args.models).resolve())} if args.models else {}
    try:
        run = run_program(args.stack, ROOT, overrides)
        target = write(run, args.stack, Path(args.out))
    except pulumi.RunError as exc:
        if isinstance(exc.__cause__, InputError):
            return fail(exc.__cause__)
        return fail(InputError([Problem(f"Pulumi.{args.stack}.yaml", str(exc))]))
    except FileNotFoundError as exc:
        return fail(InputError([Problem("command line", str(exc), field="--stack")]))
    except RenderError as exc:
        return fail(InputError([exc.problem]))
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
