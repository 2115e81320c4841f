"""The policy pack (policy/): each policy's validate called directly with passing and failing inputs, the pack served
over gRPC as the Pulumi engine would call it, and every resource of the real dev and prod runs checked against it.

Inputs are real pulumi_policy ResourceValidationArgs; props are wrapped in the same unknown-checking proxies the
policy server uses, so the policies see read-only Mappings exactly as in `pulumi preview --policy-pack policy`.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi.runtime.rpc import UNKNOWN
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from offline.mockrun import ROOT, Registered, Run, reveal
from policy.policies import (
    CACHE_FILE_SYSTEMS,
    COMPONENT_LABEL,
    GPU,
    POLICIES,
    image_problem,
    is_default_provider,
    pod_templates,
    quantity,
)

EXPLICIT = "urn:pulumi:dev::inference::pulumi:providers:kubernetes::k8s"
DEFAULT = "urn:pulumi:dev::inference::pulumi:providers:kubernetes::default_4_34_2"
DIGEST = "sha256:" + "a1" * 32


def make_args(type_: str, props: dict[str, Any], *, name: str = "res", protect: bool = False,
              provider: str | None = EXPLICIT) -> ResourceValidationArgs:
    """What the policy server builds from an AnalyzeRequest (props behind the same proxy)."""
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    prov = None
    if provider is not None:
        parts = provider.split("::")
        prov = PolicyProviderResource(parts[-2].split("$")[-1], {}, provider, parts[-1])
    urn = f"urn:pulumi:dev::inference::{type_}::{name}"
    return ResourceValidationArgs(type_, unknown_checking_proxy(copy.deepcopy(props)), urn, name, opts, prov)


def violations(policy: str, args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    [p] = [p for p in POLICIES if p.name == policy]
    assert p.validate(args, lambda message, urn=None: found.append(message)) is None
    return found


def container(name: str = "engine", image: str = "vllm/vllm-openai:v0.31.0", **changes: Any) -> dict[str, Any]:
    """A container that meets every policy; `changes` replace top-level fields."""
    out: dict[str, Any] = {
        "name": name, "image": image, "ports": [{"containerPort": 8000, "name": "http"}],
        "resources": {"requests": {"cpu": "4", GPU: "1"}, "limits": {GPU: "1"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "privileged": False, "runAsNonRoot": True, "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    out.update(changes)
    return out


def pod_spec(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [container("check", "busybox:1.37.0", resources={})],
        "containers": [container()],
        "volumes": [{"name": "weights", "persistentVolumeClaim": {"claimName": "model-weights"}},
                    {"name": "shm", "emptyDir": {"medium": "Memory"}}],
    }
    out.update(changes)
    return out


def deployment(spec: dict[str, Any] | None = None, component: str = "model-server") -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "m1", COMPONENT_LABEL: component}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "m1", "namespace": "inference", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec or pod_spec()}}}


def job(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    labels = {COMPONENT_LABEL: "prefetch"}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m1-prefetch", "labels": labels},
            "spec": {"template": {"metadata": {"labels": labels},
                                  "spec": spec or pod_spec(containers=[container("fetch", resources={})])}}}


DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
PV = "kubernetes:core/v1:PersistentVolume"


# ---- the pack ------------------------------------------------------------------------------------------------------

def test_pack_has_the_five_policies_all_mandatory():
    assert [p.name for p in POLICIES] == ["weight-cache-protected", "gpu-requests-equal-limits", "images-pinned",
                                          "model-pods-restricted", "kubernetes-explicit-provider"]
    assert {p.enforcement_level for p in POLICIES} == {EnforcementLevel.MANDATORY}


@pytest.fixture(scope="module")
def analyzer():
    """The pack started as `pulumi preview --policy-pack policy` starts it: `python policy`, serving gRPC on a port."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "policy")], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"the policy pack did not start (first line {line!r})"
        port = int(line)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_served_pack_reports_mandatory_violations_over_grpc(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "inference-policies"
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    # A cache PVC on the default provider, unprotected, with an unknown (preview-time) field the policies never read.
    props = struct_pb2.Struct()
    props.update({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {"volumeName": UNKNOWN},
                  "metadata": {"name": "model-weights", "labels": {COMPONENT_LABEL: "cache"}}})
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type=PVC, properties=props, urn=f"urn:pulumi:dev::inference::{PVC}::weights-pvc", name="weights-pvc",
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
        provider=analyzer_pb2.AnalyzerProviderResource(type="pulumi:providers:kubernetes", urn=DEFAULT,
                                                       name="default_4_34_2")))
    got = {d.policyName: (d.enforcementLevel, d.message) for d in response.diagnostics}
    assert set(got) == {"weight-cache-protected", "kubernetes-explicit-provider"}
    assert all(level == analyzer_pb2.MANDATORY for level, _ in got.values())
    assert "PersistentVolumeClaim model-weights" in got["weight-cache-protected"][1]
    assert "protect" in got["weight-cache-protected"][1]
    assert DEFAULT in got["kubernetes-explicit-provider"][1]


