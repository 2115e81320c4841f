"""Multi-node replicas: a replica with more GPUs than one node has spans whole nodes, one pod per node.

`gpu.count` above a node's GPUs must be a multiple of them: the replica is count / gpusPerNode nodes, run as one
LeaderWorkerSet group (kubernetes-sigs/lws). How the engine splits the model over the nodes is the engine's own
recommendation (inference/engines.py MultiNodeLaunch): vLLM tensor parallel within a node and pipeline parallel
across nodes; SGLang tensor parallel over all GPUs.
"""

from __future__ import annotations

from dataclasses import replace

from ..catalog import INSTANCE_TYPES, InstanceType
from ..engines import ENGINES
from ..errors import Problem
from ..settings import TP_SIZES, ModelSpec, NodePoolCfg, Settings
from .records import Efa, MultiNode, Scaling

# The LeaderWorkerSet restart policy: a failed pod takes its group down and LWS recreates all of its pods, as
# every rank of a distributed engine must restart together (LWS CRD v0.10.0, leaderWorkerTemplate.restartPolicy).
RESTART_POLICY = "RecreateGroupOnPodRestart"

# Why the engines without a multi-node launch cannot run a replica over several nodes.
NO_MULTINODE = {
    "tgi": "its launcher only spawns shards on the local node (no node-rank option; master address localhost)",
    "trtllm": "trtllm-serve spans nodes only under an MPI launcher (mpirun or srun), which this platform does not run",
}


def nodes_per_replica(spec: ModelSpec, it: InstanceType) -> int:
    return 1 if spec.gpu.count <= it.gpus else spec.gpu.count // it.gpus


def parallelism(spec: ModelSpec, it: InstanceType) -> tuple[int, int]:
    """(tensor parallel, pipeline parallel) of one replica: all its GPUs tensor-parallel when it fits a node."""
    nodes = nodes_per_replica(spec, it)
    launch = ENGINES[spec.engine].multinode
    if nodes == 1 or launch is None:
        return spec.gpu.count, 1
    return launch.parallelism(it.gpus, nodes)


def replica_items(spec: ModelSpec, it: InstanceType) -> list[int]:
    """The GPUs one replica takes on each node it uses: its count, or every GPU of each of its nodes."""
    nodes = nodes_per_replica(spec, it)
    return [spec.gpu.count] if nodes == 1 else [it.gpus] * nodes


def spans(settings: Settings, index: int, spec: ModelSpec, pool: NodePoolCfg, it: InstanceType,
          problems: list[Problem]) -> bool:
    """Whether the model may span nodes of this pool (its count is a multiple of the pool's GPUs per node); else a
    problem naming the engine or the flags that stand in the way."""
    name, count = spec.engine, spec.gpu.count
    launch = ENGINES[name].multinode
    where = f"gpu.count {count} is more than the {it.gpus} GPUs of one node of pool {pool.name} ({pool.instance_type})"
    if launch is None:
        capable = ", ".join(n for n, e in ENGINES.items() if e.multinode)
        problems.append(settings.model_problem(
            index, "gpu.count", f"{where}, so a replica would span {count // it.gpus} nodes, but engine {name} "
            f"cannot run one replica over several nodes: {NO_MULTINODE.get(name, 'it has no multi-node launch')}; "
            f"allowed: gpu.count at most {it.gpus} with engine {name}, or engine {capable}"))
        return False
    taken = [a.split("=", 1)[0] for a in spec.engine_args if a.split("=", 1)[0] in launch.flags]
    if taken:
        problems.append(settings.model_problem(
            index, "engineArgs", f"engineArgs sets {', '.join(taken)}, which the multi-node launch of engine {name} "
            f"sets for a replica over {count // it.gpus} nodes; flags it manages: {', '.join(launch.flags)}"))
        return False
    return True


def uneven(settings: Settings, index: int, spec: ModelSpec, typed: list[tuple[NodePoolCfg, InstanceType]]) -> Problem:
    """gpu.count above every pool's node but a multiple of none: what counts are allowed instead."""
    per_node = sorted({it.gpus for _, it in typed})
    biggest = per_node[-1]
    pools = ", ".join(f"{p.name} ({it.gpus} per node)" for p, it in typed)
    multiples = "; ".join(f"{', '.join(str(n * k) for k in (2, 3, 4))}, ... for {n}-GPU nodes" for n in per_node)
    return settings.model_problem(
        index, "gpu.count", f"gpu.count {spec.gpu.count} exceeds the GPUs of one node ({biggest} in the largest "
        f"'{spec.gpu.type}' pool; pools: {pools}) and is not a multiple of a node's GPUs: a replica larger than one "
        f"node spans whole nodes; allowed: {', '.join(str(t) for t in TP_SIZES if t <= biggest)} (one node), or a "
        f"multiple of the GPUs per node ({multiples})")


def single_node_alternative(spec: ModelSpec) -> str | None:
    """An instance type of the same GPU that holds the whole replica on one node, if the catalog has one."""
    fits = [it for it in INSTANCE_TYPES.values() if it.gpu_type == spec.gpu.type and it.gpus >= spec.gpu.count]
    return min(fits, key=lambda it: (it.gpus, it.hourly_usd)).name if fits else None


def args(spec: ModelSpec, it: InstanceType, base: list[str], leader: bool) -> tuple[str, ...]:
    """The engine's command line on the leader or a worker: its own flags, the multi-node launch, engineArgs."""
    launch = ENGINES[spec.engine].multinode
    nodes = nodes_per_replica(spec, it)
    extra = launch.launch(nodes, parallelism(spec, it)[1], leader) if launch and nodes > 1 else []
    return (*base, *extra, *spec.engine_args)


def multinode(spec: ModelSpec, it: InstanceType, efa: bool, base: list[str]) -> MultiNode | None:
    """The multi-node facts of a replica, or None when it fits one node."""
    nodes = nodes_per_replica(spec, it)
    launch = ENGINES[spec.engine].multinode
    if nodes == 1 or launch is None:
        return None
    tp, pp = parallelism(spec, it)
    return MultiNode(nodes_per_replica=nodes, gpus_per_pod=it.gpus, tensor_parallel=tp, pipeline_parallel=pp,
                     worker_args=args(spec, it, base, leader=False), restart_policy=RESTART_POLICY,
                     efa_devices=it.efa_interfaces if efa else 0, launch=launch.source)


def efa(settings: Settings, pool: NodePoolCfg, it: InstanceType, users: list[ModelSpec]) -> Efa | None:
    """EFA for a pool whose instance type has it and that serves a replica over several nodes, unless `efa: false`.

    Single-node replicas talk over NVLink within the node and gain nothing from EFA, so pools without a multi-node
    model stay as they are."""
    if not (pool.efa and it.efa_interfaces and any(nodes_per_replica(s, it) > 1 for s in users)):
        return None
    cluster = settings.stack.cluster
    # A cluster placement group lies in one Availability Zone: the pool's nodes go to the first cluster subnet.
    return Efa(interfaces=it.efa_interfaces, subnet_ids=tuple(cluster.subnet_ids[:1]) if cluster else ())


def leader_scaling(scaling: Scaling, name: str, namespace: str) -> Scaling:
    """The autoscaler's query over the leader pods: LWS names a group's leader <name>-<group index> and its workers
    <name>-<group index>-<worker index> (StatefulSets of those names); only the leader serves requests and metrics."""
    a = scaling.autoscale
    if a is None:
        return scaling
    query = f'sum({a.series}{{namespace="{namespace}",pod=~"{name}-[0-9]+"}})'
    return replace(scaling, autoscale=replace(a, query=query))
