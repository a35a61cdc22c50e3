"""MLX (``-f mlx``): ``mlx.nn.init`` against the laws MLX documents.

Every scheme MLX has passes on a fixed seed at a small N; the ones it lacks
are skipped with the reason; the fans are MLX's own; the layers' defaults are
MLX's; a row leaves the caller's global key as it was; a batch is a row of
real calls, bit for bit.  ``make calibrate`` runs every scheme at N = 1e7 over
several seeds and the 16-bit findings.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from initcheck import frameworks
from initcheck.layers import Layer
from initcheck.schemes import InitSpec
from helpers import check_rows, failed

pytestmark = pytest.mark.skipif(not frameworks.installed("mlx"), reason="needs mlx installed")

SMALL = 200_000
DENSE = Layer(300, 200)
CONV = Layer(16, 32, (3, 3))

#: (id, spec, layer) of every scheme mlx.nn.init has.
HAS = [
    ("xavier normal dense", InitSpec("xavier", "normal"), DENSE),
    ("xavier uniform conv", InitSpec("xavier", "uniform", gain=2.0), CONV),
    ("kaiming normal relu conv", InitSpec("kaiming", "normal", nonlinearity="relu"), CONV),
    ("kaiming uniform fan_out dense", InitSpec("kaiming", "uniform", mode="fan_out", nonlinearity="tanh"), DENSE),
    ("normal", InitSpec("normal", mean=0.5, std=0.02), Layer(5, 2)),
    ("uniform", InitSpec("uniform", low=-0.1, high=0.3), CONV),
    ("orthogonal", InitSpec("orthogonal", gain=2.0), Layer(128, 64)),
    ("sparse", InitSpec("sparse", sparsity=0.3), Layer(40, 100)),
    ("eye", InitSpec("eye"), Layer(64, 64)),
    ("constant", InitSpec("constant", value=0.25), Layer(30, 20)),
    ("zeros", InitSpec("zeros"), DENSE),
    ("ones", InitSpec("ones"), CONV),
]

#: (id, spec, layer, dtype, words the reason holds) of what mlx.nn.init lacks or refuses.
LACKS = [
    ("lecun", InitSpec("lecun", "normal"), DENSE, "float32", "no LeCun"),
    ("variance-scaling", InitSpec("variance-scaling", "uniform", scale=2.0), DENSE, "float32", "no variance_scaling"),
    ("xavier truncated", InitSpec("xavier", "truncated-normal"), DENSE, "float32", "no truncated-normal xavier"),
    ("kaiming truncated", InitSpec("kaiming", "truncated-normal"), CONV, "float32", "no truncated-normal kaiming"),
    ("kaiming fan_avg", InitSpec("kaiming", "normal", mode="fan_avg"), DENSE, "float32", "fan_in or fan_out"),
    ("trunc-normal", InitSpec("trunc-normal", std=0.02, low=-0.04, high=0.04), DENSE, "float32",
     "no truncated-normal initializer"),
    ("dirac", InitSpec("dirac"), CONV, "float32", "no Dirac"),
    ("delta-orthogonal", InitSpec("delta-orthogonal"), CONV, "float32", "no delta-orthogonal"),
    ("eye with a gain", InitSpec("eye", gain=2.0), Layer(8, 8), "float32", "identity has no gain"),
    ("eye not square", InitSpec("eye"), Layer(32, 64), "float32", "must be a square matrix"),
    ("orthogonal 4-d", InitSpec("orthogonal"), CONV, "float32", "requires a 2D array"),
    ("uniform float64", InitSpec("xavier", "uniform"), DENSE, "float64", "[uniform] Unsupported type"),
]


@pytest.fixture(scope="module")
def mlx():
    return frameworks.load("mlx")


def _key_words():
    import mlx.core as mx

    return [int(w) for w in np.array(mx.random.state[0])]


# --------------------------------------------------------------------------- what MLX has and lacks


@pytest.mark.parametrize("spec, layer", [case[1:] for case in HAS], ids=[case[0] for case in HAS])
def test_every_scheme_mlx_has_passes(mlx, spec, layer):
    plan = mlx.plan(spec, layer, "cpu", "float32")
    assert plan.api.startswith("mlx.nn.init."), plan
    assert plan.shape == layer.shape("mlx")
    result = check_rows([plan], samples=SMALL, seed=0)[0]
    assert result.verdict == "PASS", (plan.api, failed(result))


@pytest.mark.parametrize("spec, layer, dtype, words", [case[1:] for case in LACKS], ids=[case[0] for case in LACKS])
def test_what_mlx_lacks_is_a_skip_with_the_reason(mlx, spec, layer, dtype, words):
    from initcheck.frameworks.base import Skip

    skip = mlx.plan(spec, layer, "cpu", dtype)
    assert isinstance(skip, Skip), skip
    assert words in skip.reason and skip.framework == "mlx"


def test_laws_are_mlx_documented_formulas(mlx):
    """glorot_* and he_* with the gain passed: plain normals and U(+-gain sqrt(3/fan))."""
    relu = mlx.plan(InitSpec("kaiming", "normal", nonlinearity="relu"), CONV, "cpu", "float32")
    assert relu.law.family == "normal" and relu.law.std == pytest.approx(math.sqrt(2.0 / (16 * 9)), rel=1e-12)
    assert "gain=1.4142135623730951" in relu.api and "mode='fan_in'" in relu.api
    glorot = mlx.plan(InitSpec("xavier", "uniform"), DENSE, "cpu", "float32")
    assert glorot.law.high == pytest.approx(math.sqrt(6.0 / 500), rel=1e-12)
    assert glorot.api == "mlx.nn.init.glorot_uniform(dtype=mlx.core.float32)(w, gain=1.0)"


def test_mlx_he_normal_default_gain_is_lecuns_variance():
    """he_normal()(w) with MLX's default gain 1.0 has variance 1 / fan_in, not He's 2 / fan_in."""
    import mlx.core as mx
    import mlx.nn as nn

    from initcheck.frameworks.mlx_nn import global_key_seeded

    with global_key_seeded(3):
        values = np.array(nn.init.he_normal()(mx.zeros((400, 500))))
    assert values.std() == pytest.approx(1 / math.sqrt(500), rel=0.01)


# --------------------------------------------------------------------------- fans and layouts

FAN_LAYERS = [Layer(784, 256), Layer(16, 32, (5,)), Layer(3, 64, (7, 5)), Layer(8, 4, (3, 3, 3))]


@pytest.mark.parametrize("layer", FAN_LAYERS, ids=lambda layer: layer.describe())
def test_fans_are_mlx_own_and_the_closed_form(mlx, layer):
    import mlx.core as mx
    from mlx.nn.init import _calculate_fan_in_fan_out

    shape = layer.shape("mlx")
    assert shape == (layer.out_features, *layer.kernel, layer.in_features)
    assert mlx.fans(layer) == tuple(_calculate_fan_in_fan_out(mx.zeros(shape)))
    assert mlx.fans(layer) == (layer.fan_in, layer.fan_out)


def test_fans_command_shows_the_mlx_shape_and_agrees(cli):
    code, out, err = cli("fans", "--shape", "128,64,3,3", "-f", "mlx")
    assert code == 0, out + err
    assert "(128, 3, 3, 64)" in out and "576, 1152" in out and "✗" not in out


# --------------------------------------------------------------------------- seeding and batches


def test_a_row_leaves_the_callers_key_as_it_was(mlx):
    import mlx.core as mx

    mx.random.seed(1234)
    mx.random.normal((3,))  # a key that is no seed's own any more
    before = _key_words()
    expected = np.array(mx.random.uniform(shape=(4,)))
    mx.random.seed((before[0] << 32) | before[1])
    plan = mlx.plan(InitSpec("xavier", "uniform"), CONV, "cpu", "float32")
    result = check_rows([plan], samples=20_000, seed=0)[0]
    (weight, bias), = [tuple(p for _, p in mlx.default_rows(DENSE, "cpu", "float32"))]
    weight.draw(5)
    bias.draw_batch(6, 20)
    assert result.verdict == "PASS"
    assert _key_words() == before
    assert np.array_equal(np.array(mx.random.uniform(shape=(4,))), expected)


def test_a_batch_is_a_row_of_real_calls_bit_for_bit(mlx):
    import mlx.core as mx
    import mlx.nn as nn

    plan = mlx.plan(InitSpec("kaiming", "uniform", nonlinearity="relu"), Layer(5, 2), "cpu", "float32")
    batch = plan.draw_batch(77, 130)  # three groups, the last one short
    assert batch.shape == (130, 2, 5)
    initializer = nn.init.he_uniform(mx.float32)
    mx.random.seed(77)
    calls = np.stack([np.array(initializer(mx.zeros((2, 5)), mode="fan_in", gain=math.sqrt(2.0)))
                      for _ in range(130)])
    assert np.array_equal(batch, calls)
    assert len({row.tobytes() for row in batch}) == 130  # independent draws, no repeats
    assert np.array_equal(plan.draw_batch(77, 130), batch)  # reproducible by seed
    assert not np.array_equal(plan.draw(1), plan.draw(2))


def test_vmap_over_an_initializer_repeats_its_values():
    """Why batches are not mx.vmap: every element of the batch gets the same draw."""
    import mlx.core as mx
    import mlx.nn as nn

    from initcheck.frameworks.mlx_nn import global_key_seeded

    with global_key_seeded(0):
        out = np.array(mx.vmap(nn.init.glorot_uniform())(mx.zeros((4, 2, 3))))
    assert all(np.array_equal(out[0], out[j]) for j in range(1, 4))


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype, numpy_name", [("float16", "float16"), ("bfloat16", "bfloat16"),
                                               ("float64", "float64")])
def test_draws_come_back_in_their_dtype(mlx, dtype, numpy_name):
    plan = mlx.plan(InitSpec("xavier", "normal"), Layer(5, 2), "cpu", dtype)
    assert plan.draw(0).dtype.name == numpy_name
    assert plan.draw_batch(0, 3).dtype.name == numpy_name


def test_float64_normal_passes(mlx):
    plan = mlx.plan(InitSpec("kaiming", "normal", nonlinearity="relu"), DENSE, "cpu", "float64")
    assert check_rows([plan], samples=SMALL, seed=0)[0].verdict == "PASS"


# --------------------------------------------------------------------------- layer defaults


def test_layer_defaults_linear_and_conv(mlx):
    rows = dict(mlx.default_rows(DENSE, "cpu", "float32"))
    bound = 1.0 / math.sqrt(300)
    assert rows["weight"].api == "mlx.nn.Linear(300, 200).weight" and rows["weight"].shape == (200, 300)
    assert rows["bias"].api == "mlx.nn.Linear(300, 200).bias" and rows["bias"].shape == (200,)
    for plan in rows.values():
        assert plan.law.family == "uniform" and plan.law.high == pytest.approx(bound, rel=1e-12)
    conv = dict(mlx.default_rows(Layer(4, 8, (3, 3, 3)), "cpu", "float32"))
    assert conv["weight"].shape == (8, 3, 3, 3, 4)
    assert conv["weight"].law.high == pytest.approx(math.sqrt(1.0 / (4 * 27)), rel=1e-12)
    assert conv["bias"].law.family == "constant" and conv["bias"].law.value == 0.0
    results = check_rows([*rows.values(), *conv.values()], samples=SMALL, seed=0)
    assert all(r.verdict == "PASS" for r in results), [failed(r) for r in results]


def test_layer_defaults_in_16_bits_and_float64(mlx):
    rows = dict(mlx.default_rows(Layer(16, 8, (3,)), "cpu", "bfloat16"))
    assert rows["weight"].api == "mlx.nn.Conv1d(16, 8, 3).set_dtype(mlx.core.bfloat16).weight"
    assert rows["weight"].draw(0).dtype.name == "bfloat16"
    assert check_rows([rows["weight"]], samples=SMALL, seed=0)[0].verdict == "PASS"
    (name, skip), = mlx.default_rows(DENSE, "cpu", "float64")
    assert "no float64 kernel" in skip.reason


# --------------------------------------------------------------------------- bad input and the process


@pytest.mark.parametrize("device", ["cuda", "gpu:1"])
def test_a_gpu_mlx_lacks_is_one_line_and_exit_2(cli, device):
    import mlx.core as mx

    if mx.is_available(mx.gpu) and device == "cuda":
        pytest.skip("MLX has a GPU here")
    code, out, err = cli("xavier", "--fan-in", "30", "--fan-out", "20", "--device", device, "-f", "mlx",
                         "-n", "2e5", "--no-progress")
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initcheck: error:") and "MLX" in lines[0], err
    assert "Traceback" not in out + err


_HYGIENE = """
import json, os, random, sys
import numpy as np
env, py, npy = dict(os.environ), random.getstate(), np.random.get_state()
from initcheck import frameworks
from initcheck.layers import Layer
from initcheck.schemes import InitSpec
from initcheck.runner import Row, run
mlx = frameworks.load("mlx")
plan = mlx.plan(InitSpec("xavier", "normal"), Layer(30, 20), "cpu", "float32")
verdict = list(run([Row("x", "l", plan)], 20000, 0, 1e-6, show_progress=False).results)[0].verdict
same_numpy = all(np.array_equal(a, b) for a, b in zip(npy[1:2], np.random.get_state()[1:2]))
print(json.dumps({"env": dict(os.environ) == env, "random": random.getstate() == py,
                  "numpy": same_numpy and npy[2:] == np.random.get_state()[2:], "verdict": verdict}))
