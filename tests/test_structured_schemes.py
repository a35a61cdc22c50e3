"""Structured schemes (orthogonal, sparse, eye, dirac, delta-orthogonal,
constants): their laws, their per-draw checks, the real initializers passing
and planted bugs failing for the right reason.

Every statistical outcome is decided at the default family-wise alpha of 1e-6,
so a correct initializer fails a run with probability at most 1e-6; the planted
bugs fail by many orders of magnitude (or deterministically).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import initcheck
from initcheck.checks import evaluate
from initcheck.draw_checks import (
    DiagonalSigns,
    Exact,
    Orthogonal,
    ZerosPerColumn,
    host_batch,
    matrix_view,
    orthogonality_tolerance,
    value_dtype,
)
from initcheck.errors import InputError
from initcheck.grid import Grid
from initcheck.laws import Constant, Exact as ExactLaw, Normal, OrthogonalEntry, Uniform, ZeroInflated
from initcheck.schemes import InitSpec
from initcheck.structured import expectation, sample

SMALL = 200_000


def checks_of(result) -> dict:
    return {c.name: c for c in result.results[0].checks}


def failed(result) -> set[str]:
    return {c.name for c in result.results[0].checks if not c.passed}


# --- laws -------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 10, 784])
def test_orthogonal_entry_moments_and_cdf(m):
    law = OrthogonalEntry(1.5, m)
    x = law.sample(np.random.default_rng(0), 400_000)
    assert law.variance == pytest.approx(1.5**2 / m)
    assert law.fourth_moment == pytest.approx(3 * 1.5**4 / (m * (m + 2)))
    assert np.mean(x**2) == pytest.approx(law.variance, rel=0.02)
    assert np.mean(x**4) == pytest.approx(law.fourth_moment, rel=0.05)
    assert law.support == (-1.5, 1.5)
    assert float(law.cdf(0.0)) == pytest.approx(0.5)
    for q in (-0.3, 0.1, 0.5):  # the CDF is the sample's
        point = q * 1.5 * (1 if m < 10 else 3 / math.sqrt(m))
        assert float(law.cdf(point)) == pytest.approx(np.mean(x <= point), abs=0.004)


def test_orthogonal_entry_is_a_coordinate_of_a_uniform_unit_vector():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((100_000, 5))
    first = v[:, 0] / np.linalg.norm(v, axis=1)
    law = OrthogonalEntry(1.0, 5)
    for point in (-0.7, -0.2, 0.4):
        assert float(law.cdf(point)) == pytest.approx(np.mean(first <= point), abs=0.005)


def test_zero_inflated_moments_and_atom():
    law = ZeroInflated(0.25, Normal(0.0, 0.02))
    assert law.mean == 0.0
    assert law.variance == pytest.approx(0.75 * 0.02**2)
    assert law.fourth_moment == pytest.approx(0.75 * 3 * 0.02**4)
    assert float(law.cdf(0.0)) - float(law.cdf(-1e-300)) == pytest.approx(0.25)
    assert law.atoms == (0.0,)
    assert "copies" in law.untested
    with pytest.raises(ValueError):
        ZeroInflated(0.5, Uniform(0.0, 1.0))


@pytest.mark.parametrize("p0", [10 / 256, 0.5, 0.9, 231 / 256])
def test_the_grid_keeps_its_edges_off_the_atom(p0):
    """A dyadic atom mass once put a cell edge on 0 and the zeros in the cell
    below it (the KS and spikes checks then failed a correct sampler)."""
    grid = Grid.for_law(ZeroInflated(p0, Normal(0.0, 0.01)))
    edges = grid.edges()
    cell = int(grid.cell_of(np.array([0.0]))[0])
    assert edges[cell - 1] < 0.0 < edges[cell]


def test_exact_law_gets_only_the_finite_check():
    law = ExactLaw("I 3×3", 1.0, 3, 9)
    assert law.deterministic and law.mean == pytest.approx(1 / 3)
    reducer = __import__("initcheck.reducers", fromlist=["reducer_for"]).reducer_for(np.eye(3), law)
    reducer.fold(np.eye(3))
    assert [c.name for c in evaluate(law, reducer.summary(), np.float64)] == ["finite"]


# --- expectation() ----------------------------------------------------------


def test_expectation_of_every_kind_of_scheme():
    law, factory = expectation(InitSpec("xavier", "normal"), (256, 784))
    assert law == Normal(0.0, math.sqrt(2 / (784 + 256))) and factory is None
    law, factory = expectation(InitSpec("kaiming", "uniform"), (3, 3, 64, 128), "keras")
    assert law == InitSpec("kaiming", "uniform").law(576, 1152) and factory is None
    assert expectation(InitSpec("normal", std=0.1), (7,)) == (Normal(0.0, 0.1), None)
    assert expectation(InitSpec("constant", value=0.5), (7,)) == (Constant(0.5), None)
    assert expectation(InitSpec("zeros"), (4, 4))[0] == Constant(0.0)
    assert expectation(InitSpec("ones"), (4, 4))[0] == Constant(1.0)

    law, factory = expectation(InitSpec("orthogonal", gain=2.0), (128, 64, 3, 3))
    assert law == OrthogonalEntry(2.0, 576)
    assert [c.name for c in factory()] == ["orthogonal", "diagonal signs"]
    assert expectation(InitSpec("orthogonal"), (3, 3, 64, 128), "keras")[0] == OrthogonalEntry(1.0, 576)

    law, factory = expectation(InitSpec("sparse", sparsity=0.9, std=0.02), (256, 784))
    assert law == ZeroInflated(231 / 256, Normal(0.0, 0.02))  # ceil(0.9 * 256) = 231
    assert [c.name for c in factory()] == ["zeros per column"]
    assert expectation(InitSpec("sparse", sparsity=0.9), (784, 256), "keras")[0].zero_mass == 231 / 256
    assert expectation(InitSpec("sparse", sparsity=1.0), (4, 4))[0] == Constant(0.0)
    assert expectation(InitSpec("sparse", sparsity=0.0), (4, 4))[0] == Normal(0.0, 0.01)

    law, factory = expectation(InitSpec("eye", gain=0.5), (5, 7))
    assert law.deterministic and (law.value, law.ones, law.size) == (0.5, 5, 35)
    assert [c.name for c in factory()] == ["exact"]
    law, _ = expectation(InitSpec("dirac", groups=2), (8, 4, 3, 3))
    assert law.deterministic and law.ones == 8

    law, factory = expectation(InitSpec("delta-orthogonal"), (3, 3, 16, 32), "keras")
    assert law == ZeroInflated(8 / 9, OrthogonalEntry(1.0, 32), fixed_zeros=True)
    assert {"positions", "draws", "independence", "copies"} <= set(law.untested)
    assert [c.name for c in factory()] == ["exact", "orthogonal", "diagonal signs"]


def test_each_call_of_the_factory_gives_fresh_checks():
    _, factory = expectation(InitSpec("orthogonal"), (4, 4))
    first, second = factory(), factory()
    first[0].observe(np.full((1, 4, 4), 3.0), 1)
    assert not first[0].result().passed
    assert second[0].draws == 0


@pytest.mark.parametrize("spec, shape, message", [
    (InitSpec("orthogonal"), (10,), "at least 2 dimensions"),
    (InitSpec("sparse", sparsity=0.5), (4, 4, 3), "2-d weight"),
    (InitSpec("eye"), (128, 64, 3, 3), "2-d weight"),
    (InitSpec("dirac"), (256, 784), "3, 4 or 5 dimensions"),
    (InitSpec("dirac", groups=3), (128, 64, 3, 3), "do not divide into 3 groups"),
    (InitSpec("delta-orthogonal"), (64, 128, 3, 3), "in <= out"),
])
def test_expectation_refuses_a_shape_the_scheme_cannot_fill(spec, shape, message):
    with pytest.raises(InputError, match=message):
        expectation(spec, shape)


def test_expectation_refuses_a_bad_layout_or_shape():
    with pytest.raises(InputError, match="layout"):
        expectation(InitSpec("orthogonal"), (4, 4), "jax")
    with pytest.raises(InputError, match="positive integers"):
        expectation(InitSpec("orthogonal"), (4, 0))


@pytest.mark.parametrize("keys, message", [
    ({"scheme": "sparse"}, "needs --sparsity"),
    ({"scheme": "sparse", "sparsity": 1.5}, "between 0 and 1"),
    ({"scheme": "constant"}, "needs --value"),
    ({"scheme": "constant", "value": math.inf}, "finite"),
    ({"scheme": "dirac", "groups": 0}, "positive integer"),
    ({"scheme": "orthogonal", "gain": -1.0}, "positive"),
    ({"scheme": "orthogonal", "sparsity": 0.5}, "does not apply"),
    ({"scheme": "eye", "std": 1.0}, "does not apply"),
    ({"scheme": "xavier", "dist": "normal", "value": 1.0}, "does not apply"),
])
def test_bad_parameters_are_one_line_input_errors(keys, message):
    with pytest.raises(InputError, match=message) as error:
        InitSpec(**keys)
    assert "\n" not in str(error.value)


def test_describe():
    assert InitSpec("orthogonal", gain=2.0).describe() == "orthogonal (gain 2)"
    assert InitSpec("sparse", sparsity=0.9).describe() == "sparse (sparsity 0.9, std 0.01)"
    assert InitSpec("dirac", groups=2).describe() == "dirac (groups 2)"
    assert InitSpec("constant", value=0.5).describe() == "constant 0.5"
    assert (InitSpec("eye").describe(), InitSpec("zeros").describe()) == ("eye", "zeros")


# --- per-draw checks --------------------------------------------------------


def test_value_dtype_finds_the_draws_own_dtype_after_a_float64_conversion():
    x = torch.randn(64, 64)
    assert value_dtype(x.double().numpy())[0] == "float32"
    assert value_dtype(x.bfloat16().double().numpy())[0] == "bfloat16"
    assert value_dtype(x.half().double().numpy())[0] == "float16"
    assert value_dtype(x.double().numpy() / 3.0)[0] == "float64"


def test_host_batch_takes_every_array_kind():
    x = torch.ones(2, 3, 4, dtype=torch.bfloat16)
    host = host_batch(x, 2, (3, 4))
    assert host.shape == (2, 3, 4) and host.dtype == np.float32
    assert host_batch(np.zeros((3, 4)), 1, (3, 4)).shape == (1, 3, 4)


def test_orthogonality_tolerance():
    assert orthogonality_tolerance(2.0**-23, 784) == pytest.approx(2 * 2**-23 * 44)


def test_the_orthogonal_check_names_the_worst_entry():
    check = Orthogonal(1.0, matrix_view((4, 6), "torch"))
    w = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 4)))[0].T[None]
    check.observe(w, 1)
    check.observe(w * np.array([1, 1, 1.01, 1])[None, :, None], 1)
    result = check.result()
    assert not result.passed and "1 of 2 draws" in result.detail and "[2, 2]" in result.detail


def test_a_non_finite_draw_is_not_orthogonal():
    check = Orthogonal(1.0, matrix_view((2, 2), "torch"))
    check.observe(np.array([[[np.nan, 0.0], [0.0, 1.0]]]), 1)
    assert not check.result().passed


def test_zeros_per_column_tolerates_the_normals_own_zeros_but_not_a_missing_one():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.01, (3, 1000, 200)).astype(np.float32)
    x[:, :4, :] = 0.0
    check = ZerosPerColumn(4, 0.01, axis=0)
    x[1, 7, 3] = 0.0  # one exact zero of the normal among 600,000 values: chance explains it
    check.observe(x, 3)
    assert check.result().pvalue > 0.01
    assert "the normal's own exact zeros explain 0.14" in check.result().detail
    x[2, 0, 5] = 1e-3  # a column one zero short
    check.observe(x, 3)
    result = check.result()
    assert result.pvalue == 0.0 and "fewer than 4 zeros" in result.detail and "column 5" in result.detail


def test_exact_rounds_the_expected_tensor_to_the_draws_dtype():
    expected = 0.3 * np.eye(3)
    check = Exact(expected, "0.3·I")
    check.observe(torch.eye(3, dtype=torch.bfloat16).mul(0.3).float().numpy()[None], 1)
    assert check.result().passed


def test_diagonal_signs_are_fair_for_haar_matrices():
    x = sample(InitSpec("orthogonal"), (16, 16), np.random.default_rng(3), 400)
    check = DiagonalSigns(matrix_view((16, 16), "torch"))
    check.observe(x, 400)
    assert check.result().pvalue > 1e-3


# --- the real initializers ----------------------------------------------------


@pytest.mark.parametrize("shape", [(256, 784), (784, 256), (16, 16, 3, 3)])
def test_torch_orthogonal_passes(shape):
    result = initcheck.verify(initcheck.orthogonal(gain=1.3), framework="torch", shape=shape, samples=SMALL)
    assert result, str(result)
    checks = checks_of(result)
    assert {"orthogonal", "diagonal signs", "ks", "variance"} <= set(checks)
    assert result.results[0].law == OrthogonalEntry(1.3, max(shape[0], math.prod(shape[1:])))


def test_torch_sparse_eye_dirac_and_constants_pass():
    checks = [
        initcheck.Check(initcheck.sparse(0.9), shape=(64, 100), framework="torch"),
        initcheck.Check(initcheck.sparse(0.3, std=0.05), shape=(100, 64), framework="torch"),
        initcheck.Check(initcheck.eye(), shape=(5, 7), framework="torch"),
        initcheck.Check(initcheck.dirac(groups=2), shape=(8, 4, 3, 3), framework="torch"),
        initcheck.Check(initcheck.dirac(), shape=(4, 6, 5), framework="torch"),
        initcheck.Check(initcheck.constant(0.3), shape=(7,), framework="torch"),
        initcheck.Check(InitSpec("zeros"), shape=(3, 4), framework="torch"),
        initcheck.Check(InitSpec("ones"), shape=(3, 4), framework="torch"),
    ]
    result = initcheck.verify_all(checks, samples=SMALL)
    assert result, str(result)
    names = [{c.name for c in row.checks} for row in result]
    assert "zeros per column" in names[0] and "exact" in names[2] and "exact" in names[3]
    assert names[2] == {"finite", "exact"}  # an exact tensor: no statistics
    assert [row.api for row in result][-2:] == ["torch.nn.init.zeros_(w)", "torch.nn.init.ones_(w)"]


def test_the_reference_draws_every_structured_scheme():
    checks = [initcheck.Check(spec, shape=shape, framework="reference") for spec, shape in [
        (initcheck.orthogonal(), (64, 32)), (initcheck.sparse(0.5), (64, 32)), (initcheck.eye(2.0), (4, 6)),
        (initcheck.dirac(2), (4, 2, 3)), (initcheck.delta_orthogonal(), (32, 16, 3, 3))]]
    result = initcheck.verify_all(checks, samples=SMALL)
    assert result, str(result)


def test_torch_has_no_gain_for_eye_and_no_delta_orthogonal():
    result = initcheck.verify_all([
        initcheck.Check(initcheck.eye(gain=2.0), shape=(4, 4), framework="torch"),
        initcheck.Check(initcheck.delta_orthogonal(), shape=(8, 4, 3, 3), framework="torch"),
    ], samples=SMALL)
    assert [row.verdict for row in result] == ["SKIP", "SKIP"]
    assert "no gain" in result.results[0].reason


def test_torch_orthogonal_in_16_bits_on_the_cpu_is_a_skip_with_torchs_reason():
    result = initcheck.verify(initcheck.orthogonal(), framework="torch", shape=(8, 8), dtype="bfloat16", samples=SMALL)
    row = result.results[0]
    assert row.verdict == "SKIP" and "geqrf" in row.reason


def test_keras_and_jax_structured_initializers_pass():
    checks = [
        initcheck.Check(initcheck.orthogonal(gain=2.0), shape=(64, 100), framework="keras,jax"),
        initcheck.Check(initcheck.eye(gain=0.5), shape=(5, 7), framework="keras,jax"),
        initcheck.Check(initcheck.constant(0.3), shape=(7,), framework="keras,jax"),
        initcheck.Check(initcheck.delta_orthogonal(gain=1.5), shape=(32, 16, 3, 3), framework="keras,jax"),
        initcheck.Check(initcheck.sparse(0.5), shape=(8, 8), framework="keras,jax"),
    ]
    result = initcheck.verify_all(checks, samples=SMALL)
    assert result, str(result)
    verdicts = {(row.framework, row.api.split("(")[0]): row.verdict for row in result}
    assert verdicts[("keras", "keras.initializers.Orthogonal")] == "PASS"
    assert verdicts[("jax", "jax.nn.initializers.orthogonal")] == "PASS"
    assert verdicts[("keras", "keras.initializers.Identity")] == "PASS"
    assert verdicts[("jax", "jax.nn.initializers.delta_orthogonal")] == "PASS"
    skipped = {row.framework: row.reason for row in result if row.verdict == "SKIP"}
    assert "no identity" in next(r.reason for r in result if r.framework == "jax" and "eye" in r.initializer)
    assert set(skipped) == {"keras", "jax"}
    keras_orthogonal = next(r for r in result if r.api.startswith("keras.initializers.Orthogonal"))
    assert keras_orthogonal.law == OrthogonalEntry(2.0, 100) and keras_orthogonal.shape == (100, 64)


# --- planted bugs -----------------------------------------------------------


def qr_without_sign_correction(shape, seed):
    """orthogonal_ as it would be without q *= sign(diag(r))."""
    rows, cols = shape[0], math.prod(shape[1:])
    a = torch.randn(max(rows, cols), min(rows, cols), generator=torch.Generator().manual_seed(seed))
    q, r = torch.linalg.qr(a)
    return (q.T if rows < cols else q).reshape(shape)


def gaussian_not_orthogonal(shape, seed):
    """The right variance, 1 / m, but no orthogonality."""
    m = max(shape[0], math.prod(shape[1:]))
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) / math.sqrt(m)


def sparse_one_zero_short(shape, seed):
    """sparse_ with ceil(sparsity rows) - 1 zeros per column."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.empty(shape).normal_(0.0, 0.01, generator=generator)
    zeros = math.ceil(0.5 * shape[0]) - 1
    for column in range(shape[1]):
        w[torch.randperm(shape[0], generator=generator)[:zeros], column] = 0.0
    return w


