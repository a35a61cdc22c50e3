"""The Python API: verify initializers from code, several under one Holm family.

A check names *what* draws (``target``) and *what law* it must follow:

* a scheme (:func:`xavier`, :func:`kaiming`, :func:`lecun`,
  :func:`variance_scaling`, :func:`trunc_normal`, :func:`normal`,
  :func:`uniform`; the structured :func:`orthogonal`, :func:`sparse`,
  :func:`eye`, :func:`dirac`, :func:`delta_orthogonal`, :func:`constant`)
  with ``framework=``: the framework's real initializer of that
  scheme, checked against the law the framework documents (PyTorch's
  ``xavier_normal_`` is a plain normal, Keras' and JAX's ``glorot_normal`` a
  normal cut at two sigma);
* a callable ``fn(shape, seed)`` returning an array of that shape (NumPy,
  PyTorch, TensorFlow, JAX), or its ``"FILE.py:FUNC"`` / ``"module:FUNC"``
  name, with ``expected`` a law (:class:`~initcheck.laws.Normal`,
  :class:`~initcheck.laws.Uniform`, :class:`~initcheck.laws.TruncatedNormal`,
  :class:`~initcheck.laws.Constant`) or a scheme, whose law then takes the fans
  of ``shape`` (or ``fan_in``/``fan_out``); a structured scheme takes the
  whole shape and adds its per-draw checks (:mod:`initcheck.structured`).  A function that also takes a
  keyword ``count`` may be called as ``fn(shape, seed, count=K)`` for K draws
  at once, shape ``(K, *shape)``.

:func:`verify` runs one check; :func:`verify_all` runs several as one
command: one Holm family over every statistical check of every row, so the
probability that a correct initializer fails anywhere is at most ``alpha``
(default 1e-6).  Both return a :class:`~initcheck.results.Verification`:
truthy when no row failed, every row's checks with statistic, p-value, Holm
level, threshold and power, and a ``str()`` that reads like the table.

Everything a user can get wrong raises :class:`~initcheck.errors.InputError`
with a one-line message, before anything is drawn.

>>> import numpy as np, initcheck
>>> def my_init(shape, seed):
...     return np.random.default_rng(seed).uniform(-0.05, 0.05, shape).astype(np.float32)
>>> result = initcheck.verify(my_init, initcheck.Uniform(-0.05, 0.05), shape=(256, 784), samples=10**6)
>>> bool(result), result.verdict
(True, 'PASS')
>>> [check.name for check in result.checks]
['finite', 'support', 'mean', 'variance', 'ks', 'spikes', 'independence', 'draws', 'positions', 'copies']
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from initcheck.errors import InputError
from initcheck.laws import Law
from initcheck.layers import LAYOUTS, Layer, format_shape
from initcheck.results import Verification
from initcheck.schemes import InitSpec

#: Values per row unless ``samples`` says otherwise.
DEFAULT_SAMPLES = 10_000_000
#: The fewest values a row may draw (below that no check has any power).
MIN_SAMPLES = 1000
#: The most values a row may draw.
MAX_SAMPLES = 10**12
#: The most values one draw may hold (a larger tensor is refused before it is allocated).
MAX_DRAW_VALUES = 2**31
#: The family-wise false-failure rate unless ``alpha`` says otherwise.
DEFAULT_ALPHA = 1e-6

#: The type of a scheme: what :func:`xavier` and the others return.
Scheme = InitSpec


def xavier(dist: str = "normal", gain: float | None = None) -> Scheme:
    """Xavier/Glorot: variance = gain^2 * 2 / (fan_in + fan_out)."""
    return InitSpec("xavier", dist, gain=gain)


def kaiming(dist: str = "normal", mode: str = "fan_in", nonlinearity: str = "leaky_relu",
            a: float | None = None) -> Scheme:
    """Kaiming/He: variance = gain(nonlinearity, a)^2 / fan (fan_in or fan_out);
    ``a`` is leaky_relu's negative slope (0 when not given)."""
    return InitSpec("kaiming", dist, mode=mode, nonlinearity=nonlinearity, slope=a)


