"""The inference policies: plain validate functions over ResourceValidationArgs, importable without a policy server.

Props arrive as read-only Mappings/Sequences (pulumi_policy proxies); reading a value that is unknown during
preview raises UnknownValueError, so each check reads only the fields it needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.proxy import UnknownValueError

COMPONENT_LABEL = "app.kubernetes.io/component"
GPU = "nvidia.com/gpu"

CACHE_FILE_SYSTEMS = frozenset({"aws:fsx/lustreFileSystem:LustreFileSystem", "aws:efs/fileSystem:FileSystem"})
CACHE_VOLUMES = frozenset({"kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolume"})
CACHE_COMPONENT = "cache"

# Where each workload kind keeps its pod templates (metadata + spec).
POD_TEMPLATE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Pod": ((),),
    "Deployment": (("spec", "template"),),
    "StatefulSet": (("spec", "template"),),
    "DaemonSet": (("spec", "template"),),
    "ReplicaSet": (("spec", "template"),),
    "Job": (("spec", "template"),),
    "CronJob": (("spec", "jobTemplate", "spec", "template"),),
    # leaderworkerset.x-k8s.io/v1: the leader's template, and the workers' (also the leader's when it has none)
    "LeaderWorkerSet": (("spec", "leaderWorkerTemplate", "leaderTemplate"),
                        ("spec", "leaderWorkerTemplate", "workerTemplate")),
}
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")

MODEL_COMPONENTS = frozenset({"model-server", "prefetch"})
# Pod Security "restricted": the only volume types a restricted pod may mount.
RESTRICTED_VOLUME_TYPES = frozenset({"persistentVolumeClaim", "emptyDir", "secret", "configMap", "projected",
                                     "downwardAPI", "csi", "ephemeral"})
RESTRICTED_ADDABLE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?")
_QUANTITY_SUFFIX = {"m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
                    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
                    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
                    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}


# ---- helpers -------------------------------------------------------------------------------------------------------

def _get(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., or None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _items(value: Any) -> list[Any]:
    """A list field as a list (absent or not a list: empty)."""
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _kind(args: ResourceValidationArgs) -> str:
    return args.resource_type.rsplit(":", 1)[-1]


def _describe(args: ResourceValidationArgs) -> str:
    """'Deployment inference/llama' for Kubernetes objects (metadata), else '<type> <pulumi name>'."""
    if args.resource_type.startswith("kubernetes:"):
        try:
            name, namespace = _get(args.props, "metadata", "name"), _get(args.props, "metadata", "namespace")
        except UnknownValueError:
            name = namespace = None
        if isinstance(name, str):
            return f"{_kind(args)} {namespace}/{name}" if isinstance(namespace, str) else f"{_kind(args)} {name}"
    return f"{args.resource_type} '{args.name}'"


def pod_templates(args: ResourceValidationArgs) -> list[tuple[Mapping[str, Any], Mapping[str, Any], str]]:
    """(template metadata, pod spec, field path of the spec) of each pod template of a Kubernetes workload."""
    if not args.resource_type.startswith("kubernetes:"):
        return []
    out = []
    for path in POD_TEMPLATE_PATHS.get(_kind(args), ()):
        template = _get(args.props, *path) if path else args.props
        spec = _get(template, "spec")
        if isinstance(spec, Mapping):
            metadata = _get(template, "metadata")
            out.append(((metadata if isinstance(metadata, Mapping) else {}), spec, ".".join((*path, "spec"))))
    return out


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """('containers[engine]', container) for every init, app and ephemeral container of a pod spec."""
    for field in CONTAINER_FIELDS:
        for container in _items(spec.get(field)):
            if isinstance(container, Mapping):
                yield f"{field}[{container.get('name')}]", container


def pod_containers(args: ResourceValidationArgs) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(field path, container) for every container of the resource's pod templates; nothing if it has none."""
    for _, spec, at in pod_templates(args):
        for where, container in containers(spec):
            yield f"{at}.{where}", container


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity ("1", 1, 1.0, "500m", "1Ki", "1e3") as a number; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    try:
        scale = Decimal(10) ** int(exponent[1:]) if exponent else _QUANTITY_SUFFIX.get(suffix or "", Decimal(1))
        return Decimal(number) * scale
    except ArithmeticError:  # an exponent too large for Decimal
        return None


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned, or None when it has a version tag (not latest) or a sha256 digest."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if "@" in image:
        return None if _DIGEST.search(image) else f"image '{image}' has a digest that is not @sha256:<64 hex digits>"
    last = image.rsplit("/", 1)[-1]  # a ':' before the last '/' is a registry port, not a tag
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    if not tag:
        return f"image '{image}' has no tag (it would pull latest)"
    if tag.lower() == "latest":
        return f"image '{image}' uses the tag latest"
    return None


