"""Rules files: the law each parameter of a model must follow, by name.

    initcheck model net.py:build --rules rules.toml

A rules file is a list of ``[[rule]]`` tables, read with ``tomllib``::

    [[rule]]
    match = "*.norm*.weight"     # a glob over the dotted parameter name
    scheme = "constant"
    value = 1.0

    [[rule]]
    match = "*.weight"
    scheme = "xavier"            # the law keys of a suite check
    dist = "uniform"

    [[rule]]
    match = "*.bias"
    scheme = "zeros"

The first rule whose ``match`` fits a parameter's name gives its law
(:func:`fnmatch.fnmatchcase`: ``*`` also spans dots, ``?`` one character,
``[...]`` a set).  ``match`` may also be a list of globs.  The law keys:

==================  ========================================================
scheme              keys
==================  ========================================================
xavier              dist (normal, uniform, truncated-normal), gain
kaiming             dist, mode, nonlinearity, a
lecun               dist
variance-scaling    dist, scale, mode
normal              std, mean
uniform             low and high, or bound
trunc-normal        std, mean, low, high (absolute bounds)
constant            value (zeros and ones need none)
orthogonal          gain
sparse              sparsity, std
eye                 gain
dirac               groups
delta-orthogonal    gain
skip                reason: the parameter is not checked, and the row says why
==================  ========================================================

Fan-based schemes take their fans from the parameter's own shape, as the
framework computes them (PyTorch ``(out, in, *kernel)``, Keras and Flax
``(*kernel, in, out)``).  Everything malformed (a file that is not TOML, an
unknown key or scheme, a wrong type, a rule that matches no parameter, a
fan-based scheme on a 1-d parameter) is an :class:`InputError` naming the
file and the rule.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.schemes import STRUCTURED_PARAMETERS, InitSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The keys each scheme takes, beyond ``match`` and ``scheme``.
RULE_KEYS = {
    "xavier": ("dist", "gain"),
    "kaiming": ("dist", "mode", "nonlinearity", "a"),
    "lecun": ("dist",),
    "variance-scaling": ("dist", "scale", "mode"),
    "normal": ("std", "mean"),
    "uniform": ("low", "high", "bound"),
    "trunc-normal": ("std", "mean", "low", "high"),
    **STRUCTURED_PARAMETERS,  # orthogonal, sparse, eye, dirac, delta-orthogonal, constant, zeros, ones
    "skip": ("reason",),
}
_NUMBER = (int, float)
_TYPES = {"dist": str, "mode": str, "nonlinearity": str, "reason": str, "gain": _NUMBER, "a": _NUMBER,
          "scale": _NUMBER, "std": _NUMBER, "mean": _NUMBER, "low": _NUMBER, "high": _NUMBER, "bound": _NUMBER,
          "value": _NUMBER, "sparsity": _NUMBER, "groups": int}
_WORDS = {str: "a string", _NUMBER: "a number", int: "an integer"}


@dataclass(frozen=True)
class Rule:
    """One ``[[rule]]``: its globs and the scheme it gives, or a skip."""

    index: int
    globs: tuple[str, ...]
    spec: InitSpec | None
    #: For ``scheme = "skip"``: why the parameter is not checked.
    skip_reason: str = ""

    def matches(self, name: str) -> bool:
        return any(fnmatchcase(name, glob) for glob in self.globs)

    @property
    def label(self) -> str:
        return f"rule {self.index} ({', '.join(self.globs)})"


@dataclass
class Rules:
    """The rules of one file, in order; ``used`` records which matched."""

    path: str
    rules: list[Rule] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    def first_match(self, name: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(name):
                self.used.add(rule.index)
                return rule
        return None

    def check_all_used(self) -> None:
        """A rule that matched no parameter is a mistake (a typo in a glob): InputError."""
        for rule in self.rules:
            if rule.index not in self.used:
                raise InputError(f"{self.path}: {rule.label} matches no parameter of the model")

    def expectation(self, name: str, shape: tuple[int, ...], layout: str) -> Expectation | Unknown | None:
        """The law of the parameter ``name`` from the first rule that fits, or None."""
        rule = self.first_match(name)
        if rule is None:
            return None
        if rule.spec is None:
            return Unknown(f"skipped by {rule.label}" + (f": {rule.skip_reason}" if rule.skip_reason else ""))
        if rule.spec.uses_fans and len(shape) < 2:
            raise InputError(f"{self.path}: {rule.label} on {name}: {rule.spec.scheme} needs fans, and shape "
                             f"{tuple(shape)} has 1 dimension (add a rule before this one for it)")
        try:
            law, draw_checks = law_of(rule.spec, shape, layout)
        except InputError as error:
            raise InputError(f"{self.path}: {rule.label} on {name}: {error}") from None
        return Expectation(law, rule.label, rule.spec.describe(), draw_checks=draw_checks)


def law_of(spec: InitSpec, shape: tuple[int, ...], layout: str):
    """(law, per-draw checks factory or None) of ``spec`` on a parameter of ``shape``."""
    from initcheck.structured import expectation

    return expectation(spec, tuple(shape), layout)


def load_rules(source) -> Rules:
    """Read rules from a TOML file path, or take them as a list of dicts (the
    Python API); validate every key and type."""
    if isinstance(source, Rules):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise InputError(f"rules file {path} does not exist") from None
        except IsADirectoryError:
            raise InputError(f"rules file {path} is a directory") from None
        except OSError as error:
            raise InputError(f"rules file {path} cannot be read: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise InputError(f"{path}: not valid TOML: {error}") from None
        unknown = sorted(set(data) - {"rule"})
        if unknown:
            raise InputError(f"{path}: unknown top-level key {unknown[0]!r}; a rules file holds [[rule]] tables")
        tables, where = data.get("rule", []), str(path)
    elif isinstance(source, (list, tuple)):
        tables, where = list(source), "rules"
    else:
        raise InputError(f"rules must be a TOML file path or a list of rule tables, got {type(source).__name__}")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InputError(f"{where}: rules must be [[rule]] tables")
    if not tables:
        raise InputError(f"{where}: no [[rule]] in the file")
    return Rules(where, [_rule(index, table, where) for index, table in enumerate(tables, start=1)])


def _rule(index: int, table: dict, where: str) -> Rule:
    here = f"{where}: rule {index}"
    match = table.get("match")
    if match is None:
        raise InputError(f"{here}: key 'match' is missing (a glob over parameter names, such as \"*.weight\")")
    globs = (match,) if isinstance(match, str) else tuple(match) if isinstance(match, list) else ()
    if not globs or not all(isinstance(g, str) and g for g in globs):
        raise InputError(f"{here}: key 'match' must be a glob string or a list of them, got {match!r}")
    scheme = table.get("scheme")
    if scheme is None:
        raise InputError(f"{here}: key 'scheme' is missing; expected one of {', '.join(RULE_KEYS)}")
    if scheme not in RULE_KEYS:
        raise InputError(f"{here}: unknown scheme {scheme!r}; expected one of {', '.join(RULE_KEYS)}")
    allowed = RULE_KEYS[scheme]
    for key, value in table.items():
        if key in ("match", "scheme"):
            continue
        if key not in allowed:
            known = any(key in keys for keys in RULE_KEYS.values())
            problem = f"does not apply to scheme {scheme}" if known else "unknown key"
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes no other key"
            raise InputError(f"{here}: key {key!r}: {problem}; {takes}")
        expected = _TYPES[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise InputError(f"{here}: key {key!r} must be {_WORDS[expected]}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{here}: key {key!r} must be finite, got {value!r}")
    if scheme == "skip":
        return Rule(index, globs, None, table.get("reason", ""))
    try:
        spec = spec_of(scheme, table)
    except InputError as error:
        raise InputError(f"{here}: {str(error).replace('--', '')}") from None
    return Rule(index, globs, spec)


def spec_of(scheme: str, keys: dict) -> InitSpec:
    """The :class:`InitSpec` of a rule's scheme and keys (validated by InitSpec)."""
    get = keys.get
    number = (lambda name, default=None: None if get(name) is None and default is None
              else float(get(name, default)))
    if scheme == "xavier":
        return InitSpec("xavier", get("dist", "normal"), gain=number("gain"))
    if scheme == "kaiming":
        return InitSpec("kaiming", get("dist", "normal"), mode=get("mode", "fan_in"),
                        nonlinearity=get("nonlinearity", "leaky_relu"), slope=number("a"))
    if scheme == "lecun":
        return InitSpec("lecun", get("dist", "normal"))
    if scheme == "variance-scaling":
        return InitSpec("variance-scaling", get("dist", "truncated-normal"), scale=number("scale", 1.0),
                        mode=get("mode", "fan_in"))
    if scheme == "normal":
        if get("std") is None:
            raise InputError("scheme normal needs key 'std'")
        return InitSpec("normal", mean=number("mean", 0.0), std=number("std"))
    if scheme == "uniform":
        if get("bound") is not None:
            if get("low") is not None or get("high") is not None:
                raise InputError("give either 'bound' or 'low' and 'high', not both")
            if not get("bound") > 0:
                raise InputError(f"key 'bound' must be positive, got {get('bound')}")
            return InitSpec("uniform", low=-float(get("bound")), high=float(get("bound")))
        if get("low") is None or get("high") is None:
            raise InputError("scheme uniform needs 'low' and 'high' (or 'bound')")
        return InitSpec("uniform", low=number("low"), high=number("high"))
    if scheme == "trunc-normal":
        if get("std") is None:
            raise InputError("scheme trunc-normal needs key 'std'")
        return InitSpec("trunc-normal", mean=number("mean", 0.0), std=number("std"),
                        low=number("low", -2.0), high=number("high", 2.0))
    if scheme in STRUCTURED_PARAMETERS:  # InitSpec validates them, and says what is missing
        return InitSpec(scheme, **{key: (value if key == "groups" else float(value))
                                   for key, value in keys.items() if key in STRUCTURED_PARAMETERS[scheme]})
    raise AssertionError(scheme)
