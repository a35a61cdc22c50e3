"""Suite files: many checks in one TOML file, run as one command.

    initcheck suite configs/ci.toml --json report.json --junit report.xml

A suite is read with the standard library's ``tomllib``::

    [defaults]                  # optional: any check key, plus seed, alpha, strict
    samples = "1e7"
    dtype = ["float32", "bfloat16"]

    [[check]]
    name = "glorot"             # optional; errors and reports name the check by it
    scheme = "xavier"           # xavier kaiming lecun variance-scaling trunc-normal orthogonal sparse
                                # eye dirac delta-orthogonal constant zeros ones defaults custom
    dist = ["normal", "uniform"]
    fans = [[784, 256]]         # dense layers, [fan_in, fan_out] each
    shapes = ["128,64,3,3"]     # weight shapes, read with `layout` (torch by default)

Every matrix key (:data:`MATRIX_KEYS`: dist, dtype, device, reference, gain,
mode, nonlinearity, a, scale) takes one value or a list; a check expands into
the cross product of its lists, so a few lines cover many rows.  ``frameworks``
(default: every installed one), ``fans`` and ``shapes`` are lists of what one
check covers.  A custom check names its ``function`` as ``FILE.py:FUNC``
(relative to the suite file) or ``package.module:FUNC`` and the law with
``expect`` and the options of ``initcheck custom``; its rows are the function's
and, unless ``frameworks`` leaves "reference" out, the NumPy reference control.

All rows of a suite run as one command: one table, one Holm family at the
suite's alpha, one report.  Anything malformed (an unknown key, a wrong type,
an unknown scheme, a missing file) is an :class:`InputError` that names the
file, the check and the key.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from initcheck import frameworks as registry
from initcheck import rows as requests
from initcheck.errors import InputError
from initcheck.frameworks.base import DTYPES, parse_device
from initcheck.layers import LAYOUTS, Layer, parse_shape
from initcheck.runner import Row
from initcheck.schemes import STRUCTURED_PARAMETERS, STRUCTURED_SCHEMES, InitSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMES = ("xavier", "kaiming", "lecun", "variance-scaling", "trunc-normal", "orthogonal", "sparse", "eye", "dirac",
           "delta-orthogonal", "constant", "zeros", "ones", "defaults", "custom")
#: Structured schemes (initcheck.structured): their shapes default to the command's.
STRUCTURED = STRUCTURED_SCHEMES
FAN_SCHEMES = ("xavier", "kaiming", "lecun", "variance-scaling")

#: Keys whose list values expand into one combination per element.
MATRIX_KEYS = ("dist", "dtype", "device", "reference", "gain", "mode", "nonlinearity", "a", "scale")
#: Keys every check may have.
COMMON_KEYS = ("name", "scheme", "frameworks", "fans", "shapes", "layout", "dtype", "device", "samples", "reference")
#: Keys of each scheme, beyond the common ones.
SCHEME_KEYS = {
    "xavier": ("dist", "gain"),
    "kaiming": ("dist", "mode", "nonlinearity", "a"),
    "lecun": ("dist",),
    "variance-scaling": ("dist", "scale", "mode"),
    "trunc-normal": ("std", "mean", "low", "high"),
    **STRUCTURED_PARAMETERS,
    "defaults": (),
    "custom": ("function", "expect", "dist", "gain", "mode", "nonlinearity", "a", "std", "mean", "bound", "low", "high"),
}
#: Keys of [defaults] that set the run rather than a check.
RUN_KEYS = ("seed", "alpha", "strict")
#: Every key [defaults] may hold.
DEFAULTS_KEYS = frozenset(COMMON_KEYS) | frozenset(RUN_KEYS) | {k for keys in SCHEME_KEYS.values() for k in keys}

_NUMBER = (int, float)
#: The type each key's value (or each element of a list value) must have.
_TYPES = {
    "name": str, "scheme": str, "layout": str, "function": str, "expect": str,
    "dist": str, "dtype": str, "device": str, "reference": str, "mode": str, "nonlinearity": str,
    "gain": _NUMBER, "a": _NUMBER, "scale": _NUMBER,
    "std": _NUMBER, "mean": _NUMBER, "low": _NUMBER, "high": _NUMBER, "bound": _NUMBER,
    "sparsity": _NUMBER, "value": _NUMBER, "groups": int,
    "samples": (str, int, float), "seed": int, "alpha": _NUMBER, "strict": bool,
}
_TYPE_WORDS = {str: "a string", _NUMBER: "a number", int: "an integer", bool: "true or false",
               (str, int, float): "a number or a string like \"1e7\""}


@dataclass
class Suite:
    """A parsed suite: its run settings and its checks' rows."""

    path: Path
    seed: int = 0
    alpha: float = 1e-6
    strict: bool = False
    rows: list[Row] = field(default_factory=list)
    frameworks: list = field(default_factory=list)


