"""Structure statistics (initcheck/structure.py) and their checks
(initcheck/structure_checks.py): the kernels agree, batches fold as single
draws, the checks stay quiet on correct samples and name what is wrong in
broken ones.  Seeded throughout."""

import math

import numpy as np
import pytest

from initcheck import _kernels_numpy, kernels
from initcheck.laws import Normal, Uniform
from initcheck.reducers.host import HostReducer, PatternReducer
from initcheck.structure import ELEMENTS, GRAM_STORE, GramStore, Structure
from initcheck.structure_checks import (check_copies, check_draws, check_positions, copies_power, describe_copies,
                                        merged)
from initcheck.summary import Summary

STD = 0.05
LAW = Normal(0.0, STD)


def implementations():
    found = [_kernels_numpy]
    try:
        from initcheck import _kernels

        found.append(_kernels)
    except ImportError:
        pass
    return found


def fold_all(draws, law=LAW, batch=False):
    """The summary of HostReducer over a list of draws (or one batch)."""
    reducer = HostReducer(law, expected_values=sum(d.size for d in draws))
    if batch:
        reducer.fold(np.stack(draws), draws=len(draws))
    else:
        for d in draws:
            reducer.fold(d)
    return reducer.summary()


def normal_draws(shape, count, seed=0, std=STD):
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, std, shape).astype(np.float32) for _ in range(count)]


