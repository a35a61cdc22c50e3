"""The Python API (initcheck.verify, verify_all, assert_law) and the pytest plugin."""

from __future__ import annotations

import doctest
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import initcheck
from initcheck import api, policy

SHAPE = (64, 128)
BOUND = 0.05


def uniform_init(shape, seed):
    return np.random.default_rng(seed).uniform(-BOUND, BOUND, shape).astype(np.float32)


def wide_init(shape, seed):  # 2% too wide: a real bug, small enough to hide from a glance
    return np.random.default_rng(seed).uniform(-1.02 * BOUND, 1.02 * BOUND, shape).astype(np.float32)


@pytest.mark.parametrize("module", [api, policy])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_a_correct_function_passes_and_the_result_is_complete():
    result = initcheck.verify(uniform_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=200_000)
    assert result and result.passed and result.verdict == "PASS"
    row = result.result
    assert row.law == initcheck.Uniform(-BOUND, BOUND) and row.summary.count >= 200_000
    statistical = [c for c in result.checks if c.statistical]
    assert {c.name for c in statistical} == {"mean", "variance", "ks", "spikes", "independence", "draws", "positions", "copies"}
    for check in statistical:
        assert 0.0 <= check.pvalue <= 1.0 and check.level > 0 and check.threshold is not None
        assert check.power is not None and check.power_text and check.passed
    with pytest.raises(Exception):  # frozen: a decided check cannot be changed
        result.checks[0].passed = False
    assert str(result).splitlines()[1].startswith("PASS custom")


def test_a_wrong_function_fails_with_the_table_in_words():
    result = initcheck.verify(wide_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=10**6)
    assert not result and result.verdict == "FAIL"
    text = str(result.result)
    assert "FAIL custom" in text and "support" in text and "KS D / crit" in text and "Holm level" in text


def test_verify_all_is_one_holm_family():
    one = initcheck.verify(uniform_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=100_000)
    checks = [initcheck.Check(uniform_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE),
              initcheck.Check(initcheck.xavier("normal"), framework="reference", fan_in=128, fan_out=64)]
    both = initcheck.verify_all(checks, samples=100_000)
    assert len(both) == 2 and both.passed
    smallest = lambda v: min(c.level for r in v for c in r.checks if c.statistical)  # noqa: E731
    assert smallest(both) == pytest.approx(smallest(one) / 2)  # twice the checks, half the first Holm level
    assert both[0].summary.count == one.summary.count  # a row's numbers do not depend on its neighbours
    assert np.array_equal(both[0].summary.hist, one.summary.hist)


def test_the_same_call_gives_the_same_numbers():
    first = initcheck.verify(uniform_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=50_000, seed=3)
    again = initcheck.verify(uniform_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=50_000, seed=3)
    other = initcheck.verify(uniform_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=50_000, seed=4)
    assert np.array_equal(first.summary.sums, again.summary.sums)
    assert not np.array_equal(first.summary.sums, other.summary.sums)


def test_a_function_gets_distinct_32_bit_seeds():
    """Legacy NumPy seeding takes 32 bits only; the draws of a row still get
    distinct seeds (10**4 draws of 32-bit hashes would share one with
    probability about 1%; the bijection makes it impossible)."""
    seen = []

    def legacy(shape, seed):
        seen.append(seed)
        return np.random.RandomState(seed).uniform(-0.5, 0.5, shape)

    result = initcheck.verify(legacy, initcheck.Uniform(-0.5, 0.5), shape=(2, 5), samples=10**5)
    assert result, str(result)
    draws = seen[1:]  # the first call is the probe, seed 0
    assert len(draws) == 10**4 and len(set(draws)) == len(draws)
    assert all(0 <= seed < 2**32 for seed in draws)


def test_mix32_is_a_bijection_on_a_window():
    from initcheck.sampling import draw_seed, mix32

    assert len({mix32(x) for x in range(2**16)}) == 2**16
    assert len({draw_seed(3, "row", i, bits=32) for i in range(2**16)}) == 2**16


def test_a_scheme_as_the_expected_law_takes_the_fans_of_the_shape():
    def xavier_uniform(shape, seed):
        bound = np.sqrt(6.0 / (shape[0] + shape[1]))
        return np.random.default_rng(seed).uniform(-bound, bound, shape)

    result = initcheck.verify(xavier_uniform, initcheck.xavier("uniform"), shape=(256, 784), samples=200_000)
    assert result.passed
    assert result.law.high == pytest.approx(np.sqrt(6.0 / (256 + 784)))
    assert "fan_in 784, fan_out 256" in result.result.layer


def test_a_framework_scheme_row():
    result = initcheck.verify(initcheck.kaiming("normal", nonlinearity="relu"), framework="torch",
                              shape=(32, 16, 3, 3), samples=100_000)
    assert result.passed, str(result)
    assert result.law.sigma == pytest.approx(np.sqrt(2.0 / (16 * 9)))
    assert result.result.api.startswith("torch.nn.init.kaiming_normal_")


def test_assert_law_raises_assertion_error_with_the_row():
    with pytest.raises(AssertionError, match="FAIL custom"):
        initcheck.assert_law(wide_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=10**6)
    assert initcheck.assert_law(uniform_init, initcheck.Uniform(-BOUND, BOUND), shape=SHAPE, samples=10**5)


