"""The informational commands: ``gains``, ``fans`` and ``env``.

They ask the frameworks themselves and print the answer beside initcheck's closed
form, so every test here compares the two.
"""

from __future__ import annotations

import importlib.metadata
import math
import re

import pytest

from initcheck import frameworks
from initcheck.info import GAIN_ROWS, gains_table
from initcheck.schemes import gain
from helpers import run_cli

FRAMEWORKS = ("torch", "keras", "jax")


def fan_cells(out: str, fan_in: int, fan_out: int) -> int:
    """How many table cells print ``fan_in, fan_out`` as fans (not inside a shape)."""
    return len(re.findall(rf"(?<![(\d]){fan_in}, {fan_out}(?![\d)])", out))


def installed_frameworks():
    return [name for name in FRAMEWORKS if frameworks.installed(name)]


# --------------------------------------------------------------------------- gains


def test_gains_command_exits_0_and_flags_nothing(capsys):
    code, out, err = run_cli(capsys, "gains")
    assert code == 0, out + err
    assert "✗" not in out
    for name, _ in GAIN_ROWS:
        assert name in out
    assert "calculate_gain" in out
    assert "1.66667" in out and "2.77778" in out  # tanh: gain 5/3, scale 25/9


@pytest.mark.skipif(not frameworks.installed("torch"), reason="torch is not installed")
def test_every_closed_form_gain_agrees_with_torch():
    import torch

    _, agree = gains_table()
    assert agree is True
    for name, slope in GAIN_ROWS:
        assert gain(name, slope) == pytest.approx(torch.nn.init.calculate_gain(name, slope), rel=1e-12), (name, slope)


@pytest.mark.skipif(not frameworks.installed("torch"), reason="torch is not installed")
def test_extra_leaky_relu_slopes_agree_with_torch(capsys):
    _, agree = gains_table((0.2, 1.0, 3.0))
    assert agree is True
    code, out, _ = run_cli(capsys, "gains", "--a", "0.2")
    assert code == 0 and "0.2" in out and "✗" not in out
    assert f"{math.sqrt(2 / 1.04):.6g}" in out


def test_gains_table_rows():
    table, _ = gains_table()
    assert table.row_count == len(GAIN_ROWS)
    table, _ = gains_table((0.3,))
    assert table.row_count == len(GAIN_ROWS) + 1


# --------------------------------------------------------------------------- fans


def test_fans_conv_agree_in_every_framework(capsys):
    code, out, err = run_cli(capsys, "fans", "--shape", "128,64,3,3")
    assert code == 0, out + err
    assert "✗" not in out
    present = installed_frameworks()
    for name in present:
        assert name in out
    # the closed form, then one cell per framework
    assert fan_cells(out, 576, 1152) == 1 + len(present), out
    assert "conv 64→128 3×3" in out
    if "torch" in present:
        assert "(128, 64, 3, 3)" in out
    if {"keras", "jax"} & set(present):
        assert "(3, 3, 64, 128)" in out


def test_fans_keras_layout_and_dense(capsys):
    code, out, err = run_cli(capsys, "fans", "--shape", "3,3,64,128", "--layout", "keras", "--fan-in", "300",
                             "--fan-out", "200")
    assert code == 0, out + err
    assert "✗" not in out
    present = installed_frameworks()
    assert fan_cells(out, 576, 1152) == 1 + len(present), out
    assert fan_cells(out, 300, 200) == 1 + len(present), out
    assert "dense 300→200" in out and "conv 64→128 3×3" in out


def test_fans_with_one_framework(capsys):
    if not frameworks.installed("torch"):
        pytest.skip("torch is not installed")
    code, out, _ = run_cli(capsys, "fans", "--shape", "32,16,5", "-f", "torch")
    assert code == 0
    assert fan_cells(out, 80, 160) == 2 and "keras" not in out and "jax" not in out


@pytest.mark.parametrize(
    "args",
    [
        ["fans"],
        ["fans", "--layout", "keras"],
        ["fans", "--shape", "100"],
        ["fans", "--shape", "a,b"],
        ["fans", "--fan-in", "10"],
        ["fans", "--shape", "10,10", "-f", "caffe"],
    ],
    ids=lambda args: " ".join(args),
)
def test_fans_bad_input_is_one_line_and_exit_2(capsys, args):
    code, out, err = run_cli(capsys, *args)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initcheck: error:"), err
    assert "Traceback" not in out + err


def test_fans_without_shapes_says_what_is_needed(capsys):
    code, _, err = run_cli(capsys, "fans")
    assert code == 2
    assert "--shape" in err and "--fan-in" in err


# --------------------------------------------------------------------------- env


@pytest.mark.calibration  # imports every framework and starts the Keras workers: about 10 s
def test_env_prints_every_framework_version(capsys):
    code, out, err = run_cli(capsys, "env", "--devices")
    assert code == 0, out + err
    for package in ("numpy", "scipy", "click", "rich"):
        assert importlib.metadata.version(package) in out
    if frameworks.installed("torch"):
        import torch

        assert torch.__version__ in out
    if frameworks.installed("keras"):
        import keras
        import tensorflow as tf

        assert keras.__version__ in out and tf.__version__ in out
    if frameworks.installed("jax"):
        import jax

        assert jax.__version__ in out
    for name in FRAMEWORKS:
        assert name in out
    assert "failed to load" not in out
    if len(installed_frameworks()) == len(FRAMEWORKS):
        assert "not installed" not in out
    assert "devices:" in out


def test_env_says_not_installed(capsys, monkeypatch):
    monkeypatch.setattr(frameworks, "installed", lambda name: name != "jax")
    code, out, _ = run_cli(capsys, "env")
    assert code == 0
    line = next(line for line in out.splitlines() if " jax " in line)
    assert "not installed" in line


def test_env_reads_versions_without_importing_a_framework():
    import subprocess
    import sys

    code = ("import sys; from initcheck.cli import main\n"
            "try:\n    main(['env'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({'torch', 'jax', 'tensorflow', 'keras'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    for name in installed_frameworks():
        assert name in done.stdout
    assert "fold path" in done.stdout
