"""Sharded models: every rank folds its shards, the statistics merge by all-reduce.

    initcheck model net.py:build --nproc 4 [--device cuda] [--timeout 300]

Large models are initialized sharded: built on the meta device, sharded with
FSDP2's ``fully_shard`` or ``distribute_tensor``, or split by hand with
``DTensor.from_local``, then materialized and initialized on each rank.  Two
kinds of bug exist only there, and a single process cannot see them:

* identical shards: every rank seeds alike (as training scripts do) and
  initializes its local tensor, so every rank draws the same values.  On a
  CPU mesh this is what ``reset_parameters()`` after ``to_empty`` does:
  DTensor's random ops use the offset-based RNG tracker
  (``torch/distributed/tensor/_random.py``, ``OffsetBasedRNGTracker``) only on
  CUDA-like devices (``is_rng_supported_mesh`` is False for ``cpu``), so a
  DTensor's ``uniform_`` falls back to the local generator of each rank;
* fans of the local shard: a rank initializes its shard with a scheme on the
  shard's own shape, so the std follows the local fan, not the global one.

:func:`verify_sharded` (``verify_model(target, nproc=N)``) launches N ranks
(:mod:`initcheck.distributed`), seeds every rank alike with
``instance_seed(seed, r)`` for instance r, as a training script does, and
calls FACTORY() on every rank.  Each parameter is either a DTensor (its
placements, the global shape, the local shard and its global offsets from
``torch.distributed.tensor._utils.compute_local_shape_and_global_offset``) or
a plain tensor (replicated: every rank holds all of it).  The law of each
parameter is resolved on the global parameter (rules, preset, layer default:
the fans of the global shape).  Then each rank

1. folds its local shard of every instance into the reducers the
   single-process engine uses (:class:`initcheck.model.ParameterRow`): one
   rank per distinct shard (the rank at coordinate 0 of every mesh dimension
   the parameter is replicated over) folds it, the others hold a blank
   reducer;
2. adds its shard's position sums at their global offsets
   (:class:`GlobalPositions`: count, sum of d and of d^2 per index of every
   axis of the global shape, per instance, per shard, and per element of the
   first ``structure.ELEMENTS`` global positions, d = x - law mean);
3. all-reduces the sufficient statistics, never the values: one flat int64
   vector (counts, histogram cells or 16-bit patterns, gram counts), one
   float64 vector (power sums, lag pairs, position sums) summed, one float64
   vector of extremes under MIN (the minimum, minus the maximum, the gram
   threshold);
4. exchanges a small sketch per shard (its first and last 4,096 values, its
   offsets, a hash of its bytes) with ``all_gather_object``.

Rank 0 rebuilds each parameter's merged :class:`~initcheck.summary.Summary`
(the global structure: every axis of the global shape, a ``shards`` axis of
one position per shard, the sequence of instances) and runs the engine's
checks and policy on it (:func:`initcheck.model.model_results`: one Holm
family), with two model-level checks more:

* ``shards``: two shards of a random parameter on different ranks that are
  equal, negated, scaled copies, or begin with the same values, or whose
  index ranges overlap (named by rank);
* ``replicas``: ranks that hold the same part of a parameter (a replicated
  plain tensor, a ``Replicate()`` mesh dimension) with other bytes than the
  first of them.

What merging does not keep: lag-1 pairs across shard boundaries (a few pairs
per instance fewer than one process folding the whole tensor), repeats of
grams between shards (the copies check counts each shard's own; identical
shards are what ``shards`` finds), per-draw checks of whole tensors
(``orthogonal``, ``exact``; run for replicated parameters only, on rank 0's
copy), and the structure statistics of a sharded parameter with fixed rows
(an embedding's padding row: its fixed-rows check still runs).  Everything
else is the single-process statistic of the gathered tensor; the histogram,
counts and extremes bit for bit, the sums up to the order of float64
additions.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from initcheck.check_result import CheckResult
from initcheck.distributed import DEFAULT_TIMEOUT, Rank, launch
from initcheck.errors import InputError
from initcheck.expectation import Expectation
from initcheck.presets import DEFAULT_PRESET, check_preset
from initcheck.model import (DEFAULT_MAX_INSTANCES, DEFAULT_SAMPLES, DEFAULT_TIME_LIMIT, MIN_INSTANCES, MIN_SCALED,
                             ModelVerification, ParameterRow, Sketch, _call, _scale, check_numbers, duplicates,
                             instance_seed, load_adapter, load_factory, model_results, resolve_expectations)
from initcheck.structure import ELEMENTS, AxisSums, DrawSums, Grams, Structure, _axis_name, _DrawAxis, _groups
from initcheck.summary import Summary

#: Shard pairs a ``shards`` detail names at most.
NAMED_PAIRS = 4


@dataclass(frozen=True)
class ShardedVerification(ModelVerification):
    """A :class:`~initcheck.model.ModelVerification` of a model built on
    ``ranks`` ranks (``backend`` gloo or nccl); ``placements`` (name, how it
    is placed: ``Shard(0) over 4 ranks``, ``replicated over 4 ranks``)."""

    ranks: int = 1
    backend: str = "gloo"
    placements: tuple[tuple[str, str], ...] = ()

    @property
    def placement(self) -> dict[str, str]:
        return dict(self.placements)

    def __str__(self) -> str:
        text = super().__str__().split("\n")
        text[0] += f"; {self.ranks} ranks ({self.backend})"
        where = self.placement
        for i, line in enumerate(text[1:], 1):
            name = line.split(" ", 1)[0]
            if name in where:
                text[i] = f"{line} [{where[name]}]"
        return "\n".join(text)

    def model_dict(self) -> dict:
        out = super().model_dict()
        out.update(ranks=self.ranks, backend=self.backend,
                   placements=[{"name": n, "placement": p} for n, p in self.placements])
        return out


# ----------------------------------------------------------------------------- the parent


def verify_sharded(target, *, nproc: int, timeout: float = DEFAULT_TIMEOUT, device: str = "cpu", rules=None,
                   preset: str | None = DEFAULT_PRESET, samples: int = DEFAULT_SAMPLES, instances: int | None = None,
                   max_instances: int = DEFAULT_MAX_INSTANCES, time_limit: float = DEFAULT_TIME_LIMIT, seed: int = 0,
                   alpha: float = 1e-6, strict: bool = False, progress: bool = False) -> ShardedVerification:
    """Verify the global parameters of the model FACTORY() builds on every one
    of ``nproc`` ranks (module docstring); the other settings as for
    :func:`initcheck.model.verify_model`.  A rank that raises, dies or hangs
    for ``timeout`` seconds is an InputError naming it."""
    import pickle

    from initcheck.model_rules import load_rules

    check_numbers(samples, instances, max_instances, time_limit, seed, alpha)
    check_preset(preset)
    if rules is not None:
        load_rules(rules)  # a bad rules file is one error here, not one per rank
    if not isinstance(target, str):
        _, name = load_factory(target)
        try:
            pickle.dumps(target)
        except Exception:
            raise InputError(f"with nproc, the model target must be FILE.py:FACTORY, package.module:FACTORY or a "
                             f"function importable by name (every rank loads it); {name} is not") from None
    settings = dict(target=target, rules=rules, preset=preset, samples=samples, instances=instances,
                    max_instances=max_instances, time_limit=time_limit, seed=seed, alpha=alpha, strict=strict,
                    progress=progress)
    return launch(run_rank, settings, nproc, timeout=timeout, device=device)


# ----------------------------------------------------------------------------- one parameter on one rank


def _placement_text(placements, mesh) -> str:
    """``Shard(0) over 4 ranks``, ``replicated over 4 ranks``, ``Shard(0) × Replicate() over mesh 2×2``."""
    names = [f"Shard({p.dim})" if p.is_shard() else "Replicate()" if p.is_replicate() else str(p)
             for p in placements]
    shape = tuple(mesh.shape)
    if all(p.is_replicate() for p in placements):
        return f"replicated over {math.prod(shape)} ranks"
    if len(shape) == 1:
        return f"{names[0]} over {shape[0]} ranks"
    return f"{' × '.join(names)} over mesh {'×'.join(str(s) for s in shape)}"


@dataclass
class Placement:
    """Where a rank's part of a parameter sits in the global one."""

    text: str
    local_shape: tuple[int, ...]
    offset: tuple[int, ...]
    sharded: bool
    #: This rank folds its part (the first holder of that part, and not empty).
    owner: bool
    #: This rank holds a part at all (a sub-mesh may leave it out).
    holds: bool

    @classmethod
    def of(cls, parameter, rank: Rank) -> Placement:
        from torch.distributed.tensor import DTensor

        shape = tuple(int(d) for d in parameter.shape)
        if not isinstance(parameter, DTensor):
            return cls(f"replicated over {rank.world} ranks", shape, (0,) * len(shape), False, rank.rank == 0, True)
        from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

        mesh, placements = parameter.device_mesh, tuple(parameter.placements)
        if any(p.is_partial() for p in placements):
            raise InputError(f"a parameter placed {placements} holds partial values (a reduction is pending): "
                             "initcheck verifies Shard and Replicate placements")
        coordinate = mesh.get_coordinate()
        text = _placement_text(placements, mesh)
        sharded = any(p.is_shard() for p in placements)
        if coordinate is None:
            return cls(text, (0,) * len(shape), (0,) * len(shape), sharded, False, False)
        local, offset = compute_local_shape_and_global_offset(parameter.shape, mesh, placements)
        local, offset = tuple(int(d) for d in local), tuple(int(d) for d in offset)
        first = all(coordinate[i] == 0 for i, p in enumerate(placements) if p.is_replicate())
        return cls(text, local, offset, sharded, first and math.prod(local) > 0, True)


