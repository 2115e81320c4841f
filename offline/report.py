"""The plan as a terminal table or a Markdown pull-request comment, from the plan summary (stack output `plan`)."""

from __future__ import annotations

import re
from typing import Any

from inference.errors import InputError, safe
from inference.plan.units import nodes


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _kv(fit: dict[str, Any]) -> str:
    """KV tokens and how many full-context sequences they are, against batchSize; or why it is unchecked."""
    if fit["kvTokens"] is None:
        return "not checked"
    batch = f" (batch {fit['batchSize']})" if fit["batchSize"] else ""
    fp8 = ", fp8" if fit["kvCacheDtype"] == "fp8" else ""
    return f"{fit['kvTokens']:,} = {fit['fullContextSequences']}x {fit['contextWindow']}{batch}{fp8}"


def _gpus(m: dict[str, Any]) -> str:
    """GPUs per replica; for a replica over several nodes also its nodes and how the engine splits the model."""
    pl, mn = m["placement"], m.get("multinode")
    out = f"{pl['gpus']}x {pl['gpuType']}"
    if mn:
        out += (f" = {mn['nodesPerReplica']} nodes x {mn['gpusPerPod']} (TP {mn['tensorParallel']} x PP "
                f"{mn['pipelineParallel']}{', EFA' if mn['efaDevices'] else ''})")
    return out


def _model_rows(plan: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in plan["models"]:
        cs, pl, sc, fit = m["coldStart"], m["placement"], m["scaling"], m["fit"]
        replicas = str(sc["minReplicas"]) if sc["minReplicas"] == sc["maxReplicas"] else \
            f"{sc['minReplicas']}-{sc['maxReplicas']}"
        rows.append([
            m["name"], m["engine"], pl["pool"], _gpus(m), replicas,
            f"{pl['nodesAtMin']}-{pl['nodesAtMax']}", f"{fit['weightsGiB']:g}", f"{fit['kvCacheGiB']:g}", _kv(fit),
            _duration(cs["budgetSeconds"]), "surge" if m["rollout"]["maxSurge"] else "replace",
            f"{_usd(m['cost']['monthlyUsdMin'])}-{_usd(m['cost']['monthlyUsdMax'])}",
        ])
    return rows


MODEL_HEADER = ["model", "engine", "pool", "GPUs/replica", "replicas", "nodes", "weights GiB", "KV GiB",
                "KV tokens = full-context sequences", "startup budget", "rollout", "$/month min-max"]
COLD_HEADER = ["model", "loader", "fresh node (pull + read + start + compile)", "warm node (read + start)",
               "physical limit (weights / tightest link + start)", "warm / limit"]


def _cold_rows(plan: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in plan["models"]:
        cs = m["coldStart"]
        loader = cs["loader"] + (f" x{cs['streamerConcurrency']}" if cs["streamerConcurrency"] else "")
        rows.append([
            m["name"], loader,
            f"{_duration(cs['estimateSeconds'])} = {cs['imagePullSeconds']}s + {cs['weightReadSeconds']}s + "
            f"{cs['engineStartSeconds']}s + {cs['compileSeconds']}s",
            f"{_duration(cs['warmSeconds'])} = {cs['weightReadSeconds']}s + {cs['engineStartSeconds']}s",
            f"{_duration(cs['floorSeconds'])}: {cs['limitSeconds']}s at {cs['limitMiBps']} MiB/s ({cs['limitLink']})",
            f"{cs['warmRatio']:.2f}x"])
    return rows
POOL_HEADER = ["pool", "instance", "GPU", "GPUs/node", "nodes min-max", "demand at min", "demand at max",
               "with surge room", "$/hour", "$/month min-max"]


def _pool_rows(plan: dict[str, Any]) -> list[list[str]]:
    rows = [[p["name"], p["instanceType"], p["gpuType"], str(p["gpusPerNode"]),
             f"{p['minNodes']}-{p['maxNodes']}", f"{nodes(p['nodesAtMin'])} / {p['gpusAtMin']} GPUs",
             f"{nodes(p['nodesAtMax'])} / {p['gpusAtMax']} GPUs", nodes(p["nodesForUpdates"]), f"{p['hourlyUsd']:.2f}",
             f"{_usd(p['monthlyUsdMin'])}-{_usd(p['monthlyUsdMax'])}"] for p in plan["pools"]]
    cache = plan["cache"]["monthlyUsd"]
    if cache is not None:
        rows.append([f"cache ({plan['cache']['kind']})", "", "", "", "", "", "", "", "", f"{_usd(cache)}"])
    total = plan["cost"]
    rows.append(["total", "", "", "", "", "", "", "", "",
                 f"{_usd(total['monthlyUsdMin'])}-{_usd(total['monthlyUsdMax'])}"])
    return rows


def _cache_line(plan: dict[str, Any]) -> str:
    c = plan["cache"]
    capacity = "elastic" if c["capacityGiB"] is None else f"{c['capacityGiB']} GiB"
    per_client = "node network" if not c["perClientMiBps"] else f"{c['perClientMiBps']} MiB/s"
    price = "price of the storage class unknown, not counted" if c["monthlyUsd"] is None else \
        f"{_usd(c['monthlyUsd'])}/month"
    line = (f"cache {c['kind']}: {c['weightsGiB']:g} GiB of weights in {capacity}; reads {c['aggregateMiBps']} "
            f"MiB/s aggregate, {per_client} per client; every replica starting at once reads for "
            f"{_duration(c['allStartSeconds'])}; {price}")
    t = c["target"]
    if t:
        line += (f"; coldStartTarget {_duration(t['targetSeconds'])} needs {t['neededMiBps']} MiB/s ({t['model']}'s "
                 f"replicas together): the cheapest FSx for Lustre reading that is {t['storageGiB']} GiB at "
                 f"{t['throughputPerTiB']} MB/s/TiB, ${t['monthlyUsd']:,.0f}/month")
    return line


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths]),
                      *(fmt.format(*r) for r in rows)])


