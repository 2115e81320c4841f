"""The offline render command end to end: files, determinism, formats, exit codes."""

import json

import yaml

from offline import render


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_render_dev_writes_objects_cloud_and_plan(tmp_path, capsys):
    assert render.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    out = tmp_path / "dev"
    names = {p.name for p in (out / "k8s").iterdir()}
    for model in ("llama-3-1-8b", "mixtral-8x7b", "qwen2-5-14b"):
        assert {f"deployment-inference-{model}.yaml", f"service-inference-{model}.yaml",
                f"poddisruptionbudget-inference-{model}.yaml"} <= names
    assert "scaledobject-inference-mixtral-8x7b.yaml" in names and "namespace-_-inference.yaml" in names
    deploy = yaml.safe_load((out / "k8s" / "deployment-inference-llama-3-1-8b.yaml").read_text())
    assert list(deploy)[:3] == ["apiVersion", "kind", "metadata"]
    assert deploy["spec"]["replicas"] == 4 and isinstance(deploy["spec"]["progressDeadlineSeconds"], int)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["stack"] == "dev" and {m["name"] for m in plan["plan"]["models"]} == {
        "llama-3-1-8b", "mixtral-8x7b", "qwen2-5-14b"}
    cloud = yaml.safe_load((out / "cloud.yaml").read_text())["resources"]
    assert not [r for r in cloud if r["type"].startswith("aws:")]
    printed = capsys.readouterr().out
    assert "llama-3-1-8b" in printed and "cold start" in printed


def test_render_is_deterministic(tmp_path):
    assert render.main(["--stack", "dev", "--out", str(tmp_path / "a")]) == 0
    assert render.main(["--stack", "dev", "--out", str(tmp_path / "b")]) == 0
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_render_replaces_stale_output(tmp_path):
    stale = tmp_path / "dev" / "k8s" / "deployment-inference-gone.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    assert render.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    assert not stale.exists()


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: x\n    source: hf://o/r\n    sizeGiB: 16\n    gpu: {type: a10g}\n"
                   "    replicas: 1\n")
    out = tmp_path / "out"
    assert render.main(["--stack", "dev", "--models", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5: model 'x': field 'gpu.type': no node pool provides GPU type 'a10g'" in err
    assert not out.exists()


def test_unknown_stack_exits_2(tmp_path, capsys):
    assert render.main(["--stack", "nope", "--out", str(tmp_path)]) == 2
    assert "no stack file Pulumi.nope.yaml" in capsys.readouterr().err


def test_markdown_and_json_formats(tmp_path, capsys):
    assert render.main(["--stack", "dev", "--out", str(tmp_path), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### inference plan: stack `dev`")
    assert "| model | engine | pool |" in md and "**Warnings**" in md
    assert render.main(["--stack", "dev", "--out", str(tmp_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["pools"][0]["name"] == "l40s"


def test_over_committed_pool_exits_2_naming_pool_models_and_shortfall(tmp_path, capsys):
    # the dev h100 pool has 2 nodes of 8 GPUs; 5 replicas x 4 GPUs need 3
    over = tmp_path / "over.yaml"
    over.write_text("models:\n  - name: big\n    source: hf://o/r\n    revision: " + "a" * 40 + "\n"
                    "    sizeGiB: 140\n    gpu: {type: h100, count: 4}\n    replicas: 5\n")
    out = tmp_path / "out"
    assert render.main(["--stack", "dev", "--models", str(over), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.dev.yaml:" in err and "field 'inference:nodePools[1].maxNodes'" in err
    assert "pool h100 needs 3 nodes (8 GPUs each) at max replicas, allows 2: big 5x4 GPUs" in err
    assert "short by 1 node(s)" in err
    assert not out.exists()


def test_every_format_shows_kv_tokens_sequences_and_cost_with_totals(tmp_path, capsys):
    assert render.main(["--stack", "prod", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    plan = json.loads((tmp_path / "prod" / "plan.json").read_text())["plan"]
    llama = next(m for m in plan["models"] if m["name"] == "llama-3-1-8b")
    fit = llama["fit"]
    # vLLM on one L40S: 48 x 0.92 - 16 - 1.5 = 26.66 GiB; 128 KiB a token -> 218398 tokens = 26 x 8192
    assert (fit["kvTokens"], fit["fullContextSequences"], fit["contextWindow"]) == (218398, 26, 8192)
    assert "218,398 = 26x 8192 (batch 64)" in text
    total = plan["cost"]
    assert total["monthlyUsdMin"] == round(sum(p["monthlyUsdMin"] for p in plan["pools"])
                                           + plan["cache"]["monthlyUsd"], 2)
    assert f"${total['monthlyUsdMin']:,.0f}-${total['monthlyUsdMax']:,.0f}" in text
    assert render.main(["--stack", "prod", "--out", str(tmp_path), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "218,398 = 26x 8192 (batch 64)" in md and "| total |" in md and "| cache (fsx-lustre) |" in md