def local_values(model, name: str):
    """The values of ``name`` this rank holds (a DTensor's local shard)."""
    from torch.distributed.tensor import DTensor

    value = model.get_parameter(name).detach()
    return value.to_local() if isinstance(value, DTensor) else value


class GlobalPositions:
    """The position sums of the global parameter, from this rank's shard.

    For every axis a of the global shape G: per index, the count of values,
    sum of d and sum of d^2 (d = x - ref), the shard of local shape L at
    offset o adding to indices o_a .. o_a + L_a - 1; per instance the same
    three sums; per shard (one slot per rank) the same; and per element of
    the first min(prod G, ELEMENTS) global positions (row-major), the sum of
    d over instances, with the sum of d^2 over them (the draws check)."""

    def __init__(self, ref: float, shape: tuple, placement: Placement, world: int, rank: int, draws: int):
        self.ref, self.shape, self.world, self.rank = float(ref), tuple(shape), world, rank
        self.local, self.offset = placement.local_shape, placement.offset
        self._rows = self._c1 = self._c2 = None
        self._folds = 0
        self.draws = np.zeros((3, draws))
        self.shards = np.zeros((3, world))
        self.positions = min(math.prod(self.shape), ELEMENTS)
        self.e1 = np.zeros(self.positions)
        self.e2 = np.zeros(1)
        self.local_index, self.global_index = self._first_positions()

    def _first_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(flat local index, flat global index) of the shard's values among the
        first ``positions`` global ones (each axis cut to the indices that can
        reach them, so the index arrays stay small)."""
        strides = [math.prod(self.shape[a + 1:]) for a in range(len(self.shape))]
        ranges = [np.arange(min(length, max(0, -(-self.positions // stride) - offset)))
                  for length, offset, stride in zip(self.local, self.offset, strides)]
        if not self.shape:  # a scalar: its one position
            return (np.zeros(1, np.int64),) * 2 if math.prod(self.local) else (np.zeros(0, np.int64),) * 2
        if any(len(r) == 0 for r in ranges):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        grids = np.meshgrid(*ranges, indexing="ij")
        local_strides = [math.prod(self.local[a + 1:]) for a in range(len(self.local))]
        local = sum(g * s for g, s in zip(grids, local_strides)).reshape(-1)
        glob = sum((g + o) * s for g, o, s in zip(grids, self.offset, strides)).reshape(-1)
        keep = glob < self.positions
        return local[keep].astype(np.int64), glob[keep].astype(np.int64)

    def fold(self, x: np.ndarray, instance: int) -> None:
        """One instance of the local shard (float32 or float64 values of shape
        ``local``): one pass of the fold kernel's ``positions`` over it seen as
        a (first axis, rest) matrix; the other axes follow from the rest's
        per-element sums when the vectors are taken."""
        from initcheck import kernels

        values = np.ascontiguousarray(x).reshape(-1)
        rows = self.local[0] if self.local else 1
        if self._rows is None:
            self._rows = np.zeros((2, rows))
            self._c1, self._c2 = np.zeros(values.size // rows), np.zeros(values.size // rows)
        r1, r2 = np.empty(rows), np.empty(rows)
        kernels.positions(values, values.size // rows, self.ref, r1, r2, self._c1, self._c2)
        self._rows[0] += r1
        self._rows[1] += r2
        self._folds += 1
        total = (values.size, float(r1.sum()), float(r2.sum()))
        self.draws[:, instance] += total
        self.shards[:, self.rank] += total
        first = values[self.local_index].astype(np.float64) - self.ref
        self.e1[self.global_index] += first
        self.e2 += float(np.dot(first, first))

    def _axes(self) -> list[np.ndarray]:
        """Per axis of the global shape: (count, sum d, sum d^2) per index, this rank's shard placed at its offsets."""
        axes = [np.zeros((3, g)) for g in self.shape]
        if not self._folds or not self.shape:
            return axes
        n = math.prod(self.local)
        rest = self.local[1:]
        c1, c2 = self._c1.reshape(rest), self._c2.reshape(rest)
        for a, (offset, length) in enumerate(zip(self.offset, self.local)):
            part = axes[a][:, offset:offset + length]
            part[0] += self._folds * n / length
            if a == 0:
                part[1:] += self._rows
            else:
                other = tuple(i for i in range(len(rest)) if i != a - 1)
                part[1] += c1.sum(axis=other)
                part[2] += c2.sum(axis=other)
        return axes

    def vector(self) -> np.ndarray:
        return np.concatenate([*(a.reshape(-1) for a in self._axes()), self.draws.reshape(-1),
                               self.shards.reshape(-1), self.e1, self.e2])

    def structure(self, merged: np.ndarray, instances: int, grams: Grams | None, sharded: bool) -> Structure:
        """The global :class:`Structure` from the all-reduced :meth:`vector`."""
        at, axes = 0, []
        for a, g in enumerate(self.shape):
            count, s1, s2 = merged[at:at + 3 * g].reshape(3, g)
            at += 3 * g
            edges = _groups(g)
            if len(edges) - 1 != g:
                starts = edges[:-1]
                count, s1, s2 = (np.add.reduceat(v, starts) for v in (count, s1, s2))
            axes.append(AxisSums(_axis_name(self.shape, a), g, edges, count, s1, s2))
        draws = merged[at:at + 3 * self.draws.shape[1]].reshape(3, -1)[:, :instances]
        at += 3 * self.draws.shape[1]
        shards = merged[at:at + 3 * self.world].reshape(3, self.world)
        at += 3 * self.world
        e1, e2 = merged[at:at + self.positions], float(merged[at + self.positions])
        held = np.flatnonzero(shards[0] > 0)
        if sharded and len(held) >= 2:
            axes.append(AxisSums("shards", len(held), np.arange(len(held) + 1, dtype=np.int64),
                                 shards[0, held].copy(), shards[1, held].copy(), shards[2, held].copy()))
        sequence = _DrawAxis()
        if instances:
            sequence.add(draws[1].copy(), draws[2].copy(), float(draws[0, 0]))
        axes.append(sequence.result())
        return Structure(self.shape, axes, DrawSums.of(instances, e1.copy(), e2) if instances else None, grams)


