"""The plan as a terminal table or a Markdown pull-request comment, from the plan summary (stack output `plan`)."""

from __future__ import annotations

from typing import Any

from .planner import nodes


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _model_rows(plan: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in plan["models"]:
        cs = m["coldStart"]
        replicas = str(m["minReplicas"]) if m["minReplicas"] == m["maxReplicas"] else \
            f"{m['minReplicas']}-{m['maxReplicas']}"
        rows.append([
            m["name"], m["engine"], m["pool"], f"{m['gpus']}x {m['gpuType']}", replicas,
            f"{m['nodesAtMin']}-{m['nodesAtMax']}", f"{m['weightsGiB']:g}", f"{m['kvHeadroomGiB']:g}",
            f"{_duration(cs['estimate_s'])} (pull {cs['image_pull_s']}s + read {cs['weight_read_s']}s + "
            f"start {cs['engine_start_s']}s)",
            _duration(cs["budget_s"]), f"{m['rollout']['maxSurge']}/{m['rollout']['maxUnavailable']}",
            f"{_usd(m['monthlyUsdMin'])}-{_usd(m['monthlyUsdMax'])}",
        ])
    return rows


MODEL_HEADER = ["model", "engine", "pool", "GPUs/replica", "replicas", "nodes", "weights GiB", "KV GiB",
                "cold start (estimate)", "startup budget", "surge/unavail", "$/month"]
POOL_HEADER = ["pool", "instance", "GPU", "GPUs/node", "nodes min-max", "demand at min", "demand at max",
               "$/hour", "$/month min-max"]


def _pool_rows(plan: dict[str, Any]) -> list[list[str]]:
    return [[p["name"], p["instance_type"], p["gpu_type"], str(p["gpus_per_node"]),
             f"{p['min_nodes']}-{p['max_nodes']}", f"{nodes(p['nodes_at_min'])} / {p['gpus_at_min']} GPUs",
             f"{nodes(p['nodes_at_max'])} / {p['gpus_at_max']} GPUs", f"{p['hourly_usd']:.2f}",
             f"{_usd(p['monthly_usd_min'])}-{_usd(p['monthly_usd_max'])}"] for p in plan["pools"]]


def _cache_line(plan: dict[str, Any]) -> str:
    c = plan["cache"]
    capacity = "elastic" if c["capacity_gib"] is None else f"{c['capacity_gib']} GiB"
    per_client = "node network" if not c["per_client_mibps"] else f"{c['per_client_mibps']} MiB/s"
    return (f"cache {c['kind']}: {c['weights_gib']:g} GiB of weights in {capacity}; reads {c['aggregate_mibps']} "
            f"MiB/s aggregate, {per_client} per client; every replica starting at once reads for "
            f"{_duration(c['all_start_s'])}")


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths]),
                      *(fmt.format(*r) for r in rows)])


def text(plan: dict[str, Any]) -> str:
    parts = [_table(MODEL_HEADER, _model_rows(plan)), "", _table(POOL_HEADER, _pool_rows(plan)), "", _cache_line(plan),
             f"prices: EC2 on-demand as of {plan['pricesAsOf']} unless a pool sets hourlyPrice"]
    parts += [f"warning: {w}" for w in plan["warnings"]]
    return "\n".join(parts)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(r) + " |" for r in esc)])


def markdown(plan: dict[str, Any], stack: str) -> str:
    parts = [f"### inference plan: stack `{stack}`", "", "**Models**", "", _md_table(MODEL_HEADER, _model_rows(plan)),
             "", "**Node pools** (demand vs capacity)", "", _md_table(POOL_HEADER, _pool_rows(plan)), "",
             f"**Weight cache**: {_cache_line(plan).removeprefix('cache ')}", "",
             f"_Prices: EC2 on-demand as of {plan['pricesAsOf']} unless a pool sets `hourlyPrice`._"]
    if plan["warnings"]:
        parts += ["", "**Warnings**", "", *(f"- {w}" for w in plan["warnings"])]
    return "\n".join(parts) + "\n"
