"""Suite files: parsing, matrix expansion, errors that name the file, check and key."""

import json
import textwrap
from pathlib import Path

import pytest

from initcheck.errors import InputError
from initcheck.suite import load_suite
from helpers import run_cli

SMALL = ("--samples", "1e5", "--no-progress")
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def write(tmp_path, text, name="suite.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_matrix_keys_expand_into_the_cross_product(tmp_path):
    path = write(tmp_path, """
        [defaults]
        frameworks = ["torch", "reference"]
        fans = [[784, 256]]
        shapes = ["128,64,3,3", [32, 16, 5]]

        [[check]]
        scheme = "kaiming"
        dist = ["normal", "uniform"]
        mode = ["fan_in", "fan_out"]
        dtype = ["float32", "float64"]
    """)
    suite = load_suite(path)
    # 2 dists x 2 modes x 2 dtypes x 3 layers x 2 frameworks
    assert len(suite.rows) == 48
    assert {r.plan.dtype for r in suite.rows} == {"float32", "float64"}
    assert {f.name for f in suite.frameworks} == {"torch", "reference"}
    assert all(r.samples == 10_000_000 for r in suite.rows)


def test_defaults_apply_only_where_the_scheme_has_the_key(tmp_path):
    path = write(tmp_path, """
        [defaults]
        samples = 20000
        frameworks = "reference"
        fans = [784, 256]
        gain = 2.0          # xavier's, not lecun's
        seed = 7
        alpha = 0.001

        [[check]]
        scheme = "xavier"
        dist = "normal"

        [[check]]
        scheme = "lecun"
        dist = "uniform"
    """)
    suite = load_suite(path)
    assert (suite.seed, suite.alpha) == (7, 0.001)
    xavier, lecun = suite.rows
    assert xavier.plan.law.std == pytest.approx(2.0 * (2.0 / 1040) ** 0.5)
    assert lecun.plan.law.std == pytest.approx((1.0 / 784) ** 0.5)
    assert xavier.samples == 20_000


@pytest.mark.parametrize("body, words", [
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\ndsit = "normal"\n', ["check 1", "'dsit'", "unknown key"]),
    ('[[check]]\nname = "k"\nscheme = "kaiming"\nfans = [784, 256]\ngain = 2.0\n',
     ["check 1 (k)", "'gain'", "does not apply to scheme kaiming"]),
    ('[[check]]\nscheme = "glorot"\n', ["check 1", "'scheme'", "unknown scheme 'glorot'"]),
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\ndist = 3\n', ["check 1", "'dist'", "must be a string"]),
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\n\n[[check]]\nscheme = "xavier"\nfans = "784x256"\n',
     ["check 2", "'fans'"]),
    ('[[check]]\nscheme = "xavier"\n', ["check 1", "fans are needed"]),
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\ndist = "gamma"\n', ["check 1", "gamma"]),
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\ndtype = "int8"\n', ["check 1", "'dtype'", "int8"]),
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\nframeworks = ["pytorch2"]\n', ["check 1", "pytorch2"]),
    ('[[check]]\nscheme = "custom"\nexpect = "xavier"\nfans = [784, 256]\n', ["check 1", "'function'"]),
    ('[[check]]\nscheme = "custom"\nfunction = "nowhere.py:init"\nexpect = "normal"\nstd = 0.1\n',
     ["check 1", "nowhere.py does not exist"]),
    ('[defaults]\ncolour = "red"\n\n[[check]]\nscheme = "xavier"\n', ["[defaults]", "'colour'"]),
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\nsamples = "lots"\n', ["check 1", "lots"]),
    ('[[check]]\nscheme = "xavier"\nfans = [784, 256]\nstrict = true\n', ["check 1", "'strict'"]),
    ('title = "x"\n', ["unknown top-level key 'title'"]),
    ('[defaults]\nsamples = "1e6"\n', ["no [[check]]"]),
    ('[[check]\nscheme = "xavier"\n', ["not valid TOML"]),
])
def test_a_malformed_suite_is_one_line_naming_file_check_and_key(tmp_path, capsys, body, words):
    path = write(tmp_path, body)
    with pytest.raises(InputError) as error:
        load_suite(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message
    for word in words:
        assert word in message, message
    code, out, err = run_cli(capsys, "suite", str(path))
    assert code == 2 and err.startswith("initcheck: error: ") and "Traceback" not in err


def test_a_missing_suite_file_exits_2(capsys, tmp_path):
    code, _, err = run_cli(capsys, "suite", str(tmp_path / "absent.toml"))
    assert code == 2 and "does not exist" in err


def test_custom_functions_are_found_beside_the_suite(tmp_path, capsys):
    (tmp_path / "inits").mkdir()
    (tmp_path / "inits" / "mine.py").write_text(
        "import numpy as np\n"
        "def good(shape, seed):\n"
        "    return np.random.default_rng(seed).normal(0.0, 0.05, shape)\n"
        "def wide(shape, seed):\n"
        "    return np.random.default_rng(seed).normal(0.0, 0.06, shape)\n"
    )
    path = write(tmp_path, """
        [defaults]
        samples = "2e5"
        expect = "normal"
        std = 0.05
        shapes = ["256,784"]

        [[check]]
        name = "good"
        scheme = "custom"
        function = "inits/mine.py:good"

        [[check]]
        name = "wide"
        scheme = "custom"
        function = "inits/mine.py:wide"
        frameworks = "custom"      # no reference row
    """)
    report = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "suite", str(path), "--json", str(report), "--no-progress")
    assert code == 1, out + err
    rows = json.loads(report.read_text())["rows"]
    assert [(r["framework"], r["api"].split(":")[-1], r["verdict"]) for r in rows] == [
        ("custom", "good(shape, seed)", "PASS"), ("reference", "numpy normal sampler", "PASS"),
        ("custom", "wide(shape, seed)", "FAIL"),
    ]