# ---- 1. weight cache protected -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("type_", "labels", "protect", "bad"), [
    ("aws:fsx/lustreFileSystem:LustreFileSystem", {}, True, False),
    ("aws:fsx/lustreFileSystem:LustreFileSystem", {}, False, True),
    ("aws:efs/fileSystem:FileSystem", {}, False, True),
    ("aws:efs/fileSystem:FileSystem", {}, True, False),
    (PVC, {COMPONENT_LABEL: "cache"}, True, False),
    (PVC, {COMPONENT_LABEL: "cache"}, False, True),
    (PV, {COMPONENT_LABEL: "cache"}, False, True),
    (PV, {COMPONENT_LABEL: "cache"}, True, False),
    (PVC, {COMPONENT_LABEL: "scratch"}, False, False),
    (PVC, {}, False, False),
    ("aws:s3/bucketV2:BucketV2", {}, False, False),
])
def test_cache_must_be_protected(type_, labels, protect, bad):
    props = {"metadata": {"name": "model-weights", "labels": labels}, "spec": {"volumeName": UNKNOWN}}
    found = violations("weight-cache-protected", make_args(type_, props, name="weights", protect=protect))
    assert len(found) == int(bad)
    if bad:
        assert "protect=True" in found[0]
        assert ("model-weights" if type_.startswith("kubernetes:") else f"{type_} 'weights'") in found[0]


# ---- 2. GPU requests equal limits ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("requests", "limits", "expect"), [
    ("1", 1, None),
    (2, 2.0, None),
    ("4", "4", None),
    (None, None, None),
    ("2", 1, "differs from limits"),
    (None, 1, "requests['nvidia.com/gpu'] is not set"),
    (1, None, "limits['nvidia.com/gpu'] is not set"),
    ("one", "one", "not a valid quantity"),
])
def test_gpu_requests_equal_limits(requests, limits, expect):
    resources: dict[str, Any] = {"requests": {"cpu": "2"}, "limits": {}}
    if requests is not None:
        resources["requests"][GPU] = requests
    if limits is not None:
        resources["limits"][GPU] = limits
    found = violations("gpu-requests-equal-limits",
                       make_args(DEPLOYMENT, deployment(pod_spec(containers=[container(resources=resources)]))))
    if expect is None:
        assert found == []
    else:
        assert len(found) == 1
        assert expect in found[0]
        assert "Deployment inference/m1 spec.template.spec.containers[engine].resources" in found[0]


