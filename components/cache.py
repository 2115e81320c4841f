"""ModelCache: the shared ReadWriteMany weight cache and one prefetch Job per model revision."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from inference.plan.records import CachePlan, ModelPlan

from .conventions import CACHE, PART_OF, RUN_AS_UID
from .prefetch import HF_TOKEN_SECRET, pod_identity_role, prefetch_job
from .provider import ClusterInfo

LABELS = {**PART_OF, "app.kubernetes.io/component": CACHE}
# Lustre: TCP 988 and 1018-1023 (FSx for Lustre user guide, "File system access control with Amazon VPC").
LUSTRE_PORTS = ((988, 988), (1018, 1023))
NFS_PORT = 2049
# A static claim binds to a PersistentVolume at least as large as its request, and a bound claim's request cannot
# change without volume expansion: request FSx's smallest size (EFS has no size) so that growing the file system
# only updates the PersistentVolume.
STATIC_CLAIM_SIZE = "1200Gi"
EFS_ROOT = "/weights"  # the access point's directory, created owned by the pods' user
# The EFS CSI controller never creates, resizes or deletes this file system (the program does): for a static volume
# the only AWS calls it makes are read-only descriptions.
EFS_CSI_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeMountTargets",
                                   "elasticfilesystem:DescribeAccessPoints"], "Resource": "*"}]})


@dataclass(frozen=True)
class ModelCacheArgs:
    cache: CachePlan
    models: tuple[ModelPlan, ...]
    namespace: str
    cluster: ClusterInfo | None = None  # None on the render target: no AWS resource
    subnet_ids: tuple[str, ...] = ()  # the cluster's subnets: one EFS mount target each
    hf_token: pulumi.Output[str] | None = None  # secret


class ModelCache(pulumi.ComponentResource):
    """The weight cache (FSx for Lustre, EFS or an existing RWX storage class) and a prefetch Job per model revision."""

    def __init__(self, name: str, args: ModelCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inference:cache:ModelCache", name, None, opts)
        cache = args.cache
        if cache.kind == "pvc":
            self.claim = self._dynamic_claim(name, args.namespace, cache)
        else:
            assert args.cluster is not None  # validated: cache kinds other than pvc need target eks
            self.claim = (self._fsx(name, args, cache, args.cluster) if cache.kind == "fsx-lustre"
                          else self._efs(name, args, args.cluster))
        self.claim_name = cache.claim_name

        child = pulumi.ResourceOptions(parent=self)
        self.hf_token: k8s.core.v1.Secret | None = None
        if args.hf_token is not None:
            # stringData from a secret Output stays secret in the state and the preview; mounted as a file by Jobs.
            self.hf_token = k8s.core.v1.Secret(
                f"{name}-hf-token", metadata={"name": HF_TOKEN_SECRET, "namespace": args.namespace, "labels": LABELS},
                type="Opaque", string_data={"token": args.hf_token}, opts=child)
        self.jobs: dict[str, k8s.apiextensions.CustomResource] = {}
        for m in args.models:
            # An s3 Job needs no token; an hf Job mounts it when it exists.
            wait = [self.claim] if m.prefetch.scheme == "s3" or self.hf_token is None else [self.claim, self.hf_token]
            self.jobs[m.name] = prefetch_job(f"{name}-{m.name}", m, args.namespace, args.cluster, self, wait)
        self.register_outputs({"claimName": self.claim_name,
                               "jobs": {m.name: m.prefetch.job_name for m in args.models}})

    def _keep(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        """Options for anything holding weights: never deleted by Pulumi, even when removed from the program."""
        return pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True, depends_on=depends_on or [])

    def _dynamic_claim(self, name: str, namespace: str, cache: CachePlan) -> k8s.core.v1.PersistentVolumeClaim:
        return k8s.core.v1.PersistentVolumeClaim(
            f"{name}-pvc", metadata={"name": cache.claim_name, "namespace": namespace, "labels": LABELS},
            spec={"accessModes": ["ReadWriteMany"], "storageClassName": cache.storage_class,
                  "resources": {"requests": {"storage": f"{cache.capacity_gib}Gi"}}},
            opts=self._keep())

    def _static_claim(self, name: str, namespace: str, claim: str, capacity: str, csi: dict[str, Any],
                      mount_options: list[str], depends_on: list[pulumi.Resource]
                      ) -> k8s.core.v1.PersistentVolumeClaim:
        """A PersistentVolume for an existing file system, reserved for the cache's claim, and that claim."""
        volume = f"{namespace}-{claim}"  # cluster-scoped: the namespace keeps stacks sharing a cluster apart
        spec: dict[str, Any] = {
            "capacity": {"storage": capacity}, "volumeMode": "Filesystem", "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
            "claimRef": {"namespace": namespace, "name": claim}, "csi": csi,
        }
        if mount_options:
            spec["mountOptions"] = mount_options
        pv = k8s.core.v1.PersistentVolume(f"{name}-pv", metadata={"name": volume, "labels": LABELS}, spec=spec,
                                          opts=self._keep(depends_on))
        return k8s.core.v1.PersistentVolumeClaim(
            f"{name}-pvc", metadata={"name": claim, "namespace": namespace, "labels": LABELS},
            spec={"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": volume,
                  "resources": {"requests": {"storage": STATIC_CLAIM_SIZE}}},
            opts=self._keep([pv]))

    def _csi_addon(self, name: str, addon: str, service_account: str, policy: str,
                   cluster: ClusterInfo) -> aws.eks.Addon:
        """An EKS CSI driver add-on whose controller gets its own role through EKS Pod Identity."""
        role, inline = pod_identity_role(name, policy, self)
        return aws.eks.Addon(
            name, addon_name=addon, cluster_name=cluster.name,
            pod_identity_associations=[{"role_arn": role.arn, "service_account": service_account}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[inline]))

    def _fsx_csi_addon(self, name: str, cluster: ClusterInfo) -> aws.eks.Addon:
        """The FSx CSI driver add-on, without AWS credentials: a static PersistentVolume names the file system
        (volumeHandle) and its mount (dnsname, mountname), so the node plugin mounts it and the controller, which
        only provisions dynamic volumes, makes no AWS call (aws-fsx-csi-driver static_provisioning example)."""
        return aws.eks.Addon(name, addon_name="aws-fsx-csi-driver", cluster_name=cluster.name,
                             opts=pulumi.ResourceOptions(parent=self))

    def _fsx(self, name: str, args: ModelCacheArgs, cache: CachePlan,
             cluster: ClusterInfo) -> k8s.core.v1.PersistentVolumeClaim:
        child = pulumi.ResourceOptions(parent=self)
        lustre = [{"protocol": "tcp", "from_port": low, "to_port": high, "security_groups": [cluster.security_group_id],
                   "self": True, "description": "Lustre between the file servers and with the cluster's nodes"}
                  for low, high in LUSTRE_PORTS]
        group = aws.ec2.SecurityGroup(
            f"{name}-fsx-sg", vpc_id=cluster.vpc_id, description="FSx for Lustre weight cache",
            ingress=lustre, egress=lustre, tags={"Name": f"{name}-fsx"}, opts=child)
        # Lustre servers also connect back to their clients: the nodes' group must accept them.
        for low, high in LUSTRE_PORTS:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-fsx-to-nodes-{low}", security_group_id=cluster.security_group_id,
                referenced_security_group_id=group.id, ip_protocol="tcp", from_port=low, to_port=high,
                description="Lustre from the FSx weight cache", opts=child)
        fs = aws.fsx.LustreFileSystem(
            f"{name}-fsx", deployment_type="PERSISTENT_2", storage_type="SSD",
            storage_capacity=cache.capacity_gib, per_unit_storage_throughput=cache.throughput_per_tib,
            subnet_ids=cache.subnet_id, security_group_ids=[group.id], file_system_type_version="2.15",
            tags={"Name": f"{name}-fsx"}, opts=self._keep())
        ready: list[pulumi.Resource] = [self._fsx_csi_addon(f"{name}-fsx-csi", cluster)]
        if cache.s3_import_path:
            # The bucket holds weights in the cache's own layout (<model>/<revision>/ and its marker): FSx imports
            # their metadata now and their contents on first read, so prefetch Jobs find the markers and stop.
            ready.append(aws.fsx.DataRepositoryAssociation(
                f"{name}-fsx-s3", file_system_id=fs.id, file_system_path="/",
                data_repository_path=cache.s3_import_path,
                batch_import_meta_data_on_create=True,
                # No DELETED events: an object removed from S3 never pulls weights from under running replicas.
                s3={"auto_import_policy": {"events": ["NEW", "CHANGED"]}}, opts=child))
        csi = {"driver": "fsx.csi.aws.com", "volumeHandle": fs.id,
               "volumeAttributes": {"dnsname": fs.dns_name, "mountname": fs.mount_name}}
        return self._static_claim(name, args.namespace, cache.claim_name, f"{cache.capacity_gib}Gi", csi, ["flock"],
                                  ready)

    def _efs(self, name: str, args: ModelCacheArgs, cluster: ClusterInfo) -> k8s.core.v1.PersistentVolumeClaim:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            f"{name}-efs-sg", vpc_id=cluster.vpc_id, description="EFS weight cache",
            ingress=[{"protocol": "tcp", "from_port": NFS_PORT, "to_port": NFS_PORT,
                      "security_groups": [cluster.security_group_id], "description": "NFS from the cluster's nodes"}],
            tags={"Name": f"{name}-efs"}, opts=child)
        fs = aws.efs.FileSystem(f"{name}-efs", encrypted=True, performance_mode="generalPurpose",
                                throughput_mode="elastic", tags={"Name": f"{name}-efs"}, opts=self._keep())
        # Named by subnet, so adding or removing one subnet leaves the other mount targets alone.
        targets = [aws.efs.MountTarget(f"{name}-efs-{subnet}", file_system_id=fs.id, subnet_id=subnet,
                                       security_groups=[group.id], opts=child)
                   for subnet in args.subnet_ids]
        # EFS's root directory is writable by root only; the pods run as RUN_AS_UID. The access point gives them a
        # directory of their own and acts as that user for every client.
        point = aws.efs.AccessPoint(
            f"{name}-efs-ap", file_system_id=fs.id, posix_user={"uid": RUN_AS_UID, "gid": RUN_AS_UID},
            root_directory={"path": EFS_ROOT, "creation_info": {
                "owner_uid": RUN_AS_UID, "owner_gid": RUN_AS_UID, "permissions": "0755"}},
            tags={"Name": f"{name}-efs"}, opts=child)
        addon = self._csi_addon(f"{name}-efs-csi", "aws-efs-csi-driver", "efs-csi-controller-sa", EFS_CSI_POLICY,
                                cluster)
        csi = {"driver": "efs.csi.aws.com", "volumeHandle": pulumi.Output.concat(fs.id, "::", point.id)}
        return self._static_claim(name, args.namespace, args.cache.claim_name, STATIC_CLAIM_SIZE, csi, [],
                                  [addon, *targets])
