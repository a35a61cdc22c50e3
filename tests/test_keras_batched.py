"""Keras in batches: each draw still the real initializer on the layer's shape,
and the caller's process left as it was.

A batch (``Plan.draw_batch``) is a loop of real initializer calls with one
seed pair each; these tests hold it to what Keras itself gives (call j of the
initializer seeded with a ``keras.random.SeedGenerator``; the j-th of a run of
unseeded layers), to the law and fans of the layer, and to independence
between the draws.  The hygiene tests import the adapter in a fresh process,
where its import-time effects are visible.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import check_rows
from initcheck import frameworks
from initcheck.errors import InputError
from initcheck.laws import TRUNCATION_CORRECTION
from initcheck.layers import Layer
from initcheck.schemes import InitSpec

pytestmark = pytest.mark.skipif(not frameworks.installed("keras"), reason="needs tensorflow/keras")

N = 100_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def adapter():
    from initcheck.frameworks import tf_keras

    return tf_keras


@pytest.fixture(scope="module")
def keras_fw(adapter):
    return adapter.Keras()


def plan(keras_fw, scheme, dist, layer):
    found = keras_fw.plan(InitSpec(scheme, dist), layer, "cpu", "float32")
    assert found.draw_batch is not None
    return found


# --------------------------------------------------------------------------- faithful to Keras


def test_batch_is_call_j_of_a_seed_generator(keras_fw):
    """Draw j of a batch is bit for bit the j-th call of GlorotNormal(seed=SeedGenerator(a))."""
    import keras

    seed = 2**40 + 12345
    row = plan(keras_fw, "xavier", "normal", Layer(5, 2))
    draws = 149  # 10 steps of the loop, more than TensorFlow may run at once (PARALLEL_STEPS), the last one short
    batch = np.asarray(row.draw_batch(seed, draws))
    assert batch.shape == (draws, 5, 2)
    initializer = keras.initializers.GlorotNormal(seed=keras.random.SeedGenerator(seed % (2**31 - 1)))
    calls = np.stack([np.asarray(initializer((5, 2), dtype="float32")) for _ in range(draws)])
    np.testing.assert_array_equal(batch, calls)
    # a single draw is the batch's first: the initializer with the integer seed
    np.testing.assert_array_equal(np.asarray(row.draw(seed)), batch[0])


def test_batch_reproducible_and_its_draws_differ(keras_fw):
    row = plan(keras_fw, "kaiming", "uniform", Layer(1, 1, (3, 3)))
    first, again, other = (np.asarray(row.draw_batch(s, 40)) for s in (7, 7, 8))
    assert first.shape == (40, 3, 3, 1, 1)
    np.testing.assert_array_equal(first, again)
    flat = first.reshape(40, -1)
    assert len({draw.tobytes() for draw in flat}) == 40  # no two draws of a batch alike
    assert not np.array_equal(first, other)
    # neighbouring draws uncorrelated (9 values each, 40 draws: a loose bound)
    assert abs(np.corrcoef(flat[:-1].ravel(), flat[1:].ravel())[0, 1]) < 0.35


def test_uniform_batch_has_the_layers_fans(keras_fw):
    """(5, 2): fan_in 5, fan_out 2, GlorotUniform bound sqrt(6 / 7) (not that of one big tensor)."""
    x = np.asarray(plan(keras_fw, "xavier", "uniform", Layer(5, 2)).draw_batch(3, N // 10), dtype=np.float64)
    bound = math.sqrt(6.0 / 7.0)
    assert np.abs(x).max() <= bound
    assert np.abs(x).max() > 0.999 * bound
    assert x.std() == pytest.approx(bound / math.sqrt(3.0), rel=0.01)


def test_normal_batch_is_cut_at_two_sigma(keras_fw):
    """GlorotNormal on (5, 2): sigma = sqrt(2 / 7) / 0.8796, cut at 2 sigma, std sqrt(2 / 7)."""
    x = np.asarray(plan(keras_fw, "xavier", "normal", Layer(5, 2)).draw_batch(4, N // 10), dtype=np.float64)
    sigma = math.sqrt(2.0 / 7.0) / TRUNCATION_CORRECTION
    assert np.abs(x).max() <= 2.0 * sigma * (1 + 1e-6)
    assert np.abs(x).max() > 1.99 * sigma
    assert x.std() == pytest.approx(math.sqrt(2.0 / 7.0), rel=0.01)


@pytest.mark.parametrize("dist", ["normal", "uniform"])
@pytest.mark.parametrize("layer", [Layer(5, 2), Layer(1, 1, (3, 3)), Layer(64, 1)], ids=["dense5x2", "conv3x3", "dense64"])
def test_batched_rows_pass_their_law(keras_fw, dist, layer):
    """Through the sampler (which batches these small draws) every check passes."""
    (result,) = check_rows([plan(keras_fw, "xavier", dist, layer)], samples=N)
    assert result.verdict == "PASS", result.reason


@pytest.mark.parametrize("layer, make, input_shape", [
    (Layer(5, 2), lambda keras: keras.layers.Dense(2), (None, 5)),
    (Layer(1, 3, (3, 3)), lambda keras: keras.layers.Conv2D(3, (3, 3)), (None, None, None, 1)),
], ids=["Dense", "Conv2D"])
def test_default_kernel_batch_is_a_run_of_real_layers(keras_fw, layer, make, input_shape):
    """Draw j is the kernel of the j-th unseeded layer built after random.seed(seed)."""
    import keras

    (_, kernel), (_, bias) = keras_fw.default_rows(layer, "cpu", "float32")
    seed = 991
    batch = np.asarray(kernel.draw_batch(seed, 5))
    saved = random.getstate()
    try:
        random.seed(seed)
        built = []
        for _ in range(5):
            real = make(keras)
            real.build(input_shape)
            built.append(np.asarray(real.kernel))
    finally:
        random.setstate(saved)
    np.testing.assert_array_equal(batch, np.stack(built))
    assert kernel.draw_batch.faithful is True
    np.testing.assert_array_equal(np.asarray(kernel.draw(seed)), batch[0])
    np.testing.assert_array_equal(np.asarray(bias.draw(seed)), np.zeros(layer.out_features, np.float32))


def test_default_rows_pass(keras_fw):
    rows = [p for _, p in keras_fw.default_rows(Layer(5, 2), "cpu", "float32")]
    kernel, bias = check_rows(rows, samples=N)
    assert kernel.verdict == "PASS", kernel.reason
    assert bias.verdict == "PASS", bias.reason


def test_rows_leave_the_callers_state(keras_fw):
    """In this process too: a batched row and a default row touch no global RNG
    and no Keras name counter."""
    from keras.src.backend.common import global_state

    names = dict(global_state.get_global_attribute("object_name_uids") or {})
    py_state, np_state = random.getstate(), np.random.get_state()
    check_rows([plan(keras_fw, "kaiming", "normal", Layer(5, 2))], samples=N)
    check_rows([p for _, p in keras_fw.default_rows(Layer(3, 4, (3,)), "cpu", "float32")], samples=N)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    assert dict(global_state.get_global_attribute("object_name_uids") or {}) == names


# --------------------------------------------------------------------------- a fresh process


def _fresh(script: str, env: dict | None = None) -> dict:
    """Run ``script`` in a new interpreter; it prints one JSON object last."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.path.join(ROOT, "tests"), full_env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=full_env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.calibration  # a fresh process importing TensorFlow and drawing: 15-25 s
