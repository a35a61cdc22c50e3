"""A user's own initializer: ``FILE.py:FUNC`` or ``package.module:FUNC``.

FUNC is called as ``FUNC(shape, seed)`` once per draw and must return an array of
exactly that shape: NumPy, PyTorch, TensorFlow, JAX, or anything NumPy converts.
Real floating-point results are checked as they come; integer results are
checked as float64.  Everything that can go wrong with the function (it cannot
be found or imported, it raises, it returns the wrong shape or something that is
not a real number array) is an :class:`InputError`, so the CLI exits 2 with one
line and no traceback.  NaN and Inf in a result are not errors: they fail the
row's ``finite`` check.

A function may draw many small tensors in one call: if it has a parameter named
``count`` (read once from its signature), initcheck calls it as
``FUNC(shape, seed, count=K)`` for small shapes and expects K independent draws
stacked on a new leading axis, an array of shape ``(K, *shape)``; the result is
checked like a single draw's, and a wrong shape is a one-line InputError naming
the expected and the returned shape.  One seed then stands for the K draws of
the call; it is derived from (``--seed``, the row, the call's index), so the
numbers are still reproducible.  Seeds are integers in [0, 2**32), distinct
for the draws of one row, so any framework's seeding call takes them
(``np.random.seed``, ``np.random.RandomState``, ``torch.manual_seed``,
``tf.random.set_seed``, ``jax.random.key``).  Each of the K draws should be the function's
real per-draw computation on ``shape`` (e.g. a loop, or ``torch.func.vmap`` /
``jax.vmap`` over it), not one large tensor reshaped, or fans read off the shape
are not the layer's.  Functions without ``count`` are called once per draw.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from initcheck.errors import InputError
from initcheck.frameworks.base import Plan
from initcheck.layers import format_shape


def load_function(target: str, noun: str = "custom function") -> Callable:
    """Resolve ``FILE.py:FUNC`` or ``package.module:FUNC`` to the callable;
    ``noun`` names it in errors (``custom function``, ``model factory``)."""
    module_part, sep, name = target.rpartition(":")
    what = "FACTORY" if "factory" in noun else "FUNC"
    if not sep or not module_part or not name:
        raise InputError(f"{noun} {target!r} must look like FILE.py:{what} or package.module:{what}")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise InputError(f"{noun.split()[0]} file {module_part} does not exist")
        module_name = f"initcheck_custom_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise InputError(f"importing {module_part} failed: {_describe(error)}") from None
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as error:
            raise InputError(f"{noun.split()[0]} module {module_part} cannot be imported: {error}") from None
        except Exception as error:
            raise InputError(f"importing {module_part} failed: {_describe(error)}") from None
    function = getattr(module, name, None)
    if function is None:
        raise InputError(f"{module_part} has no {'factory' if 'factory' in noun else 'function'} {name!r}")
    if not callable(function):
        raise InputError(f"{module_part}:{name} is not callable")
    return function


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _validated(result, shape: tuple[int, ...], call: str):
    """The result as an array the reducers accept, or InputError."""
    module = type(result).__module__
    if module.startswith("torch"):
        array = result
        dtype_text = str(result.dtype).removeprefix("torch.")
        if result.is_floating_point():
            kind = "f"
        elif result.is_complex() or dtype_text == "bool":
            kind = "c"
        else:
            kind = "i"
    else:
        try:
            array = np.asarray(result)
        except Exception as error:
            raise InputError(f"{call} returned {type(result).__name__}, not an array ({_describe(error)})") from None
        dtype_text = str(array.dtype)
        kind = "f" if dtype_text == "bfloat16" else array.dtype.kind
    if tuple(array.shape) != tuple(shape):
        raise InputError(f"{call} returned shape {format_shape(tuple(array.shape))}, expected {format_shape(shape)}")
    if kind not in "fiu":
        raise InputError(f"{call} returned a {dtype_text} array; expected real numbers")
    if kind in "iu":
        array = array.double() if module.startswith("torch") else array.astype(np.float64)
    return array


def received(result) -> str | None:
    """What a function returned when it is not a real floating-point array of
    an array library: ``"an int64 array, checked as float64"``, ``"a list,
    checked as float64"``; None for float arrays and tensors."""
    module = type(result).__module__
    if module.startswith("torch"):
        if result.is_floating_point():
            return None
        return f"a torch {str(result.dtype).removeprefix('torch.')} tensor, checked as float64"
    if not hasattr(result, "shape") or not hasattr(result, "dtype"):
        try:
            converted = np.asarray(result)
        except Exception:  # _validated says why
            return None
        as_type = "float64" if converted.dtype.kind in "iu" else converted.dtype
        return f"a {type(result).__name__}, checked as {as_type}"
    dtype = np.dtype(result.dtype) if not str(result.dtype) == "bfloat16" else None
    if dtype is not None and dtype.kind in "iu":
        return f"an {dtype} array, checked as float64"
    return None


def custom_plan(function: Callable, target: str, law, shape: tuple[int, ...]) -> Plan:
    """A plan whose draws call the user's function; the row's dtype and device are
    those of what the function returns (the runner reads them off the first draw).

    The function is called once here (seed 0) so that what it returns is known
    before the row runs: a result that is not a floating-point array (integers,
    a list) is checked as float64, and the row's API text says so."""
    name = target.rpartition(":")[2]
    call = f"{name}(shape={format_shape(shape)}, seed=0)"
    try:
        probe = function(tuple(shape), 0)
    except Exception as error:
        raise InputError(f"{call} raised {_describe(error)}") from None
    _validated(probe, shape, call)
    note = received(probe)

    def draw(seed: int):
        call = f"{name}(shape={format_shape(shape)}, seed={seed})"
        try:
            result = function(tuple(shape), seed)
        except Exception as error:
            raise InputError(f"{call} raised {_describe(error)}") from None
        return _validated(result, shape, call)

    def draw_batch(seed: int, count: int):
        call = f"{name}(shape={format_shape(shape)}, seed={seed}, count={count})"
        try:
            result = function(tuple(shape), seed, count=count)
        except Exception as error:
            raise InputError(f"{call} raised {_describe(error)}") from None
        return _validated(result, (count, *shape), call)

    batched = accepts_count(function)
    api = f"{target}(shape, seed{', count' if batched else ''})" + (f" returns {note}" if note else "")
    return Plan("custom", api, law, tuple(shape), "?", "?", draw, draw_batch=draw_batch if batched else None,
                seed_bits=32)


def accepts_count(function: Callable) -> bool:
    """Whether ``function`` takes a ``count`` keyword (then it can draw batches)."""
    return takes_keyword(function, "count")


def takes_keyword(function: Callable, name: str) -> bool:
    """Whether ``function`` has a parameter ``name`` that can be passed by keyword."""
    try:
        parameter = inspect.signature(function).parameters.get(name)
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return False
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


def callable_name(function) -> str:
    """A function's or class's name for messages."""
    return getattr(function, "__qualname__", None) or getattr(function, "__name__", None) or "the factory"
