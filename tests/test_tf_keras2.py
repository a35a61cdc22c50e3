"""Legacy Keras 2 (``tf_keras``): stateless initializers, so each draw is a
fresh initializer seeded with the draw's own seed; batches are those very
calls, traced into one ``tf.function``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import check_rows, failed
from initcheck.frameworks.base import Plan, Skip
from initcheck.layers import Layer
from initcheck.schemes import InitSpec

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tf_keras") is None, reason="needs tf_keras")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def adapter():
    from initcheck.frameworks import load

    return load("tf-keras")


def passes(row, samples=200_000, seed=3):
    assert isinstance(row, Plan), row
    return failed(check_rows([row], samples=samples, seed=seed)[0])


def test_batch_is_fresh_initializers_with_their_own_seeds(adapter):
    import tf_keras

    from initcheck.frameworks.keras2 import draw_seeds

    row = adapter.plan(InitSpec("xavier", "normal"), Layer(5, 2), "cpu", "float32")
    draws = 149  # 10 steps of the loop, more than TensorFlow may run at once, the last one short
    batch = np.asarray(row.draw_batch(123, draws))
    fresh = np.stack([np.asarray(tf_keras.initializers.GlorotNormal(seed=int(s))((5, 2))) for s in draw_seeds(123, draws)])
    np.testing.assert_array_equal(batch, fresh)
    assert len({draw.tobytes() for draw in batch}) == draws
    np.testing.assert_array_equal(np.asarray(row.draw(5)), np.asarray(row.draw(5)))
    assert not np.array_equal(np.asarray(row.draw(5)), np.asarray(row.draw(6)))


def test_an_unseeded_initializer_repeats_itself():
    """Why every draw is a fresh seeded initializer: tf_keras' are stateless."""
    import tf_keras

    initializer = tf_keras.initializers.GlorotUniform()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(np.asarray(initializer((3, 3))), np.asarray(initializer((3, 3))))


@pytest.mark.parametrize("scheme,dist,extra", [("xavier", "normal", {}), ("kaiming", "uniform", {}),
                                               ("orthogonal", None, {}), ("eye", None, {})])
def test_schemes_pass_at_small_n(adapter, scheme, dist, extra):
    spec = InitSpec(scheme, dist, **extra) if dist else InitSpec(scheme, **extra)
    assert passes(adapter.plan(spec, Layer(64, 32), "cpu", "float32")) == set()


def test_default_rows_pass_and_the_kernel_batch_is_real_layers(adapter):
    rows = dict(adapter.default_rows(Layer(6, 4), "cpu", "float32"))
    assert rows["kernel"].api == "tf_keras.layers.Dense(4).kernel"
    for row in rows.values():
        assert passes(row, samples=50_000) == set()
    assert rows["kernel"].draw_batch.faithful is True


def test_fans_are_tf_keras_compute_fans(adapter):
    from tf_keras.src.initializers.initializers import _compute_fans

    for layer in (Layer(5, 2), Layer(3, 7, (2, 3)), Layer(4, 6, (3,))):
        assert adapter.fans(layer) == _compute_fans(layer.shape("keras")) == (layer.fan_in, layer.fan_out)


def test_skips(adapter):
    sparse = adapter.plan(InitSpec("sparse", sparsity=0.5), Layer(8, 8), "cpu", "float32")
    assert isinstance(sparse, Skip) and "tf_keras.initializers has no sparse" in sparse.reason
    found = adapter.plan(InitSpec("orthogonal"), Layer(8, 8), "cpu", "bfloat16")
    assert isinstance(found, Skip) and "raises on bfloat16" in found.reason


@pytest.mark.calibration  # a fresh process importing TensorFlow: about 9 s
def test_import_leaves_the_process_as_it_was():
    script = """
        import json, os, random, sys
        import numpy as np
        random.seed(5); np.random.seed(6)
        before = (random.getstate(), np.random.get_state()[1].tolist(), dict(os.environ))
        from initcheck.frameworks import load
        from initcheck.layers import Layer
        fw = load("tf-keras")
        rows = dict(fw.default_rows(Layer(3, 2), "cpu", "float32"))
        rows["kernel"].draw(1)
        after = (random.getstate(), np.random.get_state()[1].tolist(), dict(os.environ))
        changed = sorted(k for k in set(before[2]) | set(after[2]) if before[2].get(k) != after[2].get(k))
        print(json.dumps({"rng": before[:2] == after[:2], "changed": changed}))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={k: v for k, v in os.environ.items()
                                                      if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["rng"]
    # what TensorFlow's import itself sets and reads later (as with the keras adapter)
    assert not {"KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL"} & set(seen["changed"]), seen["changed"]


ALL = [("xavier", "normal", {}), ("xavier", "uniform", {}), ("kaiming", "normal", {}), ("kaiming", "uniform", {}),
       ("lecun", "normal", {}), ("lecun", "uniform", {}),
       ("variance-scaling", "normal", {"scale": 0.5, "mode": "fan_out"}),
       ("variance-scaling", "normal", {"scale": 2.0, "mode": "fan_in"}),
       ("normal", None, {"mean": 0.5, "std": 0.1}), ("uniform", None, {"low": -0.3, "high": 0.7}),
       ("trunc-normal", None, {"mean": 0.0, "std": 0.2, "low": -0.4, "high": 0.4}),
       ("orthogonal", None, {}), ("eye", None, {}), ("constant", None, {"value": 0.3}), ("zeros", None, {}),
       ("ones", None, {})]


@pytest.mark.calibration
@pytest.mark.parametrize("scheme,dist,extra", ALL)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_calibration_every_scheme_at_default_n(adapter, scheme, dist, extra, seed):
    spec = InitSpec(scheme, dist, **extra) if dist else InitSpec(scheme, **extra)
    assert passes(adapter.plan(spec, Layer(256, 784), "cpu", "float32"), samples=10_000_000, seed=seed) == set()