def test_a_suite_check_is_the_same_rows_as_the_command(tmp_path, capsys):
    """Same keys, same seeds, same numbers: a suite row is the command's row."""
    path = write(tmp_path, """
        [[check]]
        scheme = "xavier"
        dist = ["normal", "uniform"]
        fans = [784, 256]
        shapes = "128,64,3,3"
        frameworks = ["torch", "reference"]
    """)
    suite_json, command_json = tmp_path / "suite.json", tmp_path / "command.json"
    assert run_cli(capsys, "suite", str(path), "--json", str(suite_json), *SMALL)[0] == 0
    assert run_cli(capsys, "xavier", "--fan-in", "784", "--fan-out", "256", "--shape", "128,64,3,3",
                   "-f", "torch,reference", "--json", str(command_json), *SMALL)[0] == 0
    suite_rows = {r["key"]: r["statistics"]["power_sums"] for r in json.loads(suite_json.read_text())["rows"]}
    command_rows = {r["key"]: r["statistics"]["power_sums"] for r in json.loads(command_json.read_text())["rows"]}
    assert suite_rows == command_rows and len(suite_rows) == 8


@pytest.mark.parametrize("name", ["default", "ci", "gpu"])
def test_shipped_suites_parse(name):
    """The shipped suites are valid (gpu.toml needs CUDA: without it, the one-line error)."""
    try:
        suite = load_suite(CONFIGS / f"{name}.toml")
    except InputError as error:
        assert name == "gpu" and "cuda" in str(error)
        return
    assert suite.rows


def test_default_suite_passes(capsys):
    code, out, err = run_cli(capsys, "suite", str(CONFIGS / "default.toml"), *SMALL)
    assert code == 0, out + err
    assert "FAIL" not in out


