"""Prefetch: one model revision downloaded once into the weight cache by a Kubernetes Job (children of ModelCache)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pulumi
import pulumi_aws as aws

from inference.plan.records import ModelPlan, Prefetch

from .conventions import CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT, PREFETCH, KubeObject, labels, workload_skips
from .provider import ClusterInfo

HF_TOKEN_SECRET = "hf-token"
HF_TOKEN_DIR = "/var/run/secrets/hf"

POD_IDENTITY_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
    "Action": ["sts:AssumeRole", "sts:TagSession"]}]})


def pod_identity_role(name: str, policy: pulumi.Input[str], parent: pulumi.Resource
                      ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """An IAM role that EKS Pod Identity hands to one service account, with its one inline policy."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(f"{name}-role", assume_role_policy=POD_IDENTITY_TRUST, opts=opts)
    return role, aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=opts)


def s3_read_policy(repo: str) -> str:
    """Read-only access to one bucket prefix: GetObject below it, ListBucket only for keys below it."""
    bucket, _, prefix = repo.partition("/")
    prefix = prefix.rstrip("/")
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadWeights", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"},
        {"Sid": "ListWeights", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}}},
    ]})


def fetch_script(p: Prefetch) -> str:
    """The Job's shell: exit at once when the marker exists, else download beside the target, rename, mark."""
    q = shlex.quote
    if p.scheme == "hf":
        # Without a hub client in the image, install the pinned one (needs PyPI); a mirror image ships it.
        fetch = [] if p.hub_version is None else [
            f"pip install --quiet --no-cache-dir --target /tmp/pip huggingface_hub=={p.hub_version}"]
        fetch.append("python -c 'import sys; from huggingface_hub import snapshot_download; "
                     "snapshot_download(sys.argv[1], revision=sys.argv[2], local_dir=sys.argv[3])' "
                     f'{q(p.repo)} {q(p.revision)} "$partial"')
    else:
        fetch = [f'aws s3 sync {q("s3://" + p.repo.rstrip("/") + "/")} "$partial" --only-show-errors']
    low, high = p.min_kib, p.max_kib
    # Both clients succeed on a source holding nothing (an s3 prefix matching no key syncs zero files and exits 0):
    # only weights of about the declared size are marked complete. Plain sh, globs and du -sk: any image has them.
    check = [
        'found=""',
        'for f in "$partial"/config.json "$partial"/*.safetensors "$partial"/*.bin; do [ -f "$f" ] && found=1; done',
        'if [ -z "$found" ]; then',
        '  echo "$src: the download holds no model (no config.json, *.safetensors or *.bin at its top level):'
        ' check the source and revision in models.yaml" >&2',
        "  exit 1",
        "fi",
        'set -- $(du -sk "$partial")',
        f'if [ "$1" -lt {low} ] || [ "$1" -gt {high} ]; then',
        f'  echo "$src: the download holds $1 KiB, outside the {low}-{high} KiB that sizeGiB allows'
        ' (0.5 x sizeGiB to 2 x sizeGiB + 1 GiB): check the source and sizeGiB in models.yaml" >&2',
        "  exit 1",
        "fi",
    ]
    # Model pods mount the compile directory writable as the Job's user; mkdir -p keeps an existing one as it is.
    compile_dir = [] if p.compile_dir is None else [f"mkdir -p {q(p.compile_dir)}"]
    return "\n".join([
        "set -eu",
        *compile_dir,
        f"dest={q(p.directory)} partial={q(p.partial)} marker={q(p.marker)}",
        f"want={q(f'{p.scheme}://{p.repo}@{p.revision}')}",
        f"src={q(f'{p.scheme}://{p.repo}')}",
        'if [ -f "$marker" ]; then',
        '  if [ "$(cat "$marker")" = "$want" ]; then echo "weights already cached in $dest"; exit 0; fi',
        "  # Same model and revision name, different source: never serve or overwrite the other source's weights.",
        '  echo "$dest holds $(cat "$marker"), not $want: give the new source its own revision or model name" >&2',
        "  exit 1",
        "fi",
        "# A target without a marker was renamed by an attempt that stopped before marking it: it is complete.",
        'if [ ! -d "$dest" ]; then',
        '  mkdir -p "$partial"',  # kept across retries: both clients resume what an earlier attempt fetched
        *(f"  {line}" for line in fetch),
        *(f"  {line}" for line in check),
        "  # One rename on one file system: readers see the whole revision or nothing.",
        '  mv -T "$partial" "$dest"',
        "fi",
        'echo "$want" > "$marker.tmp"',
        'mv "$marker.tmp" "$marker"',
        'echo "weights cached in $dest"',
    ]) + "\n"