@pytest.mark.parametrize(("type_", "props"), [
    ("kubernetes:core/v1:Pod", {"kind": "Pod", "metadata": {"name": "p"}, "spec": pod_spec()}),
    (JOB, job(pod_spec())),
    ("kubernetes:apps/v1:StatefulSet", {**deployment(), "kind": "StatefulSet"}),
    ("kubernetes:apps/v1:DaemonSet", {**deployment(), "kind": "DaemonSet"}),
])
def test_gpu_check_reaches_every_pod_template_and_init_container(type_, props):
    assert violations("gpu-requests-equal-limits", make_args(type_, props)) == []
    bad = copy.deepcopy(props)
    spec = bad["spec"] if type_.endswith(":Pod") else bad["spec"]["template"]["spec"]
    spec["initContainers"][0]["resources"] = {"limits": {GPU: 1}}
    [message] = violations("gpu-requests-equal-limits", make_args(type_, bad))
    assert "initContainers[check].resources.limits['nvidia.com/gpu'] is 1 but requests" in message


def test_quantities_compare_by_value():
    assert quantity("1") == quantity(1) == quantity(1.0) == Decimal(1)
    assert quantity("500m") == Decimal("0.5")
    assert quantity("1Ki") == 1024
    assert quantity("1e3") == quantity("1k") == 1000
    assert quantity("abc") is None
    assert quantity(True) is None
    assert quantity("1e999999999999999999") is None


# ---- 3. pinned images ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("image", [
    "busybox:1.37.0", "ghcr.io/huggingface/text-generation-inference:3.3.7", "registry.local:5000/team/img:1.0",
    f"img@{DIGEST}", f"registry.local:5000/img:latest@{DIGEST}",
])
def test_pinned_images_pass(image):
    assert image_problem(image) is None
    assert violations("images-pinned", make_args(DEPLOYMENT, deployment(pod_spec(
        containers=[container(image=image)])))) == []


@pytest.mark.parametrize(("image", "expect"), [
    ("busybox", "has no tag"),
    ("busybox:latest", "uses the tag latest"),
    ("ghcr.io/org/img:LATEST", "uses the tag latest"),
    ("registry.local:5000/img", "has no tag"),
    ("img:", "has no tag"),
    ("img@sha256:abc", "not @sha256:<64 hex digits>"),
    ("", "has no image"),
    (None, "has no image"),
])
def test_unpinned_images_fail(image, expect):
    found = violations("images-pinned", make_args(DEPLOYMENT, deployment(pod_spec(
        containers=[container(image=image)]))))
    assert len(found) == 1
    assert expect in found[0]
    assert "Deployment inference/m1 spec.template.spec.containers[engine].image" in found[0]


def test_unpinned_init_container_image_fails():
    found = violations("images-pinned", make_args(JOB, job(pod_spec(
        initContainers=[container("check", "busybox", resources={})]))))
    assert len(found) == 1
    assert "Job m1-prefetch spec.template.spec.initContainers[check].image" in found[0]


# ---- 4. model pods restricted --------------------------------------------------------------------------------------

def test_restricted_model_and_prefetch_pods_pass():
    assert violations("model-pods-restricted", make_args(DEPLOYMENT, deployment())) == []
    assert violations("model-pods-restricted", make_args(JOB, job())) == []


def test_seccomp_on_every_container_instead_of_the_pod_passes():
    spec = pod_spec()
    del spec["securityContext"]["seccompProfile"]
    assert violations("model-pods-restricted", make_args(DEPLOYMENT, deployment(spec))) == []


def _mutate(path: str, value: Any) -> dict[str, Any]:
    """The compliant pod spec with one dotted path set (value None deletes); list items by index."""
    spec = pod_spec()
    *parents, last = path.split(".")
    node: Any = spec
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return spec