def load_suite(path: str | Path, samples_override: int | None = None, device_override: str | None = None) -> Suite:
    """Read, validate and expand a suite file into rows (frameworks are loaded,
    devices checked and custom functions imported here, before anything runs).
    ``samples_override`` and ``device_override`` replace every check's own."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"suite file {path} does not exist") from None
    except OSError as error:
        raise InputError(f"suite file {path} cannot be read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML: {error}") from None
    unknown = set(data) - {"defaults", "check"}
    if unknown:
        raise InputError(f"{path}: unknown top-level key {sorted(unknown)[0]!r}; expected [defaults] and [[check]]")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise InputError(f"{path}: [defaults] must be a table")
    checks = data.get("check", [])
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        raise InputError(f"{path}: checks must be [[check]] tables")
    if not checks:
        raise InputError(f"{path}: no [[check]] in the suite")

    where = f"{path}: [defaults]"
    for key, value in defaults.items():
        if key in ("name", "scheme", "function"):
            raise InputError(f"{where}: key {key!r} belongs to a check, not to the defaults")
        if key not in DEFAULTS_KEYS:
            raise InputError(f"{where}: unknown key {key!r}")
        _check_type(where, key, value)
    suite = Suite(path, seed=defaults.get("seed", 0), alpha=float(defaults.get("alpha", 1e-6)),
                  strict=defaults.get("strict", False))
    if suite.seed < 0 or not 0.0 < suite.alpha < 1.0:
        raise InputError(f"{where}: seed must be 0 or more and alpha between 0 and 1")
    run_defaults = {k: v for k, v in defaults.items() if k not in RUN_KEYS}

    loaded: dict[str, object] = {}
    for index, check in enumerate(checks, start=1):
        where = f"{path}: check {index}" + (f" ({check['name']})" if isinstance(check.get("name"), str) else "")
        merged = {**{k: v for k, v in run_defaults.items() if k in _keys_of(check.get("scheme"))}, **check}
        try:
            if device_override is not None:
                merged["device"] = device_override
            rows, frameworks = _expand(merged, where, path.parent, samples_override)
        except InputError as error:
            message = str(error)
            raise InputError(message if message.startswith(str(path)) else f"{where}: {message}") from None
        suite.rows += rows
        for framework in frameworks:
            loaded.setdefault(framework.name, framework)
    suite.frameworks = list(loaded.values())
    return suite


def _keys_of(scheme) -> tuple[str, ...]:
    return COMMON_KEYS + SCHEME_KEYS.get(scheme, ())


def _check_type(where: str, key: str, value) -> None:
    """Raise unless ``value`` has the key's type (lists allowed for matrix keys)."""
    if key in ("frameworks",):
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, str) for v in items):
            raise InputError(f"{where}: key {key!r} must be a framework name or a list of them")
        return
    if key == "fans":
        pairs = value if value and isinstance(value[0], list) else [value] if isinstance(value, list) else None
        if not pairs or not all(isinstance(p, list) and len(p) == 2 and all(type(v) is int for v in p) for p in pairs):
            raise InputError(f"{where}: key 'fans' must be [fan_in, fan_out] or a list of such pairs of integers")
        return
    if key == "shapes":
        if not all(isinstance(s, str) or (isinstance(s, list) and s and all(type(v) is int for v in s))
                   for s in _shape_list(value)):
            raise InputError(f"{where}: key 'shapes' must be a shape (\"128,64,3,3\" or [128, 64, 3, 3]) "
                             "or a list of them")
        return
    expected = _TYPES[key]
    items = value if key in MATRIX_KEYS and isinstance(value, list) else [value]
    if key in MATRIX_KEYS and isinstance(value, list) and not value:
        raise InputError(f"{where}: key {key!r} is an empty list")
    for item in items:
        bad_bool = isinstance(item, bool) and expected is not bool
        if bad_bool or not isinstance(item, expected):
            words = _TYPE_WORDS[expected] + (" or a list of them" if key in MATRIX_KEYS else "")
            raise InputError(f"{where}: key {key!r} must be {words}, got {item!r}")


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _shape_list(value) -> list:
    """``"128,64,3,3"`` or ``[128, 64, 3, 3]`` (one shape) or a list of shapes -> a list of shapes."""
    if isinstance(value, str) or (isinstance(value, list) and value and all(type(v) is int for v in value)):
        return [value]
    return value if isinstance(value, list) and value else [None]


