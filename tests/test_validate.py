"""External validators on the render: every object against its published schema; checkov skips carry reasons.

Built-in kinds go through kubernetes-validate --strict for the stack's kubernetesVersion; custom resources through
the upstream CRDs in schemas/crds/. checkov itself runs outside pytest, in its own virtualenv: scripts/checkov.sh.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import VersionNotSupportedError

from components import conventions
from inference.settings import StackCfg
from offline.mockrun import ROOT, Run
from offline.render import k8s_document

STACKS = ("dev", "prod")
SCHEMAS = ROOT / "schemas"
# Extensions this check turns into JSON Schema or evaluates (CEL rules, with cel-python); any other one (embedded
# resources) fails loudly.
EXTENSIONS = {"x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-list-type",
              "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-validations"}
# checkov takes any annotation whose key contains one of these as a skip (checkov/kubernetes/kubernetes_utils.py).
SKIP_PREFIXES = ("checkov.io/skip", "bridgecrew.io/skip", "cortex.io/skip")


def kubernetes_version(stack: str) -> str:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return str(config.get("inference:kubernetesVersion", StackCfg.model_fields["kubernetes_version"].default))


# ---------------------------------------------------------------- CRD schemas as strict JSON Schema


def structural(schema: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A CRD schema node as JSON Schema that fails on the fields a Kubernetes API server would prune."""
    unknown = sorted(k for k in schema if k.startswith("x-kubernetes-") and k not in EXTENSIONS)
    if unknown:
        raise ValueError(f"CRD schema at '{where or '<root>'}' uses {unknown}, which this check cannot evaluate")
    node = dict(schema)
    is_object = node.get("type") == "object"
    preserve = node.pop("x-kubernetes-preserve-unknown-fields", False)
    if node.pop("x-kubernetes-int-or-string", False) and "anyOf" not in node:
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    if node.get("x-kubernetes-list-type") == "set":
        node["uniqueItems"] = True
    if "properties" in node:
        node["properties"] = {k: structural(v, f"{where}.{k}".lstrip(".")) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = structural(node["additionalProperties"], f"{where}.*")
    elif is_object and "additionalProperties" not in node and not preserve:
        node["additionalProperties"] = False
    if "items" in node:
        node["items"] = structural(node["items"], f"{where}[]")
    return node


def _unique_map_keys(validator: Any, keys: list[str], instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """x-kubernetes-list-type: map: no two items may share the values of the map keys."""
    if not validator.is_type(instance, "array"):
        return
    seen: set[str] = set()
    for item in instance:
        key = json.dumps([item.get(k) for k in keys] if isinstance(item, dict) else item)
        if key in seen:
            yield jsonschema.ValidationError(f"duplicate item for list-map keys {keys}: {key}")
        seen.add(key)


CEL = celpy.Environment()


def _cel_rules(validator: Any, rules: list[dict[str, Any]], instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """x-kubernetes-validations: each CEL rule, with `self` bound to this node, must hold (as the API server checks)."""
    for rule in rules:
        try:
            held = CEL.program(CEL.compile(rule["rule"])).evaluate({"self": celpy.json_to_cel(instance)})
        except celpy.CELEvalError as e:  # a value of the wrong type: the schema error is reported beside this
            yield jsonschema.ValidationError(f"CRD rule {rule['rule']!r} cannot be evaluated: {e.args[0]}")
            continue
        if not held:
            yield jsonschema.ValidationError(rule.get("message") or f"fails the CRD rule {rule['rule']}")


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("int32")
def _int32(value: Any) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value: Any) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


# OpenAPI v3.0 schema objects follow JSON Schema draft 4 (boolean exclusiveMinimum/Maximum).
CrdValidator = jsonschema.validators.extend(jsonschema.Draft4Validator,
                                            {"x-kubernetes-list-map-keys": _unique_map_keys,
                                             "x-kubernetes-validations": _cel_rules})


@functools.cache
def crd_schemas() -> dict[tuple[str, str], tuple[dict[str, Any], bool]]:
    """(apiVersion, kind) -> (strict schema, deprecated) for every served version of every stored CRD."""
    out: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {}
    for path in sorted((SCHEMAS / "crds").glob("*.yaml")):
        for crd in filter(None, yaml.safe_load_all(path.read_text())):
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    schema = structural(version["schema"]["openAPIV3Schema"])
                    schema["properties"]["metadata"] = {}  # ObjectMeta: checked as the built-in type
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    out[key] = (schema, bool(version.get("deprecated")))
    return out


# ---------------------------------------------------------------- one object


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<root>"


def _builtin(doc: dict[str, Any], version: str) -> list[str]:
    try:
        validated = kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{_path(e)}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema: {doc['apiVersion']} {doc['kind']} is not a built-in API of Kubernetes {version} "
                f"(removed or misspelt) and schemas/crds/ holds no CRD for it"]
    except VersionNotSupportedError:
        validated = "none"
    if validated != version:
        return [f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes {version} "
                f"(it validated against {validated})"]
    return []


def _custom(doc: dict[str, Any], version: str, schema: dict[str, Any], deprecated: bool) -> list[str]:
    found = [f"{_path(e)}: {e.message}" for e in CrdValidator(schema, format_checker=FORMATS).iter_errors(doc)]
    if deprecated:
        found.append(f"{doc['apiVersion']} is deprecated in its CRD")
    meta = _builtin({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata")}, version)
    return sorted(found + meta)


def problems(doc: dict[str, Any], version: str) -> list[str]:
    """Why an API server of this Kubernetes version would reject or prune part of the object; empty when valid."""
    crd = crd_schemas().get((doc["apiVersion"], doc["kind"]))
    return _custom(doc, version, *crd) if crd else _builtin(doc, version)


def label(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    return f"{doc['kind']} {'/'.join(filter(None, (meta.get('namespace'), meta['name'])))}"


# ---------------------------------------------------------------- the rendered stacks


@pytest.fixture(params=STACKS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    run: Run = request.getfixturevalue(f"{request.param}_run")
    return request.param, [k8s_document(r) for r in run.k8s_objects()]


def test_every_object_matches_its_published_schema(rendered):
    stack, docs = rendered
    version = kubernetes_version(stack)
    found = [f"{label(d)}: {p}" for d in docs for p in problems(d, version)]
    assert not found, f"{stack} (Kubernetes {version}):\n" + "\n".join(found)


def test_custom_resources_are_checked_against_stored_crds(rendered):
    stack, docs = rendered
    custom = {d["kind"] for d in docs if (d["apiVersion"], d["kind"]) in crd_schemas()}
    assert custom == {"ScaledObject", "PodMonitor", "PrometheusRule"}, f"{stack}: custom resources checked: {custom}"
    builtin = {d["kind"] for d in docs} - custom
    assert {"Namespace", "Deployment", "Service", "PodDisruptionBudget"} <= builtin


def test_kubernetes_validate_ships_schemas_for_each_stack_version():
    shipped = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    assert {kubernetes_version(s) for s in STACKS} <= shipped


def test_stored_crds_match_their_recorded_checksums():
    readme = (SCHEMAS / "README.md").read_text()
    recorded = dict((path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (crds/\S+)$", readme, re.M))
    stored = {f"crds/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in (SCHEMAS / "crds").iterdir()}
    assert stored == recorded


# ---------------------------------------------------------------- the validator can fail


def one(run: Run, kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(k8s_document(r) for r in run.k8s_objects() if r.inputs["kind"] == kind))


def test_unknown_field_in_a_builtin_object_fails(dev_run):
    doc = one(dev_run, "Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert any("imagePullPolicyy" in p for p in problems(doc, "1.32"))


@pytest.mark.parametrize("api_version, kind", [
    ("policy/v1beta1", "PodDisruptionBudget"),      # removed in 1.25
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),  # removed in 1.26
    ("example.com/v1", "Widget"),                    # a custom resource with no stored CRD
])
def test_object_without_a_schema_fails(dev_run, api_version, kind):
    doc = {**one(dev_run, "PodDisruptionBudget"), "apiVersion": api_version, "kind": kind}
    assert problems(doc, "1.32") == [
        f"no schema: {api_version} {kind} is not a built-in API of Kubernetes 1.32 (removed or misspelt) "
        "and schemas/crds/ holds no CRD for it"]


def test_unsupported_kubernetes_version_fails(dev_run):
    assert problems(one(dev_run, "Service"), "1.99") == [
        f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes 1.99 "
        "(it validated against none)"]


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = doc
    for p in parents:
        target = target[p]
    target[leaf] = value


@pytest.mark.parametrize("kind, path, value, expected", [
    ("ScaledObject", "spec.pollingIntervall", 15, "'pollingIntervall' was unexpected"),
    ("ScaledObject", "spec.minReplicaCount", "1", "spec.minReplicaCount: '1' is not of type 'integer'"),
    ("ScaledObject", "spec.maxReplicaCount", 2**31, "spec.maxReplicaCount: 2147483648 is not a 'int32'"),
    ("ScaledObject", "spec.triggers.0.metadata.threshold", 5, "spec.triggers.0.metadata.threshold: 5 is not of"),
    ("ScaledObject", "spec.scaleTargetRef.name", None, "spec.scaleTargetRef.name: None is not of type 'string'"),
    ("ScaledObject", "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies.0.period", 60,
     "'period' was unexpected"),
    ("PodMonitor", "spec.podMetricsEndpoints.0.interval", "15 seconds", "does not match"),
    ("PodMonitor", "spec.podMetricsEndpoints.0.scheme", "ftp", "'ftp' is not one of"),
    ("PodMonitor", "spec.podMetricsEndpoints.0.portt", "http", "'portt' was unexpected"),
    ("PodMonitor", "spec.scrapeProtocols", ["PrometheusProto", "PrometheusProto"], "has non-unique elements"),
    ("PodMonitor", "metadata.labelz", {"a": "b"}, "metadata: Additional properties are not allowed ('labelz'"),
    ("PodMonitor", "kind2", "PodMonitor", "<root>: Additional properties are not allowed ('kind2'"),
])
def test_crd_violation_fails(dev_run, kind, path, value, expected):
    doc = one(dev_run, kind)
    assert problems(doc, "1.32") == []
    _set(doc, path, value)
    found = problems(doc, "1.32")
    assert any(expected in p for p in found), found


@pytest.mark.parametrize("port", [8000, "http"])
def test_int_or_string_accepts_both(dev_run, port):
    doc = one(dev_run, "PodMonitor")
    doc["spec"]["podMetricsEndpoints"][0]["targetPort"] = port
    assert problems(doc, "1.32") == []


def test_list_map_keys_must_be_unique(dev_run):
    doc = one(dev_run, "PodMonitor")
    binding = {"group": "monitoring.coreos.com", "resource": "prometheuses", "name": "k8s", "namespace": "monitoring"}
    doc["status"] = {"bindings": [binding, dict(binding)]}
    assert any("duplicate item for list-map keys" in p for p in problems(doc, "1.32"))


def test_crd_extension_this_check_cannot_evaluate_fails():
    with pytest.raises(ValueError, match=r"'spec' uses \['x-kubernetes-embedded-resource'\]"):
        structural({"type": "object", "properties": {"spec": {"type": "object",
                                                             "x-kubernetes-embedded-resource": True}}})


def test_crd_cel_rules_are_evaluated(dev_run):
    doc = one(dev_run, "ScaledObject")
    doc["spec"]["minReplicaCount"], doc["spec"]["maxReplicaCount"] = 5, 3
    assert problems(doc, "1.32") == ["spec: minReplicaCount must be less than or equal to maxReplicaCount"]


def test_preserve_unknown_fields_allows_them():
    schema = structural({"type": "object", "properties": {
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "closed": {"type": "object"}}})
    assert CrdValidator(schema).is_valid({"open": {"anything": 1}})
    assert not CrdValidator(schema).is_valid({"closed": {"anything": 1}})


# ---------------------------------------------------------------- checkov skips


def skip_annotations(value: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(where, key, value) of every checkov skip annotation anywhere in a document."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "annotations" and isinstance(item, dict):
                yield from ((path, k, v) for k, v in item.items() if any(p in k for p in SKIP_PREFIXES))
            yield from skip_annotations(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from skip_annotations(item, f"{path}.{i}")


def test_skip_table_gives_every_check_a_reason():
    assert conventions.CHECKOV_REASONS
    for check_id, reason in conventions.CHECKOV_REASONS.items():
        assert re.fullmatch(r"CKV2?_K8S_\d+", check_id), check_id
        # checkov splits the annotation value at "=": a reason containing one would break the skip
        assert reason.strip() == reason and len(reason) > 20 and "=" not in reason, check_id
    assert set(conventions.TAG_PINNED) <= set(conventions.CHECKOV_REASONS)


def test_every_skip_annotation_names_a_listed_check_with_its_reason(rendered):
    stack, docs = rendered
    seen = set()
    for doc in docs:
        for where, key, value in skip_annotations(doc):
            # checkov reads skips from the object's own metadata only; elsewhere they would be silently ignored
            assert where == "metadata", f"{stack} {label(doc)}: skip annotation {key} under {where}"
            check_id, _, reason = value.partition("=")
            assert check_id in conventions.CHECKOV_REASONS, f"{stack} {label(doc)}: {key} skips unlisted {check_id}"
            assert reason == conventions.CHECKOV_REASONS[check_id], f"{stack} {label(doc)}: {key} reason differs"
            seen.add((doc["kind"], check_id))
    assert ("Deployment", "CKV_K8S_11") in seen  # GPU pods: the reason for the table exists


def test_workload_skips():
    tag, digest = "vllm/vllm-openai:v0.31.0", "vllm/vllm-openai@sha256:" + "a" * 64
    assert conventions.workload_skips([tag], gpu=True) == {
        "checkov.io/skip1": "CKV_K8S_11=" + conventions.CHECKOV_REASONS["CKV_K8S_11"],
        "checkov.io/skip2": "CKV_K8S_43=" + conventions.CHECKOV_REASONS["CKV_K8S_43"],
        "checkov.io/skip3": "CKV_K8S_15=" + conventions.CHECKOV_REASONS["CKV_K8S_15"],
    }
    assert list(conventions.workload_skips([digest, tag]).values()) == [
        "CKV_K8S_43=" + conventions.CHECKOV_REASONS["CKV_K8S_43"],
        "CKV_K8S_15=" + conventions.CHECKOV_REASONS["CKV_K8S_15"]]
    assert conventions.workload_skips([digest]) == {}
