"""The prefetch script against real clients: the AWS CLI syncing from a local S3 emulator (moto, 127.0.0.1) and a
stand-in hub client. A download that holds no model, or far less or more than sizeGiB, is never marked complete."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from conftest import k8s, model, stack_config

from inference.plan.coldstart import SIZE_HIGH, SIZE_LOW, SIZE_SLACK_GIB

BIN = Path(sys.executable).parent  # moto_server and aws come with the test requirements
SIZE_GIB = 0.01  # 10 MiB: tolerance band 5242 .. 1069548 KiB (0.5 x, 2 x + 1 GiB)
BAND = "outside the 5242-1069548 KiB that sizeGiB allows"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                              aws_secret_access_key="test")
        client.create_bucket(Bucket="weights-bucket")
        client.put_object(Bucket="weights-bucket", Key="llama/v1/config.json", Body=b"{}")
        client.put_object(Bucket="weights-bucket", Key="llama/v1/model.safetensors", Body=b"\0" * 10_000_000)
        client.put_object(Bucket="weights-bucket", Key="tiny/v1/config.json", Body=b"{}")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def script_for(project, source: str, cache: Path, size_gib: float = SIZE_GIB, **changes) -> str:
    run = project.run(models=[model(source=source, revision="v1", sizeGiB=size_gib, **changes)])
    (job,) = [r.inputs for r in run.of_type("kubernetes:batch/v1:Job")]
    return job["spec"]["template"]["spec"]["containers"][0]["command"][2].replace("/models", str(cache))


def run_s3(text: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(["sh", "-c", text], capture_output=True, text=True, env=env, check=False, timeout=120)


def test_s3_prefix_holding_the_model_is_fetched_and_marked(project, tmp_path, s3):
    cache = tmp_path / "cache"
    result = run_s3(script_for(project, "s3://weights-bucket/llama/v1", cache), s3)
    assert result.returncode == 0, result.stderr
    assert (cache / "m1/v1.complete").read_text() == "s3://weights-bucket/llama/v1@v1\n"
    assert (cache / "m1/v1/model.safetensors").stat().st_size == 10_000_000


def test_s3_prefix_matching_nothing_fails_before_the_marker(project, tmp_path, s3):
    """A typo in the prefix: `aws s3 sync` copies nothing and exits 0; the Job must not mark an empty directory."""
    cache = tmp_path / "cache"
    result = run_s3(script_for(project, "s3://weights-bucket/llama/v2-typo", cache), s3)
    assert result.returncode == 1
    assert "s3://weights-bucket/llama/v2-typo: the download holds no model (no config.json" in result.stderr
    assert not (cache / "m1/v1.complete").exists() and not (cache / "m1/v1").exists()


def test_s3_download_far_below_size_gib_fails(project, tmp_path, s3):
    cache = tmp_path / "cache"
    result = run_s3(script_for(project, "s3://weights-bucket/tiny/v1", cache), s3)
    assert result.returncode == 1
    assert re.search(r"s3://weights-bucket/tiny/v1: the download holds \d KiB, " + BAND, result.stderr)
    assert not (cache / "m1/v1.complete").exists()


def hub_stub(nbytes: int, config: bool = True) -> str:
    """A stand-in for `python -c ... snapshot_download(...)` writing what the hub would (pip installs nothing);
    fallocate allocates the blocks without writing them, so du counts them."""
    files = ('echo "{}" > "$5/config.json"; ' if config else "") + (
        f'fallocate -l {nbytes} "$5/w.bin"' if nbytes else ":")
    return f"pip() {{ :; }}\npython() {{ {files}; }}\n"


@pytest.mark.parametrize("nbytes, config, ok, message", [
    (10_000_000, True, True, ""),
    (10_000_000, False, True, ""),  # *.bin weights alone hold a model
    (0, False, False, "hf://org/model: the download holds no model"),
    (2_000_000, True, False, BAND),  # far below sizeGiB: part of the model
    (1_100_000_000, True, False, BAND),  # far above: more than the model (a parent prefix, sibling revisions)
])
def test_hf_download_is_checked_the_same_way(project, tmp_path, nbytes, config, ok, message):
    cache = tmp_path / "cache"
    text = hub_stub(nbytes, config) + script_for(project, "hf://org/model", cache)
    result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False)
    assert (result.returncode == 0) == ok, result.stderr
    assert message in result.stderr
    assert (cache / "m1/v1.complete").exists() == ok


def test_tolerance_band_formula(project):
    """0.5 x sizeGiB to 2 x sizeGiB + 1 GiB, in KiB. By hand: 16 GiB -> 8388608 .. 34603008 KiB;
    0.01 GiB -> floor(5242.88) = 5242 .. ceil(1069547.52) = 1069548 KiB."""
    assert (SIZE_LOW, SIZE_HIGH, SIZE_SLACK_GIB) == (0.5, 2.0, 1)
    for size, low, high in ((16, 8388608, 34603008), (SIZE_GIB, 5242, 1069548)):
        script = script_for(project, "hf://org/model", Path("/models"), size)
        assert f'if [ "$1" -lt {low} ] || [ "$1" -gt {high} ]; then' in script


def test_air_gapped_hub_image_and_endpoint(project):
    cfg = stack_config(prefetch={"hfImage": "registry.local:5000/hf-hub:1.0",
                                 "hfEndpoint": "https://hf-mirror.internal", "s3Image": "registry.local:5000/aws:2"})
    run = project.run(config=cfg, models=[model(), model(name="m2", source="s3://weights-bucket/m2")])
    hf = k8s(run, "Job", next(r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:batch/v1:Job")
                              if r.inputs["metadata"]["name"].startswith("m1-")))
    container = hf["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == "registry.local:5000/hf-hub:1.0"
    assert env["HF_ENDPOINT"] == "https://hf-mirror.internal" and "PYTHONPATH" not in env
    assert "pip install" not in container["command"][2]  # the image brings huggingface_hub: no PyPI needed
    s3_images = {r.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
                 for r in run.of_type("kubernetes:batch/v1:Job") if r.inputs["metadata"]["name"].startswith("m2-")}
    assert s3_images == {"registry.local:5000/aws:2"}


def test_default_hub_image_installs_the_pinned_client(dev_run):
    job = next(r.inputs for r in dev_run.of_type("kubernetes:batch/v1:Job"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "python:3.12.10-slim-bookworm"
    assert "huggingface_hub==2.4.0" in container["command"][2]
    assert "HF_ENDPOINT" not in {e["name"] for e in container["env"]}


@pytest.mark.parametrize("prefetch, key", [
    ({"hfImage": "python"}, "hfImage"), ({"hfEndpoint": "ftp://x"}, "hfEndpoint"), ({"hubImage": "a:1"}, "hubImage")])
def test_bad_prefetch_config_is_refused(project, prefetch, key):
    message, run = project.rejected(config=stack_config(prefetch=prefetch))
    assert "inference:prefetch" in message and key in message and run.resources == []
