"""`python -m launch.nccl_probe GPUS`: the all-reduce `llmkit doctor` runs across this node's first GPUS GPUs.

One process per GPU (torch.multiprocessing.spawn), torch.distributed's nccl backend met through a file in a temporary
directory (no port to choose). Each rank adds rank+1, so every rank must hold GPUS*(GPUS+1)/2; then a 256 MiB
all-reduce is timed for the bus bandwidth. Prints one JSON line: {"nccl", "bus_gb_s", "mib"}, or {"skipped": why}
where torch has no CUDA or sees too few GPUs; a failing rank ends it with its traceback and a non-zero exit.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time

MIB = 256
ITERATIONS = 5


def _rank(rank: int, world: int, init_file: str) -> None:
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        total = torch.full((1,), float(rank + 1), device="cuda")
        dist.all_reduce(total)
        expected = world * (world + 1) / 2
        if total.item() != expected:
            raise RuntimeError(f"the all-reduce gave {total.item()} on rank {rank}, not {expected}")
        block = torch.ones(MIB * 2**20 // 4, device="cuda")
        dist.all_reduce(block)
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(ITERATIONS):
            dist.all_reduce(block)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / ITERATIONS
        if rank == 0:
            version = torch.cuda.nccl.version()
            shown = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
            bus = 2 * (world - 1) / world * MIB * 2**20 / seconds
            print(json.dumps({"nccl": shown, "bus_gb_s": bus / 1e9, "mib": MIB}), flush=True)
    finally:
        dist.destroy_process_group()


def main() -> None:
    world = int(sys.argv[1])
    import torch

    if torch.version.cuda is None or not torch.cuda.is_available():
        print(json.dumps({"skipped": f"torch {torch.__version__} has no CUDA here, so NCCL cannot be tried"}))
        return
    if torch.cuda.device_count() < world:
        print(json.dumps({"skipped": f"torch sees {torch.cuda.device_count()} GPU(s), not {world}"}))
        return
    with tempfile.TemporaryDirectory() as scratch:
        torch.multiprocessing.spawn(_rank, args=(world, f"{scratch}/init"), nprocs=world)


if __name__ == "__main__":
    main()
