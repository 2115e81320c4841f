"""Run the real __main__.py under Pulumi's mock runtime and record every resource, invoke and stack output.

Used by the offline render and by the tests: config comes from Pulumi.<stack>.yaml as the CLI would pass it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from inference.errors import InputError
from inference.yaml_loader import load_file

PROJECT = "inference"
ROOT = Path(__file__).resolve().parent.parent
SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class Secret:
    """A value the program marked secret; render writes a placeholder instead."""

    value: Any


@dataclass
class Registered:
    """One RegisterResource call: what the engine would be asked to create."""

    type: str
    name: str
    urn: str
    parent: str
    provider: str
    custom: bool
    remote: bool
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    custom_timeouts: dict[str, str]
    depends_on: list[str]
    ignore_changes: list[str]

    @property
    def is_k8s_object(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:")

    def options(self) -> dict[str, Any]:
        """Resource options that matter for review, omitting defaults."""
        out: dict[str, Any] = {}
        if self.protect:
            out["protect"] = True
        if self.retain_on_delete:
            out["retainOnDelete"] = True
        if self.custom_timeouts:
            out["customTimeouts"] = self.custom_timeouts
        if self.ignore_changes:
            out["ignoreChanges"] = self.ignore_changes
        return out


@dataclass
class Run:
    """Everything one program run registered."""

    resources: list[Registered] = field(default_factory=list)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Registered:
        hits = [r for r in self.resources if r.type == type_ and r.name == name]
        assert len(hits) == 1, f"expected one {type_} named {name}, found {len(hits)}"
        return hits[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def k8s_objects(self) -> list[Registered]:
        return [r for r in self.resources if r.is_k8s_object]


def normalise(value: Any) -> Any:
    """Mocks hand numbers back as floats: integral floats become ints again; secrets become Secret."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return Secret(normalise(value.get("value")))
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def reveal(value: Any, placeholder: bool = True) -> Any:
    """Secrets replaced by a placeholder (for output) or by their value (for assertions)."""
    if isinstance(value, Secret):
        return _mask(value.value) if placeholder else reveal(value.value, placeholder)
    if isinstance(value, dict):
        return {k: reveal(v, placeholder) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, placeholder) for v in value]
    return value


def _mask(value: Any) -> Any:
    """A secret's shape with every leaf hidden, so a masked Secret's stringData is still a map of strings."""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return SECRET_PLACEHOLDER


# Outputs the cloud would compute, for the resources whose outputs the program reads.
FAKE_CLUSTER = {
    "name": "mock-cluster", "arn": "arn:aws:eks:us-east-1:123456789012:cluster/mock-cluster",
    "endpoint": "https://MOCK.gr7.us-east-1.eks.amazonaws.com", "version": "1.32",
    "certificateAuthorities": [{"data": "bW9jay1jYQ=="}],
    "vpcConfig": {"clusterSecurityGroupId": "sg-0c1a5e7000000000a", "vpcId": "vpc-0a1b2c3d4e5f60001",
                  "subnetIds": [], "securityGroupIds": []},
    "identities": [{"oidcs": [{"issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/MOCK"}]}],
}


def subnet_zone(subnet: str) -> str:
    """A mock subnet's Availability Zone, from its last hex digit: subnet-...01 and -...04 share us-east-1b."""
    return "us-east-1" + "abc"[int(subnet[-1], 16) % 3]  # subnet ids are validated as hex


