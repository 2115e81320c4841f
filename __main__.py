"""inference: models.yaml + stack config -> validated settings -> plan -> components -> stack outputs."""

from pathlib import Path

import pulumi

from components.addons import ClusterAddons, ClusterAddonsArgs
from components.cache import ModelCache, ModelCacheArgs
from components.cluster import connect
from components.config import SECRET_KEYS, STACK_KEYS, load_settings
from components.errors import InputError
from components.model_service import ModelService, ModelServiceArgs
from components.namespace import ModelNamespace, ModelNamespaceArgs
from components.network_policy import NetworkPolicies, NetworkPoliciesArgs
from components.node_pool import gpu_node_pools
from components.planner import plan as make_plan

# absolute(), not resolve(): tests run this file through a symlink in a scratch project directory.
ROOT = Path(__file__).absolute().parent

config = pulumi.Config("inference")
values = {key: config.get(key) for key in STACK_KEYS if key not in SECRET_KEYS}
hf_token = config.get_secret("hfToken")
values["hfToken"] = "set" if hf_token is not None else None
try:
    settings = load_settings(values, pulumi.get_stack(), ROOT)
    plan = make_plan(settings)
except InputError as exc:
    # Bad input registers nothing: the program stops here with every problem, before any resource.
    raise pulumi.RunError(str(exc)) from None

stack = settings.stack
provider, cluster = connect(pulumi.get_stack(), stack)
k8s_opts = pulumi.ResourceOptions(providers=[provider])
# GPU node groups exist only on EKS; render mode (no cluster) writes Kubernetes objects and charts only.
node_pools = gpu_node_pools(plan.pools, stack.cluster, cluster) if stack.cluster and cluster else {}
addons = ClusterAddons("addons", ClusterAddonsArgs(
    device_plugin=plan.device_plugin, keda=stack.addons.keda, dcgm_exporter=stack.addons.dcgm_exporter,
    service_monitor=stack.monitoring.pod_monitor, kubernetes_version=stack.kubernetes_version,
    gpu_nodes=[pool.node_group for pool in node_pools.values()]), opts=k8s_opts)

namespace = ModelNamespace("models", ModelNamespaceArgs(stack.namespace, stack.kubernetes_version), opts=k8s_opts)
in_namespace = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
NetworkPolicies("network", NetworkPoliciesArgs(stack.namespace, plan.network), opts=in_namespace)
cache = ModelCache("weights", ModelCacheArgs(stack.cache, plan, stack.namespace, cluster,
                                             stack.cluster.subnet_ids if stack.cluster else [], hf_token),
                   opts=in_namespace)

services = {
    m.name: ModelService(m.name, ModelServiceArgs(
        model=m, namespace=stack.namespace, cache_claim=cache.claim_name, autoscaler=stack.autoscaler,
        prometheus_url=stack.monitoring.prometheus_url, pod_monitor=stack.monitoring.pod_monitor,
        depends_on=[*addons.deployment_dependencies, cache.jobs[m.name]]),
        opts=pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=addons.crd_dependencies)))
    for m in plan.models
}

pulumi.export("plan", plan.summary())
pulumi.export("namespace", stack.namespace)
pulumi.export("endpoints", {name: svc.url for name, svc in services.items()})
pulumi.export("pools", {p.name: {"gpuType": p.gpu_type, "gpusPerNode": p.gpus_per_node, "minNodes": p.min_nodes,
                                 "maxNodes": p.max_nodes, "instanceType": p.instance_type, "amiType": p.ami_type}
                        for p in plan.pools})
pulumi.export("devicePluginChart", addons.device_plugin_version)