@dataclass
class ShardedParameter:
    """One untied parameter on one rank: the global ref and law, this rank's
    placement, its local row (folding the local shard when this rank owns
    it) and the global position sums."""

    ref: Any
    expectation: Any
    placement: Placement
    row: ParameterRow
    #: Values of the global parameter folded per instance (fixed rows left out).
    folded_size: int
    positions: GlobalPositions | None = None
    sketch: Sketch | None = None
    digest: str = ""
    extra: list = field(default_factory=list)

    @classmethod
    def of(cls, ref, expectation, parameter, rank: Rank, samples: int) -> ShardedParameter:
        placement = Placement.of(parameter, rank)
        whole = ParameterRow(ref, expectation, samples)  # what the global parameter needs
        local_ref = replace(ref, shape=placement.local_shape)
        local = expectation
        if isinstance(expectation, Expectation):
            rows = dict(expectation.exact_rows)
            start, length = placement.offset[0] if ref.shape else 0, placement.local_shape[0] if ref.shape else 1
            local = replace(expectation, exact_rows=tuple((r - start, v) for r, v in rows.items()
                                                          if start <= r < start + length),
                            draw_checks=expectation.draw_checks if not placement.sharded else None)
        row = ParameterRow(local_ref, local, samples)
        row.need = whole.need
        positions = None
        if row.checked and not expectation.exact_rows and row.random and math.prod(ref.shape) > 0:
            # every rank keeps the same vectors (a rank that folds nothing adds zeros)
            held = placement if placement.owner else replace(placement, local_shape=(0,) * len(ref.shape))
            positions = GlobalPositions(expectation.law.mean, ref.shape, held, rank.world, rank.rank, whole.need)
        return cls(ref, expectation, placement, row, whole.folded_size, positions)

    def observe(self, x, instance: int, last: bool) -> None:
        if instance == 0 and self.placement.holds:
            self.sketch = Sketch.of(x) if x.numel() else None
            self.digest = hashlib.blake2b(x.contiguous().view(-1).view(_bytes_dtype()).cpu().numpy().tobytes(),
                                          digest_size=16).hexdigest()
        if not self.placement.owner:
            return
        self.row.observe(x, instance, last)
        if self.positions is not None and instance < self.row.need:
            self.positions.fold(_host_values(x), instance)


