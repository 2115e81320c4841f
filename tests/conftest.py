"""Test harness: run the real __main__.py under Pulumi mocks against a stack config and models file.

`project` builds a scratch project directory (a symlink to the real __main__.py, a Pulumi.<stack>.yaml and a
models file) so each test states its own input; `run` executes it and returns every recorded registration.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from offline.mockrun import ROOT, Run, run_program

DEV = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
PROD = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]

MODEL = {
    "name": "m1", "source": "hf://org/model", "revision": "0" * 40, "sizeGiB": 16,
    "gpu": {"type": "l40s", "count": 1}, "replicas": 2, "contextWindow": 8192, "batchSize": 32,
}


def stack_config(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A stack config (keys without the 'inference:' prefix in `changes`); None deletes a key."""
    cfg = copy.deepcopy(DEV if base is None else base)
    for key, value in changes.items():
        full = key if ":" in key else f"inference:{key}"
        if value is None:
            cfg.pop(full, None)
        else:
            cfg[full] = value
    return cfg


def model(**changes: Any) -> dict[str, Any]:
    """A valid model entry with some fields changed; None deletes a field."""
    out = copy.deepcopy(MODEL)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


class Project:
    """A scratch project: the real program, a stack file and a models file of the test's choosing."""

    def __init__(self, root: Path):
        self.root = root
        (root / "__main__.py").symlink_to(ROOT / "__main__.py")

    def write(self, stack: str = "test", config: dict[str, Any] | str | None = None,
              models: list[dict[str, Any]] | dict[str, Any] | str | None = None) -> None:
        cfg = stack_config() if config is None else config
        if isinstance(cfg, dict):
            cfg = yaml.safe_dump({"config": cfg}, sort_keys=False)
        (self.root / f"Pulumi.{stack}.yaml").write_text(cfg)
        if models is None:
            models = [model()]
        if isinstance(models, list):
            models = {"models": models}
        text = models if isinstance(models, str) else yaml.safe_dump(models, sort_keys=False)
        (self.root / "models.yaml").write_text(text)

    def run(self, stack: str = "test", **write: Any) -> Run:
        if write or not (self.root / f"Pulumi.{stack}.yaml").exists():
            self.write(stack, **write)
        run = run_program(stack, self.root)
        assert_unique(run)
        return run

    def error(self, stack: str = "test", **write: Any) -> str:
        """Run expecting bad input: returns the message."""
        if write or not (self.root / f"Pulumi.{stack}.yaml").exists():
            self.write(stack, **write)
        with pytest.raises(pulumi.RunError) as info:
            run_program(stack, self.root)
        return str(info.value)

    def rejected(self, stack: str = "test", **write: Any) -> tuple[str, Run]:
        """Run expecting bad input: the message and what was registered before the failure (should be nothing)."""
        if write:
            self.write(stack, **write)
        run = Run()
        with pytest.raises(pulumi.RunError) as info:
            run_program(stack, self.root, run=run)
        return str(info.value), run


def assert_unique(run: Run) -> None:
    """The real engine rejects duplicate URNs; mocks do not, so check (type, name) pairs here."""
    pairs = [(r.type, r.name) for r in run.resources]
    dupes = {p for p in pairs if pairs.count(p) > 1}
    assert not dupes, f"duplicate (type, name): {sorted(dupes)}"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture(scope="session")
def dev_run() -> Run:
    run = run_program("dev", ROOT)
    assert_unique(run)
    return run


@pytest.fixture(scope="session")
def prod_run() -> Run:
    run = run_program("prod", ROOT)
    assert_unique(run)
    return run


def k8s(run: Run, kind: str, name: str) -> dict[str, Any]:
    """The inputs of the one Kubernetes object of this kind and metadata.name."""
    hits = [r.inputs for r in run.k8s_objects() if r.inputs.get("kind") == kind
            and r.inputs.get("metadata", {}).get("name") == name]
    assert len(hits) == 1, f"expected one {kind} {name}, found {len(hits)}"
    return hits[0]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