@pytest.mark.parametrize(("path", "value", "expect"), [
    ("securityContext.runAsNonRoot", None, "spec.template.spec.securityContext.runAsNonRoot is None; must be true"),
    ("securityContext.runAsNonRoot", False, "securityContext.runAsNonRoot is False; must be true"),
    ("securityContext.runAsUser", 0, "spec.template.spec.securityContext.runAsUser is 0"),
    ("containers.0.securityContext.runAsUser", 0, "containers[engine].securityContext.runAsUser is 0"),
    ("containers.0.securityContext.runAsNonRoot", False, "containers[engine].securityContext.runAsNonRoot is false"),
    ("containers.0.securityContext.seccompProfile", {"type": "Unconfined"},
     "containers[engine] seccompProfile.type is 'Unconfined'"),
    ("containers.0.securityContext.allowPrivilegeEscalation", None,
     "containers[engine].securityContext.allowPrivilegeEscalation is None; must be false"),
    ("initContainers.0.securityContext.allowPrivilegeEscalation", True,
     "initContainers[check].securityContext.allowPrivilegeEscalation is True"),
    ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, "capabilities.drop is ['NET_RAW']"),
    ("containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
     "capabilities.add has ['SYS_ADMIN']"),
    ("containers.0.securityContext.privileged", True, "containers[engine].securityContext.privileged is true"),
    ("volumes", [{"name": "host", "hostPath": {"path": "/var"}}], "volumes[host] is of type hostPath; allowed types"),
    ("hostNetwork", True, "spec.template.spec.hostNetwork is true"),
    ("hostPID", True, "hostPID is true"),
    ("hostIPC", True, "hostIPC is true"),
    ("containers.0.ports", [{"containerPort": 8000, "hostPort": 8000}], "containers[engine].ports[8000].hostPort"),
])
def test_each_restricted_field_fails_alone(path, value, expect):
    found = violations("model-pods-restricted", make_args(DEPLOYMENT, deployment(_mutate(path, value))))
    assert len(found) == 1, found
    assert expect in found[0]
    assert found[0].startswith(f"Deployment inference/m1 ({COMPONENT_LABEL}: model-server)")


def test_missing_seccomp_everywhere_fails_per_container():
    spec = _mutate("securityContext.seccompProfile", None)
    for c in spec["initContainers"] + spec["containers"]:
        del c["securityContext"]["seccompProfile"]
    found = violations("model-pods-restricted", make_args(DEPLOYMENT, deployment(spec)))
    assert len(found) == 2
    assert "spec.template.spec.initContainers[check] seccompProfile.type is None" in found[0]
    assert "spec.template.spec.containers[engine] seccompProfile.type is None" in found[1]


def test_prefetch_job_is_restricted_too():
    found = violations("model-pods-restricted", make_args(JOB, job(_mutate("hostNetwork", True))))
    assert found == [f"Job m1-prefetch ({COMPONENT_LABEL}: prefetch) spec.template.spec.hostNetwork is true; "
                     "must be false or unset."]


def test_other_components_are_not_restricted_by_this_policy():
    props = deployment(_mutate("hostNetwork", True), component="device-plugin")
    assert violations("model-pods-restricted", make_args(DEPLOYMENT, props)) == []


# ---- 5. explicit Kubernetes provider -------------------------------------------------------------------------------

@pytest.mark.parametrize(("type_", "provider", "bad"), [
    (DEPLOYMENT, EXPLICIT, False),
    (DEPLOYMENT, DEFAULT, True),
    (PVC, "urn:pulumi:prod::inference::pulumi:providers:kubernetes::default", True),
    ("kubernetes:helm.sh/v4:Chart", DEFAULT, True),
    ("kubernetes:helm.sh/v4:Chart", EXPLICIT, False),
    ("kubernetes:helm.sh/v4:Chart", None, False),
    ("aws:fsx/lustreFileSystem:LustreFileSystem", "urn:pulumi:dev::inference::pulumi:providers:aws::default_7_51_1",
     False),
])
def test_kubernetes_resources_use_the_explicit_provider(type_, provider, bad):
    found = violations("kubernetes-explicit-provider", make_args(type_, deployment(), provider=provider))
    assert len(found) == int(bad)
    if bad:
        assert provider in found[0]
        assert "explicit provider" in found[0]


def test_default_provider_names():
    assert is_default_provider(DEFAULT)
    assert is_default_provider("urn:pulumi:dev::inference::pulumi:providers:kubernetes::default")
    assert not is_default_provider(EXPLICIT)
    assert not is_default_provider("urn:pulumi:dev::inference::pulumi:providers:kubernetes::defaults")


# ---- the real program complies -------------------------------------------------------------------------------------

