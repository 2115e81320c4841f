"""inference: models.yaml + stack config -> validated settings -> plan -> components -> stack outputs."""

from pathlib import Path

import pulumi

from components.addons import ClusterAddons, ClusterAddonsArgs
from components.cache import ModelCache, ModelCacheArgs
from components.leader_worker import LeaderWorkerService, LeaderWorkerServiceArgs
from components.model_service import ModelService, ModelServiceArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.namespace import ModelNamespace, ModelNamespaceArgs
from components.network_policy import NetworkPolicies, NetworkPoliciesArgs
from components.node_pool import gpu_node_pools
from components.prepull import ImagePrepull, ImagePrepullArgs
from components.provider import connect, node_group_sizes, subnet_zones
from inference.errors import InputError
from inference.plan import plan as make_plan
from inference.plan.placement import NODE_LABEL_POOL
from inference.plan.records import ModelPlan
from inference.plan.serialize import to_data
from inference.settings import SECRET_KEYS, STACK_KEYS, load_settings

# absolute(), not resolve(): tests run this file through a symlink in a scratch project directory.
ROOT = Path(__file__).absolute().parent

config = pulumi.Config("inference")
values = {key: config.get(key) for key in STACK_KEYS if key not in SECRET_KEYS}
hf_token = config.get_secret("hfToken")
values["hfToken"] = "set" if hf_token is not None else None
try:
    settings = load_settings(values, pulumi.get_stack(), ROOT)
    # EFS needs one mount target per zone: the planner checks the cluster subnets' zones, looked up once here.
    cluster_cfg = settings.stack.cluster
    eks = settings.stack.target == "eks" and cluster_cfg is not None
    zones = subnet_zones(cluster_cfg.subnet_ids) if eks and settings.stack.cache.kind == "efs" else None
    # A node group whose size falls outside a changed minNodes-maxNodes gets a new desired size: its current one.
    sizes = node_group_sizes(cluster_cfg.name, NODE_LABEL_POOL) if eks else None
    plan = make_plan(settings, zones, sizes)
except InputError as exc:
    # Bad input registers nothing: the program stops here with every problem, before any resource.
    raise pulumi.RunError(str(exc)) from exc  # the cause carries the problems (the render prints them as JSON)

provider, cluster = connect(plan.stack, plan.cluster)
k8s_opts = pulumi.ResourceOptions(providers=[provider])
# GPU node groups exist only on EKS; render mode (no cluster) writes Kubernetes objects and charts only.
node_pools = gpu_node_pools(plan.pools, plan.cluster, cluster) if plan.cluster and cluster else {}
addons = ClusterAddons("addons", ClusterAddonsArgs(
    plan.addons, plan.kubernetes_version, [pool.node_group for pool in node_pools.values()]), opts=k8s_opts)

namespace = ModelNamespace("models", ModelNamespaceArgs(plan.namespace, plan.kubernetes_version), opts=k8s_opts)
in_namespace = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
NetworkPolicies("network", NetworkPoliciesArgs(plan.namespace, plan.network), opts=in_namespace)
Monitoring("monitoring", MonitoringArgs(plan.namespace, plan.monitoring), opts=in_namespace)
ImagePrepull("prepull", ImagePrepullArgs(plan.namespace, plan.prepull), opts=in_namespace)
cache = ModelCache("weights", ModelCacheArgs(plan.cache, plan.models, plan.namespace, cluster,
                                             plan.cluster.subnet_ids if plan.cluster else (), hf_token),
                   opts=in_namespace)

model_opts = pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=addons.crd_dependencies))


def serve(m: ModelPlan) -> ModelService | LeaderWorkerService:
    """A Deployment for a model that fits one node, a LeaderWorkerSet for one whose replica spans several."""
    depends_on = [*addons.deployment_dependencies, cache.jobs[m.name]]
    if m.multinode is None:
        return ModelService(m.name, ModelServiceArgs(m, plan.namespace, depends_on), opts=model_opts)
    return LeaderWorkerService(m.name, LeaderWorkerServiceArgs(
        m, plan.namespace, [*depends_on, *addons.multinode_dependencies]), opts=model_opts)


services = {m.name: serve(m) for m in plan.models}

pulumi.export("plan", to_data(plan))
pulumi.export("namespace", plan.namespace)
pulumi.export("endpoints", {name: svc.url for name, svc in services.items()})
pulumi.export("pools", {p.name: {"gpuType": p.gpu_type, "gpusPerNode": p.gpus_per_node, "minNodes": p.min_nodes,
                                 "maxNodes": p.max_nodes, "instanceType": p.instance_type, "amiType": p.ami_type}
                        for p in plan.pools})
pulumi.export("devicePluginChart", addons.device_plugin_version)