def test_import_and_rows_leave_a_fresh_process_as_it_was():
    script = """
        import json, logging, os, random, sys
        import numpy as np

        random.seed(5); np.random.seed(6)
        def state():
            return dict(env=dict(os.environ), py=repr(random.getstate()), np=repr(np.random.get_state()),
                        fd2=list(os.fstat(2))[1:3])
        before = state()
        from initcheck.frameworks import tf_keras
        imported = state()
        import tensorflow as tf
        logger = tf.get_logger()
        level, filters = logger.level, list(logger.filters)
        from helpers import check_rows
        from initcheck.layers import Layer
        from initcheck.schemes import InitSpec
        keras_fw = tf_keras.Keras()
        row = keras_fw.plan(InitSpec("xavier", "uniform"), Layer(5, 2), "cpu", "float32")
        defaults = [p for _, p in keras_fw.default_rows(Layer(5, 2), "cpu", "float32")]
        verdicts = [r.verdict for r in check_rows([row, *defaults], samples=100_000)]
        after = state()
        print(json.dumps(dict(
            before=before, imported=imported, after=after, verdicts=verdicts,
            fd2_is_devnull=os.path.samefile("/proc/self/fd/2", os.devnull) if os.path.exists("/proc/self/fd/2") else False,
            logger=[logger.level == level, logger.filters == filters],
            backend=tf_keras.keras.backend.backend(),
        )))
    """
    got = _fresh(script)
    # what a bare `import tensorflow` sets itself (TF2_BEHAVIOR, ...) it reads later: that may stay
    bare = _fresh("""
        import json, os
        before = dict(os.environ)
        import tensorflow
        print(json.dumps(sorted(k for k, v in os.environ.items() if before.get(k) != v)))
    """)
    own = set(bare) - {"KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL"}
    assert got["verdicts"] == ["PASS", "PASS", "PASS"]
    assert got["backend"] == "tensorflow"
    for stage in ("imported", "after"):
        env, was = got[stage]["env"], got["before"]["env"]
        changed = {k for k in set(env) | set(was) if env.get(k) != was.get(k)}
        assert changed <= own, (stage, changed - own)
        assert "KERAS_BACKEND" not in env and "TF_CPP_MIN_LOG_LEVEL" not in env, stage
        assert got[stage]["py"] == got["before"]["py"], stage
        assert got[stage]["np"] == got["before"]["np"], stage
        assert got[stage]["fd2"] == got["before"]["fd2"], stage
    assert not got["fd2_is_devnull"]
    assert got["logger"] == [True, True]