def _host_values(x) -> np.ndarray:
    """A torch tensor's values on the host as float32 or float64 (16-bit ones widened)."""
    import torch

    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    return x.cpu().numpy()


def _bytes_dtype():
    import torch

    return torch.uint8


# ----------------------------------------------------------------------------- merging


def _blank_reducer(law, dtype: str):
    """The reducer a row of this law and dtype would have (ParameterRow.flush), empty."""
    import torch

    from initcheck.reducers import reducer_for
    from initcheck.reducers.host import ConstantReducer

    sample = torch.empty(1, dtype=getattr(torch, dtype))
    sixteen = dtype in ("float16", "bfloat16")
    if law.variance == 0.0 and not law.deterministic and not sixteen:
        return ConstantReducer(law)
    return reducer_for(sample, law)


def _local_summary(p: ShardedParameter) -> Summary | None:
    row = p.row
    if not row.checked or p.folded_size <= 0:
        return None
    row.flush()
    if row.reducer is None:
        row.reducer = _blank_reducer(p.expectation.law, p.ref.dtype)
    return row.reducer.summary()


_GRAM_FIELDS = ("grams", "selected", "repeats", "single_repeats")


def pack(summary: Summary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int64 to sum, float64 to sum, float64 to take the minimum of) of one summary."""
    grams = summary.structure.grams if summary.structure is not None else None
    ints = [np.array([summary.count, summary.nan, summary.posinf, summary.neginf], dtype=np.int64)]
    if summary.patterns is not None:
        ints.append(summary.patterns.astype(np.int64))
    elif summary.hist is not None:
        ints.append(summary.hist.astype(np.int64))
    ints.append(np.array([grams is not None, *(getattr(grams, f) if grams else 0 for f in _GRAM_FIELDS)],
                         dtype=np.int64))
    floats = np.concatenate([summary.sums, summary.pairs.reshape(-1)])
    lows = np.array([summary.minimum, -summary.maximum, grams.threshold if grams else math.inf])
    return np.concatenate(ints), floats.astype(np.float64), lows


def unpack(like: Summary, ints: np.ndarray, floats: np.ndarray, lows: np.ndarray, k: int
           ) -> tuple[Summary, Grams | None]:
    """The merged summary (without its structure) and merged grams, from the reduced :func:`pack` vectors."""
    from initcheck import lowp

    pairs = floats[4:16].reshape(3, 4).copy()
    cells = len(ints) - 4 - 1 - len(_GRAM_FIELDS)
    counts = ints[4:4 + cells].copy()
    gram_counts = ints[4 + cells:]
    if like.patterns is not None:
        merged = lowp.pattern_summary(like.ref, like.dtype16, counts, pairs)
    else:
        merged = Summary(ref=like.ref, grid=like.grid, count=int(ints[0]), nan=int(ints[1]), posinf=int(ints[2]),
                         neginf=int(ints[3]), minimum=float(lows[0]), maximum=float(-lows[1]),
                         sums=floats[:4].copy(), hist=counts if like.hist is not None else None, pairs=pairs)
    grams = None
    if gram_counts[0] > 0:
        grams = Grams(k, int(lows[2]), *(int(v) for v in gram_counts[1:]), draw_size=0)
    return merged, grams


def _all_reduce(rank: Rank, vector: np.ndarray, op) -> np.ndarray:
    import torch
    import torch.distributed as dist

    tensor = torch.from_numpy(np.ascontiguousarray(vector)).to(rank.device)
    with rank.collective("merging the statistics"):
        dist.all_reduce(tensor, op=op)
    return tensor.cpu().numpy()


def _gather(rank: Rank, obj) -> list:
    import torch.distributed as dist

    out = [None] * rank.world
    with rank.collective("merging the statistics"):
        dist.all_gather_object(out, obj)
    return out


def merge_parameters(rank: Rank, parameters: list[ShardedParameter], instances: int) -> list[Summary | None]:
    """Each parameter's merged global summary (on rank 0; None elsewhere and for unchecked ones)."""
    import torch
    import torch.distributed as dist

    from initcheck.structure import gram_length

    locals_ = [_local_summary(p) for p in parameters]
    ints, floats, lows, spans = [], [], [], []
    for p, summary in zip(parameters, locals_):
        if summary is None:
            spans.append(None)
            continue
        i, f, low = pack(summary)
        extra = p.positions.vector() if p.positions is not None else np.zeros(0)
        spans.append((len(i), len(f), len(extra)))
        ints.append(i)
        floats.append(np.concatenate([f, extra]))
        lows.append(low)
    if not ints:
        return [None] * len(parameters)
    ints_r = _all_reduce(rank, np.concatenate(ints), dist.ReduceOp.SUM)
    floats_r = _all_reduce(rank, np.concatenate(floats), dist.ReduceOp.SUM)
    lows_r = _all_reduce(rank, np.concatenate(lows), dist.ReduceOp.MIN)
    if rank.rank != 0:
        return [None] * len(parameters)
    merged, a, b, c = [], 0, 0, 0
    for p, summary, span in zip(parameters, locals_, spans):
        if span is None:
            merged.append(None)
            continue
        ni, nf, nx = span
        k = gram_length(getattr(torch, p.ref.dtype).itemsize)
        whole, grams = unpack(summary, ints_r[a:a + ni], floats_r[b:b + nf], lows_r[c:c + 3], k)
        if grams is not None:
            grams = replace(grams, draw_size=math.prod(p.ref.shape))
        if p.positions is not None and whole.count > 1:
            whole.structure = p.positions.structure(floats_r[b + nf:b + nf + nx], min(instances, p.row.need),
                                                    grams, p.placement.sharded)
        a, b, c = a + ni, b + nf + nx, c + 3
        merged.append(whole)
    return merged