def eye_with_a_stray_one(shape, seed):
    w = torch.nn.init.eye_(torch.empty(shape))
    w[0, 1] = 1.0
    return w


def dirac_ignoring_groups(shape, seed):
    return torch.nn.init.dirac_(torch.empty(shape))


def test_qr_without_the_sign_correction_fails_the_diagonal_signs():
    result = initcheck.verify(qr_without_sign_correction, initcheck.orthogonal(), shape=(64, 64), samples=SMALL)
    assert not result
    # orthogonal it is; its diagonal's signs (and so the sums over draws of W[0,0]) are biased
    assert "diagonal signs" in failed(result) and "orthogonal" not in failed(result)
    assert failed(result) <= {"diagonal signs", "draws", "positions", "mean"}
    detail = checks_of(result)["diagonal signs"].detail
    assert "biased" in detail and "W[0,0] > 0 in 0 of" in detail


def test_a_gaussian_matrix_fails_orthogonality():
    result = initcheck.verify(gaussian_not_orthogonal, initcheck.orthogonal(), shape=(256, 784), samples=SMALL)
    assert "orthogonal" in failed(result)
    assert "not orthogonal" in checks_of(result)["orthogonal"].detail


def test_sparse_one_zero_short_fails_zeros_per_column():
    result = initcheck.verify(sparse_one_zero_short, initcheck.sparse(0.5), shape=(64, 100), samples=SMALL)
    assert "zeros per column" in failed(result)
    assert "fewer than 32 zeros" in checks_of(result)["zeros per column"].detail