# ------------------------------------------------------------------ kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_positions_kernels_give_row_and_column_sums(dtype):
    x = np.random.default_rng(1).normal(0, 1, (37, 53)).astype(dtype)
    d = x.astype(np.float64) - 0.25
    for module in implementations():
        r1, r2, c1, c2 = np.zeros(37), np.zeros(37), np.ones(53), np.ones(53)
        module.positions(x, 53, 0.25, r1, r2, c1, c2)
        np.testing.assert_allclose(r1, d.sum(axis=1), atol=1e-9)
        np.testing.assert_allclose(r2, (d * d).sum(axis=1), atol=1e-9)
        np.testing.assert_allclose(c1, 1 + d.sum(axis=0), atol=1e-9)
        np.testing.assert_allclose(c2, 1 + (d * d).sum(axis=0), atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_gram_kernels_agree_and_see_negated_copies(dtype):
    rng = np.random.default_rng(2)
    half = rng.normal(0, 1, 500).astype(dtype)
    x = np.concatenate([half, -half])
    k = 4
    results = []
    for module in implementations():
        out = (np.zeros(2000, np.int64), np.zeros(2000, np.uint64), np.zeros(2000, np.uint64), np.zeros(2000, np.uint32))
        found = module.grams(x, k, 1 << 31, 7, *out)
        results.append((found, *(a[:found].copy() for a in out)))
    for other in results[1:]:
        assert other[0] == results[0][0]
        for a, b in zip(results[0][1:], other[1:]):
            np.testing.assert_array_equal(a, b)
    found, pos, key, _, _ = results[0]
    assert 0 < found <= len(x) - k + 1
    positions = pos >> 1
    assert positions.min() >= 7
    # a gram and its negation share a key; the first value's sign is in the position's low bit
    by_key = {}
    for p, kk in zip(pos.tolist(), key.tolist()):
        by_key.setdefault(kk, []).append(p)
    pairs = [v for v in by_key.values() if len(v) == 2]
    assert len(pairs) >= found // 2 - 4
    assert all(((b >> 1) - (a >> 1)) == 500 and (a & 1) != (b & 1) for a, b in pairs)


def test_gram_selection_does_not_depend_on_the_buffers_capacity():
    x = np.random.default_rng(3).normal(0, 1, 10_000).astype(np.float32)
    small = (np.zeros(10, np.int64), np.zeros(10, np.uint64), np.zeros(10, np.uint64), np.zeros(10, np.uint32))
    big = (np.zeros(20_000, np.int64), np.zeros(20_000, np.uint64), np.zeros(20_000, np.uint64),
           np.zeros(20_000, np.uint32))
    assert kernels.grams(x, 4, 1 << 30, 0, *small) == kernels.grams(x, 4, 1 << 30, 0, *big)
    np.testing.assert_array_equal(small[1], big[1][:10])


# ------------------------------------------------------------------ folding


@pytest.mark.parametrize("shape", [(5, 2), (64, 3, 3, 3), (300,), (150, 130)])
def test_a_batch_folds_as_its_draws_one_by_one(shape):
    draws = normal_draws(shape, 40, seed=4)
    one, batch = fold_all(draws).structure, fold_all(draws, batch=True).structure
    assert [a.name for a in one.axes] == [a.name for a in batch.axes]
    for a, b in zip(one.axes, batch.axes):
        np.testing.assert_array_equal(a.edges, b.edges)
        np.testing.assert_allclose(a.s1, b.s1, atol=1e-9)
        np.testing.assert_allclose(a.s2, b.s2, rtol=1e-12)
        np.testing.assert_array_equal(a.count, b.count)
    np.testing.assert_allclose(one.draws.s1, batch.draws.s1, atol=1e-9)
    assert math.isclose(one.draws.squares, batch.draws.squares, rel_tol=1e-9)
    assert one.grams.to_dict() == batch.grams.to_dict()


def test_axis_sums_add_up_to_every_value():
    shape = (64, 3, 3, 3)
    draws = normal_draws(shape, 7, seed=5)
    structure = fold_all(draws).structure
    total = sum(float((d.astype(np.float64)).sum()) for d in draws)
    for axis in structure.axes:
        assert axis.count.sum() == 7 * math.prod(shape)
        assert math.isclose(axis.s1.sum(), total, rel_tol=1e-9, abs_tol=1e-9)
    assert [a.name for a in structure.axes] == ["axis 0", "axis 1", "axis 2", "axis 3", "draws"]


def test_large_draws_keep_rows_columns_and_a_prefix_of_draw_sums():
    draws = normal_draws((200, 1000), 3, seed=6)
    structure = fold_all(draws).structure
    rows, cols, per_draw = structure.axes
    assert (rows.name, len(rows.count), cols.name, len(cols.count)) == ("rows", 200, "columns", 1000)
    assert len(per_draw.count) == 3 and structure.draws.draws == 3 and structure.draws.positions == ELEMENTS
    np.testing.assert_allclose(rows.s1, sum(d.astype(np.float64).sum(axis=1) for d in draws), atol=1e-9)


def test_a_long_vector_is_kept_in_blocks_of_contiguous_positions():
    draws = normal_draws((100_001,), 2, seed=7)
    (blocks, per_draw) = fold_all(draws).structure.axes
    assert blocks.edges[0] == 0 and blocks.edges[-1] == 100_001 and len(blocks.count) <= ELEMENTS + 1
    assert blocks.count.sum() == 2 * 100_001
    assert math.isclose(blocks.s1.sum(), sum(float(d.astype(np.float64).sum()) for d in draws), abs_tol=1e-9)


def test_structure_survives_a_report_round_trip_and_merges():
    summary = fold_all(normal_draws((16, 8), 30, seed=8))
    again = Summary.from_dict(summary.to_dict())
    assert isinstance(again.structure, Structure)
    for a, b in zip(summary.structure.axes, again.structure.axes):
        np.testing.assert_array_equal(a.s1, b.s1)
    both = summary.merge(again)
    assert both.structure.axes[0].count.sum() == 2 * summary.structure.axes[0].count.sum()
    assert both.structure.grams.grams == 2 * summary.structure.grams.grams


def test_non_finite_draws_add_no_structure():
    draws = normal_draws((10, 10), 5, seed=9)
    draws[2][3, 3] = np.nan
    structure = fold_all(draws).structure
    assert structure.draws.draws == 4


def test_the_gram_store_halves_its_rate_and_counts_repeats_at_the_final_rate():
    rng = np.random.default_rng(10)
    store = GramStore(4)
    block = rng.normal(0, 1, 100_000).astype(np.float32)
    for _ in range(3):  # the same block three times: two repeats of every selected gram
        store.fold(block)
    for _ in range(2):
        store.fold(rng.normal(0, 1, 150_000).astype(np.float32))
    grams = store.result(100_000)
    assert grams.threshold < 1 << 32  # 600,000 grams do not fit GRAM_STORE at rate 1
    assert grams.selected - grams.repeats <= GRAM_STORE
    expected = 2 * (100_000 - 3) * grams.rate
    assert abs(grams.repeats - expected) < 6 * math.sqrt(expected)


# ------------------------------------------------------------------ checks on correct samples


@pytest.mark.parametrize("shape", [(256, 784), (5, 2), (64, 3, 3, 3), (300,), (100_000,)])
def test_correct_normal_samples_pass_every_structure_check(shape):
    count = max(2, 2_000_000 // math.prod(shape))
    summary = fold_all(normal_draws(shape, count, seed=11))
    for check in (check_positions(summary), check_draws(summary), check_copies(summary)):
        assert check is not None
        assert check.pvalue > 1e-4, check.detail


def test_correct_bfloat16_samples_pass_and_their_atoms_are_not_copies():
    pytest.importorskip("ml_dtypes")
    from initcheck.lowp import numpy_dtype

    rng = np.random.default_rng(12)
    reducer = PatternReducer(LAW, "bfloat16", expected_values=4_000_000)
    for _ in range(20):
        reducer.fold(rng.normal(0, STD, (200, 1000)).astype(numpy_dtype("bfloat16")))
    summary = reducer.summary()
    assert summary.structure.grams.k == 8 and summary.structure.grams.single_repeats > 1000
    for check in (check_positions(summary), check_draws(summary), check_copies(summary)):
        assert check.pvalue > 1e-4, check.detail


# ------------------------------------------------------------------ checks on broken samples


def test_rows_tiled_from_the_first_block_are_copies():
    draws = normal_draws((768, 256), 10, seed=13)
    for d in draws:
        d[:] = np.tile(d[:64], (12, 1))
    check = check_copies(fold_all(draws))
    assert check.pvalue < 1e-12
    assert "rows repeat with a period of 64" in check.detail


def test_a_negated_half_is_a_copy_up_to_sign():
    draws = normal_draws((256, 784), 5, seed=14)
    for d in draws:
        d[128:] = -d[:128]
    check = check_copies(fold_all(draws))
    assert check.pvalue < 1e-12 and "negation" in check.detail


def test_a_seed_taken_modulo_repeats_whole_draws():
    base = normal_draws((64, 64), 5, seed=15)
    draws = [base[i % 5].copy() for i in range(40)]
    summary = fold_all(draws)
    check = check_copies(summary)
    assert check.pvalue < 1e-12 and "is a copy of draw" in check.detail
    assert check_draws(summary).pvalue < 1e-12


def test_draws_cut_from_one_stream_at_offsets_are_shifted_copies():
    stream = np.random.default_rng(16).normal(0, STD, 3_000_000).astype(np.float32)
    draws = [stream[i * 1000 : i * 1000 + 50_000].reshape(50, 1000) for i in range(30)]
    check = check_copies(fold_all(draws))
    assert check.pvalue < 1e-12 and "shifted by" in check.detail


def test_fused_blocks_scaled_apart_fail_positions_and_name_the_blocks():
    draws = normal_draws((768, 256), 40, seed=17)
    for d in draws:
        d[:256] *= 1.04
        d[256:512] *= 0.96
    check = check_positions(fold_all(draws))
    assert check.pvalue < 1e-9
    assert "rows 0-255" in check.detail and "std" in check.detail


def test_zeroed_rows_fail_positions_with_a_description_not_a_crash():
    """A block of rows set to zero has std 0: the description compares against
    0 instead of dividing by it."""
    draws = normal_draws((16, 72), 200, seed=21)
    for d in draws:
        d[8:] = 0
    check = check_positions(fold_all(draws))
    assert check.pvalue < 1e-9 and "against std 0" in check.detail


def test_a_per_draw_scale_fails_positions_along_the_draws():
    rng = np.random.default_rng(18)
    draws = [d * np.float32(1 + 0.03 * rng.standard_normal()) for d in normal_draws((100, 100), 400, seed=19)]
    check = check_positions(fold_all(draws))
    assert check.pvalue < 1e-9 and "draw" in check.detail


def test_correlated_draws_fail_the_draws_check():
    rng = np.random.default_rng(20)
    shared = rng.normal(0, STD, (100, 100))
    draws = [(0.2 * shared + math.sqrt(1 - 0.04) * rng.normal(0, STD, (100, 100))).astype(np.float32)
             for _ in range(200)]
    check = check_draws(fold_all(draws))
    assert check.pvalue < 1e-12 and "share a component" in check.detail


def test_the_copies_power_statement_follows_the_selected_count():
    summary = fold_all(normal_draws((256, 784), 10, seed=21))
    fraction, text, _ = copies_power(summary, 1e-7, 1e-7)
    grams = summary.structure.grams
    # one repeat suffices when chance explains almost none: P(Poisson(f r N) >= 1) = 0.999
    assert math.isclose(fraction, -math.log(0.001) / (grams.rate * grams.grams), rel_tol=0.01)
    assert "of the values" in text


def test_merged_groups_hold_at_least_the_minimum():
    structure = fold_all(normal_draws((300,), 20, seed=22)).structure
    axis = merged(structure.axes[0])
    assert axis.count.min() >= 4096 and axis.edges[0] == 0 and axis.edges[-1] == 300


def test_copies_are_described_from_their_examples():
    draws = normal_draws((10, 100), 3, seed=23)
    draws[2][:] = draws[0]
    grams = fold_all(draws).structure.grams
    assert describe_copies(grams, (10, 100)).startswith("draw 2 is a copy of draw 0")


def test_uniform_samples_with_24_bit_granularity_are_not_copies():
    """PyTorch's CPU uniform_ draws 24-bit integers: its values coincide often,
    which the single-value repeats measure and the copies check allows."""
    rng = np.random.default_rng(24)
    law = Uniform(-0.1, 0.1)
    draws = [((rng.integers(0, 1 << 24, (256, 784)) / float(1 << 24)) * 0.2 - 0.1).astype(np.float32)
             for _ in range(20)]
    summary = fold_all(draws, law=law)
    assert summary.structure.grams.single_repeats > 100
    assert check_copies(summary).pvalue > 1e-4


# ------------------------------------------------------------------ compare


def test_compare_sees_a_position_profile_that_moved_and_not_one_that_did_not():
    from initcheck.compare import positions_shift

    before = Summary.from_dict(fold_all(normal_draws((768, 256), 20, seed=30)).to_dict())
    same = Summary.from_dict(fold_all(normal_draws((768, 256), 20, seed=31)).to_dict())
    moved_draws = normal_draws((768, 256), 20, seed=32)
    for d in moved_draws:
        d[:256] *= 1.03
        d[256:512] *= 0.97
    moved = Summary.from_dict(fold_all(moved_draws).to_dict())
    quiet, loud = positions_shift(before, same), positions_shift(before, moved)
    assert quiet.pvalue > 1e-4
    assert loud.pvalue < 1e-12 and "rows" in loud.detail and "std" in loud.detail


def test_a_large_16_bit_draw_folds_in_parts_as_it_would_whole(monkeypatch):
    """Draws above PAIR_PREFIX values are seen as float32 a part at a time;
    pairs and structure equal the whole-draw fold of the same values."""
    pytest.importorskip("ml_dtypes")
    from initcheck.lowp import numpy_dtype
    from initcheck.reducers import host

    monkeypatch.setattr(host, "PAIR_PREFIX", 5000)
    rng = np.random.default_rng(40)
    bf16 = numpy_dtype("bfloat16")
    for shape in [(300, 70), (23_456,)]:
        draws = [rng.normal(0, STD, shape).astype(bf16) for _ in range(3)]
        parts = PatternReducer(LAW, "bfloat16")
        monkeypatch.setattr(host, "LARGE_PART", 1000)
        for d in draws:
            parts.fold(d)
        a = parts.summary()
        reference = HostReducer(LAW)  # the same values, as float32, whole
        for d in draws:
            reference.fold(d.astype(np.float32))
        b = reference.summary()
        np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9, atol=1e-9)
        assert a.pairs[2, 3] == 2 * 5000
        for x, y in zip(a.structure.axes, b.structure.axes):
            np.testing.assert_array_equal(x.edges, y.edges)
            np.testing.assert_allclose(x.s1, y.s1, atol=1e-9)
            np.testing.assert_allclose(x.s2, y.s2, rtol=1e-9)
        assert math.isclose(a.structure.draws.squares, b.structure.draws.squares, rel_tol=1e-9)


def test_a_large_integer_draw_is_checked_as_float64_in_parts(monkeypatch):
    """A custom function's integers: as float64 a part at a time, the same
    statistics as the whole draw converted."""
    from initcheck.reducers import host

    monkeypatch.setattr(host, "PAIR_PREFIX", 5000)
    monkeypatch.setattr(host, "LARGE_PART", 1000)
    law = Normal(0.0, 30.0)
    rng = np.random.default_rng(41)
    draws = [np.rint(rng.normal(0, 30.0, (200, 60))).astype(np.int64) for _ in range(3)]
    parts, whole = HostReducer(law), HostReducer(law)
    for d in draws:
        parts.fold(d)
        whole.fold(d.astype(np.float64))
    a, b = parts.summary(), whole.summary()
    assert a.count == b.count and (a.minimum, a.maximum) == (b.minimum, b.maximum)
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9, atol=1e-9)
    for x, y in zip(a.structure.axes, b.structure.axes):
        np.testing.assert_allclose(x.s2, y.s2, rtol=1e-9)


def test_merged_structures_put_the_second_folds_draws_after_the_first():
    a = fold_all(normal_draws((16, 8), 30, seed=50)).structure
    b = fold_all(normal_draws((16, 8), 20, seed=51)).structure
    draws = a.merge(b).axes[-1]
    assert draws.name == "draws" and draws.size == 50 and len(draws.count) == 50
    np.testing.assert_array_equal(draws.edges, np.arange(51))