# ---- 1. weight cache protected -------------------------------------------------------------------------------------

def validate_cache_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """FSx/EFS file systems and cache-labelled PV/PVCs must carry the `protect` resource option."""
    if args.resource_type in CACHE_FILE_SYSTEMS:
        what = "is the model weight cache file system"
    elif (args.resource_type in CACHE_VOLUMES
          and _get(args.props, "metadata", "labels", COMPONENT_LABEL) == CACHE_COMPONENT):
        what = f"is labelled {COMPONENT_LABEL}: {CACHE_COMPONENT}"
    else:
        return
    if not args.opts.protect:
        report_violation(f"{_describe(args)} {what} but the resource option protect is not set; set protect=True "
                         "so no replace or delete can destroy the cached weights.", None)


# ---- 2. GPU requests equal limits ----------------------------------------------------------------------------------

def validate_gpu_requests_equal_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A container asking for nvidia.com/gpu sets it in both requests and limits, to the same count."""
    for where, container in pod_containers(args):
        request = _get(container, "resources", "requests", GPU)
        limit = _get(container, "resources", "limits", GPU)
        if request is None and limit is None:
            continue
        field = f"{_describe(args)} {where}.resources"
        if request is None or limit is None:
            have, missing = ("limits", "requests") if request is None else ("requests", "limits")
            value = limit if request is None else request
            report_violation(f"{field}.{have}['{GPU}'] is {value!r} but {missing}['{GPU}'] is not set; "
                             f"set both to the same GPU count.", None)
        elif quantity(request) is None or quantity(limit) is None:
            report_violation(f"{field}['{GPU}'] requests={request!r} limits={limit!r} is not a valid quantity; "
                             "use a whole GPU count.", None)
        elif quantity(request) != quantity(limit):
            report_violation(f"{field}: requests['{GPU}']={request!r} differs from limits['{GPU}']={limit!r}; "
                             "GPUs cannot be overcommitted, set both to the same count.", None)


# ---- 3. pinned images ----------------------------------------------------------------------------------------------

def validate_images_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every container image names a version tag other than latest, or an @sha256 digest."""
    for where, container in pod_containers(args):
        problem = image_problem(container.get("image"))
        if problem:
            report_violation(f"{_describe(args)} {where}.image: {problem}; use an explicit version tag "
                             "(not latest) or an @sha256 digest.", None)


# ---- 4. model pods restricted --------------------------------------------------------------------------------------