def test_an_eye_with_a_stray_one_fails_exact():
    result = initcheck.verify(eye_with_a_stray_one, initcheck.eye(), shape=(5, 7), samples=SMALL)
    assert failed(result) == {"exact"}
    detail = checks_of(result)["exact"].detail
    assert "1 values differ" not in detail and "draw 0 [0, 1] = 1, expected 0" in detail


def test_dirac_ignoring_groups_fails_exact():
    result = initcheck.verify(dirac_ignoring_groups, initcheck.dirac(groups=2), shape=(8, 4, 3, 3), samples=SMALL)
    assert failed(result) == {"exact"}
    assert "[4, 0, 1, 1] = 0, expected 1" in checks_of(result)["exact"].detail


def test_a_users_haar_sampler_passes_as_expected_orthogonal():
    def haar(shape, seed):
        return sample(InitSpec("orthogonal"), shape, np.random.default_rng(seed), 1)[0].astype(np.float32)

    result = initcheck.verify(haar, initcheck.orthogonal(), shape=(48, 80), samples=SMALL)
    assert result, str(result)
    assert {"orthogonal", "diagonal signs"} <= set(checks_of(result))


# --- the command line -------------------------------------------------------


def test_cli_orthogonal_and_dirac_pass(cli):
    code, out, _ = cli("orthogonal", "-f", "torch", "--shape", "32,48", "-n", "1e5", "--no-progress")
    assert code == 0 and "orthogonal" in out and "PASS" in out
    code, out, _ = cli("dirac", "-f", "torch", "--groups", "2", "-n", "1e4", "--no-progress")
    assert code == 0 and "conv 64→128 3×3" in out


