"""Whole models: every parameter of a real model against the law it should follow.

    initcheck model net.py:build [--rules rules.toml] [--preset transformers]

``FACTORY()`` returns a freshly built model (a PyTorch ``nn.Module``, a Keras
model, a Flax NNX module).  The engine

1. builds instance 0 with the framework seeded (``seed`` for instance r is
   derived from ``--seed`` and r), finds the framework's model adapter
   (:mod:`initcheck.frameworks.model_base`) and lists every named parameter;
2. gives each parameter its expected law, first found of: a rule of
   ``--rules`` (:mod:`initcheck.model_rules`), the preset
   (:mod:`initcheck.presets`), the documented default of its layer type (the
   adapter), else SKIP with the reason.  Tied parameters (the same object under
   two names) are verified once and reported as tied;
3. builds instances until every parameter has ``samples`` values (a parameter
   of n values needs ceil(samples / n) instances; constants need two), within
   ``max_instances`` and ``time_limit`` (``instances`` fixes the count), and
   folds each parameter's values into its own reducer, exactly as a row of
   ``initcheck xavier`` folds its draws: one instance is one draw.  A
   parameter stops folding once it has its values; small parameters are
   folded a batch of instances at a time.  Memory: one instance, plus the
   reducers (O(bins) each) and the batches of small parameters;
4. checks every parameter with the checks of a row (finite, support, mean,
   variance, KS, spikes, independence, draws, positions, copies) and the
   model-level ones:

   * ``fixed rows``: rows fixed by the law (an embedding's padding row) are
     exactly their value in every instance;
   * ``duplicate``: two parameters of one instance equal, or equal up to sign
     or scale.  Candidates come from their first and last 4,096 values (two
     independent draws of a continuous law have correlation ~ N(0, 1/4096),
     so |r| > 0.999 is a copy, never chance; parameters under 16 values are
     compared for exact equality only) and are confirmed on every value;
   * ``seed``: a random parameter identical in instances 0 and 1 (the factory,
     or something it calls, ignores the seed or re-seeds alike).

   Equality is evidence only when two independent draws could not agree by
   chance: a parameter takes part in these two checks when it holds at least
   64 random bits (values × mantissa bits: 3 float32 values, 8 bfloat16 ones).
   The model-level checks are deterministic; the statistical ones of every
   parameter form one Holm family at ``alpha``, as one command.

The result is a :class:`ModelVerification`: one row per parameter, in the
model's order.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import random
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from initcheck.check_result import CheckResult
from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.frameworks.model_base import ParameterRef
from initcheck.presets import DEFAULT_PRESET, check_preset
from initcheck.results import RowResult, Sampled, Verification

#: Values per parameter unless ``samples`` says otherwise.
DEFAULT_SAMPLES = 1_000_000
#: Instances always built: the seed check compares instances 0 and 1.
MIN_INSTANCES = 2
#: At most this many instances unless ``max_instances`` says otherwise.
DEFAULT_MAX_INSTANCES = 500
#: Seconds of building and folding after which no further instance is started.
DEFAULT_TIME_LIMIT = 30.0
#: Values of each parameter compared by the duplicate and seed checks.
SKETCH = 4096
#: Fewest values for the duplicate check's "up to scale" (correlation) test.
MIN_SCALED = 16
#: Random bits two independent draws must hold before equal values mean a
#: copy or an ignored seed (values × mantissa bits of the dtype).
MIN_BITS = 64
#: Mantissa bits (with the implicit one) by dtype name.
MANTISSA_BITS = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}
#: Correlation above which two parameters are copies up to scale.
COPY_CORRELATION = 0.999
#: Parameters of at most this many values are folded a batch of instances at a time,
BATCH_BELOW = 1 << 16
#: in batches of about this many values.
BATCH_VALUES = 1 << 18

#: Level of a check of the default law that the row's own Holm family did not
#: test (a constant law's row has no statistical check).
DIAGNOSIS_LEVEL = 1e-9

#: name -> (module, class, the import name of the framework).
MODEL_ADAPTERS = {
    "flax": ("initcheck.frameworks.flax_model", "FlaxModels", "flax"),
    "equinox": ("initcheck.frameworks.equinox_model", "EquinoxModels", "equinox"),
    "keras": ("initcheck.frameworks.keras_model", "KerasModels", "keras"),
    "paddle": ("initcheck.frameworks.paddle_model", "PaddleModels", "paddle"),
    "torch": ("initcheck.frameworks.torch_model", "TorchModels", "torch"),
}


#: The factory argument through which only one framework's adapter seeds a model
#: (``seed`` is taken by several, so it names none).
SEEDING_KEYWORDS = {"rngs": "flax", "key": "equinox"}


def instance_seed(seed: int, index: int) -> int:
    """The framework seed of instance ``index`` (31 bits: every framework takes it)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(b"initcheck model"), index])
    return int(sequence.generate_state(1, np.uint32)[0] >> np.uint32(1))


