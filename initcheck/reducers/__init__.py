"""Fold draws into a :class:`~initcheck.summary.Summary` where they live.

A reducer owns the running statistics of one row.  ``fold(x)`` adds one draw and
keeps nothing of it; ``fold(x, draws=K)`` adds K draws stacked along x's first
axis, shape ``(K, *draw_shape)``, with exactly the statistics of K single folds
(lag-1 pairs within each draw, between its rows, and between consecutive draws,
across batches too); ``summary()`` returns the host-side :class:`Summary`.

* :class:`~initcheck.reducers.host.HostReducer` handles every array that lives
  in host memory (NumPy, CPU tensors of PyTorch/TensorFlow/JAX, seen as NumPy
  without a copy) with :mod:`initcheck.kernels` (the C kernel, or NumPy where
  it was not built); :class:`~initcheck.reducers.host.PatternReducer` counts
  the bit patterns of 16-bit draws.
* Arrays on an accelerator are reduced on that accelerator
  (:mod:`initcheck.reducers.backends`); only scalars and the histogram come
  back to the host, once, at the end.

:func:`reducer_for` picks the right one from the first draw (or batch) of a
row.  The reducers know nothing of the framework adapters, and the adapters
nothing of the reducers.
"""

from __future__ import annotations

from initcheck.laws import Law
from initcheck.reducers.host import HostReducer, PatternReducer
from initcheck.reducers.shapes import as_host_array, lag_of_rows

__all__ = ["HostReducer", "PatternReducer", "as_host_array", "lag_of_rows", "on_accelerator", "reducer_for"]


def on_accelerator(sample) -> bool:
    """Whether a draw lives on a GPU (PyTorch, JAX or TensorFlow), without importing any."""
    module = type(sample).__module__
    if module.startswith("torch"):
        return sample.device.type != "cpu"
    if module.startswith(("jax", "jaxlib")):
        return any(device.platform != "cpu" for device in sample.devices())
    if module.startswith("tensorflow"):
        return "GPU" in sample.device.upper()
    return False


def reducer_for(sample, law: Law, expected_values: int | None = None):
    """The reducer for rows whose draws look like ``sample``: on the host for host
    arrays; on the accelerator for GPU arrays: JAX's by XLA, PyTorch's and
    TensorFlow's by torch (DLPack, no copy).  ``expected_values``, the values
    the row will fold, sets where the copies check's selection rate starts.  Without torch, TensorFlow GPU draws
    are copied to the host, which is correct but slower."""
    from initcheck.lowp import sixteen_bit_name

    sixteen = sixteen_bit_name(sample)
    if sixteen is not None:
        torch_gpu = type(sample).__module__.startswith("torch") and on_accelerator(sample)
        return PatternReducer(law, sixteen, device=sample.device if torch_gpu else None,
                              expected_values=expected_values)
    if on_accelerator(sample):
        import importlib.util

        if type(sample).__module__.startswith(("jax", "jaxlib")):
            from initcheck.reducers.backends.jax_reducer import JaxReducer

            return JaxReducer(law, expected_values=expected_values)

        if importlib.util.find_spec("torch") is not None:
            from initcheck.reducers.backends.torch_reducer import TorchReducer, as_torch

            return TorchReducer(law, device=as_torch(sample).device, expected_values=expected_values)
    return HostReducer(law, expected_values=expected_values)