def _restricted_problems(spec: Mapping[str, Any]) -> Iterator[str]:
    """Each Pod Security "restricted" field the pod spec gets wrong: '<field> is <value>; <what is allowed>'."""
    pod_sc = spec.get("securityContext")
    if _get(pod_sc, "runAsNonRoot") is not True:
        yield f"securityContext.runAsNonRoot is {_get(pod_sc, 'runAsNonRoot')!r}; must be true"
    if _get(pod_sc, "runAsUser") == 0:
        yield "securityContext.runAsUser is 0; must be a non-zero UID"
    pod_seccomp = _get(pod_sc, "seccompProfile", "type")
    for flag in HOST_NAMESPACES:
        if spec.get(flag) is True:
            yield f"{flag} is true; must be false or unset"
    for volume in _items(spec.get("volumes")):
        if isinstance(volume, Mapping):
            for kind in sorted(set(volume) - {"name"} - RESTRICTED_VOLUME_TYPES):
                yield (f"volumes[{volume.get('name')}] is of type {kind}; allowed types: "
                       f"{', '.join(sorted(RESTRICTED_VOLUME_TYPES))}")
    for where, container in containers(spec):
        sc = container.get("securityContext")
        if _get(sc, "allowPrivilegeEscalation") is not False:
            yield (f"{where}.securityContext.allowPrivilegeEscalation is "
                   f"{_get(sc, 'allowPrivilegeEscalation')!r}; must be false")
        drop = _items(_get(sc, "capabilities", "drop"))
        if "ALL" not in drop:
            yield f"{where}.securityContext.capabilities.drop is {drop!r}; must include ALL"
        added = sorted(set(_items(_get(sc, "capabilities", "add"))) - RESTRICTED_ADDABLE_CAPABILITIES)
        if added:
            yield f"{where}.securityContext.capabilities.add has {added!r}; only NET_BIND_SERVICE may be added"
        if _get(sc, "privileged") is True:
            yield f"{where}.securityContext.privileged is true; must be false or unset"
        if _get(sc, "runAsNonRoot") is False:
            yield f"{where}.securityContext.runAsNonRoot is false; must be true or unset"
        if _get(sc, "runAsUser") == 0:
            yield f"{where}.securityContext.runAsUser is 0; must be a non-zero UID"
        seccomp = _get(sc, "seccompProfile", "type") or pod_seccomp
        if seccomp != "RuntimeDefault":
            yield (f"{where} seccompProfile.type is {seccomp!r} (from the container or the pod securityContext); "
                   "must be RuntimeDefault")
        for port in _items(container.get("ports")):
            host_port = _get(port, "hostPort")
            if host_port not in (None, 0):
                yield f"{where}.ports[{_get(port, 'containerPort')}].hostPort is {host_port}; must be unset"


def validate_model_pods_restricted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Pod templates labelled model-server or prefetch meet Pod Security "restricted"."""
    for metadata, spec, at in pod_templates(args):
        component = (_get(metadata, "labels", COMPONENT_LABEL)
                     or _get(args.props, "metadata", "labels", COMPONENT_LABEL))
        if component not in MODEL_COMPONENTS:
            continue
        for problem in _restricted_problems(spec):
            report_violation(f"{_describe(args)} ({COMPONENT_LABEL}: {component}) {at}.{problem}.", None)


# ---- 5. explicit Kubernetes provider -------------------------------------------------------------------------------

def is_default_provider(urn: str) -> bool:
    """Default providers are named 'default' or 'default_<version>' by the engine."""
    type_, _, name = urn.rpartition("::")
    return type_.endswith("pulumi:providers:kubernetes") and (name == "default" or name.startswith("default_"))


def validate_explicit_provider(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every kubernetes:* resource (objects, and components such as helm.sh/v4:Chart) uses the explicit provider."""
    if not args.resource_type.startswith("kubernetes:"):
        return
    # The engine passes no provider only for component resources it records without one; their children are
    # custom resources and are checked here themselves.
    if args.provider is not None and is_default_provider(args.provider.urn):
        report_violation(f"{_describe(args)} uses the default Kubernetes provider ({args.provider.urn}); pass the "
                         "program's explicit provider (ResourceOptions(providers=[provider])) so it can never "
                         "deploy to whatever cluster the ambient kubeconfig points at.", None)


POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(name=name, description=description, validate=validate,
                             enforcement_level=EnforcementLevel.MANDATORY)
    for name, description, validate in (
        ("weight-cache-protected",
         "The model weight cache (FSx/EFS file system, cache PV/PVC) must have the protect option.",
         validate_cache_protected),
        ("gpu-requests-equal-limits", "Containers requesting nvidia.com/gpu set requests and limits, equal.",
         validate_gpu_requests_equal_limits),
        ("images-pinned", "Container images use an explicit version tag (not latest) or an @sha256 digest.",
         validate_images_pinned),
        ("model-pods-restricted", "Model-server and prefetch pods meet Pod Security 'restricted'.",
         validate_model_pods_restricted),
        ("kubernetes-explicit-provider",
         "Kubernetes resources use the program's explicit provider, never the default provider.",
         validate_explicit_provider),
    )
]
