"""initcheck: verify that a weight initializer draws from the law it documents.

The public API (see :mod:`initcheck.api`)::

    import initcheck

    result = initcheck.verify(my_init, initcheck.Uniform(-0.05, 0.05), shape=(256, 784))
    assert result, str(result)

    initcheck.verify(initcheck.xavier("normal"), framework="torch", fan_in=784, fan_out=256)

    initcheck.verify_all([initcheck.Check(...), initcheck.Check(...)], samples=10**6)

Importing initcheck imports no framework and changes nothing in the caller's
process; names are loaded on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "verify": "initcheck.api",
    "verify_all": "initcheck.api",
    "assert_law": "initcheck.api",
    "verify_model": "initcheck.model",
    "ModelVerification": "initcheck.model",
    "propagate": "initcheck.propagate",
    "Check": "initcheck.api",
    "Scheme": "initcheck.api",
    "xavier": "initcheck.api",
    "kaiming": "initcheck.api",
    "lecun": "initcheck.api",
    "variance_scaling": "initcheck.api",
    "trunc_normal": "initcheck.api",
    "normal": "initcheck.api",
    "uniform": "initcheck.api",
    "orthogonal": "initcheck.api",
    "sparse": "initcheck.api",
    "eye": "initcheck.api",
    "dirac": "initcheck.api",
    "delta_orthogonal": "initcheck.api",
    "constant": "initcheck.api",
    "Normal": "initcheck.laws",
    "Uniform": "initcheck.laws",
    "TruncatedNormal": "initcheck.laws",
    "Constant": "initcheck.laws",
    "OrthogonalEntry": "initcheck.laws",
    "ZeroInflated": "initcheck.laws",
    "Exact": "initcheck.laws",
    "Law": "initcheck.laws",
    "Verification": "initcheck.results",
    "RowResult": "initcheck.results",
    "CheckResult": "initcheck.checks",
    "Summary": "initcheck.summary",
    "InputError": "initcheck.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'initcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