def test_reports_plots_and_compare_from_the_command_line(tmp_path, capsys):
    """--json, --junit and --plot from a suite, then compare: itself (exit 0)
    and after the planted function changed (exit 1, the row named)."""
    import xml.etree.ElementTree as ElementTree

    pytest.importorskip("matplotlib")
    source = tmp_path / "mine.py"
    source.write_text("import numpy as np\n"
                      "def init(shape, seed):\n"
                      "    return np.random.default_rng(seed).normal(0.0, 0.05, shape)\n")
    path = write(tmp_path, """
        [[check]]
        scheme = "custom"
        function = "mine.py:init"
        expect = "normal"
        std = 0.05
        shapes = "256,784"
        samples = "5e5"
    """)
    old, xml, plots = tmp_path / "old.json", tmp_path / "old.xml", tmp_path / "plots"
    code, out, err = run_cli(capsys, "suite", str(path), "--json", str(old), "--junit", str(xml),
                             "--plot", str(plots), "--no-progress", "-q")
    assert code == 0, out + err
    suites = ElementTree.parse(xml).getroot()
    assert suites.get("tests") == "2" and suites.get("failures") == "0"
    pngs = sorted(plots.glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)

    assert run_cli(capsys, "compare", str(old), str(old))[0] == 0
    source.write_text(source.read_text().replace("0.05, shape", "0.052, shape"))  # std 4% too large
    new = tmp_path / "new.json"
    assert run_cli(capsys, "suite", str(path), "--json", str(new), "--plot", str(tmp_path / "failing"),
                   "--plot-failures", "--no-progress", "-q")[0] == 1
    assert len(list((tmp_path / "failing").glob("*.png"))) == 1  # the custom row, not the reference
    code, out, err = run_cli(capsys, "compare", str(old), str(new))
    assert code == 1, out + err
    assert "custom" in out and "regression" in out


def test_plot_without_matplotlib_is_an_input_error_before_sampling(capsys, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run_cli(capsys, "xavier", "--fan-in", "10", "--fan-out", "10", "-f", "reference",
                             "--plot", str(tmp_path / "p"), *SMALL)
    assert code == 2 and "matplotlib" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("option", ["--json", "--junit"])
def test_a_report_path_that_cannot_be_written_is_an_input_error(capsys, tmp_path, option):
    code, out, err = run_cli(capsys, "xavier", "--fan-in", "10", "--fan-out", "10", "-f", "reference",
                             option, str(tmp_path / "missing" / "report"), *SMALL)
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    assert out == ""  # refused before any sampling


def test_device_on_the_command_line_overrides_the_suite(tmp_path, capsys):
    path = write(tmp_path, """
        [[check]]
        scheme = "xavier"
        fans = [784, 256]
        frameworks = "reference"
        device = "cuda"
    """)
    suite = load_suite(path, device_override="cpu")
    assert {r.plan.device for r in suite.rows} == {"cpu"}
    code, _, err = run_cli(capsys, "suite", str(path), "--device", "tpu", *SMALL)
    assert code == 2 and "unknown device 'tpu'" in err
    code, out, err = run_cli(capsys, "suite", str(path), "--device", "cpu", *SMALL)
    assert code == 0, out + err


def test_a_framework_the_environment_lacks_gives_skip_rows(capsys, tmp_path, monkeypatch):
    """One suite file runs in every CI environment: a named framework that is not
    installed there is SKIP with how to install it, the others run."""
    from initcheck import frameworks

    real = frameworks.installed
    monkeypatch.setattr(frameworks, "installed", lambda name: name != "paddle" and real(name))
    suite_file = tmp_path / "s.toml"
    suite_file.write_text('[[check]]\nscheme = "xavier"\ndist = "uniform"\nframeworks = ["paddle", "reference"]\n'
                          'fans = [[64, 32]]\nsamples = "1e4"\n')
    report = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "suite", suite_file, "--json", report, "--no-progress")
    assert code == 0, out + err
    rows = {row["framework"]: row for row in json.loads(report.read_text())["rows"]}
    assert rows["reference"]["verdict"] == "PASS"
    assert rows["paddle"]["verdict"] == "SKIP"
    assert rows["paddle"]["reason"] == "paddle is not installed (pip install 'initcheck[paddle]')"
    code, out, err = run_cli(capsys, "xavier", "--fan-in", 64, "--fan-out", 32, "-f", "paddle", "-n", "1e4")
    assert code == 2 and "not installed" in err  # on the command line it is a mistake, said at once
