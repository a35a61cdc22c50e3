"""The accelerator paths, run for real where PyTorch sees a CUDA device.

CI has no GPU, so this module is skipped there; the same code paths are also
exercised on CPU tensors in test_reducers.py.  On a machine with a GPU these
tests show that the device reducers give the host reducers' numbers bit for bit
(counts, extremes, histogram) or to float64 rounding (power sums), and that whole
commands on ``--device cuda`` pass correct initializers and fail a planted bug.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from initcheck.reducers.backends.torch_reducer import TorchReducer  # noqa: E402
from initcheck.grid import Grid  # noqa: E402
from initcheck.laws import Normal, Uniform  # noqa: E402
from initcheck.reducers import HostReducer, PatternReducer, reducer_for  # noqa: E402
from helpers import run_cli

LAW = Normal(0.1, 2.0)
GRID = Grid.for_law(LAW)
SMALL = ("--samples", "2e6", "--no-progress")


def draws(dtype, count=4, shape=(301, 499), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.normal(LAW.mu, LAW.sigma, shape).astype(dtype)
        x.flat[::997] = 50.0
        x.flat[1::991] = -40.0
        out.append(x)
    return out


def compare(a, b):
    assert (a.count, a.nan, a.posinf, a.neginf) == (b.count, b.nan, b.posinf, b.neginf)
    assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_reducer_matches_the_host_kernel(dtype):
    arrays = draws(dtype)
    arrays[2].flat[5] = np.nan
    arrays[2].flat[6] = np.inf
    host, device = HostReducer(LAW, GRID), TorchReducer(LAW, "cuda:0", GRID)
    for x in arrays:
        host.fold(x)
        device.fold(torch.from_numpy(x).cuda())
    compare(host.summary(), device.summary())


def test_reducer_for_keeps_cuda_tensors_on_the_device():
    assert isinstance(reducer_for(torch.zeros(3, 3, device="cuda"), LAW), TorchReducer)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_cuda_bit_pattern_counts_match_the_host(dtype):
    law = Uniform(-0.1, 0.1)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(3)
    tensors = [torch.empty(257, 311).uniform_(-0.1, 0.1, generator=generator).to(torch_dtype) for _ in range(3)]
    host, device = PatternReducer(law, dtype), reducer_for(tensors[0].cuda(), law)
    assert isinstance(device, PatternReducer)
    for t in tensors:
        host.fold(t)
        device.fold(t.cuda())
    a, b = host.summary(), device.summary()
    np.testing.assert_array_equal(a.patterns, b.patterns)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-12)


def jax_and_its_gpu():
    """(jax, its first GPU), or skip."""
    jax = pytest.importorskip("jax")
    try:
        return jax, jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("JAX sees no GPU")


def test_jax_gpu_arrays_are_reduced_by_xla_on_the_gpu():
    jax, gpu = jax_and_its_gpu()
    from initcheck.reducers.backends.jax_reducer import JaxReducer

    arrays = draws(np.float32)
    arrays[1].flat[3] = np.nan
    host, device = HostReducer(LAW, GRID), None
    for x in arrays:
        on_gpu = jax.device_put(x, gpu)
        device = device or reducer_for(on_gpu, LAW)
        host.fold(x)
        device.fold(on_gpu)
    assert isinstance(device, JaxReducer)
    compare(host.summary(), device.summary())


def test_tensorflow_style_dlpack_arrays_reach_the_torch_reducer():
    """JAX GPU arrays handed to the torch reducer (the path TensorFlow GPU draws take)."""
    jax, gpu = jax_and_its_gpu()
    arrays = draws(np.float32)
    host, device = HostReducer(LAW, GRID), TorchReducer(LAW, "cuda:0", GRID)
    for x in arrays:
        host.fold(x)
        device.fold(jax.device_put(x, gpu))
    compare(host.summary(), device.summary())


@pytest.mark.parametrize("framework", ["torch", "jax"])
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_xavier_on_cuda_passes_and_says_where_it_ran(capsys, tmp_path, dist, framework):
    import json

    report = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "xavier", "--dist", dist, "--fan-in", "784", "--fan-out", "256",
                             "-f", framework, "--device", "cuda", "--json", str(report), *SMALL)
    assert code == 0, out + err
    rows = json.loads(report.read_text())["rows"]
    assert {r["device"] for r in rows} == {"cuda:0"}
    assert {r["verdict"] for r in rows} == {"PASS"}


def test_a_planted_bug_on_cuda_fails(capsys, tmp_path):
    import json

    source, report = tmp_path / "bad.py", tmp_path / "r.json"
    source.write_text(
        "import torch\n"
        "def init(shape, seed):\n"
        "    g = torch.Generator(device='cuda').manual_seed(seed)\n"
        "    return torch.randn(shape, generator=g, device='cuda') * 0.0505  # law: std 0.05\n"
    )
    code, out, err = run_cli(capsys, "custom", f"{source}:init", "--expect", "normal", "--std", "0.05",
                             "--shape", "256,784", "--json", str(report), *SMALL)
    assert code == 1, out + err
    custom = next(r for r in json.loads(report.read_text())["rows"] if r["framework"] == "custom")
    assert custom["device"] == "cuda:0" and custom["verdict"] == "FAIL"
    assert custom["reason"].startswith("std") and "above the law's" in custom["reason"]
