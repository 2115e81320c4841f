"""The weight cache per kind (FSx for Lustre, EFS, existing RWX class) and the prefetch Job per model revision."""

import json
import subprocess
from typing import Any

import pytest
from conftest import PROD, k8s, model, stack_config

from components.conventions import CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT, RUN_AS_UID
from inference.plan.coldstart import AWAIT_MARGIN_S, PREFETCH_CPU, PREFETCH_CPU_LIMIT, PREFETCH_MEMORY_GIB
from offline.mockrun import FAKE_CLUSTER, Registered, Run, Secret, run_program

FSX = {"kind": "fsx-lustre", "storageGiB": 2400, "throughputPerTiB": 250, "subnetId": "subnet-0a1b2c3d4e5f60009"}
EFS = {"kind": "efs"}
CLUSTER_SG = FAKE_CLUSTER["vpcConfig"]["clusterSecurityGroupId"]
REV = "0" * 40
S3_MODEL = model(source="s3://weights-bucket/llama/3.1-8b", revision="v1")


def one(run: Run, type_: str) -> Registered:
    hits = run.of_type(type_)
    assert len(hits) == 1, f"expected one {type_}, found {len(hits)}"
    return hits[0]


def resource(run: Run, kind: str, name: str) -> Registered:
    hits = [r for r in run.k8s_objects() if r.inputs.get("kind") == kind and r.inputs["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind} {name}, found {len(hits)}"
    return hits[0]


def jobs(run: Run) -> list[dict[str, Any]]:
    return [r.inputs for r in run.of_type("kubernetes:batch/v1:Job")]


def fetch_container(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def script(job: dict[str, Any]) -> str:
    command = fetch_container(job)["command"]
    assert command[:2] == ["sh", "-c"]
    return command[2]


def assert_kept(r: Registered) -> None:
    assert r.protect and r.retain_on_delete, f"{r.type} {r.name} must be protected and retained on delete"


def plain_strings(value: Any) -> list[str]:
    """Every string in recorded inputs that is not wrapped as a secret."""
    if isinstance(value, Secret):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *plain_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in plain_strings(v)]
    return []


# ---------------------------------------------------------------- cache kinds


def test_pvc_kind_is_a_kept_rwx_claim_and_registers_nothing_in_aws(dev_run):
    claim = resource(dev_run, "PersistentVolumeClaim", "model-weights")
    assert claim.inputs["spec"] == {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-sc",
                                    "resources": {"requests": {"storage": "500Gi"}}}
    assert_kept(claim)
    assert not [r for r in dev_run.k8s_objects() if r.inputs["kind"] == "PersistentVolume"]
    assert not [r.type for r in dev_run.resources if r.type.startswith("aws:")]


def test_fsx_file_system_security_group_and_addon(project):
    run = project.run(config=stack_config(PROD, cache=FSX), models=[model()])
    fs = one(run, "aws:fsx/lustreFileSystem:LustreFileSystem")
    group = one(run, "aws:ec2/securityGroup:SecurityGroup")
    assert {k: fs.inputs[k] for k in ("deploymentType", "storageType", "storageCapacity",
                                      "perUnitStorageThroughput", "subnetIds", "securityGroupIds")} == {
        "deploymentType": "PERSISTENT_2", "storageType": "SSD", "storageCapacity": 2400,
        "perUnitStorageThroughput": 250, "subnetIds": "subnet-0a1b2c3d4e5f60009",
        "securityGroupIds": fs.inputs["securityGroupIds"]}
    assert len(fs.inputs["securityGroupIds"]) == 1 and fs.depends_on == [group.urn]  # only the cache's own group
    assert_kept(fs)

    assert group.inputs["vpcId"] == FAKE_CLUSTER["vpcConfig"]["vpcId"]
    for direction in ("ingress", "egress"):
        rules = group.inputs[direction]
        assert sorted((r["protocol"], r["fromPort"], r["toPort"]) for r in rules) == [
            ("tcp", 988, 988), ("tcp", 1018, 1023)]
        assert all(r["securityGroups"] == [CLUSTER_SG] and r["self"] is True for r in rules)
        assert not any("cidrBlocks" in r for r in rules)
    # the nodes accept the file servers' connections back on the same ports, from that group only
    back = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted((r.inputs["fromPort"], r.inputs["toPort"]) for r in back) == [(988, 988), (1018, 1023)]
    assert {(r.inputs["securityGroupId"], r.inputs["referencedSecurityGroupId"]) for r in back} == {
        (CLUSTER_SG, fs.inputs["securityGroupIds"][0])}

    addon = one(run, "aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "aws-fsx-csi-driver" and addon.inputs["clusterName"] == "ml-prod"
    # static provisioning needs no controller credentials: no role, no Pod Identity association
    assert "podIdentityAssociations" not in addon.inputs
    assert not [r for r in run.resources if r.type.startswith("aws:iam/") and "csi" in r.name]
    assert not run.of_type("aws:iam/rolePolicy:RolePolicy")
    assert not run.of_type("aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation")


def test_fsx_static_volume_wired_from_the_file_system(project):
    run = project.run(config=stack_config(PROD, cache=FSX), models=[model()])
    pv = resource(run, "PersistentVolume", "inference-model-weights")
    claim = resource(run, "PersistentVolumeClaim", "model-weights")
    spec = pv.inputs["spec"]
    # the mocks answer dnsName/mountName for the file system: the volume carries exactly those outputs
    assert spec["csi"] == {"driver": "fsx.csi.aws.com", "volumeHandle": "fs-0123456789abcdef0",
                           "volumeAttributes": {"dnsname": "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com",
                                                "mountname": "abcdefgh"}}
    assert spec["mountOptions"] == ["flock"] and spec["capacity"] == {"storage": "2400Gi"}
    assert spec["accessModes"] == ["ReadWriteMany"] and spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["storageClassName"] == "" and spec["claimRef"] == {"namespace": "inference", "name": "model-weights"}
    assert claim.inputs["spec"]["volumeName"] == "inference-model-weights"
    assert claim.inputs["spec"]["storageClassName"] == "" and claim.inputs["spec"]["accessModes"] == ["ReadWriteMany"]
    assert_kept(pv)
    assert_kept(claim)
    # the volume waits for the CSI driver, the claim for the volume
    assert run.one("aws:eks/addon:Addon", "weights-fsx-csi").urn in pv.depends_on
    assert pv.urn in claim.depends_on


@pytest.mark.parametrize("path", ["s3://weights-bucket", "s3://weights-bucket/cache/"])
def test_fsx_s3_link_only_with_s3_import_path(project, path):
    run = project.run(config=stack_config(PROD, cache={**FSX, "s3ImportPath": path}), models=[model()])
    dra = one(run, "aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation")
    assert dra.inputs["fileSystemId"] == "fs-0123456789abcdef0" and dra.inputs["fileSystemPath"] == "/"
    assert dra.inputs["dataRepositoryPath"] == path.rstrip("/") + "/"
    assert dra.inputs["batchImportMetaDataOnCreate"] is True
    assert dra.inputs["s3"]["autoImportPolicy"]["events"] == ["NEW", "CHANGED"]
    assert not dra.inputs.get("deleteDataInFilesystem")
    assert dra.urn in resource(run, "PersistentVolume", "inference-model-weights").depends_on


def test_efs_file_system_mount_targets_access_point_and_volume(project):
    run = project.run(config=stack_config(PROD, cache=EFS), models=[model()])
    fs = one(run, "aws:efs/fileSystem:FileSystem")
    assert fs.inputs["encrypted"] is True and fs.inputs["throughputMode"] == "elastic"
    assert_kept(fs)
    group = one(run, "aws:ec2/securityGroup:SecurityGroup")
    assert [(r["protocol"], r["fromPort"], r["toPort"], r["securityGroups"]) for r in group.inputs["ingress"]] == [
        ("tcp", 2049, 2049, [CLUSTER_SG])]
    targets = run.of_type("aws:efs/mountTarget:MountTarget")
    assert sorted(t.inputs["subnetId"] for t in targets) == PROD["inference:cluster"]["subnetIds"]
    assert all(t.inputs["fileSystemId"] == "fs-0fedcba987654321" and len(t.inputs["securityGroups"]) == 1
               for t in targets)
    point = one(run, "aws:efs/accessPoint:AccessPoint")
    assert point.inputs["posixUser"] == {"uid": RUN_AS_UID, "gid": RUN_AS_UID}
    assert point.inputs["rootDirectory"]["creationInfo"] == {"ownerUid": RUN_AS_UID, "ownerGid": RUN_AS_UID,
                                                             "permissions": "0755"}
    addon = one(run, "aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "aws-efs-csi-driver"
    assert addon.inputs["podIdentityAssociations"][0]["serviceAccount"] == "efs-csi-controller-sa"

    pv = resource(run, "PersistentVolume", "inference-model-weights")
    assert pv.inputs["spec"]["csi"] == {"driver": "efs.csi.aws.com",
                                        "volumeHandle": "fs-0fedcba987654321::fsap-0123456789abcdef0"}
    assert pv.inputs["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert_kept(pv)
    assert_kept(resource(run, "PersistentVolumeClaim", "model-weights"))
    assert {t.urn for t in targets} <= set(pv.depends_on)
    assert any("1500 MiB/s" in w for w in run.outputs["plan"]["warnings"])


# ---------------------------------------------------------------- prefetch Jobs


def test_job_names_stable_per_revision_and_new_per_revision_or_source(project):
    def job_of(**changes: Any) -> tuple[str, str]:
        run = project.run(models=[model(**changes)])
        (job,) = run.of_type("kubernetes:batch/v1:Job")
        return job.inputs["metadata"]["name"], job.name

    first, again = job_of(), job_of()
    other_revision, other_source = job_of(revision="1" * 40), job_of(source="hf://org/other")
    assert first == again
    assert first[0].startswith("m1-fetch-") and len(first[0]) == len("m1-fetch-") + 8
    assert len({first[0], other_revision[0], other_source[0]}) == 3
    # one Pulumi resource per model: a new revision replaces the Job, whose name says which revision it holds
    assert first[1] == other_revision[1] == "weights-m1-job"


def test_job_paths_match_the_model_pods(dev_run):
    for job in jobs(dev_run):
        name = job["metadata"]["labels"]["app.kubernetes.io/name"]
        revision = job["metadata"]["annotations"]["inference/revision"]
        pod = k8s(dev_run, "Deployment", name)["spec"]["template"]["spec"]
        engine = next(c for c in pod["containers"] if c["name"] == "engine")
        check = next(c for c in pod["initContainers"] if c["name"] == "check-weights")
        text = script(job)
        model_path = next(e["value"] for e in engine["env"] if e["name"] == "MODEL_PATH")
        assert model_path == f"/models/{name}/{revision}"
        assert f"dest={model_path} " in text and f"marker={model_path}.complete" in text
        assert f'test -f "{model_path}.complete"' in check["command"][2]
        # both mount the same claim at the same path: the Job read-write, the model pods read-only
        job_pod = job["spec"]["template"]["spec"]
        assert {"name": "weights", "mountPath": "/models"} in fetch_container(job)["volumeMounts"]
        assert {"name": "weights", "persistentVolumeClaim": {"claimName": "model-weights"}} in job_pod["volumes"]
        assert {"name": "weights", "persistentVolumeClaim": {"claimName": "model-weights", "readOnly": True}} in \
            pod["volumes"]
        for c in (engine, check):
            assert {"name": "weights", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]


def test_job_options_from_the_plan(project):
    run = project.run(models=[model()])
    (job,) = run.of_type("kubernetes:batch/v1:Job")
    spec = job.inputs["spec"]
    pod = spec["template"]["spec"]
    container = fetch_container(job.inputs)
    # 16 GiB from hf at 100 MiB/s: 164 s, so the deadline is the 30 min floor and Pulumi waits 10 min longer
    assert spec["activeDeadlineSeconds"] == 1800 and spec["backoffLimit"] == 3
    assert job.custom_timeouts == {"create": f"{1800 + AWAIT_MARGIN_S}s", "update": f"{1800 + AWAIT_MARGIN_S}s"}
    assert "ttlSecondsAfterFinished" not in spec and spec["podReplacementPolicy"] == "Failed"
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == POD_SECURITY_CONTEXT and container["securityContext"] == CONTAINER_SECURITY_CONTEXT
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"] == {
        "requests": {"cpu": PREFETCH_CPU, "memory": f"{PREFETCH_MEMORY_GIB}Gi"},
        "limits": {"cpu": PREFETCH_CPU_LIMIT, "memory": f"{PREFETCH_MEMORY_GIB}Gi"}}
    assert container["image"] == "python:3.12.10-slim-bookworm"
    assert "huggingface_hub==2.4.0" in script(job.inputs) and "HF_TOKEN" not in {e["name"] for e in container["env"]}
    assert job.urn in run.one("kubernetes:apps/v1:Deployment", "m1-deploy").depends_on


def test_every_deployment_depends_on_its_job(prod_run):
    for job in prod_run.of_type("kubernetes:batch/v1:Job"):
        name = job.inputs["metadata"]["labels"]["app.kubernetes.io/name"]
        deployment = prod_run.one("kubernetes:apps/v1:Deployment", f"{name}-deploy")
        assert job.urn in deployment.depends_on
        assert prod_run.one("kubernetes:core/v1:PersistentVolumeClaim", "weights-pvc").urn in job.depends_on


@pytest.mark.parametrize("source", ["hf://org/model", "s3://weights-bucket/llama/3.1-8b"])
def test_script_is_idempotent_and_renames_atomically(project, tmp_path, source):
    """Run the Job's script with stand-in clients: first it fetches, renames and marks; then it only exits."""
    run = project.run(models=[model(source=source, revision="v1", sizeGiB=0.01)])
    (job,) = jobs(run)
    cache = tmp_path / "cache"
    calls = tmp_path / "calls"
    # stand-ins record each call and write one file of about sizeGiB (10 MiB) where the real client would download
    weights = "head -c 10000000 /dev/zero >"
    stubs = (f'pip() {{ echo pip >> {calls}; }}\n'
             f'python() {{ echo hub "$3" "$4" >> {calls}; {weights} "$5/model.safetensors"; }}\n'
             f'aws() {{ echo aws "$3" >> {calls}; {weights} "$4/model.safetensors"; }}\n')
    text = stubs + script(job).replace("/models", str(cache))
    for _ in range(2):
        result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
    fetched = calls.read_text().splitlines()
    assert fetched == (["pip", "hub org/model v1"] if source.startswith("hf") else
                       ["aws s3://weights-bucket/llama/3.1-8b/"])  # the second run fetched nothing
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) == [
        ".compile", "m1", "m1/v1", "m1/v1.complete", "m1/v1/model.safetensors"]  # no partial directory left
    assert (cache / "m1/v1.complete").read_text() == f"{source}@v1\n"
    # the download goes to a sibling directory, renamed as a whole once complete, before the marker
    body = script(job)
    assert "partial=/models/m1/.v1.partial" in body
    assert body.index('if [ -f "$marker" ]') < body.index('mkdir -p "$partial"') < body.index(
        'mv -T "$partial" "$dest"') < body.index('mv "$marker.tmp" "$marker"')


def test_script_fails_without_marking_when_the_download_fails(project, tmp_path):
    run = project.run(models=[model(revision="v1")])
    cache = tmp_path / "cache"
    text = "pip() { :; }\npython() { return 3; }\n" + script(jobs(run)[0]).replace("/models", str(cache))
    assert subprocess.run(["sh", "-c", text], capture_output=True, check=False).returncode != 0
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) == [".compile", "m1", "m1/.v1.partial"]


def test_script_refuses_a_revision_cached_from_another_source(project, tmp_path):
    """Same model and revision name but a new source: fail loudly instead of serving the old source's weights."""
    run = project.run(models=[model(source="hf://org/new", revision="main")])
    cache = tmp_path / "cache"
    (cache / "m1" / "main").mkdir(parents=True)
    (cache / "m1" / "main.complete").write_text("hf://org/old@main\n")
    text = "pip() { exit 9; }\npython() { exit 9; }\n" + script(jobs(run)[0]).replace("/models", str(cache))
    result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "holds hf://org/old@main, not hf://org/new@main" in result.stderr
    assert (cache / "m1" / "main.complete").read_text() == "hf://org/old@main\n"


# ---------------------------------------------------------------- HF token


def test_hf_token_is_a_secret_file_never_plain_text(project):
    project.write(config=stack_config(PROD), models=[model(), model(name="m2", source="s3://b-bucket/m2")])
    token = "hf_SENTINEL_0123456789"
    run = run_program("test", project.root, {"inference:hfToken": token}, ["inference:hfToken"])
    secret = resource(run, "Secret", "hf-token")
    assert secret.inputs["stringData"] == Secret({"token": token})
    for r in run.resources:
        assert not [s for s in plain_strings(r.inputs) if token in s], f"{r.type} {r.name} holds the token"
    hf_job, s3_job = (resource(run, "Job", n) for n in sorted(j["metadata"]["name"] for j in jobs(run)))
    env = {e["name"]: e["value"] for e in fetch_container(hf_job.inputs)["env"]}
    assert env["HF_TOKEN_PATH"] == "/var/run/secrets/hf/token" and "HF_TOKEN" not in env
    assert {"name": "hf-token", "mountPath": "/var/run/secrets/hf", "readOnly": True} in \
        fetch_container(hf_job.inputs)["volumeMounts"]
    assert secret.urn in hf_job.depends_on and secret.urn not in s3_job.depends_on

    # setting the token later leaves the Job's (immutable) pod template as it was: no replacement
    without = project.run(config=stack_config(PROD), models=[model(), model(name="m2", source="s3://b-bucket/m2")])
    assert not [r for r in without.k8s_objects() if r.inputs["kind"] == "Secret"]
    assert resource(without, "Job", hf_job.inputs["metadata"]["name"]).inputs == hf_job.inputs


# ---------------------------------------------------------------- s3 sources


def test_s3_source_gets_a_role_scoped_to_its_prefix(project):
    run = project.run(config=stack_config(PROD), models=[S3_MODEL])
    (job,) = jobs(run)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "m1-fetch" and pod["automountServiceAccountToken"] is False
    account = resource(run, "ServiceAccount", "m1-fetch").inputs
    assert account["metadata"]["namespace"] == "inference" and account["automountServiceAccountToken"] is False
    assert fetch_container(job)["image"] == "amazon/aws-cli:2.27.50"
    assert "aws s3 sync s3://weights-bucket/llama/3.1-8b/ " in script(job)

    association = one(run, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert {k: association.inputs[k] for k in ("clusterName", "namespace", "serviceAccount", "roleArn")} == {
        "clusterName": "ml-prod", "namespace": "inference", "serviceAccount": "m1-fetch",
        "roleArn": "arn:aws:mock:us-east-1:123456789012:role/weights-m1-role"}  # its own role, not the nodes'
    role = run.one("aws:iam/role:Role", "weights-m1-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                      "Action": ["sts:AssumeRole", "sts:TagSession"]}]
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "weights-m1-policy").inputs["policy"])
    assert [(s["Action"], s["Resource"], s.get("Condition")) for s in policy["Statement"]] == [
        ("s3:GetObject", "arn:aws:s3:::weights-bucket/llama/3.1-8b/*", None),
        ("s3:ListBucket", "arn:aws:s3:::weights-bucket", {"StringLike": {"s3:prefix": ["llama/3.1-8b/*"]}}),
    ]
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert association.urn in resource(run, "Job", job["metadata"]["name"]).depends_on


def test_s3_source_on_the_render_target_gets_only_a_service_account(project):
    run = project.run(models=[S3_MODEL])
    assert resource(run, "ServiceAccount", "m1-fetch")
    assert jobs(run)[0]["spec"]["template"]["spec"]["serviceAccountName"] == "m1-fetch"
    assert not [r.type for r in run.resources if r.type.startswith("aws:")]


def test_hf_jobs_use_the_default_service_account(dev_run):
    for job in jobs(dev_run):
        assert "serviceAccountName" not in job["spec"]["template"]["spec"]
    assert not [r for r in dev_run.k8s_objects() if r.inputs["kind"] == "ServiceAccount"]
