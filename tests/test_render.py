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
    assert "llama-3-1-8b" in printed and "fresh node (pull + read + start + compile)" in printed


def test_render_is_deterministic(tmp_path):
    assert render.main(["--stack", "dev", "--out", str(tmp_path / "a")]) == 0
    assert render.main(["--stack", "dev", "--out", str(tmp_path / "b")]) == 0
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_render_replaces_only_what_an_earlier_render_wrote(tmp_path):
    assert render.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    stale = tmp_path / "dev" / "k8s" / "deployment-inference-gone.yaml"
    stale.write_text("old")  # as if a model was removed: the marker lists it
    marker = tmp_path / "dev" / render.MARKER
    listed = json.loads(marker.read_text())
    marker.write_text(json.dumps({**listed, "files": [*listed["files"], "k8s/deployment-inference-gone.yaml"]}))
    assert render.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    assert not stale.exists()
    assert sorted(json.loads(marker.read_text())["files"]) == sorted(
        p.relative_to(tmp_path / "dev").as_posix() for p in (tmp_path / "dev").rglob("*")
        if p.is_file() and p.name != render.MARKER)


def refused(tmp_path, capsys, out):
    before = files(tmp_path)
    links = sorted(p for p in tmp_path.rglob("*") if p.is_symlink())
    assert render.main(["--stack", "dev", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert files(tmp_path) == before and sorted(p for p in tmp_path.rglob("*") if p.is_symlink()) == links
    assert "Traceback" not in err and "field '--out'" in err
    return err


def test_render_refuses_a_directory_it_did_not_write(tmp_path, capsys):
    # `--out /` with the dev stack would have removed /dev
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "notes.txt").write_text("mine")
    err = refused(tmp_path, capsys, tmp_path)
    assert f"{tmp_path / 'dev'}: field '--out': exists and is not a render (no readable .inference-render)" in err


def test_render_refuses_an_earlier_render_holding_unrelated_files(tmp_path, capsys):
    assert render.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    (tmp_path / "dev" / "k8s" / "my-patch.yaml").write_text("mine")
    err = refused(tmp_path, capsys, tmp_path)
    assert "holds files an earlier render did not write (k8s/my-patch.yaml)" in err


def test_render_never_follows_symlinks_out_of_out(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "plan.json").write_text("precious")
    out = tmp_path / "out"
    assert render.main(["--stack", "dev", "--out", str(out)]) == 0
    (out / "dev" / "k8s" / "linked").symlink_to(outside)  # a link to a directory inside the render
    (out / "dev" / "extra.json").symlink_to(outside / "plan.json")
    err = refused(tmp_path, capsys, out)
    assert "holds files an earlier render did not write (extra.json, k8s/linked)" in err
    # the render directory itself a link: refused, the target untouched
    (out / "dev" / "k8s" / "linked").unlink()
    (out / "dev" / "extra.json").unlink()
    (out / "dev").rename(tmp_path / "real")
    (out / "dev").symlink_to(outside)
    err = refused(tmp_path, capsys, out)
    assert "is a symbolic link, and the render never follows links out of --out" in err
    assert (outside / "plan.json").read_text() == "precious"


def test_render_refuses_an_object_the_api_server_would_refuse(tmp_path, capsys, monkeypatch):
    # Input limits keep real objects far below etcd's 1.5 MiB; the render checks every object it writes anyway.
    monkeypatch.setattr(render, "MAX_OBJECT_BYTES", 2000)
    assert render.main(["--stack", "dev", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "over the limit of 2000 bytes (etcd stores at most 1.5 MiB per object)" in err
    assert not (tmp_path / "out").exists()


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


def test_missing_models_file_names_the_command_line_flag(tmp_path, capsys):
    assert render.main(["--stack", "dev", "--models", "nope.yaml", "--out", str(tmp_path / "out")]) == 2
    assert "command line: field '--models': models file 'nope.yaml' not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


BROKEN = ("models:\n  - name: x\n    source: hf://o/r\n    sizeGiB: 16\n    gpu: {type: v100}\n    replicas: 1\n"
          "    env: {HOME: 1}\n")


def test_errors_as_json_and_markdown(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    out = tmp_path / "out"
    assert render.main(["--stack", "dev", "--models", str(bad), "--out", str(out), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] == 3 and doc["omitted"] == 0
    assert {(e["line"], e["field"]) for e in doc["errors"]} == {(5, "gpu.type"), (7, "env.HOME")}
    assert {"file": str(bad), "line": 5, "model": "x", "field": "gpu.type",
            "message": "got 'v100'; allowed: a10g, l4, l40s, a100-40gb, a100-80gb, h100, h200"} in doc["errors"]
    assert render.main(["--stack", "dev", "--models", str(bad), "--out", str(out), "--format", "markdown"]) == 2
    md = capsys.readouterr().out
    assert md.startswith("### inference plan: stack `dev` has 3 problems\n")
    assert f"- `{bad}:5` model `x` field `gpu.type`: `got 'v100'; allowed: a10g," in md
    assert not out.exists()


def test_a_thousand_broken_models_print_the_first_fifty_and_a_count(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n" + "".join(f"  - {{name: m{i}, source: hf://o/r, sizeGiB: 1, gpu: {{type: x}}, "
                                          "replicas: 1}\n" for i in range(1000)))
    assert render.main(["--stack", "dev", "--models", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1000 problems in the input:\n")
    assert err.count("\n  - ") == 50 and "  ... and 950 more (only the first 50 are shown" in err
