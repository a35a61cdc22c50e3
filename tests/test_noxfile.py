"""noxfile.py: its sessions parse, every environment is pinned, and ``versions``
compares each framework's versions in order.  Nothing is installed here (the
sessions themselves are run by ``nox -s versions``)."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

nox = pytest.importorskip("nox")

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^[A-Za-z0-9_.-]+==\d+(\.\d+)*$")


@pytest.fixture(scope="module")
def noxfile():
    from nox import registry

    before, default_sessions = dict(registry.get()), nox.options.sessions
    spec = importlib.util.spec_from_file_location("initcheck_noxfile", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    sessions = {name: func for name, func in registry.get().items() if name not in before}
    yield module, sessions
    for name in sessions:
        registry._REGISTRY.pop(name, None)
    sys.modules.pop(spec.name, None)
    nox.options.sessions = default_sessions


def test_every_pinned_environment_is_a_session_of_exact_pins(noxfile):
    module, sessions = noxfile
    assert {pin.session for pin in module.PINNED} | {"versions", "requirements"} == set(sessions)
    for pin in module.PINNED:
        assert pin.session == f"{pin.framework}-{pin.version}"
        assert pin.requirements and all(PIN.match(r) for r in pin.requirements), pin.requirements
        assert f"{pin.framework}=={pin.version}" in pin.requirements
        # a torch other than the CPU wheel on this disk is a multi-GB CUDA download
        assert all(r == "torch==2.13.0" for r in pin.requirements if r.startswith("torch=="))
        assert sessions[pin.session].venv_backend == "venv"


def test_two_released_versions_of_jax_and_of_keras_on_one_tensorflow(noxfile):
    module, _ = noxfile
    versions = {}
    for pin in module.PINNED:
        versions.setdefault(pin.framework, []).append(pin)
    assert [p.version for p in versions["jax"]] == ["0.4.38", "0.10.2"]
    assert all(f"jaxlib=={p.version}" in p.requirements for p in versions["jax"])
    assert [p.version for p in versions["keras"]] == ["3.12.0", "3.15.1"]
    tensorflow = {r for p in versions["keras"] for r in p.requirements if r.startswith("tensorflow==")}
    assert tensorflow == {"tensorflow==2.21.0"}  # only Keras moves between the two


def test_versions_requires_every_pinned_session_and_compares_old_to_new(noxfile):
    module, sessions = noxfile
    assert sessions["versions"].requires == [pin.session for pin in module.PINNED]
    assert module.nox.options.sessions == ["versions"]
    assert [(old.session, new.session) for old, new in module.pairs()] == [
        ("jax-0.4.38", "jax-0.10.2"), ("keras-3.12.0", "keras-3.15.1")]
    command = module._suite_command(module.PINNED[0])
    assert command[:3] == ["initcheck", "suite", ".nox/reports/ci-jax.toml"]
    assert command[command.index("--json") + 1] == ".nox/reports/jax-0.4.38.json"
    assert module.RESULTS == ROOT / "benchmarks" / "results" / "versions"


def test_the_environments_are_not_committed():
    assert ".nox/" in (ROOT / ".gitignore").read_text().splitlines()


def test_each_environment_runs_the_ci_suite_on_its_framework_and_the_reference(noxfile):
    import tomllib

    module, _ = noxfile
    original = (ROOT / module.SUITE).read_text()
    restricted = module.framework_suite("jax", original)
    assert tomllib.loads(restricted)["defaults"]["frameworks"] == ["jax", "reference"]
    assert restricted.replace('frameworks = ["jax", "reference"]   # added by noxfile.py\n', "") == original
    with pytest.raises(ValueError, match="names its frameworks"):
        module.framework_suite("jax", restricted)
    with pytest.raises(ValueError, match="no \\[defaults\\]"):
        module.framework_suite("jax", "[[check]]\nscheme = 'xavier'\n")
