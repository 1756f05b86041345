"""Run a function on several CPU processes joined by ``torch.distributed`` (gloo), as ``torchrun``
would on several GPUs, and collect what each rank returns."""

from __future__ import annotations

import datetime
from pathlib import Path

import torch


def _rank_main(rank: int, fn, world: int, folder: str, args: tuple) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        torch.save(fn(rank, *args), f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_on_ranks(fn, world: int, folder: Path, *args) -> list:
    """``[fn(0, *args), …, fn(world - 1, *args)]``, each computed in its own spawned process
    inside one process group. ``fn`` must be a module-level function (it is pickled by name) and
    return tensors or plain containers; a rank that raises fails the call with its traceback."""
    import torch.multiprocessing as mp

    mp.start_processes(_rank_main, args=(fn, world, str(folder), args), nprocs=world,
                       start_method="spawn")
    return [torch.load(Path(folder) / f"rank{r}.pt", weights_only=True) for r in range(world)]