# ----------------------------------------------------------------------------- cross-rank checks


def _ranks(ranks) -> str:
    ranks = list(ranks)
    return f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(str(r) for r in ranks)


def _how_alike(a: Sketch, b: Sketch) -> str | None:
    """How shard ``b`` repeats shard ``a`` on their sketches, or None."""
    if a.size == b.size and np.array_equal(a.head, b.head) and np.array_equal(a.tail, b.tail):
        return "a copy of"
    if a.size == b.size and np.array_equal(a.head, -b.head) and np.array_equal(a.tail, -b.tail):
        return "the negation of"
    m = min(a.head.size, b.head.size)
    if m and np.array_equal(a.head[:m], b.head[:m]):
        return "begins with the values of"
    if m >= MIN_SCALED:
        x, y = a.head[:m], b.head[:m]
        xc, yc = x - x.mean(), y - y.mean()
        norm = float(np.linalg.norm(xc) * np.linalg.norm(yc))
        if norm > 0 and abs(float(np.dot(xc, yc)) / norm) > 0.999:
            scale = _scale(x, y)
            if scale is not None:
                return f"a scaled copy (×{scale:.4g}) of"
    return None


def shard_checks(parameter_name: str, placement_text: str, random: bool, holders: list[dict]) -> list[CheckResult]:
    """``shards`` and ``replicas`` of one parameter from every rank's
    ``{rank, offset, shape, sketch, digest, owner}`` (module docstring)."""
    checks = []
    owners = [h for h in holders if h["owner"]]
    if len(owners) >= 2 and random:
        found = []
        for i, a in enumerate(owners):
            for b in owners[i + 1:]:
                boxes = zip(a["offset"], a["shape"], b["offset"], b["shape"])
                if all(oa < ob + lb and ob < oa + la for oa, la, ob, lb in boxes):
                    found.append((a["rank"], b["rank"], "overlaps the index range of"))
                    continue
                if a["sketch"] is None or b["sketch"] is None or a["sketch"].spread == 0.0:
                    continue
                how = _how_alike(a["sketch"], b["sketch"])
                if how:
                    found.append((a["rank"], b["rank"], how))
        if found:
            everyone = {r for pair in found for r in pair[:2]}
            named = "; ".join(f"rank {b}'s shard is {how} rank {a}'s" for a, b, how in found[:NAMED_PAIRS])
            more = f" (and {len(found) - NAMED_PAIRS} more pairs)" if len(found) > NAMED_PAIRS else ""
            detail = (f"{named}{more}: {_ranks(sorted(everyone))} drew alike ({placement_text}); the ranks share "
                      "a seed and each initialized its local shard: seed the ranks apart after sharding, or "
                      "initialize the global tensor (before sharding, or by DTensor's random ops on a mesh "
                      "that supports them)")
            checks.append(CheckResult("shards", float(len(found)), detail, passed=False))
        else:
            checks.append(CheckResult("shards", 0.0, f"{len(owners)} shards on {_ranks(h['rank'] for h in owners)}, "
                                                     "no two alike", passed=True))
    groups: dict[tuple, list[dict]] = {}
    for h in holders:
        groups.setdefault((tuple(h["offset"]), tuple(h["shape"])), []).append(h)
    differ = []
    for members in groups.values():
        first = min(members, key=lambda h: h["rank"])
        differ += [(first["rank"], h["rank"]) for h in members if h["digest"] != first["digest"]]
    if any(len(m) > 1 for m in groups.values()):
        if differ:
            firsts = sorted({a for a, _ in differ})
            others = sorted(b for _, b in differ)
            detail = (f"{_ranks(others)} hold{'s' if len(others) == 1 else ''} other values than {_ranks(firsts)} for the "
                      f"same part of this parameter ({placement_text}): replicas must be equal; seed every rank "
                      "alike before building, or broadcast the replicated parameters from rank 0")
            checks.append(CheckResult("replicas", float(len(differ)), detail, passed=False))
        else:
            held = max(len(m) for m in groups.values())
            checks.append(CheckResult("replicas", 0.0, f"equal on the {held} ranks that hold each part",
                                      passed=True))
    return checks


