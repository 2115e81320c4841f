"""Static facts about GPU instances: the single source of GPU type, count, memory, CPU, RAM, network and price.

Sources: karpenter-provider-aws instance-types table and the EC2 instance-type pages
(docs.aws.amazon.com/ec2/latest/instancetypes/ac.html).
Prices: EC2 on-demand Linux, us-east-1, as published on PRICES_AS_OF; override per pool with `hourlyPrice`.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2025-06-30"

# Storage, us-east-1, USD per GB-month, as published on PRICES_AS_OF (aws.amazon.com/fsx/lustre/pricing,
# aws.amazon.com/efs/pricing). FSx for Lustre PERSISTENT_2 SSD by throughput tier (MB/s per TiB); EFS Standard
# storage (elastic-throughput reads, $0.03 per GB read, are not counted).
FSX_GB_MONTH_USD = {125: 0.145, 250: 0.210, 500: 0.340, 1000: 0.600}
EFS_GB_MONTH_USD = 0.30

# GPU type -> memory per GPU in GiB. A10G is sold as 24 GB of which about 22.4 GiB is usable.
GPU_MEMORY_GIB: dict[str, float] = {
    "a10g": 22.4,
    "l4": 24.0,
    "l40s": 48.0,
    "a100-40gb": 40.0,
    "a100-80gb": 80.0,
    "h100": 80.0,
    "h200": 141.0,
}
GPU_TYPES = tuple(GPU_MEMORY_GIB)


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpu_type: str
    gpus: int
    vcpu: int
    ram_gib: int
    network_gbps: float  # sustained (baseline) bandwidth; "up to" figures use the burst value
    hourly_usd: float
    # Elastic Fabric Adapters: one per network card (EC2 user guide, "Maximize network bandwidth on accelerated
    # instances with EFA": P5/P5e up to 32 network cards; network specifications of the accelerated computing types).
    efa_interfaces: int = 0

    @property
    def gpu_memory_gib(self) -> float:
        return GPU_MEMORY_GIB[self.gpu_type]


def _family(prefix: str, gpu: str, sizes: list[tuple[str, int, int, int, float, float]]) -> list[InstanceType]:
    return [InstanceType(f"{prefix}.{size}", gpu, gpus, vcpu, ram, net, price)
            for size, gpus, vcpu, ram, net, price in sizes]


# (size, GPUs, vCPU, RAM GiB, network Gbps, on-demand USD/hour)
_G5 = [
    ("xlarge", 1, 4, 16, 10, 1.006), ("2xlarge", 1, 8, 32, 10, 1.212), ("4xlarge", 1, 16, 64, 25, 1.624),
    ("8xlarge", 1, 32, 128, 25, 2.448), ("16xlarge", 1, 64, 256, 25, 4.096), ("12xlarge", 4, 48, 192, 40, 5.672),
    ("24xlarge", 4, 96, 384, 50, 8.144), ("48xlarge", 8, 192, 768, 100, 16.288),
]
_G6 = [
    ("xlarge", 1, 4, 16, 10, 0.805), ("2xlarge", 1, 8, 32, 10, 0.978), ("4xlarge", 1, 16, 64, 25, 1.323),
    ("8xlarge", 1, 32, 128, 25, 2.014), ("16xlarge", 1, 64, 256, 25, 3.397), ("12xlarge", 4, 48, 192, 40, 4.602),
    ("24xlarge", 4, 96, 384, 50, 6.675), ("48xlarge", 8, 192, 768, 100, 13.350),
]
_G6E = [
    ("xlarge", 1, 4, 32, 20, 1.861), ("2xlarge", 1, 8, 64, 20, 2.242), ("4xlarge", 1, 16, 128, 20, 3.004),
    ("8xlarge", 1, 32, 256, 25, 4.529), ("16xlarge", 1, 64, 512, 35, 7.577), ("12xlarge", 4, 48, 384, 100, 10.493),
    ("24xlarge", 4, 96, 768, 200, 15.066), ("48xlarge", 8, 192, 1536, 400, 30.131),
]

INSTANCE_TYPES: dict[str, InstanceType] = {
    it.name: it
    for it in [
        *_family("g5", "a10g", _G5),
        *_family("g6", "l4", _G6),
        *_family("g6e", "l40s", _G6E),
        InstanceType("p4d.24xlarge", "a100-40gb", 8, 96, 1152, 400, 21.958, efa_interfaces=4),
        InstanceType("p4de.24xlarge", "a100-80gb", 8, 96, 1152, 400, 27.447, efa_interfaces=4),
        InstanceType("p5.48xlarge", "h100", 8, 192, 2048, 3200, 55.040, efa_interfaces=32),
        InstanceType("p5e.48xlarge", "h200", 8, 192, 2048, 3200, 63.296, efa_interfaces=32),
        InstanceType("p5en.48xlarge", "h200", 8, 192, 2048, 3200, 63.296, efa_interfaces=16),
    ]
}