def lecun(dist: str = "normal") -> Scheme:
    """LeCun: variance = 1 / fan_in."""
    return InitSpec("lecun", dist)


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated-normal") -> Scheme:
    """The general rule of Keras and JAX: variance = scale / n, n from the mode."""
    return InitSpec("variance-scaling", distribution, scale=scale, mode=mode)


def trunc_normal(std: float, low: float, high: float, mean: float = 0.0) -> Scheme:
    """N(mean, std) cut at the absolute bounds ``low`` and ``high``."""
    return InitSpec("trunc-normal", mean=mean, std=std, low=low, high=high)


def normal(std: float, mean: float = 0.0) -> Scheme:
    """N(mean, std), as ``torch.nn.init.normal_`` or ``keras.initializers.RandomNormal``."""
    return InitSpec("normal", mean=mean, std=std)


def uniform(low: float, high: float) -> Scheme:
    """U(low, high), as ``torch.nn.init.uniform_`` or ``keras.initializers.RandomUniform``."""
    return InitSpec("uniform", low=low, high=high)


def orthogonal(gain: float = 1.0) -> Scheme:
    """gain x a Haar-random matrix with orthonormal rows or columns (the weight
    viewed as 2-d): ``torch.nn.init.orthogonal_``, ``keras.initializers.Orthogonal``,
    ``jax.nn.initializers.orthogonal``.  Checked per draw (W Wᵀ = gain² I, fair
    diagonal signs) and against the law of one entry (:class:`~initcheck.laws.OrthogonalEntry`)."""
    return InitSpec("orthogonal", gain=gain)


def sparse(sparsity: float, std: float = 0.01) -> Scheme:
    """``torch.nn.init.sparse_``: ceil(sparsity x rows) zeros in every column of
    a 2-d weight, the rest N(0, std)."""
    return InitSpec("sparse", sparsity=sparsity, std=std)


def eye(gain: float = 1.0) -> Scheme:
    """gain on the diagonal of a 2-d weight, 0 elsewhere: ``torch.nn.init.eye_``
    (gain 1 only), ``keras.initializers.Identity(gain)``; checked exactly."""
    return InitSpec("eye", gain=gain)


def dirac(groups: int = 1) -> Scheme:
    """``torch.nn.init.dirac_(w, groups)`` on a 3-5-d convolution weight; checked exactly."""
    return InitSpec("dirac", groups=groups)


def delta_orthogonal(gain: float = 1.0) -> Scheme:
    """``jax.nn.initializers.delta_orthogonal(gain)``: zeros but for the kernel's
    centre, which holds gain x an orthogonal (in, out) matrix."""
    return InitSpec("delta-orthogonal", gain=gain)


def constant(value: float) -> Scheme:
    """Every value equal to ``value``: ``torch.nn.init.constant_`` (``zeros_`` and
    ``ones_`` for 0 and 1), ``keras.initializers.Constant``, ``jax.nn.initializers.constant``."""
    return InitSpec("constant", value=value)