@dataclass(frozen=True)
class ModelVerification(Verification):
    """The result of :func:`verify_model`: a :class:`Verification` (one row per
    parameter, truthy when none failed) with what was built.

    ``target``     the factory's name;  ``framework`` the adapter's name;
    ``instances``  instances built;  ``stopped`` why no more were (empty when
    every parameter got its values);  ``tied`` (name, the parameter it is
    tied to) pairs;  ``build_seconds``, ``check_seconds``: time in the
    factory, and everything else."""

    target: str = ""
    framework: str = ""
    instances: int = 0
    stopped: str = ""
    tied: tuple[tuple[str, str], ...] = ()
    build_seconds: float = 0.0
    check_seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.results) for v in ("PASS", "WARN", "FAIL", "SKIP")}

    @property
    def summary_line(self) -> str:
        """``212 parameters: 209 PASS, 1 FAIL, 2 SKIP, 5 tied``."""
        counts = ", ".join(f"{n} {v}" for v, n in self.counts.items() if n)
        tied = f", {len(self.tied)} tied" if self.tied else ""
        total = len(self.results) + len(self.tied)
        return f"{total} parameter{'s' if total != 1 else ''}: {counts}{tied}"

    def __str__(self) -> str:
        head = (f"initcheck model {self.target}: {self.verdict}, {self.summary_line}; {self.instances} instances, "
                f"N = {self.samples:,} a parameter, seed {self.seed}, family-wise alpha {self.alpha:g}")
        lines = [head, *(str(r) for r in self.results)]
        lines += [f"{name}: tied to {owner}" for name, owner in self.tied]
        return "\n".join(lines)

    def model_dict(self) -> dict:
        return {"target": self.target, "framework": self.framework, "instances": self.instances,
                "stopped": self.stopped, "tied": [{"name": n, "to": o} for n, o in self.tied],
                "build_seconds": round(self.build_seconds, 3), "check_seconds": round(self.check_seconds, 3),
                "summary": self.summary_line}

    def to_dict(self, env: dict | None = None) -> dict:
        report = super().to_dict(env)
        report["model"] = self.model_dict()
        return report


# ----------------------------------------------------------------------------- factory and adapter


def load_factory(target) -> tuple[Callable[..., Any], str]:
    """(callable, name) from ``FILE.py:FACTORY``, ``package.module:FACTORY`` or a callable."""
    from initcheck.frameworks.custom import load_function

    if isinstance(target, str):
        return load_function(target, noun="model factory"), target
    if callable(target):
        return target, getattr(target, "__qualname__", None) or repr(target)
    raise InputError(f"the model target must be FILE.py:FACTORY, package.module:FACTORY or a callable; "
                     f"got {type(target).__name__}")


def load_adapter(name: str):
    import importlib

    module, cls, _ = MODEL_ADAPTERS[name]
    return getattr(importlib.import_module(module), cls)()


def _candidates(factory) -> list[str]:
    """Adapters to try first: those whose framework the factory's own module
    uses, then the others already imported (NNX before Keras before torch:
    NNX and Keras import what they run on), else every installed one, torch
    first."""
    import importlib.util

    from initcheck.frameworks.custom import takes_keyword

    imported = [name for name, (_, _, top) in MODEL_ADAPTERS.items() if top in sys.modules]
    if imported:
        used = _frameworks_used_by(factory)
        candidates = sorted(imported, key=lambda name: MODEL_ADAPTERS[name][2] not in used)
    else:
        installed = [name for name, (_, _, top) in MODEL_ADAPTERS.items() if importlib.util.find_spec(top) is not None]
        candidates = sorted(installed, key=lambda name: name != "torch")
    # a factory that takes the one argument only one framework passes is that framework's
    hinted = [name for keyword, name in SEEDING_KEYWORDS.items() if takes_keyword(factory, keyword)
              and (MODEL_ADAPTERS[name][2] in sys.modules or importlib.util.find_spec(MODEL_ADAPTERS[name][2]))]
    return hinted[:1] + [name for name in candidates if name not in hinted[:1]]


