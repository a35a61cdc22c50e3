"""Sharded models for ``initcheck model FILE:FACTORY --nproc N``: two right, two wrong.

Every factory runs on every rank, with the process group initialized and
every rank seeded alike (as a training script does).  On a CPU mesh DTensor's
random ops do not use its offset-based RNG tracker
(``torch/distributed/tensor/_random.py``: ``is_rng_supported_mesh`` is False
for ``cpu``), so a DTensor's ``uniform_`` draws the local shard from the
rank's own generator: with a common seed, every rank draws the same values.

    initcheck model examples/sharded_models.py:fsdp_initialized_then_sharded --nproc 2   # PASS
    initcheck model examples/sharded_models.py:fsdp_seeded_apart --nproc 2              # PASS
    initcheck model examples/sharded_models.py:fsdp_common_seed --nproc 2               # FAIL: shards
    initcheck model examples/sharded_models.py:row_parallel_local_fan --nproc 4         # FAIL: std
    initcheck model examples/sharded_models.py:row_parallel_global_fan --nproc 4        # PASS
"""

import math

import torch
import torch.distributed as dist
from torch import nn

WIDTH = 64


def _mesh():
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh("cpu", (dist.get_world_size(),))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(WIDTH, 2 * WIDTH), nn.ReLU(), nn.Linear(2 * WIDTH, WIDTH))


def _fully_shard(model: nn.Module) -> nn.Module:
    from torch.distributed.fsdp import fully_shard

    mesh = _mesh()
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def fsdp_initialized_then_sharded() -> nn.Module:
    """Right: built and initialized whole (every rank alike), then sharded:
    each rank keeps its slice of one global tensor."""
    return _fully_shard(_mlp())


def fsdp_seeded_apart() -> nn.Module:
    """Right: built on the meta device, sharded, materialized, and each rank
    seeded apart before ``reset_parameters`` (the fans come from the DTensor's
    global shape, so the law is the global one)."""
    with torch.device("meta"):
        model = _mlp()
    _fully_shard(model)
    model.to_empty(device="cpu")
    torch.manual_seed(_rank_seed(torch.initial_seed(), 1))
    for layer in model:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()
    return model


def fsdp_common_seed() -> nn.Module:
    """Wrong: as above, without seeding the ranks apart: rank r's shard of every
    weight is bit for bit rank 0's."""
    with torch.device("meta"):
        model = _mlp()
    _fully_shard(model)
    model.to_empty(device="cpu")
    for layer in model:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()
    return model


def _rank_seed(shared: int, stream: int) -> int:
    """A seed of this rank's own, from the seed every rank shares (one stream
    per use, so two uses never draw the same values)."""
    return (shared * 1_000_003 + stream * 65_537 + dist.get_rank() + 1) % (1 << 62)


def _row_parallel(bound_of_local_fan: bool, shared: int, stream: int = 0) -> nn.Module:
    """A Linear whose weight (out, in) is split along ``in`` over the ranks
    (``Shard(1)``, row-parallel), each rank initializing its (out, in / N)
    shard with its own generator seeded apart; the bias is replicated."""
    from torch.distributed.tensor import DTensor, Replicate, Shard

    mesh, world = _mesh(), dist.get_world_size()
    with torch.device("meta"):
        layer = nn.Linear(4 * WIDTH, WIDTH)
    local = torch.empty(WIDTH, 4 * WIDTH // world)
    generator = torch.Generator().manual_seed(_rank_seed(shared, stream))
    fan_in = local.shape[1] if bound_of_local_fan else 4 * WIDTH
    bound = 1.0 / math.sqrt(fan_in)
    local.uniform_(-bound, bound, generator=generator)
    bias = torch.empty(WIDTH).uniform_(-1.0 / math.sqrt(4 * WIDTH), 1.0 / math.sqrt(4 * WIDTH))
    layer.weight = nn.Parameter(DTensor.from_local(local, mesh, [Shard(1)], run_check=False))
    layer.bias = nn.Parameter(DTensor.from_local(bias, mesh, [Replicate()], run_check=False))
    return layer


def row_parallel_local_fan() -> nn.Module:
    """Wrong: each shard's bound is 1/√(in / N), the local fan: std √N too large."""
    return _row_parallel(True, torch.initial_seed())


def row_parallel_global_fan() -> nn.Module:
    """Right: each shard drawn with the global fan, 1/√in."""
    return _row_parallel(False, torch.initial_seed())


def sharding_cases() -> nn.Module:
    """The four cases side by side in one model (one launch checks them all):
    ``whole`` and ``seeded`` right, ``common`` with identical shards,
    ``local_fan`` with the std of the local fan, ``global_fan`` right."""
    from torch.distributed.fsdp import fully_shard

    mesh, shared = _mesh(), torch.initial_seed()
    model = nn.Module()
    model.whole = fully_shard(nn.Linear(WIDTH, WIDTH), mesh=mesh)
    for name, apart in (("seeded", True), ("common", False)):
        with torch.device("meta"):
            layer = nn.Linear(WIDTH, WIDTH)
        fully_shard(layer, mesh=mesh)
        layer.to_empty(device="cpu")
        if apart:
            state = torch.random.get_rng_state()
            torch.manual_seed(_rank_seed(shared, 1))
        layer.reset_parameters()
        if apart:
            torch.random.set_rng_state(state)
        setattr(model, name, layer)
    model.local_fan = _row_parallel(True, shared, stream=2)
    model.global_fan = _row_parallel(False, shared, stream=3)
    return model