def test_every_row_skipped_is_not_a_pass():
    result = initcheck.verify(initcheck.lecun("normal"), framework="torch", fan_in=10, fan_out=10, samples=10**4)
    assert result.verdict == "SKIP" and not result
    assert "nothing was checked" in api.failure_message(result)


@pytest.mark.parametrize("call, message", [
    (lambda: initcheck.verify(lambda shape: 0, initcheck.Normal(0, 1), shape=(3, 3)), "must take (shape, seed)"),
    (lambda: initcheck.verify(uniform_init, 0.05, shape=(3, 3)), "expected must be a law"),
    (lambda: initcheck.verify(uniform_init, None, shape=(3, 3)), "needs expected="),
    (lambda: initcheck.verify(42, initcheck.Normal(0, 1), shape=(3, 3)), "target must be"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1)), "needs shape="),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(0, 3)), "positive integers"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape="3,3"), "positive integers"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=9), "positive integers"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(3, True)), "positive integers"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), fan_in=3.0, fan_out=3), "fan_in"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(2**20, 2**20)), "at most"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(3, 3), samples=10), "samples"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(3, 3), samples=1500.5), "whole"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(3, 3), alpha=2), "alpha"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(3, 3), seed=-1), "seed"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(3, 3), dtype="int8"), "dtype"),
    (lambda: initcheck.verify(uniform_init, initcheck.Normal(0, 1), shape=(3, 3), device="tpu"), "device"),
    (lambda: initcheck.verify(initcheck.xavier("normal"), fan_in=3, fan_out=3), "framework="),
    (lambda: initcheck.verify(initcheck.xavier("normal"), framework="caffe", fan_in=3, fan_out=3), "unknown framework"),
    (lambda: initcheck.verify(initcheck.xavier("normal"), framework="reference"), "fans are needed"),
    (lambda: initcheck.verify(initcheck.xavier("cauchy"), framework="reference", fan_in=3, fan_out=3), "distribution"),
    (lambda: initcheck.verify("no_such_file.py:f", initcheck.Normal(0, 1), shape=(3, 3)), "does not exist"),
    (lambda: initcheck.verify_all([42]), "Check objects"),
])
def test_bad_input_is_one_input_error(call, message):
    with pytest.raises(initcheck.InputError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_numpy_integers_are_integers():
    """Shapes, fans, samples and seeds taken from NumPy arrays work as Python's ints do."""
    shape = np.array(SHAPE)
    law = initcheck.Uniform(-BOUND, BOUND)
    by_numpy = initcheck.verify(uniform_init, law, shape=shape, samples=np.int64(10**5), seed=np.uint8(3))
    by_python = initcheck.verify(uniform_init, law, shape=SHAPE, samples=10**5, seed=3)
    assert by_numpy.verdict == by_python.verdict == "PASS"
    assert by_numpy[0].summary.sums.tolist() == by_python[0].summary.sums.tolist()
    fans = [initcheck.verify(initcheck.xavier("uniform"), framework="reference", fan_in=fan_in, fan_out=fan_out,
                             samples=10**4).law for fan_in, fan_out in ((np.int32(128), np.int64(64)), (128, 64))]
    assert fans[0] == fans[1]


def test_a_function_that_raises_is_an_input_error():
    def broken(shape, seed):
        raise RuntimeError("no weights today")

    with pytest.raises(initcheck.InputError, match="raised RuntimeError"):
        initcheck.verify(broken, initcheck.Normal(0, 1), shape=(3, 3), samples=10**4)


def test_importing_and_running_leaves_the_process_alone():
    """No framework imported by `import initcheck`, no global generator touched by a row."""
    code = textwrap.dedent("""
        import random, sys
        import numpy as np
        random.seed(1); np.random.seed(1)
        state, np_state = random.getstate(), np.random.get_state()
        import initcheck
        assert not {"torch", "jax", "tensorflow", "keras"} & set(sys.modules), sorted(sys.modules)
        r = initcheck.verify(initcheck.xavier("uniform"), framework="reference", fan_in=8, fan_out=8, samples=10**4)
        assert r.passed
        assert random.getstate() == state
        after = np.random.get_state()
        assert after[0] == np_state[0] and (after[1] == np_state[1]).all() and after[2:] == np_state[2:]
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


PLUGIN_TESTS = '''
import numpy as np
import initcheck


def good(shape, seed):
    return np.random.default_rng(seed).normal(0.0, 0.02, shape)


def halved(shape, seed):
    return np.random.default_rng(seed).normal(0.0, 0.01, shape)


def test_good(initcheck_assert):
    result = initcheck_assert(good, initcheck.Normal(0.0, 0.02), shape=(64, 64))
    assert result.result.summary.count >= 20_000


def test_halved(initcheck_assert):
    initcheck_assert(halved, initcheck.Normal(0.0, 0.02), shape=(64, 64))
'''


def test_pytest_plugin_in_a_subprocess(tmp_path):
    """The plugin is found through its entry point; one test passes, one fails with the row."""
    (tmp_path / "test_inits.py").write_text(PLUGIN_TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--initcheck-samples", "2e4",
         str(tmp_path / "test_inits.py")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "1 failed, 1 passed" in out
    assert "FAIL custom | expect N(0, σ=0.02) | shape (64, 64)" in out
    assert "below the law's" in out and "Holm level" in out
    assert "Traceback" not in out  # the row, not initcheck's internals