def _frameworks_used_by(factory) -> set[str]:
    """The top-level packages the factory's module holds modules, classes or
    functions of (``import torch``, ``from torch import nn``, ``from keras
    import layers``)."""
    names = getattr(factory, "__globals__", None)
    if names is None:
        module = sys.modules.get(getattr(factory, "__module__", None) or "")
        names = vars(module) if module is not None else {}
    used = set()
    for value in list(names.values()):
        where = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(where, str):
            used.add(where.split(".")[0])
    # and what the factory itself imports or names (``import paddle`` in its body)
    code = getattr(factory, "__code__", None)
    used.update(name.split(".")[0] for name in getattr(code, "co_names", ()))
    return used


def _call(build, factory, seed: int, name: str):
    try:
        with _python_and_numpy_seeded(seed):
            return build(factory, seed)
    except InputError:
        raise
    except Exception as error:
        text = str(error).strip().splitlines()
        raise InputError(f"{name} raised {type(error).__name__}" + (f": {text[0]}" if text else "")) from None


#: A line of the C++ start-up logs TensorFlow and XLA write straight to
#: descriptor 2 when a factory first imports them (absl's ``I0000
#: 00:00:1796184112.380415 31431 port.cc:153] ...`` lines and their preamble).
_START_UP_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                           r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
                           r"|To enable the following instructions: )")


@contextlib.contextmanager
def _start_up_logs_dropped():
    """Descriptor 2 captured while the first instance is built, and written
    back without the frameworks' C++ start-up log lines: a factory that
    imports TensorFlow prints them before any Python setting can reach them.
    Everything else the factory writes to stderr comes through, after the call."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _START_UP_LOG.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def first_instance(factory, name: str, seed: int):
    """(adapter, instance 0, seconds in the factory).  The first candidate
    builds it; when what it returned belongs to another framework, that
    framework's adapter builds it again, seeded its own way."""
    started = time.perf_counter()
    candidates = _candidates(factory)
    adapter = load_adapter(candidates[0])
    with _start_up_logs_dropped():
        model = _call(adapter.build, factory, seed, name)
    if not adapter.accepts(model):
        owner = next((other for other in MODEL_ADAPTERS if other != adapter.name and _accepts(other, model)), None)
        if owner is None:
            raise InputError(f"{name} returned {type(model).__name__}, not a model initcheck knows: it must return "
                             "a torch.nn.Module, a Keras model, a Flax NNX module, a Flax linen module with its "
                             "example input, an Equinox module or a paddle.nn.Layer")
        del model
        adapter = load_adapter(owner)
        model = _call(adapter.build, factory, seed, name)
    return adapter, model, time.perf_counter() - started


def _accepts(name: str, model) -> bool:
    """Whether the adapter ``name`` takes ``model`` (its framework must already
    be imported for the model to be one of its own)."""
    if MODEL_ADAPTERS[name][2] not in sys.modules:
        return False
    return load_adapter(name).accepts(model)


class _python_and_numpy_seeded:
    """Python's ``random`` and NumPy's global generator seeded for a factory call,
    and the caller's states put back afterwards."""

    def __init__(self, seed: int):
        self._seed = seed

    def __enter__(self):
        self._python, self._numpy = random.getstate(), np.random.get_state()
        random.seed(self._seed)
        np.random.seed(self._seed)

    def __exit__(self, *exc):
        random.setstate(self._python)
        np.random.set_state(self._numpy)
        return False


# ----------------------------------------------------------------------------- expectations


def resolve_expectations(adapter, model, refs: list[ParameterRef], rules, preset
                         ) -> tuple[dict[str, Expectation | Unknown], dict[str, Expectation]]:
    """Each untied parameter's law: rule > preset > layer default > Unknown;
    and, for those whose law came from a rule or the preset, the layer
    default they would have without it (what a parameter the init never
    reached follows)."""
    chosen: dict[str, Expectation | Unknown] = {}
    defaults: dict[str, Expectation] = {}
    from initcheck.presets import load_preset

    preset_for = load_preset(preset, adapter, model)
    for ref in refs:
        if ref.tied_to is not None:
            continue
        found = rules.expectation(ref.name, ref.shape, adapter.layout) if rules is not None else None
        if found is None and preset_for is not None:
            found = preset_for(ref)
        default = adapter.default(model, ref)
        if found is None:
            found = default
        elif isinstance(default, Expectation) and isinstance(found, Expectation) and default.law != found.law:
            defaults[ref.name] = default
        chosen[ref.name] = found
    if rules is not None:
        rules.check_all_used()
    return chosen, defaults