def _layers(check: dict, where: str, vector: bool = False) -> tuple[list[tuple[int, ...]], list[Layer]]:
    """(shapes as given, layers) of a check: its fans, then its shapes."""
    layout = check.get("layout", "torch")
    if layout not in LAYOUTS:
        raise InputError(f"{where}: key 'layout' must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    shapes, layers = [], []
    if "fans" in check:
        fans = check["fans"]
        for fan_in, fan_out in fans if isinstance(fans[0], list) else [fans]:
            layer = Layer.dense(fan_in, fan_out)
            layers.append(layer)
            shapes.append(layer.shape(layout))
    if "shapes" in check:
        for shape in _shape_list(check["shapes"]):
            parsed = parse_shape(shape if isinstance(shape, str) else ",".join(map(str, shape)))
            shapes.append(parsed)
            layers.append(Layer.from_shape(parsed, layout, vector=vector))
    return shapes, layers


def _expand(check: dict, where: str, base: Path, samples_override: int | None) -> tuple[list[Row], list]:
    """The rows of one check, every matrix combination."""
    scheme = check.get("scheme")
    if scheme is None:
        raise InputError(f"{where}: key 'scheme' is missing; expected one of {', '.join(SCHEMES)}")
    if scheme not in SCHEMES:
        raise InputError(f"{where}: key 'scheme': unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    allowed = _keys_of(scheme)
    for key, value in check.items():
        if key not in allowed:
            known = any(key in keys for keys in SCHEME_KEYS.values()) or key in RUN_KEYS
            problem = f"does not apply to scheme {scheme}" if known else "unknown key"
            raise InputError(f"{where}: key {key!r}: {problem}; expected one of {', '.join(allowed)}")
        _check_type(where, key, value)

    samples = samples_override or requests.parse_samples(check.get("samples", requests.DEFAULT_SAMPLES))
    names = check.get("frameworks")
    if scheme == "custom":  # the user's function, and the reference control unless left out
        names = "reference" if names is None or "reference" in _listed(names) else None
        frameworks = registry.resolve(names) if names else []
    else:
        # a framework this environment lacks: its rows are SKIPs, so one suite runs everywhere
        frameworks = registry.resolve(",".join(_listed(names)) if names is not None else None, missing="skip")
    explicit = scheme in ("trunc-normal", *STRUCTURED) or (
        scheme == "custom" and check.get("expect") in ("normal", "uniform", "trunc-normal"))
    shapes, layers = _layers(check, where, vector=explicit)
    if not layers and scheme in FAN_SCHEMES:
        raise InputError(f"{where}: the fans are needed: give 'fans' or 'shapes'")
    if scheme == "custom" and "function" not in check:
        raise InputError(f"{where}: key 'function' is missing (FILE.py:FUNC or package.module:FUNC)")
    if scheme == "custom" and "expect" not in check:
        raise InputError(f"{where}: key 'expect' is missing; expected one of {', '.join(requests.EXPECTATIONS)}")

    matrix = {key: _listed(check[key]) for key in MATRIX_KEYS if key in check}
    for dtype in matrix.get("dtype", []):
        if dtype not in DTYPES:
            raise InputError(f"{where}: key 'dtype': unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    for reference in matrix.get("reference", []):
        if reference not in ("documented", "paper"):
            raise InputError(f"{where}: key 'reference' must be documented or paper, got {reference!r}")
    rows = []
    for values in itertools.product(*matrix.values()):
        combo = {**{k: v for k, v in check.items() if k not in MATRIX_KEYS}, **dict(zip(matrix, values))}
        for row in _combination_rows(scheme, combo, shapes, layers, frameworks, base, where):
            row.samples = samples
            row.name = check.get("name", "")
            rows.append(row)
    return rows, frameworks


def _combination_rows(scheme, c: dict, shapes, layers, frameworks, base: Path, where: str) -> list[Row]:
    device = parse_device(c.get("device", "cpu"))
    dtype = c.get("dtype", "float32")
    reference = c.get("reference", "documented")
    if scheme == "defaults":
        return requests.default_rows(layers or list(requests.DEFAULT_LAYERS), frameworks, device, dtype)
    if scheme == "custom":
        target = c["function"]
        module_part, sep, name = target.rpartition(":")
        if sep and (module_part.endswith(".py") or "/" in module_part) and not Path(module_part).is_absolute():
            target = f"{base / module_part}:{name}"
        spec = requests.expected_spec(c["expect"], c.get("dist"), c.get("gain"), c.get("mode"),
                                      c.get("nonlinearity"), c.get("a"), c.get("std"), c.get("mean"),
                                      c.get("bound"), c.get("low"), c.get("high"))
        if not layers:
            if spec.uses_fans:
                raise InputError(f"{where}: the fans are needed: give 'fans' or 'shapes'")
            layers, shapes = [Layer.from_shape(requests.DEFAULT_SHAPE)], [requests.DEFAULT_SHAPE]
        with_reference = any(f.name == "reference" for f in frameworks)
        return requests.custom_rows(target, spec, shapes, layers, None, with_reference, dtype)
    if scheme == "trunc-normal":
        spec = InitSpec("trunc-normal", mean=float(c.get("mean", 0.0)), std=float(c.get("std", 1.0)),
                        low=float(c.get("low", -2.0)), high=float(c.get("high", 2.0)))
        return requests.scheme_rows([spec], layers or [Layer.from_shape(requests.DEFAULT_SHAPE)], frameworks,
                                    device, dtype, reference)
    if scheme in STRUCTURED:
        from initcheck.structured import default_shape

        keys = {key: c[key] for key in SCHEME_KEYS[scheme] if key in c}
        for key in ("gain", "sparsity", "std", "value"):
            if key in keys:
                keys[key] = float(keys[key])
        spec = InitSpec(scheme, **keys)
        return requests.scheme_rows([spec], layers or [Layer.from_shape(default_shape(spec))], frameworks,
                                    device, dtype, reference)
    if scheme == "variance-scaling":
        spec = InitSpec("variance-scaling", c.get("dist", "truncated-normal"), scale=float(c.get("scale", 1.0)),
                        mode=c.get("mode", "fan_in"))
    elif scheme == "kaiming":
        spec = InitSpec("kaiming", c.get("dist", "normal"), mode=c.get("mode", "fan_in"),
                        nonlinearity=c.get("nonlinearity", "leaky_relu"),
                        slope=float(c["a"]) if "a" in c else None)
    elif scheme == "xavier":
        gain = c.get("gain")
        spec = InitSpec("xavier", c.get("dist", "normal"), gain=None if gain is None else float(gain))
    else:
        spec = InitSpec("lecun", c.get("dist", "normal"))
    return requests.scheme_rows([spec], layers, frameworks, device, dtype, reference)


# ----------------------------------------------------------------------------- spread over ranks


#: ``--nproc`` for a process that joins the group ``torchrun`` set up.
TORCHRUN = "torchrun"


def spread_runner(path: str | Path, samples_override: int | None, device_override: str | None, nproc,
                  timeout: float, rows: int, progress: bool):
    """A stand-in for :func:`initcheck.runner.run` that spreads the suite's
    rows over ranks: ``nproc`` N starts N local ranks
    (:func:`initcheck.distributed.launch`), ``"torchrun"`` makes this process
    one rank of the group ``torchrun`` set up (``env://``: ``torchrun
    --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:PORT -m initcheck suite
    FILE``: under torchrun the suite command spreads itself, torchrun's own
    parser taking ``--nproc`` for its ``--nproc-per-node``; rank 0 prints and
    writes the reports).

    Every rank reads the suite itself (rows hold framework callables, which do
    not travel) and samples rows r, r + N, r + 2N, ...  A row's draws depend
    only on the seed and its plan, so each row's numbers are those of a
    single process.  Rank 0 gathers every row's summary and checks (never the
    values) and decides all of them in one Holm family at the suite's alpha:
    the same verdicts and report as ``initcheck suite FILE``."""
    settings = {"path": str(path), "samples_override": samples_override, "device_override": device_override,
                "rows": rows, "progress": progress}

    def run_spread(_rows, samples, seed, alpha, show_progress=True, strict=False):
        from initcheck.distributed import join_from_env, launch

        settings.update(samples=samples, seed=seed, alpha=alpha, strict=strict)
        if nproc == TORCHRUN:
            return join_from_env(run_suite_rank, settings, timeout=timeout)
        return launch(run_suite_rank, settings, nproc, timeout=timeout)

    return run_spread


def run_suite_rank(rank, settings: dict):
    """One rank of a spread suite (:func:`spread_runner`); rank 0 returns the
    :class:`~initcheck.results.Verification` of every row."""
    import torch.distributed as dist

    from initcheck.policy import decide
    from initcheck.results import Verification
    from initcheck.runner import run

    suite = load_suite(settings["path"], settings["samples_override"], settings["device_override"])
    if len(suite.rows) != settings["rows"]:
        raise InputError(f"{settings['path']} expands into {len(suite.rows)} rows on this rank, "
                         f"{settings['rows']} on the first: every rank must have the same frameworks installed")
    mine = list(range(rank.rank, len(suite.rows), rank.world))
    rank.phase(f"sampling {len(mine)} rows")
    done = run([suite.rows[i] for i in mine], settings["samples"], settings["seed"], settings["alpha"],
               show_progress=settings["progress"] and rank.rank == 0, strict=settings["strict"])
    gathered = [None] * rank.world if rank.rank == 0 else None
    with rank.collective("done"):
        dist.gather_object((mine, done.results, done.interrupted), gathered, dst=0)
    if rank.rank != 0:
        return None
    results: list = [None] * len(suite.rows)
    for indices, decided, _ in gathered:
        for index, result in zip(indices, decided):
            results[index] = result
    sampled = [undecided(result) for result in results]
    interrupted = any(stopped for _, _, stopped in gathered)
    return Verification(tuple(decide(sampled, settings["alpha"], settings["strict"])), settings["samples"],
                        settings["seed"], settings["alpha"], settings["strict"], interrupted)


def undecided(result):
    """The :class:`~initcheck.results.Sampled` a decided row came from: its
    checks without their Holm levels, so that they can be decided again in a
    larger family."""
    from dataclasses import fields, replace

    from initcheck.results import Sampled

    shared = {f.name: getattr(result, f.name) for f in fields(Sampled) if hasattr(result, f.name)}
    shared["checks"] = [replace(c, level=None, passed=None) if c.statistical else c for c in result.checks]
    if result.summary is not None:
        shared["reason"] = ""
    elif result.partial:
        shared["reason"] = result.reason.removeprefix("partial (interrupted). ")
    return Sampled(**shared)
