"""The recording monitor's plain-data path answers exactly as Pulumi's MockMonitor does, for every registration."""

from __future__ import annotations

from typing import ClassVar

import pytest
from conftest import PROD, model, stack_config
from pulumi.runtime import mocks, rpc

import offline.mockrun as mockrun
from offline.mockrun import ROOT, normalise, run_program


class CheckingMonitor(mockrun.RecordingMonitor):
    """Answers on the plain path, then asks MockMonitor the same request and compares."""

    checked: ClassVar[list[str]] = []

    def _register_plain(self, request, inputs):
        response = super()._register_plain(request, inputs)
        expected = mocks.MockMonitor.RegisterResource(self, request)
        assert response.urn == expected.urn and response.id == expected.id, request.name
        assert response.object == expected.object, f"{request.type} {request.name}: the echoed state differs"
        assert inputs == normalise(rpc.deserialize_properties(request.object)), request.name
        CheckingMonitor.checked.append(request.type)
        return response


@pytest.fixture
def checking(monkeypatch):
    CheckingMonitor.checked = []
    monkeypatch.setattr(mockrun, "RecordingMonitor", CheckingMonitor)
    return CheckingMonitor.checked


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plain_path_matches_mock_monitor_on_the_real_stacks(checking, stack):
    run = run_program(stack, ROOT)
    # Every Kubernetes object and AWS resource took the plain path and was compared; the rest fell back.
    assert len(checking) >= 0.9 * len(run.resources)
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job"} <= set(checking)
    if stack == "prod":
        assert any(t.startswith("aws:") for t in checking)


def test_secret_inputs_take_mock_monitors_path_and_stay_secret(checking, project):
    project.write(config=stack_config(PROD), models=[model()])
    token = "hf_SENTINEL_0123456789"
    run = run_program("test", project.root, {"inference:hfToken": token}, ["inference:hfToken"])
    secret = next(r for r in run.k8s_objects() if r.inputs["kind"] == "Secret")
    assert secret.inputs["stringData"] == mockrun.Secret({"token": token})
    assert "kubernetes:core/v1:Secret" not in checking  # it went MockMonitor's way
    assert "kubernetes:batch/v1:Job" in checking  # the Job beside it, plain data, did not


def test_plain_path_handles_every_value_kind():
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update({"s": "x", "i": 3.0, "f": 2.5, "b": False, "n": None, "l": [1.0, "a", {"k": True}], "d": {}})
    assert mockrun._plain_struct(struct) == {"s": "x", "i": 3, "f": 2.5, "b": False, "n": None,
                                             "l": [1, "a", {"k": True}], "d": {}}
    for special in ({"v": rpc.UNKNOWN}, {"v": {rpc._special_sig_key: rpc._special_secret_sig, "value": "s"}}):
        struct = struct_pb2.Struct()
        struct.update(special)
        with pytest.raises(mockrun._Special):
            mockrun._plain_struct(struct)