# ----------------------------------------------------------------------------- values


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def as_float64(x) -> np.ndarray:
    """A flat float64 NumPy copy of an array of any library."""
    if _is_torch(x):
        return x.detach().reshape(-1).double().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _flat(x):
    return x.reshape(-1)


def _sixteen_bits(x) -> bool:
    """Whether ``x`` holds float16 or bfloat16 values (their reducer counts bit patterns)."""
    from initcheck.lowp import sixteen_bit_name

    return sixteen_bit_name(x) is not None


def _copy(x):
    return x.clone() if _is_torch(x) else np.array(x, copy=True)


def _stack(arrays: list):
    if _is_torch(arrays[0]):
        import torch

        return torch.stack(arrays)
    return np.stack([np.asarray(a) for a in arrays])


@dataclass(frozen=True)
class Sketch:
    """What the duplicate and seed checks compare: the first and last
    ``SKETCH`` values (float64) and the size."""

    head: np.ndarray
    tail: np.ndarray
    size: int

    @classmethod
    def of(cls, x) -> Sketch:
        flat = _flat(x)
        size = int(flat.shape[0])
        return cls(as_float64(flat[:SKETCH]), as_float64(flat[max(0, size - SKETCH):]), size)

    def same(self, other: Sketch) -> bool:
        return (self.size == other.size and np.array_equal(self.head, other.head)
                and np.array_equal(self.tail, other.tail))

    @property
    def spread(self) -> float:
        return float(np.ptp(self.head)) if self.head.size else 0.0


# ----------------------------------------------------------------------------- one parameter


