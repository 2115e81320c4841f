"""inference: models.yaml + stack config -> validated settings -> plan -> components -> stack outputs."""

from pathlib import Path

import pulumi

from components.cache import ModelCache, ModelCacheArgs
from components.cluster import connect
from components.config import SECRET_KEYS, STACK_KEYS, load_settings
from components.errors import InputError
from components.model_service import ModelService, ModelServiceArgs
from components.namespace import ModelNamespace, ModelNamespaceArgs
from components.network_policy import NetworkPolicies, NetworkPoliciesArgs
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

namespace = ModelNamespace("models", ModelNamespaceArgs(stack.namespace, stack.kubernetes_version), opts=k8s_opts)
in_namespace = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
NetworkPolicies("network", NetworkPoliciesArgs(stack.namespace, plan.network), opts=in_namespace)
cache = ModelCache("weights", ModelCacheArgs(stack.cache, plan, stack.namespace), opts=in_namespace)

services = {
    m.name: ModelService(m.name, ModelServiceArgs(
        model=m, namespace=stack.namespace, cache_claim=cache.claim_name, autoscaler=stack.autoscaler,
        prometheus_url=stack.monitoring.prometheus_url, pod_monitor=stack.monitoring.pod_monitor,
        depends_on=[cache.jobs[m.name]] if m.name in cache.jobs else []), opts=in_namespace)
    for m in plan.models
}

pulumi.export("plan", plan.summary())
pulumi.export("namespace", stack.namespace)
pulumi.export("endpoints", {name: svc.url for name, svc in services.items()})