def prefetch_job(name: str, m: ModelPlan, namespace: str, cluster: ClusterInfo | None, parent: pulumi.Resource,
                 depends_on: list[pulumi.Resource]) -> KubeObject:
    """The Job fetching one model revision; for s3 sources also its ServiceAccount and, on EKS, its read-only role."""
    p, mount, claim = m.prefetch, m.volumes.mount_path, m.volumes.claim
    meta = {"namespace": namespace, "labels": labels(m.name, PREFETCH)}
    child = pulumi.ResourceOptions(parent=parent)
    depends_on = list(depends_on)
    pod: dict[str, Any] = {}
    if p.service_account is not None:
        depends_on.append(KubeObject(
            f"{name}-sa", "v1", "ServiceAccount", metadata={**meta, "name": p.service_account},
            automountServiceAccountToken=False,
            opts=child))
        pod["serviceAccountName"] = p.service_account
        if cluster is not None:
            role, policy = pod_identity_role(name, s3_read_policy(p.repo), parent)
            depends_on.append(aws.eks.PodIdentityAssociation(
                f"{name}-identity", cluster_name=cluster.name, namespace=namespace,
                service_account=p.service_account, role_arn=role.arn,
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy])))
        # Without EKS (the render target) no identity is attached: the Job would have no AWS credentials, since
        # nodes require IMDSv2 with a hop limit of 1. The render stack never runs Jobs; it only writes them.

    # The pod template is immutable: it holds only what the revision decides, so unrelated changes never
    # replace the Job. The token file is optional for that reason (set or not, the template is the same).
    env = {"HOME": "/tmp"}
    mounts = [{"name": "weights", "mountPath": mount}, {"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [
        {"name": "weights", "persistentVolumeClaim": {"claimName": claim}},
        {"name": "tmp", "emptyDir": {"sizeLimit": f"{p.tmp_gib}Gi"}},
    ]
    if p.scheme == "hf":
        env.update({"HF_HOME": "/tmp/hf", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_XET_CHUNK_CACHE_SIZE_BYTES": "0",
                    "HF_TOKEN_PATH": f"{HF_TOKEN_DIR}/token"})
        if p.hub_version is not None:
            env.update({"PYTHONPATH": "/tmp/pip", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        if p.hf_endpoint is not None:
            env["HF_ENDPOINT"] = p.hf_endpoint  # read by huggingface_hub (constants.ENDPOINT)
        mounts.append({"name": "hf-token", "mountPath": HF_TOKEN_DIR, "readOnly": True})
        volumes.append({"name": "hf-token", "secret": {"secretName": HF_TOKEN_SECRET, "optional": True}})
    memory = f"{p.memory_gib}Gi"
    container = {
        "name": "fetch", "image": p.image,
        "command": ["sh", "-c", fetch_script(p)],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": {"requests": {"cpu": p.cpu_request, "memory": memory},
                      "limits": {"cpu": p.cpu_limit, "memory": memory}},
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": mounts,
    }
    spec = {
        "backoffLimit": p.backoff_limit,
        "activeDeadlineSeconds": p.active_deadline_s,
        # A retry starts only once the failed pod is gone: never two pods writing one partial directory.
        "podReplacementPolicy": "Failed",
        # No ttlSecondsAfterFinished: a Job deleted by Kubernetes would show as drift on every `pulumi up`.
        "template": {
            "metadata": {"labels": labels(m.name, PREFETCH)},
            "spec": {
                "restartPolicy": "Never",
                # Pod Identity injects its own projected token (audience pods.eks.amazonaws.com) through a
                # mutating webhook, whatever this says; no container here talks to the Kubernetes API.
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": POD_SECURITY_CONTEXT,
                **pod,
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    timeouts = pulumi.CustomTimeouts(create=f"{p.timeout_s}s", update=f"{p.timeout_s}s")
    return KubeObject(
        f"{name}-job", "batch/v1", "Job",
        metadata={**meta, "name": p.job_name,
                  "annotations": {"inference/source": f"{p.scheme}://{p.repo}", "inference/revision": p.revision,
                                  # A Job that failed (deadline, retries) is replaced by the next `pulumi up`,
                                  # which resumes from the partial directory, instead of staying failed.
                                  "pulumi.com/replaceUnready": "true",
                                  **workload_skips([p.image])}},
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent, custom_timeouts=timeouts, depends_on=depends_on))