@dataclass
class ParameterRow:
    """The running state of one parameter over the instances."""

    ref: ParameterRef
    expectation: Expectation | Unknown
    samples: int
    need: int = 0
    reducer: Any = None
    pending: list = field(default_factory=list)
    folded: int = 0
    sketches: list[Sketch] = field(default_factory=list)
    fixed_bad: list[str] = field(default_factory=list)
    fixed_bad_instances: int = 0
    draw_checks: list = field(default_factory=list)
    dtype: str = ""
    device: str = "cpu"
    seconds: float = 0.0
    keep: Any = None

    def __post_init__(self):
        self.size = math.prod(self.ref.shape)
        expectation = self.expectation
        if isinstance(expectation, Expectation):
            self.fixed = dict(expectation.exact_rows)
            rows = self.ref.shape[0] if self.ref.shape else 1
            row_size = self.size // rows if rows else 0
            self.folded_size = self.size - len(self.fixed) * row_size
            if self.folded_size <= 0:
                self.need = MIN_INSTANCES
            elif expectation.law.variance == 0.0 or expectation.law.deterministic:
                self.need = MIN_INSTANCES  # exact values: two instances show them
            else:
                self.need = math.ceil(self.samples / self.folded_size)  # the seed check needs no fold
            if expectation.draw_checks is not None:
                self.draw_checks = list(expectation.draw_checks())
        else:
            self.fixed, self.folded_size = {}, 0

    @property
    def checked(self) -> bool:
        return isinstance(self.expectation, Expectation)

    @property
    def random(self) -> bool:
        """Whether its law draws (the seed and duplicate checks apply)."""
        law = self.expectation.law if self.checked else None
        return law is not None and law.variance > 0.0 and not law.deterministic

    @property
    def distinct(self) -> bool:
        """Whether two independent draws of it can be told apart by equality:
        at least MIN_BITS random bits (a 16-bit scalar can repeat by chance)."""
        bits = MANTISSA_BITS.get(self.dtype or self.ref.dtype, 8)
        return self.size * bits >= MIN_BITS

    def observe(self, x, instance: int, last: bool) -> None:
        """One instance's values of this parameter."""
        if instance < MIN_INSTANCES:
            self.sketches.append(Sketch.of(x))
        if not self.checked or instance >= self.need:
            return
        started = time.perf_counter()
        if not self.dtype:
            self.dtype = str(x.dtype).removeprefix("torch.")
            device = str(getattr(x, "device", "cpu"))
            self.device = "cpu" if "cpu" in device.lower() else device
        if self.fixed:
            x = self._fixed_rows_checked(x, instance)
        if self.folded_size > 0:
            if self.draw_checks:
                host = as_float64(x).reshape((1, *tuple(x.shape)))
                for check in self.draw_checks:
                    check.observe(host, 1)
            batch = max(1, min(self.need, BATCH_VALUES // self.folded_size)) if self.folded_size <= BATCH_BELOW else 1
            self.pending.append(_copy(x) if batch > 1 else x)  # a factory may hand out the same tensor again
            final = last or instance == self.need - 1
            if len(self.pending) >= batch or final:
                self.flush(final)
        self.folded += 1
        self.seconds += time.perf_counter() - started

    def flush(self, final: bool = True) -> None:
        """Fold the pending instances; ``final``: no instance of this row follows."""
        if not self.pending:
            return
        from initcheck.reducers import reducer_for

        count = len(self.pending)
        x = self.pending[0] if count == 1 else _stack(self.pending)
        self.pending = []
        if self.reducer is None:
            law = self.expectation.law
            if law.variance == 0.0 and not law.deterministic and not _sixteen_bits(x):
                from initcheck.reducers.host import ConstantReducer

                self.reducer = ConstantReducer(law)
            else:
                self.reducer = reducer_for(x if count == 1 else x[0], law,
                                           expected_values=self.need * self.folded_size)
        if final and hasattr(self.reducer, "no_more_draws"):
            self.reducer.no_more_draws()
        if count == 1:
            self.reducer.fold(x)
        else:
            self.reducer.fold(x, draws=count)

    def _fixed_rows_checked(self, x, instance: int):
        """Check the fixed rows and return the others."""
        wrong = False
        for row, value in self.fixed.items():
            got = as_float64(x[row])
            bad = got != value
            if bad.any():
                wrong = True
                if len(self.fixed_bad) < 2:
                    worst = float(np.max(np.abs(got - value)))
                    self.fixed_bad.append(f"row {row}: {int(bad.sum()):,} of {got.size:,} values differ from "
                                          f"{value:g} in instance {instance} (largest |difference| {worst:.4g})")
        self.fixed_bad_instances += wrong
        if self.keep is None:
            keep = [i for i in range(self.ref.shape[0]) if i not in self.fixed]
            self.keep = _index(x, keep)
        return x[self.keep]

    def own_checks(self, summary) -> list[CheckResult]:
        """The row's checks on its ``summary``, before the model-level ones."""
        from initcheck.checks import evaluate
        from initcheck.lowp import sample_dtype

        checks = []
        if self.fixed:
            rows = ", ".join(f"{r}" for r in sorted(self.fixed))
            values = sorted({v for v in self.fixed.values()})
            detail = (f"row{'s' if len(self.fixed) > 1 else ''} {rows} exactly "
                      f"{' / '.join(f'{v:g}' for v in values)} in all {self.folded} instances")
            if self.fixed_bad:
                detail = (f"{'; '.join(self.fixed_bad)}; wrong in {self.fixed_bad_instances} of {self.folded} "
                          "instances")
            checks.append(CheckResult("fixed rows", float(len(self.fixed_bad)), detail, passed=not self.fixed_bad))
        checks += evaluate(self.expectation.law, summary, sample_dtype(self.dtype))
        return checks + [check.result() for check in self.draw_checks]


def _index(x, keep: list[int]):
    if _is_torch(x):
        import torch

        return torch.tensor(keep, dtype=torch.long, device=x.device)
    return np.asarray(keep, dtype=np.int64)


# ----------------------------------------------------------------------------- model-level checks


def duplicates(rows: list[ParameterRow], values: Callable[[str], Any] | None = None,
               note: Callable[[str, str], str | None] | None = None) -> dict[str, list[str]]:
    """name -> what it duplicates, within instance 0 (module docstring).

    Candidates are found on the sketches; ``values(name)``, the live
    instance's values, confirms a candidate on every value (a partial copy is
    named as such); ``note(a, b)``, the adapter's, may say why two parameters
    came out equal."""
    found: dict[str, list[str]] = {}
    groups: dict[int, list[ParameterRow]] = {}
    for row in rows:
        if not row.sketches or (row.checked and not row.random) or not row.distinct:
            continue
        sketch = row.sketches[0]
        if sketch.spread == 0.0 or not np.all(np.isfinite(sketch.head)):
            continue
        groups.setdefault(sketch.size, []).append(row)
    for members in groups.values():
        if len(members) < 2:
            continue
        heads = np.stack([m.sketches[0].head for m in members])
        centred = heads - heads.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1)
        # einsum, not BLAS: with a framework's threads already spinning, a BLAS
        # matmul this small took a quarter of a second to start
        correlation = np.einsum("ik,jk->ij", centred, centred) / np.outer(norms, norms)
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                relation = _relation(members[i].sketches[0], members[j].sketches[0], correlation[i, j])
                a, b = members[i].ref.name, members[j].ref.name
                if relation and values is not None and members[i].sketches[0].head.size < members[i].size:
                    relation = _confirmed(relation, as_float64(values(a)), as_float64(values(b)))
                if relation:
                    why = note(a, b) if note is not None else None
                    why = f" ({why})" if why else ""
                    found.setdefault(a, []).append(f"{b} is {relation} it{why}")
                    found.setdefault(b, []).append(f"{relation} {a}{why}")
    return found


def _relation(a: Sketch, b: Sketch, correlation: float) -> str | None:
    """How ``b`` repeats ``a`` on their sketches (``a copy of``, ``the negation
    of``, ``a scaled copy (×0.5) of``), or None."""
    if np.array_equal(a.head, b.head) and np.array_equal(a.tail, b.tail):
        return "a copy of"
    if np.array_equal(a.head, -b.head) and np.array_equal(a.tail, -b.tail):
        return "the negation of"
    if a.head.size < MIN_SCALED or not abs(correlation) > COPY_CORRELATION:
        return None
    scale = _scale(a.head, b.head)
    return None if scale is None else f"a scaled copy (×{scale:.4g}) of"


def _scale(a: np.ndarray, b: np.ndarray) -> float | None:
    """c with b = c a within float32 rounding, or None."""
    scale = float(np.dot(a, b) / np.dot(a, a))
    residual = np.max(np.abs(b - scale * a)) / max(float(np.max(np.abs(b))), 1e-300)
    return scale if residual <= 1e-3 else None


def _confirmed(relation: str, a: np.ndarray, b: np.ndarray) -> str:
    """The relation found on the sketches, checked on every value."""
    if relation == "a copy of":
        whole = np.array_equal(a, b)
    elif relation == "the negation of":
        whole = np.array_equal(a, -b)
    else:
        whole = _scale(a, b) is not None
    return relation if whole else f"in its first and last {SKETCH:,} values, {relation}"


def seed_check(row: ParameterRow) -> CheckResult | None:
    """A random parameter identical in instances 0 and 1: the seed is ignored."""
    if not row.random or not row.distinct or len(row.sketches) < 2:
        return None
    same = row.sketches[0].same(row.sketches[1])
    detail = ("identical in instances 0 and 1: the factory (or something it calls) ignores the seed, or re-seeds "
              "this parameter alike" if same else "differs between instances")
    return CheckResult("seed", float(same), detail, passed=not same)


# ----------------------------------------------------------------------------- the engine


def verify_model(target, *, rules=None, preset: str | None = DEFAULT_PRESET, samples: int = DEFAULT_SAMPLES,
                 instances: int | None = None, max_instances: int = DEFAULT_MAX_INSTANCES,
                 time_limit: float = DEFAULT_TIME_LIMIT, seed: int = 0, alpha: float = 1e-6,
                 strict: bool = False, progress: bool = False, nproc: int | None = None,
                 timeout: float | None = None, device: str = "cpu") -> ModelVerification:
    """Verify every parameter of the model ``target()`` builds (module docstring).

    ``target``  ``FILE.py:FACTORY``, ``package.module:FACTORY`` or a callable;
    ``rules``   a rules file path (:mod:`initcheck.model_rules`) or a list of rule dicts;
    ``preset``  ``"auto"`` (``"transformers"`` for a model that holds a
    ``PreTrainedModel``, else none), ``"transformers"`` (HF's convention from
    ``model.config``), or ``"none"`` (:mod:`initcheck.presets`);
    ``samples`` values per parameter; ``instances`` fixes the number of
    instances (otherwise as many as ``samples`` needs, within ``max_instances``
    and ``time_limit`` seconds); ``seed``, ``alpha``, ``strict`` as for
    :func:`initcheck.verify_all`.  ``nproc`` N: on N ranks of torch.distributed
    (gloo, or NCCL with ``device="cuda"``), the factory building and sharding
    its model on every rank, ``timeout`` seconds without progress ending the
    run (:mod:`initcheck.sharded`).

    >>> import torch, initcheck
    >>> result = initcheck.verify_model(lambda: torch.nn.Linear(64, 32), samples=10**5)
    >>> result.verdict, result.summary_line
    ('PASS', '2 parameters: 2 PASS')
    """
    from initcheck.model_rules import load_rules
    from initcheck.progress import Progress

    if nproc is not None:
        from initcheck.distributed import DEFAULT_TIMEOUT
        from initcheck.sharded import verify_sharded

        return verify_sharded(target, nproc=nproc, timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
                              device=device, rules=rules, preset=preset, samples=samples, instances=instances,
                              max_instances=max_instances, time_limit=time_limit, seed=seed, alpha=alpha,
                              strict=strict, progress=progress)
    check_numbers(samples, instances, max_instances, time_limit, seed, alpha)
    check_preset(preset)
    rules = load_rules(rules) if rules is not None else None
    factory, name = load_factory(target)
    started = time.perf_counter()
    adapter, model, build_seconds = first_instance(factory, name, instance_seed(seed, 0))
    adapter.check_model(model)
    refs = adapter.parameters(model)
    if not refs:
        raise InputError(f"{name} returned a model with no parameters")
    expectations, defaults = resolve_expectations(adapter, model, refs, rules, preset)
    rows = [ParameterRow(ref, expectations[ref.name], samples) for ref in refs if ref.tied_to is None]
    wanted = instances if instances is not None else min(max_instances, max(r.need for r in rows))
    wanted = max(wanted, MIN_INSTANCES if instances is None else instances)
    bar = Progress(wanted, progress)
    built, stopped, copies = 0, "", {}
    try:
        while True:
            _observe_all(rows, adapter, model, built, last=built == wanted - 1)
            if built == 0:
                note = getattr(adapter, "duplicate_note", None)
                by_name = {row.ref.name: row.ref for row in rows}
                copies = duplicates(rows, lambda name: adapter.values(model, by_name[name]),
                                    (lambda a, b: note(model, a, b)) if note else None)
            built += 1
            bar.advance(1, f"{name}: instance {built}")
            del model
            if built >= wanted:
                break
            if instances is None and time.perf_counter() - started > time_limit:
                stopped = f"the time limit ({time_limit:g} s)"
                break
            before = time.perf_counter()
            model = _call(adapter.build, factory, instance_seed(seed, built), name)
            build_seconds += time.perf_counter() - before
            _same_parameters(adapter, model, refs, built, name)
    except KeyboardInterrupt:
        stopped = "an interrupt (Ctrl-C)"
    finally:
        bar.close()
    if not stopped and instances is None and built < max(r.need for r in rows):
        stopped = f"the instance cap ({max_instances:,})"
    for row in rows:
        row.flush()
    tied = tuple((ref.name, ref.tied_to) for ref in refs if ref.tied_to is not None)
    results = model_results(rows, adapter, samples, copies, defaults, tied, alpha, strict)
    total = time.perf_counter() - started
    return ModelVerification(results, samples, seed, alpha, strict, interrupted="interrupt" in stopped,
                             target=name, framework=adapter.name, instances=built, stopped=stopped, tied=tied,
                             build_seconds=build_seconds, check_seconds=total - build_seconds)


def model_results(rows: list[ParameterRow], adapter, samples: int, copies: dict[str, list[str]],
                  defaults: dict[str, Expectation], tied: tuple[tuple[str, str], ...], alpha: float, strict: bool,
                  extra: dict[str, list[CheckResult]] | None = None) -> tuple[RowResult, ...]:
    """The decided rows of folded parameters: each row's checks, the
    model-level ones first (``extra``, name -> more of them, before the
    ``seed`` and ``duplicate`` checks), one Holm family, the diagnosis and
    the tied names."""
    from initcheck.policy import decide

    sampled = _sampled(rows, adapter, samples, copies, extra)
    results = tuple(_diagnosed(r, defaults.get(r.layer)) for r in decide(sampled, alpha, strict))
    return tuple(_with_tied(r, tied) for r in results)


def _observe_all(rows: list[ParameterRow], adapter, model, instance: int, last: bool) -> None:
    """One instance's values of every parameter, folded.  (Folding the
    parameters side by side in threads gained nothing measurable on two
    cores: the folds are memory-bound and the rest holds the GIL.)"""
    for row in rows:
        row.observe(adapter.values(model, row.ref), instance, last)


def check_numbers(samples, instances, max_instances, time_limit, seed, alpha,
                  spell: Callable[[str], str] = str) -> None:
    """InputError for a setting out of range; ``spell`` names it (the CLI's
    ``--time-limit`` for the API's ``time_limit``)."""
    def whole(value, name, low):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{spell(name)} must be a whole number of at least {low:,}, got {value!r}")

    whole(samples, "samples", 1)
    whole(max_instances, "max_instances", 1)
    whole(seed, "seed", 0)
    if instances is not None:
        whole(instances, "instances", MIN_INSTANCES)
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
        raise InputError(f"{spell('time_limit')} must be a positive number of seconds, got {time_limit!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise InputError(f"{spell('alpha')} must be between 0 and 1, got {alpha!r}")


def _same_parameters(adapter, model, refs: list[ParameterRef], index: int, name: str) -> None:
    now = adapter.parameters(model)
    if [(r.name, r.shape) for r in now] != [(r.name, r.shape) for r in refs]:
        raise InputError(f"{name} built instance {index} with other parameters than instance 0; the factory must "
                         "build the same model every time")


def _checked(row: ParameterRow):
    """(summary, own checks) of a row that folded values, else (None, [])."""
    if not row.checked or row.reducer is None:
        return None, []
    summary = row.reducer.summary()
    checks = row.own_checks(summary)
    row.reducer = None  # its summary is all that is needed now
    return summary, checks


def _sampled(rows: list[ParameterRow], adapter, samples: int, copies: dict[str, list[str]],
             extra: dict[str, list[CheckResult]] | None = None) -> list[Sampled]:
    """Each row's :class:`Sampled`: its summary and checks, the model-level checks first."""
    checked = [_checked(row) for row in rows]  # (mostly Python: threads would only contend for the GIL)
    sampled = []
    for row, (summary, own) in zip(rows, checked):
        ref, expectation = row.ref, row.expectation
        api = f"{ref.layer_type}.{ref.attribute}"
        done = Sampled(expectation.source if row.checked else "no law", ref.name, adapter.name, api, ref.shape,
                       row.device, row.dtype or ref.dtype, samples=samples)
        if not row.checked:
            done.reason = expectation.reason
            sampled.append(done)
            continue
        done.api = f"{api}: {expectation.text}" if expectation.text else api
        done.law, done.seconds = expectation.law, row.seconds
        if summary is None:  # every value is a fixed row
            done.reason = "every value is fixed by the law"
        done.summary, done.checks = summary, own
        model_level = list((extra or {}).get(ref.name, ()))  # first, so that the reason leads with them
        seed = seed_check(row)
        if seed is not None:
            model_level.append(seed)
        if ref.name in copies:
            model_level.append(CheckResult("duplicate", float(len(copies[ref.name])),
                                           "; ".join(copies[ref.name]) + " within one instance", passed=False))
        done.checks = model_level + done.checks
        sampled.append(done)
    return sampled


def _diagnosed(result: RowResult, default: Expectation | None) -> RowResult:
    """A parameter that fails its rule's (or the preset's) law but whose values
    pass its layer's default law at the same levels was never reached by the
    init: say so first in the reason."""
    if result.verdict != "FAIL" or default is None or result.summary is None:
        return result
    from dataclasses import replace

    from initcheck.checks import evaluate
    from initcheck.lowp import sample_dtype

    levels = {c.name: c.level for c in result.checks if c.statistical}
    against = evaluate(default.law, result.summary, sample_dtype(result.dtype))
    follows = all(c.pvalue > levels.get(c.name, DIAGNOSIS_LEVEL) if c.statistical else c.passed for c in against)
    if not follows:
        return result
    return replace(result, reason=f"follows {default.source} {default.law.describe()} instead: the init did not "
                                  f"reach this parameter; {result.reason}")


def _with_tied(result: RowResult, tied: tuple[tuple[str, str], ...]) -> RowResult:
    names = [name for name, owner in tied if owner == result.layer]
    if not names:
        return result
    from dataclasses import replace

    return replace(result, api=f"{result.api} (tied: {', '.join(names)})")
