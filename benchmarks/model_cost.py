"""What ``initcheck model`` costs beside the factory it calls, on two real-sized models.

Two models, each measured the same way:

* BERT-base built from its config: ``BertModel(BertConfig())`` (transformers'
  defaults: 12 layers, hidden 768, vocab 30522; 109.5M parameters in 199
  tensors), verified with ``--preset transformers``;
* ResNet-50 in plain torch (``resnet50()`` below: torchvision's v1.5
  architecture, bottleneck blocks [3, 4, 6, 3], stride on the 3x3 conv;
  25,557,032 parameters in 161 tensors), every layer left at torch's default
  init (Conv2d, BatchNorm2d, Linear), verified against those defaults.

Every measurement is a fresh process (``--child``), so that each peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, read at its end) is its own.
Each imports torch, initcheck's model engine and checks (and transformers for
BERT) before its timer starts:

* ``imports``    nothing else: the baseline RSS;
* ``one``        builds one instance: the memory of one instance (peak RSS,
                 and the parameters' own bytes);
* ``factory``    calls the factory R times, dropping each instance before the
                 next: the factory's own time for R instances;
* ``initcheck``  ``verify_model(factory, instances=R, ...)``, the whole engine
                 (building, folding every value of every parameter, the row and
                 model-level checks, the verdicts): its time, split into the
                 factory's (``build_seconds``) and the rest (``check_seconds``);
* ``traced``     the same ``verify_model`` under ``tracemalloc``: the peak of
                 Python and NumPy allocations, i.e. initcheck's own state (its
                 reducers, sketches and float64 copies; torch's tensors are not
                 traced), per parameter tensor.

R = 2 (``--instances``; the seed check needs two).  With the default
``samples`` (10^6 a parameter), two instances are less than every parameter
asks for, so every value of both instances is folded: the cost is dominated
by the largest parameters and by the fixed work of each row.  Each process
starts cold (the first BERT build pays transformers' one-off set-up, on both
sides alike).  ``factory`` and ``initcheck`` run ``--repeats`` times (default
2), interleaved; the faster of each is compared.

Targets: the whole ``initcheck model`` at most 2x the factory's own time for
the same instances; its peak RSS at most one instance's plus
``ROW_ALLOWANCE`` per parameter tensor: O(bins), 16 times a row's 2^16-cell
int32 histogram (256 KiB), i.e. 4 MiB.  (A row's state is bounded whatever
the parameter's size: the histogram, the structure statistics' stores and the
previous draw's first 2^20 values for the consecutive-draw pairs.)

    .venv/bin/python benchmarks/model_cost.py                  # both models, ~3 minutes on 2 cores
    .venv/bin/python benchmarks/model_cost.py --models resnet50 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

MARKER = "MODEL-COST "
INSTANCES = 2
REPEATS = 2
TARGET_TIME = 2.0  # whole initcheck model <= 2 x the factory's own time, same instances
#: Bytes a parameter's row may hold beyond the instance, O(bins): 16 times its 2^16-cell int32
#: histogram (256 KiB), i.e. 4 MiB.
HISTOGRAM_BYTES = 2**16 * 4
ROW_ALLOWANCE = 16 * HISTOGRAM_BYTES
MODELS = ("bert-base", "resnet50")
MIB = 2.0**20


# ----------------------------------------------------------------------------- the models


def resnet50():
    """A ResNet-50 (torchvision's v1.5 layout), every layer at torch's default init."""
    return resnet50_class()()


def bert_base():
    """BERT-base from its config, initialized by transformers' post_init."""
    import transformers

    return transformers.BertModel(transformers.BertConfig())


_CLASSES: dict = {}


def resnet50_class():
    """The ResNet50 class (defined on first use: torch is imported by the child processes only)."""
    if "ResNet50" not in _CLASSES:
        _CLASSES["ResNet50"] = _resnet_class()
    return _CLASSES["ResNet50"]


def _resnet_class():
    from torch import nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * self.expansion)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + identity)

    class ResNet50(nn.Module):
        def __init__(self, num_classes: int = 1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.inplanes = 64
            self.layer1 = self._stage(64, 3)
            self.layer2 = self._stage(128, 4, stride=2)
            self.layer3 = self._stage(256, 6, stride=2)
            self.layer4 = self._stage(512, 3, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

        def _stage(self, planes: int, blocks: int, stride: int = 1):
            downsample = None
            if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * Bottleneck.expansion))
            layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * Bottleneck.expansion
            layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            import torch

            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet50