"""


def test_importing_and_running_mlx_changes_nothing_and_prints_nothing():
    done = subprocess.run([sys.executable, "-c", _HYGIENE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == {"env": True, "random": True, "numpy": True, "verdict": "PASS"}


# --------------------------------------------------------------------------- make calibrate


@pytest.mark.calibration
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_calibration_every_scheme_at_the_default_n(mlx, seed):
    plans = [mlx.plan(spec, layer, "cpu", "float32") for _, spec, layer in HAS]
    plans += [plan for _, plan in mlx.default_rows(CONV, "cpu", "float32")]
    results = check_rows(plans, samples=10_000_000, seed=seed)
    assert all(r.verdict == "PASS" for r in results), [(p.api, failed(r)) for p, r in zip(plans, results)
                                                        if r.verdict != "PASS"]


@pytest.mark.calibration
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_calibration_16_bit_uniforms_are_drawn_in_16_bits(mlx, dtype):
    """mx.random.uniform in 16 bits is not U rounded to nearest: atoms the law
    has not (its float32 draws rounded to 16 bits, the layer defaults, pass)."""
    native = mlx.plan(InitSpec("xavier", "uniform"), Layer(784, 256), "cpu", dtype)
    rounded = dict(mlx.default_rows(Layer(784, 256), "cpu", dtype))["weight"]
    drawn, cast = check_rows([native, rounded], samples=10_000_000, seed=0)
    assert drawn.verdict == "FAIL" and "spikes" in failed(drawn)
    assert cast.verdict == "PASS"
