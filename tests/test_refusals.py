"""Options that would be silently ignored are refused, each in one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "my_init.py") + ":xavier_uniform"
FANS = ("--fan-in", "10", "--fan-out", "10", "-n", "1e4", "--no-progress")


@pytest.mark.parametrize("args, message", [
    (("kaiming", "--nonlinearity", "relu", "--a", "0.2", *FANS), "--a is the negative slope of leaky_relu"),
    (("xavier", "--plot-failures", *FANS), "--plot-failures needs --plot"),
    (("xavier", "-f", "", *FANS), "names no framework"),
    (("xavier", "-f", ",", *FANS), "names no framework"),
    (("xavier", "-f", "reference", "--device", "cuda", *FANS), "reference framework samples with NumPy on the CPU"),
    (("kaiming", "--mode", "fan_sideways", *FANS), "fan_sideways"),
    (("kaiming", "--nonlinearity", "swish", *FANS), "swish"),
    (("custom", EXAMPLE, "--expect", "lecun", "--gain", "2", "--shape", "4,4"), "--gain does not apply to --expect lecun"),
    (("custom", EXAMPLE, "--expect", "uniform", "--bound", "1", "--std", "1", "--shape", "4,4"),
     "--std does not apply to --expect uniform"),
    (("custom", EXAMPLE, "--expect", "normal", "--std", "1", "--mode", "fan_out", "--shape", "4,4"),
     "--mode does not apply"),
    (("custom", EXAMPLE, "--expect", "normal", "--std", "1", "-f", "torch", "--shape", "4,4"), "expected one of custom, reference"),
    (("custom", EXAMPLE, "--expect", "normal", "--std", "1", "-f", "custom", "--dtype", "float16", "--shape", "4,4"),
     "--dtype sets the reference control row's dtype"),
    (("custom", EXAMPLE, "--expect", "normal", "--std", "1", "--device", "cuda", "--shape", "4,4"),
     "--device does not apply to custom"),
])
def test_an_option_that_would_be_ignored_is_refused(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2, out + err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_custom_without_the_control_row(capsys):
    code, out, err = run_cli(capsys, "custom", EXAMPLE, "--expect", "xavier", "--dist", "uniform", "-f", "custom",
                             "--shape", "64,32", "-n", "1e4", "--no-progress")
    assert code in (0, 1), out + err
    assert "reference" not in out and "custom" in out


def test_a_suite_on_cuda_skips_the_reference_row_with_the_reason(tmp_path):
    from initcheck import frameworks as registry
    from initcheck.layers import Layer
    from initcheck.rows import scheme_rows
    from initcheck.schemes import InitSpec

    rows = scheme_rows([InitSpec("xavier", "normal")], [Layer.dense(8, 8)], [registry.load("reference")],
                       "cuda:0", "float32")
    assert "on the CPU, not on cuda:0" in rows[0].plan.reason


@pytest.mark.parametrize("args", [
    ("xavier", "--fan-in", "1000000000000", "--fan-out", "256"),
    ("xavier", "--fan-in", "1000000000000", "--fan-out", "256", "-f", "jax"),
    ("xavier", "--shape", "100000,100000", "-n", "1e5"),
    ("defaults", "--shape", "100000,100000", "-f", "torch"),
])
def test_a_layer_too_large_for_memory_is_refused_before_anything_is_allocated(capsys, args):
    code, out, err = run_cli(capsys, *args)
    assert code == 2, out + err
    assert "float32 weight needs" in err and "available" in err and len(err.strip().splitlines()) == 1


def test_check_fits_states_what_a_row_holds():
    from initcheck.errors import InputError
    from initcheck.resources import check_fits

    check_fits((1000, 1000), "float32", available=8_000_001)  # two 4 MB draws fit in 8 MB
    with pytest.raises(InputError, match=r"a 1000 x 1000 float32 weight needs 4 MB a draw \(8 MB for the 2 draws"):
        check_fits((1000, 1000), "float32", available=7_999_999)
    check_fits((10**6, 10**6), "float32", device="cuda:0", available=1)  # a device's memory is its framework's


@pytest.mark.parametrize("value, message", [("fortran", "INITCHECK_KERNEL must be one of auto, c, numpy")])
def test_a_bad_kernel_choice_is_one_line_not_a_traceback(tmp_path, value, message):
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "initcheck", "xavier", "--fan-in", "8", "--fan-out", "8",
                           "-f", "reference", "-n", "1e4"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "INITCHECK_KERNEL": value})
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_a_custom_function_that_returns_ints_or_a_list_says_so(capsys, tmp_path):
    module = tmp_path / "odd_inits.py"
    module.write_text("import numpy as np\n"
                      "def ints(shape, seed):\n    return np.random.default_rng(seed).integers(-3, 4, shape)\n"
                      "def listy(shape, seed):\n    return np.random.default_rng(seed).uniform(-1, 1, shape).tolist()\n")
    code, out, err = run_cli(capsys, "custom", f"{module}:ints", "--expect", "uniform", "--low", "-3", "--high", "3",
                             "--shape", "8,8", "-n", "1e4", "-f", "custom", "--no-progress")
    assert "returns an int64 array, checked as float64" in out
    code, out, err = run_cli(capsys, "custom", f"{module}:listy", "--expect", "uniform", "--bound", "1",
                             "--shape", "8,8", "-n", "1e4", "-f", "custom", "--no-progress")
    assert code == 0 and "returns a list, checked as float64" in out


def test_every_unwritable_report_path_is_named_before_anything_is_drawn(capsys, tmp_path):
    code, out, err = run_cli(capsys, "xavier", *FANS, "-f", "reference", "--json", "/proc/initcheck.json",
                             "--junit", tmp_path / "missing" / "r.xml", "--plot", "/proc/initcheck-plots")
    assert code == 2 and out == ""
    assert "--json /proc/initcheck.json" in err and "--junit" in err and "--plot /proc/initcheck-plots" in err
    assert len(err.strip().splitlines()) == 1
