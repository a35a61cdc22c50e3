"""The ``initcheck`` command line.

    initcheck xavier  --dist normal,uniform --fan-in 784 --fan-out 256
    initcheck kaiming --dist normal --shape 128,64,3,3 --nonlinearity relu
    initcheck trunc-normal --std 0.02 --low -2 --high 2
    initcheck orthogonal --gain 1.4 --shape 256,784
    initcheck custom my_init.py:init --expect xavier --dist uniform --shape 256,784

Every command builds rows (framework x initializer x layer), runs them, prints
one table and exits 0 (all passed), 1 (a check failed) or 2 (bad input).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from dataclasses import dataclass

import click

import initcheck
from initcheck import frameworks as registry
from initcheck import kernels
from initcheck import rows as requests
from initcheck.errors import InputError
from initcheck.estimate import MAX_ROWS, MAX_SECONDS, check_run_size, human_duration
from initcheck.frameworks.base import DTYPES, Plan, parse_device
from initcheck.layers import LAYOUTS, Layer, parse_shape
from initcheck.report import (
    environment,
    NOTHING_CHECKED,
    exit_code,
    json_report,
    make_console,
    render_footer,
    render_table,
    write_json,
)
from initcheck.rows import DEFAULT_SAMPLES, MIN_SAMPLES, parse_samples
from initcheck.runner import Row, run
from initcheck.schemes import DISTRIBUTIONS, MODES, NONLINEARITIES, InitSpec

def parse_list(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        if item not in allowed:
            raise InputError(f"{option}: unknown value {item!r}; expected one of {', '.join(allowed)}")
    if not items:
        raise InputError(f"{option} is empty")
    return list(dict.fromkeys(items))


@dataclass
class Options:
    framework: str | None
    device: str
    dtype: str
    shapes: tuple[str, ...]
    layout: str
    fan_in: int | None
    fan_out: int | None
    samples: str | None
    detect: str | None
    seed: int
    alpha: float
    json_path: str | None
    junit_path: str | None
    plot_dir: str | None
    plot_failures: bool
    quiet: bool
    progress: bool
    reference: str
    strict: bool
    yes: bool
    wide: bool
    #: The options given on the command line (not left at their defaults).
    explicit: frozenset = frozenset()

    def validated(self) -> Options:
        if not 0.0 < self.alpha < 1.0:
            raise InputError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.seed < 0:
            raise InputError(f"--seed must be 0 or more, got {self.seed}")
        if self.plot_failures and not self.plot_dir:
            raise InputError("--plot-failures needs --plot DIR (it chooses which rows are plotted)")
        # before any framework is imported: a bad count is a one-line error at once, not after seconds of imports
        _ = self.detect_error if self.detect is not None else self.sample_count
        return self

    @property
    def sample_count(self) -> int:
        return parse_samples(self.samples or DEFAULT_SAMPLES)

    @property
    def detect_error(self) -> float | None:
        """--detect as a fraction, or None: a percentage with or without its
        sign ("0.5%" and "0.5" both mean 0.005)."""
        if self.detect is None:
            return None
        if self.samples is not None:
            raise InputError("give --samples or --detect, not both")
        text = self.detect.strip()
        try:
            value = float(text.removesuffix("%")) / 100.0
        except ValueError:
            raise InputError(f"--detect {self.detect!r} is not a number or a percentage") from None
        if not 0.0 < value < 1.0:
            raise InputError(f"--detect must be between 0 and 100%, got {self.detect}")
        return value

    def layers(self, required: bool, default: tuple[int, ...] | None = None) -> list[Layer]:
        """The dense layer of --fan-in/--fan-out and every --shape (1-d shapes
        too, where the fans are not ``required``); none given, the ``default``
        shape (the explicit laws' dense layer unless set)."""
        layers = []
        if self.fan_in is not None or self.fan_out is not None:
            if self.fan_in is None or self.fan_out is None:
                raise InputError("give both --fan-in and --fan-out (or a --shape)")
            layers.append(Layer.dense(self.fan_in, self.fan_out))
        layers += [Layer.from_shape(parse_shape(text), self.layout, vector=not required) for text in self.shapes]
        if not layers:
            if required:
                raise InputError("the fans are needed: give --fan-in and --fan-out, or --shape")
            layers.append(Layer.from_shape(default or requests.DEFAULT_SHAPE))
        return layers


FRAMEWORK_HELP = (
    f"Comma list of {', '.join(registry.ADAPTERS)} (also "
    f"{', '.join(f'{alias} = {name}' for alias, name in registry.ALIASES.items())}).  "
    f"Default: the list in $INITCHECK_FRAMEWORKS, else every installed one "
    f"({', '.join(n for n in registry.ADAPTERS if registry.installed(n))}).")


def common_options(command):
    """Options every checking command shares; the command receives ``opts``."""
    options = [
        click.option("--framework", "-f", help=FRAMEWORK_HELP),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N (gpu = cuda)."),
        click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True),
        click.option("--shape", "shapes", multiple=True, help="Weight shape, e.g. 128,64,3,3 (repeatable)."),
        click.option("--layout", type=click.Choice(LAYOUTS), default="torch", show_default=True,
                     help="How --shape is read: torch (out, in, *kernel) or keras (*kernel, in, out)."),
        click.option("--fan-in", type=int, help="Dense layer input size."),
        click.option("--fan-out", type=int, help="Dense layer output size."),
        click.option("--samples", "-n", help="Values per row, default 1e7 (1e8 notation ok)."),
        click.option("--detect", help="Choose N so a relative std error this large, in percent (0.5 or "
                                      "0.5%), is caught with probability 0.999."),
        click.option("--yes", "-y", is_flag=True, help=f"Run even above {human_duration(MAX_SECONDS)} "
                                                       f"estimated or {MAX_ROWS:,} rows."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--alpha", type=float, default=1e-6, show_default=True,
                     help="Family-wise false-failure rate of the whole command (Holm)."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
                     help="Write every row, check and sufficient statistic to this JSON file "
                          "(schema initcheck-report/2; `initcheck compare` reads it)."),
        click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True),
                     help="Write JUnit XML, one testcase per row, for CI test reports."),
        click.option("--plot", "plot_dir", type=click.Path(file_okay=False),
                     help="Write one PNG per row to this directory: histogram against the law's "
                          "density, ECDF minus CDF with the KS band (needs matplotlib)."),
        click.option("--plot-failures", is_flag=True, help="With --plot: only rows that FAIL or WARN."),
        click.option("--quiet", "-q", is_flag=True, help="Print the table only when something failed."),
        click.option("--wide", is_flag=True, help="Every statistic in its own column (min, max, other checks)."),
        click.option("--progress/--no-progress", default=True, help="Progress bar on stderr for long runs."),
        click.option("--strict", is_flag=True, help="Treat WARN (a 16-bit rounding within the dtype's resolution) as FAIL."),
        click.option("--reference", type=click.Choice(["documented", "paper"]), default="documented",
                     show_default=True,
                     help="Check each framework against the law its API documents, or the paper's law."),
    ]

    @functools.wraps(command)
    def wrapper(**kwargs):
        context = click.get_current_context()
        fields = [name for name in Options.__dataclass_fields__ if name != "explicit"]
        explicit = frozenset(name for name in fields
                             if context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT)
        opts = Options(**{name: kwargs.pop(name) for name in fields}, explicit=explicit).validated()
        return command(opts=opts, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def execute(rows: list[Row], opts: Options, frameworks: list, title: str, announce: bool = False,
            run_rows=None) -> int:
    """Run the rows, print, write reports; returns the exit code (130 after Ctrl-C,
    143 after SIGTERM, with the table of what was sampled so far).  A long run
    (or any suite, ``announce``) says its size and measured estimate on stderr
    first, and does not start above the limits of :mod:`initcheck.estimate`
    unless ``--yes``."""
    if opts.plot_dir:
        from initcheck.plots import require_matplotlib

        require_matplotlib()
    check_outputs({"--json": opts.json_path, "--junit": opts.junit_path}, opts.plot_dir)  # before the sampling
    samples = opts.sample_count if opts.detect_error is None else detect_samples(rows, opts)
    announce = check_run_size(rows, samples, opts.yes, always=announce or opts.detect is not None)
    if announce:
        click.echo(f"initcheck: {announce}", err=True)
    with stop_signals() as stopped:
        outcome = (run_rows or run)(rows, samples, opts.seed, opts.alpha, show_progress=opts.progress,
                                    strict=opts.strict)
    results = outcome.results
    code = (143 if stopped.signal == "SIGTERM" else 130) if outcome.interrupted else exit_code(results)
    if code or not opts.quiet:
        console = make_console()
        render_table(results, console, title + (" (PARTIAL: interrupted)" if outcome.interrupted else ""), opts.wide)
        render_footer(results, opts.alpha, console)
    if code == NOTHING_CHECKED:
        click.echo(f"initcheck: nothing was checked: every row was skipped (exit {NOTHING_CHECKED})", err=True)
    asked = {row.samples or samples for row in rows}
    settings = {"samples": asked.pop() if len(asked) == 1 else "per row", "seed": opts.seed, "alpha": opts.alpha,
                "device": opts.device, "strict": opts.strict, "interrupted": outcome.interrupted}
    try:
        if opts.json_path or opts.junit_path:
            env = environment(frameworks)
            if opts.json_path:
                write_json(opts.json_path, json_report(results, settings, env, code))
            if opts.junit_path:
                from initcheck.junit import write_junit

                write_junit(opts.junit_path, results, settings, env)
        if opts.plot_dir:
            from initcheck.plots import write_plots

            written = write_plots(results, opts.plot_dir, failures_only=opts.plot_failures)
            click.echo(f"initcheck: {len(written)} plot(s) in {opts.plot_dir}", err=True)
    except OSError as error:
        raise InputError(f"cannot write {error.filename or 'a report'}: {error.strerror}") from None
    return code


class _Stopped:
    """Which signal stopped the run, if any."""

    signal: str | None = None


@contextlib.contextmanager
def stop_signals():
    """SIGTERM stops a run as Ctrl-C does (the rows drawn so far are checked and
    reported) and the command then exits 143; the previous handler comes back
    afterwards."""
    stopped = _Stopped()

    def on_term(number, frame):
        stopped.signal = "SIGTERM"
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield stopped
        return
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


def output_problem(path: str, option: str) -> str | None:
    """Why ``path`` cannot be written, or None: the folder must exist and a file
    must really open there for writing (``/proc`` and read-only mounts pass
    ``os.access`` as root and fail only at the write).  Nothing is left behind."""
    import os

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"{option} {path}: folder {folder} does not exist"
    if os.path.isdir(path):
        return f"{option} {path}: is a folder"
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as error:
        return f"{option} {path}: {error.strerror or 'not writable'}"
    if not existed:
        os.remove(path)
    return None


def plot_dir_problem(path: str) -> str | None:
    """Why the --plot folder cannot be made or written to, or None (it is made
    here, as the plots will need it)."""
    import os
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        return f"--plot {path}: {error.strerror or 'not writable'}"
    return None


def check_outputs(files: dict[str, str | None], plot_dir: str | None) -> None:
    """InputError naming every report path that cannot be written, before anything is drawn."""
    problems = [p for option, path in files.items() if path for p in [output_problem(path, option)] if p]
    if plot_dir:
        problem = plot_dir_problem(plot_dir)
        if problem:
            problems.append(problem)
    if problems:
        raise InputError("; ".join(problems))


def writable_file(path: str, option: str) -> None:
    """InputError unless ``path`` can be created or overwritten."""
    problem = output_problem(path, option)
    if problem:
        raise InputError(problem)


def detect_samples(rows: list[Row], opts: Options) -> int:
    """--detect: the largest N any row needs (announced; the time it takes is
    estimated with every long run's)."""
    from initcheck.checks import CHECKS_PER_ROW, samples_to_detect

    plans = [row.plan for row in rows if isinstance(row.plan, Plan)]
    if not plans:
        return parse_samples(DEFAULT_SAMPLES)
    level = opts.alpha / (CHECKS_PER_ROW * len(plans))
    # a constant or exact law has no std to get wrong: its rows draw what they need (ten draws)
    drawn = [p for p in plans if p.law.variance > 0.0 and not p.law.deterministic]
    samples = max(MIN_SAMPLES, max((samples_to_detect(p.law, opts.detect_error, level) for p in drawn), default=0))
    click.echo(f"initcheck: --detect {opts.detect}: {samples:,} values per row", err=True)
    return samples


def check_scheme(specs: list[InitSpec], opts: Options, default_shape: tuple[int, ...] | None = None) -> int:
    layers = opts.layers(required=specs[0].uses_fans, default=default_shape)
    device = parse_device(opts.device)
    frameworks = registry.resolve(opts.framework)
    if device != "cpu":
        if opts.framework is not None and any(f.name == "reference" for f in frameworks):
            raise InputError(f"the reference framework samples with NumPy on the CPU; it cannot run on {device} "
                             "(leave it out of -f)")
        frameworks = [f for f in frameworks if f.name != "reference"]
    rows = requests.scheme_rows(specs, layers, frameworks, device, opts.dtype, opts.reference)
    title = f"initcheck {initcheck.__version__}: {', '.join(dict.fromkeys(s.describe() for s in specs))}"
    return execute(rows, opts, frameworks, title)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(initcheck.__version__, prog_name="initcheck")
def cli():
    """Verify that weight initializers draw from the law they document.

    Each command samples large tensors from every framework's real initializer,
    compares mean, variance, bounds and the whole distribution (KS) with the
    closed-form law, checks where values sit (positions), whether draws are
    independent and which values repeat (copies), and prints a pass/fail
    table.  Exit 0: all passed; 1: a check failed; 2: bad input.
    """


dist_option = click.option(
    "--dist", default="normal,uniform", show_default=True,
    help=f"Comma list of {', '.join(DISTRIBUTIONS)}.",
)


@cli.command()
@dist_option
@click.option("--gain", type=float, help="Gain (default 1).")
@common_options
def xavier(opts, dist, gain):
    """Xavier/Glorot: variance = gain^2 * 2 / (fan_in + fan_out)."""
    specs = [InitSpec("xavier", d, gain=gain) for d in parse_list(dist, DISTRIBUTIONS, "--dist")]
    return check_scheme(specs, opts)


@cli.command()
@dist_option
@click.option("--mode", type=click.Choice(MODES), default="fan_in", show_default=True)
@click.option("--nonlinearity", type=click.Choice(NONLINEARITIES), default="leaky_relu", show_default=True)
@click.option("--a", "slope", type=float, help="leaky_relu negative slope (default 0; only with leaky_relu).")
@common_options
def kaiming(opts, dist, mode, nonlinearity, slope):
    """Kaiming/He: variance = gain(nonlinearity)^2 / fan (fan_in or fan_out)."""
    specs = [
        InitSpec("kaiming", d, mode=mode, nonlinearity=nonlinearity, slope=slope)
        for d in parse_list(dist, DISTRIBUTIONS, "--dist")
    ]
    return check_scheme(specs, opts)


@cli.command()
@dist_option
@common_options
def lecun(opts, dist):
    """LeCun: variance = 1 / fan_in."""
    specs = [InitSpec("lecun", d) for d in parse_list(dist, DISTRIBUTIONS, "--dist")]
    return check_scheme(specs, opts)


@cli.command("variance-scaling")
@click.option("--scale", type=float, default=1.0, show_default=True, help="variance = scale / n.")
@click.option("--mode", type=click.Choice(MODES), default="fan_in", show_default=True)
@click.option("--distribution", "--dist", "dist", default="truncated-normal", show_default=True,
              help="truncated-normal, normal or uniform; passed to each framework by name, so "
                   "'normal' shows Keras' truncated alias beside JAX's plain normal.")
@common_options
def variance_scaling(opts, scale, mode, dist):
    """The general rule: variance = scale / n, n from the mode (Keras, JAX)."""
    specs = [InitSpec("variance-scaling", d, scale=scale, mode=mode) for d in parse_list(dist, DISTRIBUTIONS, "--distribution")]
    return check_scheme(specs, opts)


@cli.command("trunc-normal")
@click.option("--std", type=float, default=1.0, show_default=True, help="Std of the underlying normal.")
@click.option("--mean", type=float, default=0.0, show_default=True)
@click.option("--low", type=float, default=-2.0, show_default=True, help="Absolute lower bound.")
@click.option("--high", type=float, default=2.0, show_default=True, help="Absolute upper bound.")
@common_options
def trunc_normal(opts, std, mean, low, high):
    """Truncated normal N(mean, std) cut at absolute bounds (PyTorch's trunc_normal_)."""
    spec = InitSpec("trunc-normal", mean=mean, std=std, low=low, high=high)
    return check_scheme([spec], opts)


def check_structured(spec: InitSpec, opts: Options) -> int:
    """A structured scheme's rows, on its default shape when none is given."""
    from initcheck.structured import default_shape

    return check_scheme([spec], opts, default_shape(spec))


@cli.command()
@click.option("--gain", type=float, default=1.0, show_default=True, help="Scale of the orthogonal matrix.")
@common_options
def orthogonal(opts, gain):
    """Orthogonal: gain x a Haar-random matrix with orthonormal rows or columns,
    the weight viewed as 2-d (PyTorch's orthogonal_, Keras' Orthogonal, JAX's orthogonal):
    W Wᵀ = gain² I and fair diagonal signs in every draw, entries gain (2B - 1),
    B ~ Beta((m - 1) / 2, (m - 1) / 2), m the long side."""
    return check_structured(InitSpec("orthogonal", gain=gain), opts)


@cli.command()
@click.option("--sparsity", type=float, required=True, help="Fraction of each column set to zero.")
@click.option("--std", type=float, default=0.01, show_default=True, help="Std of the non-zero values.")
@common_options
def sparse(opts, sparsity, std):
    """Sparse: ceil(sparsity x rows) zeros in every column of a 2-d weight, the
    rest N(0, std) (PyTorch's sparse_)."""
    return check_structured(InitSpec("sparse", sparsity=sparsity, std=std), opts)


@cli.command()
@click.option("--gain", type=float, default=1.0, show_default=True, help="Value of the diagonal (Keras' Identity).")
@common_options
def eye(opts, gain):
    """The identity of a 2-d weight (PyTorch's eye_, Keras' Identity), checked
    value for value in every draw."""
    return check_structured(InitSpec("eye", gain=gain), opts)


@cli.command()
@click.option("--groups", type=int, default=1, show_default=True, help="Groups of the convolution.")
@common_options
def dirac(opts, groups):
    """Dirac: the identity of a 3-5-d convolution weight (PyTorch's dirac_;
    default shape 128,64,3,3), checked value for value in every draw."""
    return check_structured(InitSpec("dirac", groups=groups), opts)


@cli.command("delta-orthogonal")
@click.option("--gain", type=float, default=1.0, show_default=True, help="Scale of the orthogonal matrix.")
@common_options
def delta_orthogonal(opts, gain):
    """Delta-orthogonal: zeros but for the kernel's centre, an orthogonal (in,
    out) matrix (JAX's delta_orthogonal; default shape 128,64,3,3)."""
    return check_structured(InitSpec("delta-orthogonal", gain=gain), opts)


@cli.command()
@click.option("--value", type=float, required=True, help="The value of every entry.")
@common_options
def constant(opts, value):
    """Every value equal to --value (PyTorch's constant_, Keras' Constant, JAX's constant)."""
    return check_structured(InitSpec("constant", value=value), opts)


@cli.command()
@common_options
def zeros(opts):
    """Every value 0 (PyTorch's zeros_, Keras' Zeros, JAX's zeros)."""
    return check_structured(InitSpec("zeros"), opts)


@cli.command()
@common_options
def ones(opts):
    """Every value 1 (PyTorch's ones_, Keras' Ones, JAX's ones)."""
    return check_structured(InitSpec("ones"), opts)



@cli.command()
@common_options
def defaults(opts):
    """What the layers do when the user does nothing: PyTorch nn.Linear/nn.ConvNd,
    Keras Dense/ConvND and Flax Dense/Conv, built for real and their weight and
    bias sampled (default layers: dense 784->256 and conv 64->128 3x3)."""
    has_layers = opts.shapes or opts.fan_in is not None or opts.fan_out is not None
    layers = opts.layers(required=True) if has_layers else list(requests.DEFAULT_LAYERS)
    frameworks = [f for f in registry.resolve(opts.framework) if f.name != "reference"]
    rows = requests.default_rows(layers, frameworks, parse_device(opts.device), opts.dtype)
    return execute(rows, opts, frameworks, f"initcheck {initcheck.__version__}: layer defaults")


@cli.command()
@click.option("--shape", "shapes", multiple=True, help="Weight shape (repeatable).")
@click.option("--layout", type=click.Choice(LAYOUTS), default="torch", show_default=True)
@click.option("--fan-in", type=int, help="Dense layer input size.")
@click.option("--fan-out", type=int, help="Dense layer output size.")
@click.option("--framework", "-f", help="Comma list (default: $INITCHECK_FRAMEWORKS, else every installed one).")
def fans(shapes, layout, fan_in, fan_out, framework):
    """Print fan_in and fan_out as each framework computes them."""
    from initcheck.info import fans_table

    layers = []
    if fan_in is not None or fan_out is not None:
        layers.append(Layer.dense(fan_in, fan_out))
    layers += [Layer.from_shape(parse_shape(text), layout) for text in shapes]
    if not layers:
        raise InputError("give --shape (repeatable) or --fan-in and --fan-out")
    make_console().print(fans_table(layers, registry.resolve(framework)))
    return 0


@cli.command()
@click.option("--a", "slopes", type=float, multiple=True, help="Also show leaky_relu with this slope.")
def gains(slopes):
    """Print every nonlinearity's gain beside torch's calculate_gain and the Keras/JAX scale."""
    from initcheck.info import gains_table

    table, _ = gains_table(slopes)
    make_console().print(table)
    return 0


@cli.command()
@click.option("--devices", is_flag=True, help="Also list the devices each framework sees (imports each one: seconds).")
def env(devices):
    """Print Python, initcheck, the fold path and every framework's version (and devices)."""
    from initcheck.info import environment_table

    make_console().print(environment_table(devices=devices))
    return 0


@cli.command()
@click.argument("target")
@click.option("--expect", type=click.Choice(requests.EXPECTATIONS), required=True, help="The law FUNC should draw from.")
@click.option("--dist", type=click.Choice(DISTRIBUTIONS), help="For xavier/kaiming/lecun (default normal).")
@click.option("--gain", type=float, help="xavier gain.")
@click.option("--mode", type=click.Choice(MODES), help="kaiming mode (default fan_in).")
@click.option("--nonlinearity", type=click.Choice(NONLINEARITIES), help="kaiming nonlinearity (default leaky_relu).")
@click.option("--a", "slope", type=float, help="kaiming leaky_relu slope (default 0).")
@click.option("--std", type=float, help="normal / trunc-normal std.")
@click.option("--mean", type=float, help="normal / trunc-normal mean (default 0).")
@click.option("--bound", type=float, help="uniform: U(-bound, bound).")
@click.option("--low", type=float, help="uniform / trunc-normal lower bound.")
@click.option("--high", type=float, help="uniform / trunc-normal upper bound.")
@common_options
def custom(opts, target, expect, dist, gain, mode, nonlinearity, slope, std, mean, bound, low, high):
    """Verify your own initializer TARGET (FILE.py:FUNC or package.module:FUNC).

    FUNC(shape, seed) is called once per draw and must return an array of that
    shape.  The shape comes from --shape (read with --layout) or from
    --fan-in/--fan-out as a dense layer; --fan-in/--fan-out given with --shape set
    the fans of the law while the shape is passed as is.  Each row is followed
    by the law itself sampled with NumPy as a control (-f custom leaves it out;
    --dtype sets its dtype).
    """
    spec = requests.expected_spec(expect, dist, gain, mode, nonlinearity, slope, std, mean, bound, low, high)
    if not opts.shapes and (opts.fan_in is None or opts.fan_out is None) and spec.uses_fans:
        raise InputError("custom needs --shape, or --fan-in and --fan-out")
    if opts.shapes:
        shapes = [parse_shape(text) for text in opts.shapes]
        shaped = [Layer.from_shape(shape, opts.layout, vector=not spec.uses_fans) for shape in shapes]
    else:
        shaped = opts.layers(required=False)
        shapes = [layer.shape(opts.layout) for layer in shaped]
    fans = None
    if opts.fan_in is not None or opts.fan_out is not None:
        fans = Layer.dense(opts.fan_in, opts.fan_out)
    if "device" in opts.explicit:
        raise InputError("--device does not apply to custom: your function's tensors are checked where it puts "
                         "them (the reference control row runs on the CPU)")
    names = parse_list(opts.framework, ("custom", "reference"), "-f") if opts.framework is not None else None
    with_reference = names is None or "reference" in names
    if "dtype" in opts.explicit and not with_reference:
        raise InputError("--dtype sets the reference control row's dtype; with -f custom there is none (your "
                         "function's rows are checked in the dtype it returns)")
    rows = requests.custom_rows(target, spec, shapes, shaped, fans, with_reference, opts.dtype)
    frameworks = [registry.load("reference")]
    return execute(rows, opts, frameworks, f"initcheck {initcheck.__version__}: custom {target}")


@cli.command("suite")
@click.argument("suite_file", metavar="SUITE.toml")
@click.option("--samples", "-n", help="Values per row for every check, overriding the suite's.")
@click.option("--device", help="Device for every check (cpu, cuda, cuda:N), overriding the suite's.")
@click.option("--seed", type=int, help="Overrides the suite's seed.")
@click.option("--alpha", type=float, help="Overrides the suite's family-wise alpha.")
@click.option("--strict", is_flag=True, default=None, help="Treat WARN as FAIL (or set strict = true in the suite).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), help="JSON report.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True), help="JUnit XML report.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="One PNG per row in this directory.")
@click.option("--plot-failures", is_flag=True, help="With --plot: only rows that FAIL or WARN.")
@click.option("--quiet", "-q", is_flag=True, help="Print the table only when something failed.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr for long runs.")
@click.option("--yes", "-y", is_flag=True, help=f"Run even above {human_duration(MAX_SECONDS)} estimated or "
                                               f"{MAX_ROWS:,} rows.")
@click.option("--wide", is_flag=True, help="Every statistic in its own column (min, max, other checks).")
@click.option("--nproc", help="Spread the rows over N local processes (torch.distributed, gloo), or 'torchrun' "
                              "to be one rank of a torchrun job; one table, one Holm family, one report.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="With --nproc: a process that makes no progress for this many seconds ends the run (exit 2).")
def suite_command(suite_file, samples, device, seed, alpha, strict, json_path, junit_path, plot_dir, plot_failures,
                  quiet, progress, yes, wide, nproc, timeout):
    """Run every check of a TOML suite file as one command (one table, one Holm
    family, one report).  See configs/*.toml and the README for the format."""
    from initcheck.suite import load_suite

    if device is not None:
        parse_device(device)  # a malformed name is one line, before the suite is read
    suite = load_suite(suite_file, parse_samples(samples) if samples else None, device)
    opts = Options(
        framework=None, device=device or "per row", dtype="per row", shapes=(), layout="torch", fan_in=None, fan_out=None,
        samples=None, detect=None, seed=suite.seed if seed is None else seed,
        alpha=suite.alpha if alpha is None else alpha, json_path=json_path, junit_path=junit_path,
        plot_dir=plot_dir, plot_failures=plot_failures, quiet=quiet, progress=progress, reference="documented",
        strict=suite.strict if strict is None else strict, yes=yes, wide=wide,
    ).validated()
    import os

    from initcheck.suite import TORCHRUN, spread_runner

    run_rows = None
    if nproc is None and os.environ.get("TORCHELASTIC_RUN_ID") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        nproc = TORCHRUN  # started by torchrun (whose own parser takes --nproc for --nproc-per-node)
    if nproc is not None:

        if nproc != TORCHRUN and not (nproc.isdigit() and int(nproc) >= 1):
            raise InputError(f"--nproc must be a whole number of at least 1 or '{TORCHRUN}', got {nproc!r}")
        run_rows = spread_runner(suite_file, parse_samples(samples) if samples else None, device,
                                 nproc if nproc == TORCHRUN else int(nproc), timeout, len(suite.rows), progress)
        if nproc == TORCHRUN and os.environ.get("RANK", "0") != "0":  # rank 0 prints and writes the reports
            run_rows(suite.rows, opts.sample_count, opts.seed, opts.alpha, strict=opts.strict)
            return 0
    return execute(suite.rows, opts, suite.frameworks, f"initcheck {initcheck.__version__}: suite {suite_file}",
                   announce=True, run_rows=run_rows)


@cli.command()
@click.argument("old", metavar="OLD.json")
@click.argument("new", metavar="NEW.json")
@click.option("--alpha", type=float, default=1e-6, show_default=True,
              help="Family-wise alpha of the two-sample tests (Holm over every test of every matched row).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the comparison to this JSON file.")
def compare(old, new, alpha, json_path):
    """Compare two --json reports: verdict and law changes, rows added or gone,
    and statistically significant shifts.  Exit 1 on a regression."""
    from initcheck.compare import compare_reports, load_report, render_comparison

    if not 0.0 < alpha < 1.0:
        raise InputError(f"--alpha must be between 0 and 1, got {alpha}")
    if json_path:
        writable_file(json_path, "--json")
    comparison = compare_reports(load_report(old), load_report(new), alpha)
    render_comparison(comparison, make_console())
    if json_path:
        write_json(json_path, comparison.to_dict())
    return comparison.exit_code


def main(argv=None) -> None:
    """Entry point: maps results and errors to exit codes, never a traceback for bad input."""
    try:
        kernels.check_choice()
        code = cli.main(args=argv, prog_name="initcheck", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help())
        code = 0
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
        click.echo(f"initcheck: error: {error.format_message()}{hint}", err=True)
        code = 2
    except click.ClickException as error:
        click.echo(f"initcheck: error: {error.format_message()}", err=True)
        code = 2
    except InputError as error:
        click.echo(f"initcheck: error: {error}", err=True)
        code = 2
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("initcheck: interrupted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


def _register_model_command() -> None:
    from initcheck.cli_model import model_command

    cli.add_command(model_command)


_register_model_command()


def _register_propagate_command() -> None:
    from initcheck.cli_propagate import propagate_command

    cli.add_command(propagate_command)


_register_propagate_command()