def text(plan: dict[str, Any]) -> str:
    parts = [_table(MODEL_HEADER, _model_rows(plan)), "", _table(COLD_HEADER, _cold_rows(plan)), "",
             _table(POOL_HEADER, _pool_rows(plan)), "", _cache_line(plan),
             f"prices: EC2 on-demand as of {plan['cost']['pricesAsOf']} unless a pool sets hourlyPrice"]
    parts += [f"warning: {w}" for w in plan["warnings"]]
    return "\n".join(parts)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(r) + " |" for r in esc)])


def markdown(plan: dict[str, Any], stack: str) -> str:
    parts = [f"### inference plan: stack `{stack}`", "", "**Models**", "", _md_table(MODEL_HEADER, _model_rows(plan)),
             "", "**Cold start**", "", _md_table(COLD_HEADER, _cold_rows(plan)), "",
             "**Node pools** (demand vs capacity)", "", _md_table(POOL_HEADER, _pool_rows(plan)), "",
             f"**Weight cache**: {_cache_line(plan).removeprefix('cache ')}", "",
             f"_Prices: EC2 on-demand as of {plan['cost']['pricesAsOf']} unless a pool sets `hourlyPrice`._"]
    if plan["warnings"]:
        parts += ["", "**Warnings**", "", *(f"- {w}" for w in plan["warnings"])]
    return "\n".join(parts) + "\n"


def _md_code(text: str) -> str:
    """Inline code that holds any text: a fence longer than any run of backticks in it."""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def errors_markdown(error: InputError, stack: str) -> str:
    """The problems as a pull-request comment: one bullet per problem, every value in inline code."""
    count = len(error.problems)
    parts = [f"### inference plan: stack `{stack}` has {count} problem{'s' if count != 1 else ''}", ""]
    for p in error.shown:
        where = f"{p.file}:{p.line}" if p.line else p.file
        names = "".join(f" {label} {_md_code(safe(value))}" for label, value in (("model", p.model), ("field", p.field))
                        if value)
        parts.append(f"- {_md_code(safe(where))}{names}: {_md_code(safe(p.message))}")
    if error.omitted:
        parts += ["", f"_... and {error.omitted} more (only the first {len(error.shown)} are shown)._"]
    return "\n".join(parts) + "\n"