@dataclass(frozen=True)
class Check:
    """One thing to verify; see the module docstring for ``target`` and ``expected``.

    ``shape`` is the weight shape (read in ``layout``: PyTorch's ``(out, in,
    *kernel)`` or Keras' ``(*kernel, in, out)``); ``fan_in`` and ``fan_out``
    alone mean a dense layer, and beside ``shape`` they set the fans of the law.
    ``framework`` is one name or a comma list (``"torch"``, ``"keras"``,
    ``"jax"``, ``"reference"``) for a scheme target.  ``samples`` overrides the
    run's for this check only.
    """

    target: Any
    expected: Law | Scheme | None = None
    shape: tuple[int, ...] | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    layout: str = "torch"
    framework: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    samples: int | None = None

    def rows(self) -> list:
        """The rows this check runs (one per framework for a scheme target)."""
        from initcheck import rows as requests
        from initcheck.frameworks.base import DTYPES, parse_device

        if self.layout not in LAYOUTS:
            raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        device = parse_device(str(self.device))
        samples = None if self.samples is None else _samples(self.samples)
        shape = None if self.shape is None else _shape(self.shape)
        fans = None
        if self.fan_in is not None or self.fan_out is not None:
            fans = Layer.dense(_count(self.fan_in, "fan_in"), _count(self.fan_out, "fan_out"))
        if isinstance(self.target, InitSpec):
            rows = self._framework_rows(shape, fans, device, requests)
        else:
            rows = self._function_rows(shape, fans, requests)
        for row in rows:
            row.samples = samples
        return rows

    def _framework_rows(self, shape, fans, device, requests) -> list:
        from initcheck import frameworks as registry

        if self.expected is not None:
            raise InputError("a scheme target is checked against its framework's documented law; "
                             "leave expected out (or pass a function as the target)")
        if not self.framework:
            raise InputError("a scheme target needs framework= (torch, keras, jax or reference)")
        if not isinstance(self.framework, str):
            raise InputError(f"framework must be a name such as 'torch', got {type(self.framework).__name__}")
        if shape is not None:
            layer = Layer.from_shape(shape, self.layout, vector=not self.target.uses_fans)
        elif fans is not None:
            layer = fans
        elif self.target.uses_fans:
            raise InputError("the fans are needed: give shape= or fan_in= and fan_out=")
        elif self.target.structured:
            from initcheck.structured import default_shape

            layer = Layer.from_shape(default_shape(self.target))
        else:
            layer = Layer.from_shape(requests.DEFAULT_SHAPE)
        frameworks = registry.resolve(self.framework)
        return requests.scheme_rows([self.target], [layer], frameworks, device, self.dtype)

    def _function_rows(self, shape, fans, requests) -> list:
        from initcheck.frameworks.custom import load_function

        if isinstance(self.target, str):
            function, name = load_function(self.target), self.target
        elif callable(self.target):
            function, name = self.target, getattr(self.target, "__qualname__", None) or repr(self.target)
        else:
            raise InputError(
                f"target must be a scheme (initcheck.xavier(...)), a function fn(shape, seed) or its "
                f"'FILE.py:FUNC' name; got {type(self.target).__name__}"
            )
        _check_signature(function, name)
        if shape is None:
            if fans is None:
                raise InputError("a function target needs shape= (or fan_in= and fan_out= for a dense layer)")
            shape = fans.shape(self.layout)
        expected = self.expected
        draw_checks = None
        if isinstance(expected, InitSpec) and expected.structured:
            from initcheck.structured import expectation

            law, draw_checks = expectation(expected, shape, self.layout)
            label = f"expect {expected.describe()}"
        elif isinstance(expected, InitSpec):
            if expected.uses_fans and fans is None:
                fans = Layer.from_shape(shape, self.layout)
            law = expected.law(fans.fan_in, fans.fan_out) if expected.uses_fans else expected.law(1, 1)
            label = f"expect {expected.describe()}"
        elif isinstance(expected, Law):
            law, label = expected, f"expect {expected.describe()}"
        elif expected is None:
            raise InputError("a function target needs expected=: a law (initcheck.Normal(0, 0.1), ...) "
                             "or a scheme (initcheck.xavier('uniform'), ...)")
        else:
            raise InputError(
                f"expected must be a law (initcheck.Normal, Uniform, TruncatedNormal, Constant) or a "
                f"scheme (initcheck.xavier(...), ...); got {type(expected).__name__}"
            )
        shown_fans = fans if isinstance(expected, InitSpec) and expected.uses_fans else None
        return requests.function_rows(function, name, law, label, shape, shown_fans, draw_checks)


def verify(target, expected: Law | Scheme | None = None, *, shape: Sequence[int] | None = None,
           fan_in: int | None = None, fan_out: int | None = None, layout: str = "torch",
           framework: str | None = None, dtype: str = "float32", device: str = "cpu",
           samples: int = DEFAULT_SAMPLES, seed: int = 0, alpha: float = DEFAULT_ALPHA,
           strict: bool = False) -> Verification:
    """Verify one initializer; the arguments are those of :class:`Check` and
    :func:`verify_all`.

    >>> import initcheck
    >>> result = initcheck.verify(initcheck.xavier("uniform"), framework="reference",
    ...                           fan_in=784, fan_out=256, samples=10**6)
    >>> result.verdict, result.law.describe()
    ('PASS', 'U(±0.07596)')
    """
    check = Check(target, expected, None if shape is None else _shape(shape), fan_in, fan_out, layout, framework,
                  dtype, device)
    return verify_all([check], samples=samples, seed=seed, alpha=alpha, strict=strict)


