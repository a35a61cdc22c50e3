"""``initcheck model``: the command line of :func:`initcheck.model.verify_model`."""

from __future__ import annotations

import click

from initcheck.errors import InputError
from initcheck.distributed import DEFAULT_TIMEOUT
from initcheck.model import DEFAULT_MAX_INSTANCES, DEFAULT_SAMPLES, DEFAULT_TIME_LIMIT, check_numbers
from initcheck.presets import DEFAULT_PRESET, PRESET_CHOICES


@click.command("model")
@click.argument("target", metavar="TARGET")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False),
              help="TOML file of [[rule]] tables: match (a glob over parameter names, first match wins) and the "
                   "law (scheme = \"xavier\", dist, gain, ...; normal, uniform, constant, orthogonal, ...).")
@click.option("--preset", type=click.Choice(PRESET_CHOICES), default=DEFAULT_PRESET, show_default=True,
              help="transformers: HuggingFace's convention read from model.config (initializer_range); auto: "
                   "transformers for a model that holds a PreTrainedModel, else none; none: layer defaults only.")
@click.option("--samples", "-n", help="Values per parameter, default 1e6.")
@click.option("--instances", type=int, help="Build exactly this many instances (at least 2).")
@click.option("--max-instances", type=int, default=DEFAULT_MAX_INSTANCES, show_default=True,
              help="Build at most this many instances.")
@click.option("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, show_default=True,
              help="Start no further instance after this many seconds.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--alpha", type=float, default=1e-6, show_default=True,
              help="Family-wise false-failure rate of the whole command (Holm).")
@click.option("--strict", is_flag=True, help="Treat WARN (a 16-bit rounding within the dtype's resolution) as FAIL.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Write every parameter's row, check and statistic to this JSON file (initcheck-report/2).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True),
              help="Write JUnit XML, one testcase per parameter.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="One PNG per parameter in this directory.")
@click.option("--plot-failures", is_flag=True, help="With --plot: only parameters that FAIL or WARN.")
@click.option("--quiet", "-q", is_flag=True, help="Print the table only when something failed.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@click.option("--nproc", type=int, help="Build the model on N ranks of torch.distributed (gloo; NCCL with --device "
                                        "cuda): FACTORY() shards it (FSDP2, DTensor) on every rank, and the global "
                                        "parameters are verified from the merged shards.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="With --nproc: a rank that makes no progress for this many seconds ends the run (exit 2).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="With --nproc: cpu (gloo) or cuda (NCCL, one GPU per rank).")
def model_command(target, rules_path, preset, samples, instances, max_instances, time_limit, seed, alpha, strict,
                  json_path, junit_path, plot_dir, plot_failures, quiet, progress, nproc, timeout, device):
    """Verify every parameter of a model: TARGET is FILE.py:FACTORY or
    package.module:FACTORY, FACTORY() returning a freshly built model (a torch
    nn.Module, transformers models included; a Keras model; a Flax NNX module,
    whose factory takes seed or rngs).

    initcheck seeds the framework before each call, builds as many instances as
    --samples needs, and checks each parameter against, first found: a rule of
    --rules, the --preset, the documented default of its layer type; else the
    row is SKIP with the reason.  Parameters equal within an instance (up to
    sign or scale) and random parameters identical across instances fail; tied
    parameters are reported as tied.

    With --nproc N, initcheck starts N ranks, seeds each alike (as a training
    script does) and calls FACTORY() on every rank; each rank folds its
    shards, the statistics are merged by all-reduce, and rank 0 checks the
    global parameters: shards equal across ranks, laws of the local fans and
    replicas that differ fail.  A rank that raises, dies or hangs past
    --timeout ends the run with one line naming it (exit 2).
    """
    from initcheck import cli as main_cli
    from initcheck.model import verify_model
    from initcheck.model_report import render_model
    from initcheck.report import NOTHING_CHECKED, environment, exit_code, json_report, make_console
    from initcheck.rows import parse_samples

    main_cli.check_outputs({"--json": json_path, "--junit": junit_path}, plot_dir)
    if plot_dir:
        from initcheck.plots import require_matplotlib

        require_matplotlib()
    count = parse_samples(samples) if samples is not None else None
    check_numbers(count or DEFAULT_SAMPLES, instances, max_instances, time_limit, seed, alpha,
                  spell=lambda name: "--" + name.replace("_", "-"))
    if nproc is None and device != "cpu":
        raise InputError("--device cuda goes with --nproc N (a single-process factory places its model itself)")
    distributed = {"nproc": nproc, "timeout": timeout, "device": device} if nproc is not None else {}
    with main_cli.stop_signals():
        try:
            result = verify_model(target, rules=rules_path, preset=preset,
                                  **({"samples": count} if count is not None else {}), instances=instances,
                                  max_instances=max_instances, time_limit=time_limit, seed=seed, alpha=alpha,
                                  strict=strict, progress=progress, **distributed)
        except KeyboardInterrupt:
            if nproc is None:
                raise
            click.echo(f"initcheck: interrupted: all {nproc} ranks stopped (exit 130)", err=True)
            return 130
    code = 130 if result.interrupted else exit_code(list(result.results))
    if code or not quiet:
        render_model(result, make_console(), f"initcheck model {target}")
    if code == NOTHING_CHECKED:
        click.echo(f"initcheck: nothing was checked: every parameter was skipped (exit {NOTHING_CHECKED})", err=True)
    settings = {"samples": result.samples, "seed": seed, "alpha": alpha, "device": "per parameter",
                "strict": strict, "interrupted": result.interrupted}
    if nproc is not None:
        settings.update(nproc=nproc, backend=result.backend)
    try:
        if json_path or junit_path:
            env = environment([])
            env["frameworks"] = {result.framework: _version(result.framework)}
            if json_path:
                from initcheck.report import write_json

                report = json_report(list(result.results), settings, env, code)
                report["model"] = result.model_dict()
                write_json(json_path, report)
            if junit_path:
                from initcheck.junit import write_junit

                write_junit(junit_path, list(result.results), settings, env, name=f"initcheck model {target}")
        if plot_dir:
            from initcheck.plots import write_plots

            written = write_plots(list(result.results), plot_dir, failures_only=plot_failures)
            click.echo(f"initcheck: {len(written)} plot(s) in {plot_dir}", err=True)
    except OSError as error:
        raise InputError(f"cannot write {error.filename or 'a report'}: {error.strerror}") from None
    return code


def _version(framework: str) -> str | None:
    from initcheck.model import load_adapter

    try:
        return load_adapter(framework).version()
    except Exception as error:  # a report still gets written
        return f"unavailable: {error}"