FACTORIES = {"bert-base": (bert_base, "transformers"), "resnet50": (resnet50, None)}
TITLES = {"bert-base": "BERT-base (BertModel(BertConfig()), --preset transformers)",
          "resnet50": "ResNet-50 (plain torch, torch's layer defaults)"}


# ----------------------------------------------------------------------------- one measurement (a child process)


def _import_everything(model: str) -> None:
    import torch  # noqa: F401

    import initcheck.checks  # noqa: F401
    import initcheck.model  # noqa: F401
    import initcheck.policy  # noqa: F401
    import initcheck.reducers  # noqa: F401

    if model == "bert-base":
        import transformers

        import initcheck.presets  # noqa: F401

        transformers.BertModel, transformers.BertConfig  # transformers imports its modeling modules lazily


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(kind: str, model: str, instances: int) -> dict:
    _import_everything(model)
    factory, preset = FACTORIES[model]
    out: dict = {"kind": kind, "model": model}
    if kind == "imports":
        pass
    elif kind == "one":
        started = time.perf_counter()
        built = factory()
        out["seconds"] = time.perf_counter() - started
        parameters = list({id(p): p for p in built.parameters()}.values())
        out["parameters"] = sum(p.numel() for p in parameters)
        out["tensors"] = len(parameters)
        out["parameter_bytes"] = sum(p.numel() * p.element_size() for p in parameters)
        del built
    elif kind == "factory":
        times = []
        for _ in range(instances):
            started = time.perf_counter()
            built = factory()
            times.append(time.perf_counter() - started)
            del built
        out["seconds"], out["each"] = sum(times), times
    elif kind in ("initcheck", "traced"):
        from initcheck.model import verify_model

        if kind == "traced":
            import tracemalloc

            tracemalloc.start()
        started = time.perf_counter()
        result = verify_model(factory, instances=instances, preset=preset)
        out["seconds"] = time.perf_counter() - started
        if kind == "traced":
            out["traced_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        out.update(build_seconds=result.build_seconds, check_seconds=result.check_seconds,
                   verdict=result.verdict, summary=result.summary_line, rows=len(result.results),
                   instances=result.instances)
    else:
        raise SystemExit(f"unknown child kind {kind!r}")
    out["max_rss"] = _max_rss()
    return out


def run_child(kind: str, model: str, instances: int) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", kind, model, str(instances)]
    done = subprocess.run(argv, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"model_cost child {kind} {model} failed ({done.returncode}): {tail}")
    return json.loads(lines[-1][len(MARKER):])


# ----------------------------------------------------------------------------- the section


def measure(models=MODELS, instances: int = INSTANCES, repeats: int = REPEATS, log=None) -> dict:
    found = {}
    for model in models:
        def step(kind):
            if log:
                print(f"model cost: {model} {kind} ...", file=log, flush=True)
            return run_child(kind, model, instances)

        entry = {"imports": step("imports"), "one": step("one"), "factory": [], "initcheck": []}
        for _ in range(repeats):
            entry["factory"].append(step("factory"))
            entry["initcheck"].append(step("initcheck"))
        entry["traced"] = step("traced")
        found[model] = entry
    return {"instances": instances, "repeats": repeats, "models": found}


def _mib(count: float) -> str:
    return f"{count / MIB:,.0f}"


def _seconds(runs: list[dict]) -> str:
    return ", ".join(f"{run['seconds']:.2f}" for run in runs)


