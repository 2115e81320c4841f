"""The layering the README and SPEC describe: a pure domain, components that read only the plan's records."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from offline.mockrun import ROOT


def imports(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return out


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", files("inference"), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_imports_nothing_of_pulumi_or_the_components(path):
    bad = {m for m in imports(path) if m.split(".")[0] in ("pulumi", "pulumi_kubernetes", "pulumi_aws",
                                                            "components", "offline")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", files("components"), ids=lambda p: str(p.relative_to(ROOT)))
def test_components_read_only_the_plan_records(path):
    domain = {m for m in imports(path) if m.split(".")[0] == "inference"}
    assert domain <= {"inference.plan.records"} | {m for m in domain if m.startswith("inference.plan.records.")}, (
        f"{path.relative_to(ROOT)} imports {sorted(domain)}")


def test_the_import_check_sees_relative_and_absolute_imports(tmp_path):
    # The check itself: a settings import in either spelling is found.
    (tmp_path / "components").mkdir()
    sample = tmp_path / "components" / "sample.py"
    sample.write_text("from inference.settings import StackCfg\nfrom ..inference import settings\n")
    found = imports(sample, tmp_path)
    assert "inference.settings.StackCfg" in found and "inference.settings" in found