class RecordingMocks(pulumi.runtime.Mocks):
    """Resources echo their inputs plus plausible computed outputs; invokes answer from fixed data."""

    def __init__(self, run: Run, lock: threading.Lock, node_groups: dict[str, tuple[str, int]] | None = None):
        self.run = run
        self.lock = lock
        # Existing node groups of the cluster: name -> (pool label, current desired size); none by default.
        self.node_groups = node_groups or {}
        # The inputs the mock monitor already deserialized, handed to the recording monitor on the same thread.
        self.seen = threading.local()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.seen.inputs = args.inputs
        rid = f"{args.name}-id"
        state = dict(args.inputs)
        suffix = args.name.replace("_", "-")[:40]
        if args.typ.startswith("aws:"):
            state.setdefault("arn", f"arn:aws:mock:us-east-1:123456789012:{args.typ.split(':')[-1].lower()}/{suffix}")
        if args.typ == "aws:fsx/lustreFileSystem:LustreFileSystem":
            rid = "fs-0123456789abcdef0"
            state.update(dnsName=f"{rid}.fsx.us-east-1.amazonaws.com", mountName="abcdefgh")
        elif args.typ == "aws:efs/fileSystem:FileSystem":
            rid = "fs-0fedcba987654321"
            state["dnsName"] = f"{rid}.efs.us-east-1.amazonaws.com"
        elif args.typ == "aws:efs/accessPoint:AccessPoint":
            rid = "fsap-0123456789abcdef0"
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state["latestVersion"] = 1
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = f"sg-{hashlib.sha256(args.name.encode()).hexdigest()[:12]}"  # hash() varies per process
        elif args.typ == "aws:iam/role:Role":
            state.setdefault("name", f"{suffix}-0123abc")  # auto-named: resource name plus a random suffix
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        with self.lock:
            self.run.invokes.append((args.token, dict(args.args)))
        if args.token == "aws:eks/getCluster:getCluster":
            return {**FAKE_CLUSTER, "name": args.args.get("name", "mock-cluster"), "id": args.args.get("name")}
        if args.token == "aws:eks/getNodeGroups:getNodeGroups":
            return {"clusterName": args.args.get("clusterName"), "names": sorted(self.node_groups), "id": "groups"}
        if args.token == "aws:eks/getNodeGroup:getNodeGroup":
            name = args.args.get("nodeGroupName", "")
            pool, desired = self.node_groups[name]
            return {"clusterName": args.args.get("clusterName"), "nodeGroupName": name, "id": name,
                    "labels": {"inference/pool": pool}, "scalingConfigs": [{"desiredSize": desired}]}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            subnet = args.args.get("id", "")
            return {"id": subnet, "availabilityZone": subnet_zone(subnet), "vpcId": FAKE_CLUSTER["vpcConfig"]["vpcId"]}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": "us-east-1", "region": "us-east-1", "id": "us-east-1"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/mock", "id": "1"}
        if args.token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps(args.args.get("statements", [])), "id": "doc"}
        return {}


class _Special(Exception):
    """A value the plain conversion does not handle (a secret, asset, resource reference or unknown)."""


def _plain(value: struct_pb2.Value) -> Any:
    """One protobuf value as plain, normalised Python data (integral numbers as ints), in one pass; raises _Special
    on anything the SDK's deserializer treats specially, so that the caller falls back to it."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        if value.string_value == rpc.UNKNOWN:
            raise _Special
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    if kind == "struct_value":
        return _plain_struct(value.struct_value)
    if kind == "list_value":
        return [_plain(v) for v in value.list_value.values]
    if kind == "bool_value":
        return value.bool_value
    return None


def _plain_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    if rpc._special_sig_key in struct.fields:
        raise _Special
    return {k: _plain(v) for k, v in struct.fields.items()}


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, also recording parent, provider and resource options of every registration.

    It stands in for the engine, which in a real run is another process. For a registration of plain data (no
    secret, asset, resource reference, unknown or transform) it reads the inputs once, straight into the recorded
    form, and echoes the engine's own encoding of every input the mock state hands back unchanged, instead of
    decoding and re-encoding every value in the program's process as MockMonitor does. The response is the same
    (tests/test_mockrun.py compares it with MockMonitor's for every registration); anything else takes
    MockMonitor's path."""

    def __init__(self, mocks_: RecordingMocks):
        super().__init__(mocks_)
        self.mocks_ = mocks_
        self.run = mocks_.run
        self.lock = mocks_.lock

    def RegisterResource(self, request):
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        try:
            if request.transforms:
                raise _Special
            inputs = _plain_struct(request.object)
        except _Special:
            response = super().RegisterResource(request)
            inputs = normalise(self.mocks_.seen.inputs)
        else:
            response = self._register_plain(request, inputs)
        timeouts = {k: getattr(request.customTimeouts, k) for k in ("create", "update", "delete")
                    if getattr(request.customTimeouts, k)}
        record = Registered(
            type=request.type, name=request.name, urn=response.urn, parent=request.parent,
            provider=_provider_name(request.provider), custom=request.custom,
            remote=request.remote, inputs=inputs,
            protect=request.protect, retain_on_delete=request.retainOnDelete, custom_timeouts=timeouts,
            depends_on=sorted(request.dependencies), ignore_changes=list(request.ignoreChanges))
        with self.lock:
            self.run.resources.append(record)
        return response

    def _register_plain(self, request, inputs: dict[str, Any]):
        """MockMonitor.RegisterResource for plain inputs: the mock's state, encoded reusing the request's encoding
        of each input value the state holds unchanged."""
        urn = self.make_urn(request.parent, request.type, request.name)
        rid, state = self.mocks.new_resource(mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False))
        echoed = {k for k, v in state.items() if k in inputs and v is inputs[k]}
        computed = _sync_await(rpc.serialize_properties({k: v for k, v in state.items() if k not in echoed}, {}))
        obj = struct_pb2.Struct()
        for key in state:  # in the state's order, as serialize_properties would have it
            obj.fields[key].CopyFrom(request.object.fields[key] if key in echoed else computed.fields[key])
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, rid, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=rid, object=obj)