def verify_all(checks: Sequence[Check], *, samples: int = DEFAULT_SAMPLES, seed: int = 0,
               alpha: float = DEFAULT_ALPHA, strict: bool = False, progress: bool = False) -> Verification:
    """Run every check's rows as one command: one Holm family at ``alpha``.

    ``samples`` values per row (at least :data:`MIN_SAMPLES`), draws seeded
    from ``seed`` and each row's identity (the same call gives the same
    numbers), ``strict`` makes WARN (a 16-bit rounding within the dtype's
    resolution) a FAIL, ``progress`` shows a bar on stderr for long runs."""
    from initcheck import kernels
    from initcheck.runner import run

    kernels.check_choice()
    if isinstance(checks, Check):
        checks = [checks]
    rows = []
    for check in checks:
        if not isinstance(check, Check):
            raise InputError(f"verify_all takes initcheck.Check objects, got {type(check).__name__}")
        rows += check.rows()
    if _integer(seed) is None or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    if not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be between 0 and 1, got {alpha!r}")
    return run(rows, _samples(samples), seed, float(alpha), show_progress=progress, strict=bool(strict))


def _integer(value) -> int | None:
    """value as an int when it is an integer (Python's or NumPy's, not a
    bool), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _samples(value) -> int:
    whole = _integer(value)
    if whole is None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or value != int(value):
            raise InputError(f"samples must be a whole number, got {value!r}")
        whole = int(value)
    if not MIN_SAMPLES <= whole <= MAX_SAMPLES:
        raise InputError(f"samples must be between {MIN_SAMPLES:,} and {MAX_SAMPLES:.0e}, got {whole:,}")
    return whole


def _count(value, name: str) -> int:
    whole = _integer(value)
    if whole is None or whole < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return whole


def _shape(shape) -> tuple[int, ...]:
    """shape as a tuple of ints (a sequence of positive integers: a tuple,
    a list, ``torch.Size``, NumPy integers), or InputError."""
    problem = InputError(f"shape must be a sequence of positive integers such as (256, 784), got {shape!r}")
    if isinstance(shape, (str, bytes)):
        raise problem
    try:
        dims = tuple(_integer(d) for d in shape)
    except TypeError:
        raise problem from None
    if not dims or any(d is None or d < 1 for d in dims):
        raise problem
    if math.prod(dims) > MAX_DRAW_VALUES:
        raise InputError(f"shape {format_shape(dims)} holds {math.prod(dims):,} values a draw; "
                         f"at most {MAX_DRAW_VALUES:,} are supported")
    return dims


def _check_signature(function: Callable, name: str) -> None:
    """InputError unless ``function`` can be called as ``function(shape, seed)``."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or extension without a signature: calling it will tell
    try:
        signature.bind(None, None)
    except TypeError:
        raise InputError(f"{name} must take (shape, seed); its signature is {name}{signature}") from None


def assert_law(target, expected: Law | Scheme | None = None, **options) -> Verification:
    """:func:`verify`, raising ``AssertionError`` unless it passed; the message
    is the failing rows as the table shows them (or why nothing was checked).

    >>> import numpy as np, initcheck
    >>> def halved(shape, seed):  # a bug: half the std it should have
    ...     return np.random.default_rng(seed).normal(0.0, 0.01, shape)
    >>> initcheck.assert_law(halved, initcheck.Normal(0.0, 0.02), shape=(64, 64),
    ...                      samples=10**5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: FAIL custom | expect N(0, σ=0.02) | shape (64, 64) | float64 cpu
    FAIL: std 50% below the law's: z = -169.8; ...
    """
    verification = verify(target, expected, **options)
    if not verification:
        raise AssertionError(failure_message(verification))
    return verification


def failure_message(verification: Verification) -> str:
    """What :func:`assert_law` and the pytest plugin say when a verification did not pass."""
    if verification.failures:
        return "\n".join(str(r) for r in verification.failures).rstrip()
    if verification.interrupted:
        return "interrupted before every row was checked\n" + str(verification)
    return "nothing was checked: every row was skipped\n" + "\n".join(
        f"SKIP {r.framework} {r.api}: {r.reason}" for r in verification)
