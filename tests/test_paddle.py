"""PaddlePaddle (``-f paddle``): each ``paddle.nn.initializer`` against the law
Paddle documents, its own fans, its layers' defaults, the skips, and a caller's
process left as it was (initcheck/frameworks/paddle_nn.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from helpers import check_rows

from initcheck import frameworks
from initcheck.frameworks.base import Plan, Skip
from initcheck.layers import Layer
from initcheck.laws import Constant, Normal, Uniform
from initcheck.schemes import NONLINEARITIES, InitSpec, gain

pytestmark = pytest.mark.skipif(not frameworks.installed("paddle"), reason="needs paddlepaddle")

DENSE = Layer.from_shape((5, 2))  # 2 -> 5: Paddle's weight (2, 5)
CONV = Layer.from_shape((8, 4, 3))  # Conv1D 4 -> 8, kernel 3: (8, 4, 3)
WIDE = Layer.from_shape((24, 16))  # 16 -> 24: (16, 24), orthogonal's small draws

#: (spec, layer) of every scheme Paddle has, small enough for make test.
SCHEMES = [
    (InitSpec("xavier", dist="normal", gain=1.5), DENSE),
    (InitSpec("xavier", dist="uniform"), CONV),
    (InitSpec("kaiming", dist="normal"), CONV),
    (InitSpec("kaiming", dist="uniform", mode="fan_out", nonlinearity="leaky_relu", slope=0.2), DENSE),
    (InitSpec("kaiming", dist="normal", nonlinearity="tanh"), DENSE),
    (InitSpec("trunc-normal", mean=1.0, std=2.0, low=-1.0, high=2.0), DENSE),  # absolute bounds
    (InitSpec("normal", mean=0.5, std=2.0), DENSE),
    (InitSpec("uniform", low=-1.0, high=3.0), DENSE),
    (InitSpec("orthogonal", gain=2.0), WIDE),
    (InitSpec("orthogonal"), CONV),
    (InitSpec("dirac", groups=2), CONV),
    (InitSpec("constant", value=0.3), DENSE),
    (InitSpec("zeros"), CONV),
    (InitSpec("ones"), DENSE),
]


@pytest.fixture(scope="module")
def paddle_framework():
    return frameworks.load("paddle")


def plans(framework, cases, dtype="float32"):
    made = [framework.plan(spec, layer, "cpu", dtype) for spec, layer in cases]
    assert all(isinstance(plan, Plan) for plan in made), [p for p in made if not isinstance(p, Plan)]
    return made


def test_every_scheme_paddle_has_passes(paddle_framework):
    results = check_rows(plans(paddle_framework, SCHEMES), samples=100_000, seed=3)
    assert [r.verdict for r in results] == ["PASS"] * len(SCHEMES), \
        [(r.api, r.verdict, [c.name for c in r.checks if not c.passed]) for r in results]


def test_rows_name_paddles_api_and_layout(paddle_framework):
    xavier, kaiming, trunc = plans(paddle_framework, [SCHEMES[0], SCHEMES[3], SCHEMES[5]])
    assert xavier.api == "paddle.nn.initializer.XavierNormal(gain=1.5)"
    assert xavier.shape == (2, 5)  # Linear's weight is (in, out)
    assert xavier.law == Normal(0.0, 1.5 * math.sqrt(2.0 / 7))
    assert kaiming.api == ("paddle.nn.initializer.KaimingUniform(negative_slope=0.2, nonlinearity='leaky_relu', "
                           "mode='fan_out')")
    bound = math.sqrt(2.0 / 1.04) * math.sqrt(3.0 / 5)
    assert kaiming.law == Uniform(-bound, bound)
    assert trunc.api == "paddle.nn.initializer.TruncatedNormal(mean=1.0, std=2.0, a=-1.0, b=2.0)"
    assert plans(paddle_framework, [(InitSpec("xavier", dist="normal"), CONV)])[0].shape == (8, 4, 3)


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_other_dtypes_pass(paddle_framework, dtype):
    cases = [(InitSpec("xavier", dist="uniform"), DENSE), (InitSpec("kaiming", dist="normal"), CONV),
             (InitSpec("dirac"), CONV)]
    results = check_rows(plans(paddle_framework, cases, dtype), samples=50_000, seed=1)
    assert [r.verdict for r in results] == ["PASS"] * len(cases)
    assert all(r.dtype == dtype for r in results)


@pytest.mark.parametrize("spec, dtype, kernel", [
    (InitSpec("orthogonal"), "float16", "`qr`"),
    (InitSpec("orthogonal"), "bfloat16", "`qr`"),
    (InitSpec("trunc-normal", std=1.0, low=-2.0, high=2.0), "float16", "`truncated_gaussian_random`"),
])
def test_a_dtype_paddle_has_no_kernel_for_is_a_skip_with_its_message(paddle_framework, spec, dtype, kernel):
    plan = paddle_framework.plan(spec, WIDE, "cpu", dtype)
    assert isinstance(plan, Skip)
    assert f"raises on {dtype} cpu: (NotFound)" in plan.reason and kernel in plan.reason


@pytest.mark.parametrize("spec, reason", [
    (InitSpec("lecun", dist="normal"), "no LeCun initializer"),
    (InitSpec("variance-scaling", dist="uniform", scale=2.0), "no variance-scaling initializer"),
    (InitSpec("xavier", dist="truncated-normal"), "no truncated-normal Xavier initializer"),
    (InitSpec("kaiming", dist="truncated-normal"), "no truncated-normal Kaiming initializer"),
    (InitSpec("kaiming", dist="normal", mode="fan_avg"), "no fan_avg mode"),
    (InitSpec("sparse", sparsity=0.1), "no sparse initializer"),
    (InitSpec("eye"), "no identity initializer"),
    (InitSpec("delta-orthogonal"), "no delta-orthogonal initializer"),
])
def test_what_paddle_lacks_is_a_skip_with_the_reason(paddle_framework, spec, reason):
    plan = paddle_framework.plan(spec, CONV if spec.scheme == "delta-orthogonal" else DENSE, "cpu", "float32")
    assert isinstance(plan, Skip) and reason in plan.reason


@pytest.mark.parametrize("layer", [DENSE, CONV, Layer.from_shape((64, 32, 3, 3)), Layer.from_shape((4, 2, 3, 3, 3)),
                                   Layer(1, 7, vector=True)], ids=lambda layer: layer.describe())
def test_fans_are_paddles_own_and_agree_with_the_closed_form(paddle_framework, layer):
    from initcheck.frameworks.paddle_nn import paddle

    weight = paddle.empty(list(layer.shape("paddle")))
    own = paddle.nn.initializer.Initializer()._compute_fans(weight)
    assert paddle_framework.fans(layer) == tuple(int(f) for f in own) == (layer.fan_in, layer.fan_out)


@pytest.mark.parametrize("nonlinearity, slope", [(name, None) for name in NONLINEARITIES if name != "leaky_relu"]
                         + [("leaky_relu", None), ("leaky_relu", 0.0), ("leaky_relu", 0.2)])
def test_paddles_gains_are_initchecks(nonlinearity, slope):
    from initcheck.frameworks.paddle_nn import paddle

    assert math.isclose(paddle.nn.initializer.calculate_gain(nonlinearity, slope), gain(nonlinearity, slope),
                        rel_tol=1e-12)


def test_layer_defaults_are_the_documented_laws_and_pass(paddle_framework):
    linear = paddle_framework.default_rows(DENSE, "cpu", "float32")
    conv = paddle_framework.default_rows(CONV, "cpu", "float32")
    assert [name for name, _ in linear] == ["weight", "bias"]
    (_, weight), (_, bias) = linear
    assert weight.api == "paddle.nn.Linear(2, 5).weight" and weight.shape == (2, 5)
    assert weight.law == Uniform(-math.sqrt(6.0 / 7), math.sqrt(6.0 / 7))
    assert bias.law == Constant(0.0) and bias.shape == (5,)
    assert conv[0][1].api == "paddle.nn.Conv1D(4, 8, (3,)).weight"
    assert conv[0][1].law == Normal(0.0, math.sqrt(2.0 / 12))
    rows = [plan for _, plan in linear + conv]
    results = check_rows(rows, samples=60_000, seed=2)
    assert [r.verdict for r in results] == ["PASS"] * 4
    assert weight.draw_batch.faithful and conv[0][1].draw_batch.faithful


def test_a_default_weight_batch_is_layers_built_one_after_another(paddle_framework):
    from initcheck.frameworks.paddle_nn import paddle
    from paddle.utils import unique_name

    (_, weight), _ = paddle_framework.default_rows(DENSE, "cpu", "float32")
    batch = weight.draw_batch(11, 3).copy()
    state = paddle.get_rng_state()
    try:
        paddle.seed(11)
        with unique_name.guard():
            built = [paddle.nn.Linear(2, 5).weight.numpy() for _ in range(3)]
    finally:
        paddle.set_rng_state(state)
    assert all(np.array_equal(batch[j], built[j]) for j in range(3))
    assert np.array_equal(batch[0], weight.draw(11))
    assert len({row.tobytes() for row in batch}) == 3


def test_grouped_conv_default_takes_the_full_channel_count_as_fan_in():
    """Conv2D(8, 8, 3, groups=4): weight (8, 2, 3, 3), fan_in 18, but the
    default is Normal(0, sqrt(2 / (8 * 9))) (conv.py _get_default_param_initializer)."""
    import initcheck
    from initcheck.frameworks.paddle_nn import paddle, seeded
    from paddle.utils import unique_name

    def grouped(shape, seed):
        with seeded("cpu", seed), unique_name.guard():
            return paddle.nn.Conv2D(8, 8, 3, groups=4).weight.numpy()

    documented = initcheck.verify(grouped, initcheck.Normal(0.0, math.sqrt(2.0 / 72)), shape=(8, 2, 3, 3),
                                  samples=20_000)
    he_on_the_weight = initcheck.verify(grouped, initcheck.Normal(0.0, math.sqrt(2.0 / 18)), shape=(8, 2, 3, 3),
                                        samples=20_000)
    assert documented.verdict == "PASS" and he_on_the_weight.verdict == "FAIL"


def test_draws_are_reproducible_by_seed_and_independent(paddle_framework):
    xavier, normal = plans(paddle_framework, [SCHEMES[0], SCHEMES[6]])
    for plan in (xavier, normal):
        first = plan.draw(5).copy()
        assert np.array_equal(first, plan.draw(5))
        assert not np.array_equal(first, plan.draw(6))
        batch = plan.draw_batch(5, 8).copy()
        assert np.array_equal(batch, plan.draw_batch(5, 8))
        assert len({row.tobytes() for row in batch}) == 8
    assert np.array_equal(xavier.draw_batch(5, 8)[0], xavier.draw(5))  # a batch is real calls in a row


def test_a_row_leaves_the_callers_paddle_state_as_it_was(paddle_framework):
    from initcheck.frameworks.paddle_nn import paddle

    program = paddle.static.default_main_program()
    paddle.seed(2024)
    expected = paddle.rand([4]).numpy()
    paddle.seed(2024)
    program.random_seed = 77  # initializers would read it: a row zeroes it for the duration
    try:
        cases = [SCHEMES[0], SCHEMES[6], SCHEMES[8]]
        check_rows(plans(paddle_framework, cases), samples=5_000)
        check_rows([plan for _, plan in paddle_framework.default_rows(CONV, "cpu", "float16")], samples=5_000)
        assert program.random_seed == 77
        assert paddle.get_default_dtype() == "float32"
        assert np.array_equal(paddle.rand([4]).numpy(), expected)
    finally:
        program.random_seed = 0


def test_importing_the_adapter_leaves_the_process_as_it_was():
    script = (
        "import json, logging, os, random, numpy as np\n"
        "snap = lambda: [dict(os.environ), repr(random.getstate()), np.random.get_state()[1].tolist(),"
        " [repr(h) for h in logging.getLogger().handlers], logging.getLogger().level]\n"
        "before = snap()\n"
        "import initcheck.frameworks.paddle_nn\n"
        "print(json.dumps(before == snap()))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OMP_NUM_THREADS", "CUSTOM_DEVICE_ROOT")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is True
    assert done.stderr == ""  # the ccache warning and native logs are silenced during the import


def test_cuda_on_a_cpu_build_is_one_line_and_exit_2(cli):
    from initcheck.frameworks.paddle_nn import paddle

    if paddle.is_compiled_with_cuda():
        pytest.skip("paddle is compiled with CUDA")
    code, out, err = cli("xavier", "-f", "paddle", "--device", "cuda:0", "--shape", "5,2", "-n", "1000")
    assert code == 2
    assert err.strip().count("\n") == 0 and "paddle.is_compiled_with_cuda() is False" in err


def test_a_shape_the_scheme_cannot_fill_is_one_line_and_exit_2(cli):
    code, out, err = cli("dirac", "-f", "paddle", "--shape", "5,2", "-n", "1000")
    assert code == 2 and err.strip().count("\n") == 0 and "dirac" in err


def test_the_fans_command_shows_paddles_layout(cli):
    code, out, err = cli("fans", "-f", "paddle", "--shape", "5,2", "--shape", "64,32,3,3")
    assert code == 0, err
    assert "(2, 5)" in out and "(64, 32, 3, 3)" in out and "288, 576" in out and "✗" not in out


# -- make calibrate ---------------------------------------------------------------------------------------

#: Every scheme at the default N = 1e7, on layers whose draws stay fast.
CALIBRATION = [
    (InitSpec("xavier", dist="normal"), Layer.from_shape((256, 784))),
    (InitSpec("xavier", dist="uniform"), Layer.from_shape((64, 32, 3, 3))),
    (InitSpec("kaiming", dist="normal", mode="fan_out"), Layer.from_shape((64, 32, 3, 3))),
    (InitSpec("kaiming", dist="uniform", nonlinearity="leaky_relu", slope=0.1), Layer.from_shape((256, 784))),
    (InitSpec("trunc-normal", mean=0.2, std=1.0, low=-1.5, high=2.0), Layer.from_shape((256, 784))),
    (InitSpec("normal", mean=0.0, std=0.02), Layer.from_shape((256, 784))),
    (InitSpec("uniform", low=-0.5, high=0.5), Layer.from_shape((256, 784))),
    (InitSpec("orthogonal", gain=1.5), Layer.from_shape((256, 784))),
    (InitSpec("dirac", groups=2), Layer.from_shape((64, 32, 3, 3))),
    (InitSpec("constant", value=-0.25), Layer.from_shape((256, 784))),
]


@pytest.mark.calibration
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibration_every_scheme_at_the_default_n(paddle_framework, seed):
    results = check_rows(plans(paddle_framework, CALIBRATION), samples=10_000_000, seed=seed)
    assert [r.verdict for r in results] == ["PASS"] * len(CALIBRATION), \
        [(r.api, [c.name for c in r.checks if not c.passed]) for r in results if r.verdict != "PASS"]


@pytest.mark.calibration
@pytest.mark.parametrize("seed", [0, 1])
def test_calibration_small_draws_in_batches_at_the_default_n(paddle_framework, seed):
    """(2, 5): a million real calls (xavier) and a million draws in one call (normal)."""
    cases = [(InitSpec("xavier", dist="normal"), DENSE), (InitSpec("normal", std=1.0), DENSE)]
    results = check_rows(plans(paddle_framework, cases), samples=10_000_000, seed=seed)
    assert [r.verdict for r in results] == ["PASS", "PASS"]


@pytest.mark.calibration
@pytest.mark.parametrize("seed", [0, 1])
def test_calibration_layer_defaults_at_the_default_n(paddle_framework, seed):
    rows = [plan for layer in (Layer.from_shape((256, 784)), Layer.from_shape((128, 64, 3, 3)))
            for _, plan in paddle_framework.default_rows(layer, "cpu", "float32")]
    results = check_rows(rows, samples=10_000_000, seed=seed)
    assert [r.verdict for r in results] == ["PASS"] * 4


# -- initcheck model ---------------------------------------------------------------------------------------

def _every_layer():
    from initcheck.frameworks.paddle_nn import paddle

    nn = paddle.nn

    class EveryLayer(nn.Layer):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 6, padding_idx=-1)
            self.grouped = nn.Conv1D(6, 8, 3, groups=2)
            self.up = nn.Conv1DTranspose(8, 4, 3)
            self.norm = nn.LayerNorm(4)
            self.bn = nn.BatchNorm1D(4)
            self.gru = nn.GRU(4, 16)
            self.head = nn.Linear(16, 5)
            self.act = nn.PReLU()

    assert paddle.get_default_dtype() == "float32"
    return EveryLayer()


def test_a_paddle_model_passes_its_layer_defaults():
    import initcheck
    from initcheck.frameworks.paddle_nn import paddle

    names_before = paddle.utils.unique_name.generate("linear")
    result = initcheck.verify_model(_every_layer, samples=1_000)
    assert result.framework == "paddle" and result.verdict == "PASS", str(result)
    by_name = {row.layer: row for row in result}
    assert {"embed.weight", "grouped.weight", "up.weight", "bn._variance", "gru.weight_ih_l0", "head.weight",
            "act._weight"} <= set(by_name)
    assert by_name["grouped.weight"].law == Normal(0.0, math.sqrt(2.0 / 18))  # in_channels 6, not 6 / 2
    assert by_name["head.weight"].law == Uniform(-math.sqrt(6.0 / 21), math.sqrt(6.0 / 21))
    assert any(tied.startswith("gru.0.cell.") for tied, _ in result.tied)
    # the instances took their names from a fresh generator: the caller's counter moved by one, its own
    assert paddle.utils.unique_name.generate("linear") == f"linear_{int(names_before.split('_')[1]) + 1}"


def test_a_reinitialized_paddle_weight_fails_its_default():
    import initcheck
    from initcheck.frameworks.paddle_nn import paddle

    nn = paddle.nn

    def reinitialized():
        return nn.Linear(16, 16, weight_attr=paddle.ParamAttr(initializer=nn.initializer.Normal(0.0, 1.0)))

    result = initcheck.verify_model(reinitialized, samples=3_000)
    assert [(row.layer, row.verdict) for row in result] == [("weight", "FAIL"), ("bias", "PASS")]


def test_rules_on_a_paddle_model_are_one_line_until_its_layout_is_known():
    import initcheck
    from initcheck.errors import InputError
    from initcheck.frameworks.paddle_nn import paddle

    with pytest.raises(InputError, match="unknown layout 'paddle'"):
        initcheck.verify_model(lambda: paddle.nn.Linear(4, 4), rules=[{"match": "*", "scheme": "zeros"}], samples=100)


@pytest.mark.calibration
def test_paddle_imported_after_tensorflow_runs_and_so_does_tensorflow():
    """Paddle 3.3.1's libpaddle loaded after TensorFlow dies of a segmentation
    fault unless it binds its own symbols first (paddle_nn._import)."""
    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from helpers import check_rows\n"
        "from initcheck import frameworks\n"
        "from initcheck.layers import Layer\n"
        "from initcheck.schemes import InitSpec\n"
        "keras, paddle = frameworks.resolve('keras,paddle')\n"
        "layer = Layer.from_shape((24, 16))\n"
        "plans = [f.plan(InitSpec(s), layer, 'cpu', 'float32') for f in (paddle, keras) for s in ('orthogonal',)]\n"
        "plans += [paddle.plan(InitSpec('xavier', dist='uniform'), layer, 'cpu', 'float32')]\n"
        "print([r.verdict for r in check_rows(plans, samples=20_000)])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['PASS', 'PASS', 'PASS']"
