"""One process or many: the same code path under ``python -m train`` and ``torchrun``.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous address); when
they are absent the run is a single process and no process group is created. The backend is NCCL
on CUDA and gloo on CPU. Only rank 0 writes files; the helpers here gather what the others computed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup_distributed", "teardown_distributed", "all_gather_objects", "barrier", "all_reduce_sum"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands.

    Attributes:
        rank: global rank (0 for a single process).
        world_size: number of processes.
        local_rank: rank on this machine (picks the GPU).
        device: the torch device of this process.
        backend: ``nccl``, ``gloo`` or None (single process, no process group).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def _resolve_device(preference: str, local_rank: int) -> torch.device:
    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def setup_distributed(device: str = "auto") -> DistInfo:
    """Reads the torchrun environment, creates the process group if there are several processes.

    Args:
        device: ``auto`` or a device string; under torchrun, ``cuda`` becomes ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size <= 1:
        return DistInfo(device=dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", world_size=world_size, rank=rank)
    log.info("process %d of %d on %s (%s)", rank, world_size, dev, backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, backend=backend)


def teardown_distributed(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` for a single process."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(info: DistInfo, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over the ranks."""
    if not info.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=info.device if info.backend == "nccl" else "cpu")
    dist.all_reduce(t)
    return t.tolist()
