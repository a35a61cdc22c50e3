"""Framework adapters, imported only when a row needs them.

``resolve("torch,reference")`` returns adapter instances; with no names it
returns the frameworks the environment variable ``INITCHECK_FRAMEWORKS``
names (a comma list, as ``-f`` takes), or, where it is unset or empty, every
installed framework plus the reference.  A name that is unknown, or named
explicitly but not installed, is an :class:`InputError` (exit 2).
"""

from __future__ import annotations

import importlib
import importlib.util
import os

from initcheck.errors import InputError

#: name -> (module, class, what must be importable: one name or a comma list);
#: the module is imported on first use.
ADAPTERS = {
    "torch": ("initcheck.frameworks.pytorch", "PyTorch", "torch"),
    "keras": ("initcheck.frameworks.tf_keras", "Keras", "tensorflow"),
    "jax": ("initcheck.frameworks.jax_nn", "Jax", "jax"),
    "keras-jax": ("initcheck.frameworks.keras_backends", "KerasJax", "keras,jax"),
    "keras-torch": ("initcheck.frameworks.keras_backends", "KerasTorch", "keras,torch"),
    "tf-keras": ("initcheck.frameworks.keras2", "TfKeras", "tf_keras"),
    "paddle": ("initcheck.frameworks.paddle_nn", "Paddle", "paddle"),
    "mlx": ("initcheck.frameworks.mlx_nn", "Mlx", "mlx"),
    "reference": ("initcheck.frameworks.reference", "Reference", "numpy"),
}
#: How to install a framework, where the extra is not named after it.
INSTALL = {
    "keras": "pip install 'initcheck[tensorflow]'",
    "keras-jax": "pip install keras 'initcheck[jax]'",
    "keras-torch": "pip install keras 'initcheck[torch]'",
}
ALIASES = {"pytorch": "torch", "numpy": "reference", "tensorflow": "keras", "tf": "keras"}


def installed(name: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in ADAPTERS[name][2].split(","))


def load(name: str):
    module, cls, _ = ADAPTERS[name]
    return getattr(importlib.import_module(module), cls)()


class NotInstalled:
    """A framework named where it is not installed (a suite run in an
    environment without it): every row of it is a SKIP saying how to install it."""

    def __init__(self, name: str):
        self.name = self.title = name
        self.layout = "torch"
        self.reason = f"{name} is not installed ({install_hint(name)})"

    def version(self) -> str:
        return "not installed"

    def check_device(self, device: str) -> None:
        pass

    def plan(self, spec, layer, device, dtype):
        from initcheck.frameworks.base import Skip

        return Skip(self.name, self.name, self.reason, device, dtype, layer.shape("torch"))

    def default_rows(self, layer, device, dtype):
        from initcheck.frameworks.base import Skip

        return [("weight", Skip(self.name, self.name, self.reason, device, dtype))]

    def fans(self, layer):
        raise InputError(self.reason)

    def devices(self):
        return []


def install_hint(name: str) -> str:
    return INSTALL.get(name) or f"pip install 'initcheck[{name}]'"


def resolve(names: str | None, missing: str = "error") -> list:
    """Adapters for a comma-separated list of names (None: $INITCHECK_FRAMEWORKS,
    else all installed).  A name that is not installed is an InputError, or
    with ``missing="skip"`` a :class:`NotInstalled` whose rows are SKIPs."""
    if names is None:
        names = os.environ.get("INITCHECK_FRAMEWORKS", "").strip() or None
    if names is None:
        return [load(name) for name in ADAPTERS if installed(name)]
    chosen = []
    for raw in names.split(","):
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if not name:
            continue
        if name not in ADAPTERS:
            raise InputError(f"unknown framework {raw.strip()!r}; known: {', '.join(ADAPTERS)}")
        if not installed(name) and missing != "skip":
            raise InputError(f"framework {name!r} was asked for but is not installed ({install_hint(name)})")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise InputError("--framework names no framework")
    return [load(name) if installed(name) else NotInstalled(name) for name in chosen]