# ----------------------------------------------------------------------------- one rank


def run_rank(rank: Rank, settings: dict):
    """What every rank runs (module docstring); rank 0 returns the verification."""
    import torch.distributed as dist

    from initcheck.model_rules import load_rules
    from initcheck.progress import Progress

    if rank.rank:
        warnings.simplefilter("ignore")  # rank 0 shows the factory's warnings once
    seed, samples = settings["seed"], settings["samples"]
    rules = load_rules(settings["rules"]) if settings["rules"] is not None else None
    factory, name = load_factory(settings["target"])
    adapter = load_adapter("torch")
    started = time.perf_counter()
    rank.phase(f"in {name}(), instance 0")
    model = _call(adapter.build, factory, instance_seed(seed, 0), name)
    build_seconds = time.perf_counter() - started
    if not adapter.accepts(model):
        raise InputError(f"{name} returned {type(model).__name__}; with --nproc it must return a torch.nn.Module")
    adapter.check_model(model)
    refs = adapter.parameters(model)
    if not refs:
        raise InputError(f"{name} returned a model with no parameters")
    expectations, defaults = resolve_expectations(adapter, model, refs, rules, settings["preset"])
    parameters = [ShardedParameter.of(ref, expectations[ref.name], model.get_parameter(ref.name), rank, samples)
                  for ref in refs if ref.tied_to is None]
    instances = settings["instances"]
    wanted = instances if instances is not None else min(settings["max_instances"],
                                                         max(p.row.need for p in parameters))
    wanted = max(wanted, MIN_INSTANCES)
    bar = Progress(wanted, settings["progress"] and rank.rank == 0)
    built, stopped, copies = 0, "", {}
    try:
        while True:
            rank.phase(f"folding instance {built}")
            for p in parameters:
                p.observe(local_values(model, p.ref.name), built, last=built == wanted - 1)
            if built == 0:
                owned = [p.row for p in parameters if p.placement.owner]
                copies = duplicates(owned, lambda n: local_values(model, n))
            built += 1
            bar.advance(1, f"{name}: instance {built}")
            del model
            if built >= wanted:
                break
            if instances is None:
                late = _all_reduce(rank, np.array([time.perf_counter() - started > settings["time_limit"]],
                                                  dtype=np.int64), dist.ReduceOp.MAX)
                if late[0]:
                    stopped = f"the time limit ({settings['time_limit']:g} s)"
                    break
            rank.phase(f"in {name}(), instance {built}")
            before = time.perf_counter()
            model = _call(adapter.build, factory, instance_seed(seed, built), name)
            build_seconds += time.perf_counter() - before
            now = [(r.name, r.shape) for r in adapter.parameters(model)]
            if now != [(r.name, r.shape) for r in refs]:
                raise InputError(f"{name} built instance {built} with other parameters than instance 0; the "
                                 "factory must build the same model every time")
    finally:
        bar.close()
    if not stopped and instances is None and built < max(p.row.need for p in parameters):
        stopped = f"the instance cap ({settings['max_instances']:,})"
    merged = merge_parameters(rank, parameters, min(built, max(p.row.need for p in parameters)))
    shares = _gather(rank, {"copies": copies,
                            "parameters": {p.ref.name: {"rank": rank.rank, "offset": p.placement.offset,
                                                        "shape": p.placement.local_shape, "sketch": p.sketch,
                                                        "digest": p.digest, "owner": p.placement.owner,
                                                        "holds": p.placement.holds, "fixed_bad": p.row.fixed_bad,
                                                        "fixed_bad_instances": p.row.fixed_bad_instances}
                                           for p in parameters}})
    if rank.rank != 0:
        return None
    rows, extra = [], {}
    found: dict[str, list[str]] = {}
    for share in shares:
        for key, relations in share["copies"].items():
            found.setdefault(key, [])
            found[key] += [r for r in relations if r not in found[key]]
    for p, summary in zip(parameters, merged):
        holders = [s["parameters"][p.ref.name] for s in shares if s["parameters"][p.ref.name]["holds"]]
        row = p.row
        row.ref, row.expectation = p.ref, p.expectation
        if row.checked:
            row.fixed = dict(p.expectation.exact_rows)
            bad = [f"rank {h['rank']}: {text}" for h in holders for text in h["fixed_bad"]]
            row.fixed_bad = bad[:2]
            row.fixed_bad_instances = max(h["fixed_bad_instances"] for h in holders)
            row.reducer = _Merged(summary) if summary is not None else None
            row.folded = built if row.folded == 0 else row.folded
            extra[p.ref.name] = shard_checks(p.ref.name, p.placement.text, row.random and row.distinct, holders)
        rows.append(row)
    tied = tuple((ref.name, ref.tied_to) for ref in refs if ref.tied_to is not None)
    results = model_results(rows, adapter, samples, found, defaults, tied, settings["alpha"], settings["strict"],
                            extra)
    total = time.perf_counter() - started
    return ShardedVerification(results, samples, seed, settings["alpha"], settings["strict"], interrupted=False,
                               target=name, framework=adapter.name, instances=built, stopped=stopped, tied=tied,
                               build_seconds=build_seconds, check_seconds=total - build_seconds, ranks=rank.world,
                               backend=dist.get_backend(),
                               placements=tuple((p.ref.name, p.placement.text) for p in parameters))