def recorded_args(run: Run, res: Registered) -> ResourceValidationArgs:
    """A recorded registration as the engine would hand it to the pack. Mocks record no provider where the engine
    would pick a default one, so a custom resource without a provider gets the default provider's URN."""
    providers = {f"{p.type}::{p.name}": p.urn for p in run.resources if p.type.startswith("pulumi:providers:")}
    stack = res.urn.split("::")[0].rsplit(":", 1)[-1]
    if res.provider:
        provider: str | None = providers[res.provider]
    elif res.custom and not res.type.startswith("pulumi:providers:"):
        provider = f"urn:pulumi:{stack}::inference::pulumi:providers:{res.type.split(':')[0]}::default"
    else:
        provider = None
    return make_args(res.type, reveal(res.inputs, placeholder=False), name=res.name, protect=res.protect,
                     provider=provider)


def run_violations(run: Run) -> list[str]:
    found: list[str] = []
    for res in run.resources:
        args = recorded_args(run, res)
        for policy in POLICIES:
            policy.validate(args, lambda message, urn=None, p=policy.name: found.append(f"{p}: {message}"))
    return found


@pytest.mark.parametrize("stack_run", ["dev_run", "prod_run"])
def test_real_program_complies(stack_run, request):
    run: Run = request.getfixturevalue(stack_run)
    assert run_violations(run) == []
    # The policies had something to check: a protected cache, model pod templates and explicit-provider objects.
    cache = [r for r in run.resources if r.type in CACHE_FILE_SYSTEMS
             or r.inputs.get("metadata", {}).get("labels", {}).get(COMPONENT_LABEL) == "cache"]
    assert cache and all(r.protect for r in cache)
    templates = [t for r in run.k8s_objects() for t in pod_templates(recorded_args(run, r))]
    assert any(t[0]["labels"][COMPONENT_LABEL] == "model-server" for t in templates)


def test_compliance_check_catches_a_broken_real_run(dev_run):
    """The same harness on the dev run with three things broken reports exactly those three."""
    broken = copy.deepcopy(dev_run)
    pvc = next(r for r in broken.resources if r.type == PVC)
    pvc.protect = False
    deploy = next(r for r in broken.resources if r.type == DEPLOYMENT)
    deploy.inputs["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:latest"
    service = next(r for r in broken.resources if r.type == "kubernetes:core/v1:Service")
    service.provider = ""
    found = run_violations(broken)
    assert sorted(f.split(":")[0] for f in found) == [
        "images-pinned", "kubernetes-explicit-provider", "weight-cache-protected"]
    assert any("vllm/vllm-openai:latest" in f for f in found)


def leader_worker_set(leader: dict[str, Any], worker: dict[str, Any]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "big", COMPONENT_LABEL: "model-server"}
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
            "metadata": {"name": "big", "namespace": "inference", "labels": labels},
            "spec": {"leaderWorkerTemplate": {"size": 2,
                                              "leaderTemplate": {"metadata": {"labels": labels}, "spec": leader},
                                              "workerTemplate": {"metadata": {"labels": labels}, "spec": worker}}}}


def test_both_templates_of_a_leader_worker_set_are_checked():
    lws = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
    assert violations("model-pods-restricted", make_args(lws, leader_worker_set(pod_spec(), pod_spec()))) == []
    bad = pod_spec()
    bad["containers"][0]["securityContext"] = {**bad["containers"][0]["securityContext"], "privileged": True}
    found = violations("model-pods-restricted", make_args(lws, leader_worker_set(pod_spec(), bad)))
    assert len(found) == 1 and "spec.leaderWorkerTemplate.workerTemplate.spec.containers[engine]" in found[0]
    gpu = pod_spec()
    gpu["containers"][0]["resources"] = {"limits": {GPU: 8}}
    [message] = violations("gpu-requests-equal-limits", make_args(lws, leader_worker_set(gpu, pod_spec())))
    assert "leaderTemplate.spec.containers[engine].resources.limits" in message