@pytest.mark.parametrize("args, message", [
    (("sparse",), "Missing option '--sparsity'"),
    (("sparse", "--sparsity", "2"), "--sparsity must be between 0 and 1"),
    (("dirac", "--shape", "256,784"), "3, 4 or 5 dimensions"),
    (("dirac", "--groups", "3"), "do not divide into 3 groups"),
    (("eye", "--shape", "128,64,3,3"), "2-d weight"),
    (("orthogonal", "--shape", "10"), "at least 2 dimensions"),
    (("orthogonal", "--gain", "0"), "--gain must be a positive number"),
    (("delta-orthogonal", "--shape", "64,128,3,3"), "in <= out"),
    (("constant",), "Missing option '--value'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(cli, args, message):
    code, out, err = cli(*args, "-f", "torch", "-n", "1e4", "--no-progress")
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args", [
    ("orthogonal", "--shape", "16,24"),
    ("sparse", "--sparsity", "0.5", "--shape", "16,24"),
    ("eye", "--shape", "4,6"),
    ("delta-orthogonal", "--shape", "8,4,3,3"),
])
def test_structured_reports_validate_against_the_schema(cli, tmp_path, args):
    import json
    from importlib import resources

    import jsonschema

    schema = json.loads(resources.files("initcheck").joinpath("schemas/report-2.schema.json").read_text("utf-8"))
    path = tmp_path / "report.json"
    code, out, err = cli(*args, "-f", "torch,reference", "-n", "1e4", "--no-progress", "-q", "--json", path)
    assert code == 0, (out, err)
    report = json.loads(path.read_text())
    jsonschema.validate(report, schema)
    assert any(c["name"] in ("orthogonal", "zeros per column", "exact") for row in report["rows"] for c in row["checks"])


def test_suites_take_the_structured_schemes(tmp_path):
    from initcheck.suite import load_suite

    path = tmp_path / "suite.toml"
    path.write_text(
        '[[check]]\nscheme = "orthogonal"\ngain = [1.0, 2.0]\nshapes = ["64,64"]\nframeworks = ["torch"]\n'
        '[[check]]\nscheme = "sparse"\nsparsity = 0.5\nframeworks = ["torch"]\n'
        '[[check]]\nscheme = "dirac"\ngroups = 2\nframeworks = ["torch"]\n'
        '[[check]]\nscheme = "constant"\nvalue = 0.25\nshapes = ["7"]\nframeworks = ["torch"]\n')
    suite = load_suite(path)
    assert [row.initializer for row in suite.rows] == [
        "orthogonal", "orthogonal (gain 2)", "sparse (sparsity 0.5, std 0.01)", "dirac (groups 2)", "constant 0.25"]
    assert suite.rows[3].plan.shape == (128, 64, 3, 3) and suite.rows[2].plan.shape == (256, 784)
    path.write_text('[[check]]\nscheme = "sparse"\nvalue = 1.0\n')
    with pytest.raises(InputError, match="does not apply to scheme sparse"):
        load_suite(path)