def _provider_name(ref: str) -> str:
    """'urn:pulumi:S::P::pulumi:providers:kubernetes::k8s::ID' -> 'pulumi:providers:kubernetes::k8s'."""
    parts = ref.split("::")
    return f"{parts[-3].split('$')[-1]}::{parts[-2]}" if len(parts) >= 3 else ""


def stack_config(root: Path, stack: str) -> tuple[dict[str, str], list[str]]:
    """Config values as the Pulumi CLI passes them: strings, structured values as JSON, secrets masked."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name} in {root}; stacks here: "
                                + ", ".join(sorted(p.name[7:-5] for p in root.glob("Pulumi.*.yaml"))))
    try:
        data = load_file(path, path.name).data
    except InputError:
        data = {}  # a broken stack file is the program's to report, with its line (settings.load_settings)
    config = data.get("config") if isinstance(data, dict) else None
    values: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in config.items() if isinstance(config, dict) else []:
        key = str(key)
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted values cannot be decrypted offline: the program sees a placeholder, still secret.
            values[key] = SECRET_PLACEHOLDER
            secrets.append(key)
        elif isinstance(value, str):
            values[key] = value
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            values[key] = str(value)
        elif isinstance(value, dict | list):
            values[key] = json.dumps(value, default=str)  # dates inside, as the CLI's YAML decoder gives strings
        else:
            values[key] = str(value)  # a date: the Pulumi CLI passes what the file says
    return values, secrets


async def _resolved(value: Any) -> Any:
    """Stack outputs with every Output awaited; plain data is walked, never wrapped (Output.from_input on a large
    plan would build an Output for every leaf). Secrets come back wrapped, as the engine would store them."""
    if isinstance(value, pulumi.Output):
        inner = await _resolved(await value.future())
        return Secret(inner) if await value.is_secret() else inner
    if isinstance(value, dict):
        return {k: await _resolved(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolved(v) for v in value]
    return value


def run_program(stack: str, root: Path = ROOT, overrides: dict[str, str] | None = None,
                secrets: list[str] | None = None, run: Run | None = None,
                node_groups: dict[str, tuple[str, int]] | None = None) -> Run:
    """Run `root/__main__.py` for `stack` under mocks. Raises what the program raises (pulumi.RunError on bad input).

    Pass `run` to keep what was registered before a failure (tests check that bad input registers nothing), and
    `node_groups` (name -> (pool, desired size)) for node groups the cluster already has, as after a first deploy."""
    values, secret_keys = stack_config(root, stack)
    values.update(overrides or {})
    secret_keys += secrets or []
    program = str(root / "__main__.py")
    return run_function(lambda: runpy.run_path(program, run_name="__main__"), stack, root, values, secret_keys, run,
                        node_groups)


def run_function(build: Callable[[], Any], stack: str = "unit", root: Path = ROOT,
                 values: dict[str, str] | None = None, secret_keys: list[str] | None = None,
                 run: Run | None = None, node_groups: dict[str, tuple[str, int]] | None = None) -> Run:
    """Run `build` as a Pulumi program under the recording mocks: whole programs, or one component from a hand-made
    plan in a unit test."""
    run, lock = run if run is not None else Run(), threading.Lock()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        settings.reset_options(project=PROJECT, stack=stack, preview=False, root_directory=str(root))
        runtime_config.set_all_config(values or {}, secret_keys or [])
        recording = RecordingMocks(run, lock, node_groups)
        pulumi.runtime.set_mocks(recording, PROJECT, stack, preview=False, monitor=RecordingMonitor(recording))
        loop.run_until_complete(run_pulumi_func(build))
        outputs = getattr(settings.get_root_resource(), "outputs", {}) or {}
        run.outputs = normalise(loop.run_until_complete(_resolved(outputs))) or {}
    finally:
        runtime_config.set_all_config({}, [])
        settings.reset_options()
        loop.close()
        asyncio.set_event_loop(None)
    return run