def render(found: dict) -> list[str]:
    r, repeats = found["instances"], found["repeats"]
    lines = [f"initcheck model: the whole command against the factory's own time, R = {r} instances, "
             f"fresh process each, faster of {repeats}",
             "-" * 100]
    targets = []
    for model, entry in found["models"].items():
        one, imports, traced = entry["one"], entry["imports"], entry["traced"]
        factory = min(entry["factory"], key=lambda m: m["seconds"])
        check = min(entry["initcheck"], key=lambda m: m["seconds"])
        ratio = check["seconds"] / factory["seconds"]
        instance_rss = one["max_rss"] - imports["max_rss"]
        extra = max(check["max_rss"] for check in entry["initcheck"]) - one["max_rss"]
        allowance = check["rows"] * ROW_ALLOWANCE
        lines += [
            f"{TITLES[model]}: {one['parameters']:,} parameters in {one['tensors']} tensors, "
            f"{_mib(one['parameter_bytes'])} MiB of float32",
            f"  factory, {r} instances           {factory['seconds']:7.2f} s   "
            f"(each: {', '.join(f'{s:.2f}' for s in factory['each'])} s)",
            f"  initcheck model, {r} instances   {check['seconds']:7.2f} s   "
            f"= {ratio:.2f}x the factory: building {check['build_seconds']:.2f} s, "
            f"everything else {check['check_seconds']:.2f} s "
            f"({check['check_seconds'] / check['rows'] * 1e3:.0f} ms a parameter tensor); "
            f"{check['verdict']}, {check['summary']}",
            f"  all runs (s): factory {_seconds(entry['factory'])}; initcheck {_seconds(entry['initcheck'])}",
            f"  peak RSS (MiB): imports alone {_mib(imports['max_rss'])}; one instance {_mib(one['max_rss'])} "
            f"(+{_mib(instance_rss)}); initcheck model {_mib(check['max_rss'])} "
            f"(+{_mib(extra)} over one instance = {extra / check['rows'] / MIB:.2f} MiB a parameter tensor)",
            f"  initcheck's own Python and NumPy allocations (tracemalloc peak): {_mib(traced['traced_peak'])} MiB "
            f"= {traced['traced_peak'] / traced['rows'] / MIB:.2f} MiB a parameter tensor",
            "",
        ]
        targets.append(f"  {model:<10} time:   initcheck model {check['seconds']:.2f} s <= {TARGET_TIME:g} x factory "
                       f"{factory['seconds']:.2f} s = {TARGET_TIME * factory['seconds']:.2f} s: "
                       f"{ratio:.2f}x [{'MET' if ratio <= TARGET_TIME else 'MISSED'}]")
        targets.append(f"  {model:<10} memory: peak RSS {_mib(check['max_rss'])} MiB <= one instance "
                       f"{_mib(one['max_rss'])} + {check['rows']} x {ROW_ALLOWANCE / MIB:g} MiB = "
                       f"{_mib(one['max_rss'] + allowance)} MiB "
                       f"[{'MET' if extra <= allowance else 'MISSED'}]")
    lines.append(f"Targets: whole initcheck model <= {TARGET_TIME:g}x the factory's own time for the same "
                 f"instances; peak RSS <= one instance + {ROW_ALLOWANCE / MIB:g} MiB (16 histograms of 2^16 int32 "
                 "cells: O(bins)) a parameter tensor")
    return lines + targets


def machine_lines() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [f"CPU      : {model}, {os.cpu_count()} logical cores",
            f"Python   : {platform.python_version()} on {platform.system()} {platform.release()}",
            f"load avg : {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at the end)"]


def versions() -> str:
    found = run_child_versions()
    return ", ".join(f"{name} {version}" for name, version in found.items())


def run_child_versions() -> dict:
    code = ("import json, numpy, torch, transformers; "
            "print(json.dumps({'torch': torch.__version__, 'transformers': transformers.__version__, "
            "'numpy': numpy.__version__, 'threads': torch.get_num_threads()}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--instances", type=int, default=INSTANCES, help="R, instances built (at least 2)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs of the factory and of initcheck")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "MODEL", "R"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, model, instances = args.child
        print(MARKER + json.dumps(child(kind, model, int(instances))), flush=True)
        return
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(sorted(unknown))}; expected {', '.join(MODELS)}")
    started = time.perf_counter()
    found = measure(models, args.instances, args.repeats, log=sys.stderr)
    lines = [*render(found), "", *machine_lines(), f"versions : {versions()}",
             f"(model cost wall time {time.perf_counter() - started:.0f} s)"]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