def test_callers_settings_are_kept_and_another_backend_is_an_input_error():
    """KERAS_BACKEND and TF_CPP_MIN_LOG_LEVEL of the caller stay; keras already
    imported with jax makes the Keras rows a one-line InputError."""
    pytest.importorskip("jax")
    script = """
        import json, os
        import keras
        from initcheck.errors import InputError
        from initcheck.frameworks import tf_keras
        from initcheck.layers import Layer
        from initcheck.schemes import InitSpec
        messages = []
        keras_fw = tf_keras.Keras()
        for call in (lambda: keras_fw.check_device("cpu"),
                     lambda: keras_fw.plan(InitSpec("xavier", "normal"), Layer(5, 2), "cpu", "float32"),
                     lambda: keras_fw.default_rows(Layer(5, 2), "cpu", "float32")):
            try:
                call()
                messages.append(None)
            except InputError as error:
                messages.append(str(error))
        print(json.dumps(dict(messages=messages, backend=os.environ.get("KERAS_BACKEND"),
                              level=os.environ.get("TF_CPP_MIN_LOG_LEVEL"))))
    """
    got = _fresh(script, {"KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "1"})
    assert got["backend"] == "jax" and got["level"] == "1"
    for message in got["messages"]:
        assert message == "keras is already imported with the jax backend; the keras framework needs tensorflow"


def test_input_error_is_what_the_rows_raise(adapter, monkeypatch):
    monkeypatch.setattr(adapter, "_BACKEND_PROBLEM", "keras is already imported with the jax backend; needs tensorflow")
    with pytest.raises(InputError, match="jax backend"):
        adapter.Keras().check_device("cpu")