class _Merged:
    """A reducer that already holds its merged summary."""

    def __init__(self, summary: Summary):
        self._summary = summary

    def summary(self) -> Summary:
        return self._summary


# ----------------------------------------------------------------------------- merge against fold


def merge_against_fold(rank: Rank, settings: dict) -> dict:
    """A worker for :func:`initcheck.distributed.launch`: every rank takes its
    ``Shard(dim)`` slice of one global tensor (``shape``, drawn U(-1, 1) from
    ``seed``, ``draws`` of them), folds it and merges as :func:`run_rank`
    does; rank 0 also folds the gathered tensors in one process.  Rank 0
    returns both summaries and the seconds each took (the merge's cost)."""
    import torch
    import torch.distributed as dist

    from initcheck.laws import Uniform
    from initcheck.reducers.host import HostReducer

    law = Uniform(-1.0, 1.0)
    shape, dim, draws = tuple(settings["shape"]), settings["dim"], settings["draws"]
    generator = torch.Generator().manual_seed(settings["seed"])
    wholes = [torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1 for _ in range(draws)]
    parts = [torch.tensor_split(w, rank.world, dim=dim)[rank.rank].contiguous() for w in wholes]
    sizes = [int(p.shape[dim]) for p in torch.tensor_split(wholes[0], rank.world, dim=dim)]
    offset = [0] * len(shape)
    offset[dim] = sum(sizes[:rank.rank])
    placement = Placement(f"Shard({dim}) over {rank.world} ranks", tuple(parts[0].shape), tuple(offset), True,
                          True, True)
    positions = GlobalPositions(law.mean, shape, placement, rank.world, rank.rank, draws)
    reducer = HostReducer(law, expected_values=math.prod(shape) * draws // rank.world)
    started = time.perf_counter()
    for i, part in enumerate(parts):
        reducer.fold(part)
        positions.fold(part.numpy(), i)
    local = reducer.summary()
    dist.barrier()
    folded = time.perf_counter() - started
    started = time.perf_counter()
    ints, floats, lows = pack(local)
    ints = _all_reduce(rank, ints, dist.ReduceOp.SUM)
    both = _all_reduce(rank, np.concatenate([floats, positions.vector()]), dist.ReduceOp.SUM)
    lows = _all_reduce(rank, lows, dist.ReduceOp.MIN)
    merged, grams = unpack(local, ints, both[:len(floats)], lows, local.structure.grams.k)
    merged.structure = positions.structure(both[len(floats):], draws, grams, True)
    merge_seconds = time.perf_counter() - started
    if rank.rank != 0:
        return {}
    started = time.perf_counter()
    single = HostReducer(law, expected_values=math.prod(shape) * draws)
    for whole in wholes:
        single.fold(whole)
    one = single.summary()
    return {"merged": merged, "single": one, "fold_seconds": folded, "merge_seconds": merge_seconds,
            "single_seconds": time.perf_counter() - started, "ranks": rank.world, "shape": shape, "draws": draws}


def bench(nproc: int = 2, shape=(1024, 1024), draws: int = 4) -> str:
    """One line: the merge's cost against the folding (``make bench``)."""
    found = launch(merge_against_fold, {"shape": shape, "dim": 0, "draws": draws, "seed": 0}, nproc)
    values = math.prod(shape) * draws
    return (f"sharded merge, {nproc} ranks, {draws} draws of {'x'.join(map(str, shape))}: folding the shards "
            f"{found['fold_seconds'] * 1e3:.1f} ms ({values / found['fold_seconds'] / 1e6:.0f} M values/s over "
            f"all ranks), merging {found['merge_seconds'] * 1e3:.1f} ms, one process folding the whole "
            f"{found['single_seconds'] * 1e3:.1f} ms")


if __name__ == "__main__":
    print(bench())
