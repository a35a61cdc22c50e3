"""The pytest plugin: verify initializers inside any project's test suite.

Installed with initcheck (entry point ``pytest11``), it adds the fixture
``initcheck_assert``: call it like :func:`initcheck.verify`; it returns the
:class:`~initcheck.results.Verification` when it passed, and otherwise fails
the test with the failing rows as the table shows them (law, N, mean and std
with their z, bounds, KS D against its critical value, the failed checks with
p-value and Holm level, the power statement)::

    import initcheck

    def test_my_init(initcheck_assert):
        initcheck_assert(my_init, initcheck.Normal(0.0, 0.02), shape=(768, 768))

    def test_torch_xavier(initcheck_assert):
        initcheck_assert(initcheck.xavier("uniform"), framework="torch", fan_in=784, fan_out=256)

Results are deterministic: the same seed gives the same numbers.  Command-line
options set the defaults of every call (a call's own keywords win):

    --initcheck-samples N   values per row (default 10^7; initcheck_model: per parameter, 10^6)
    --initcheck-seed S      seed (default 0)
    --initcheck-alpha A     family-wise false-failure rate of each call (default 1e-6)

For whole models, the fixture ``initcheck_model`` takes the arguments of
:func:`initcheck.verify_model` and fails the test with every parameter that
failed, each as the table shows it::

    def test_my_model_init(initcheck_model):
        initcheck_model("models.py:build", rules="init_rules.toml", samples=10**5)

Outside pytest, :func:`initcheck.assert_law` does the same with an
``AssertionError``.  Nothing is imported from initcheck until a test asks for
the fixture.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("initcheck", "initcheck: weight-initialization laws")
    group.addoption("--initcheck-samples", default=None, metavar="N",
                    help="values per row for initcheck_assert (default 1e7), per parameter for initcheck_model (default 1e6)")
    group.addoption("--initcheck-seed", type=int, default=None, metavar="S",
                    help="seed for initcheck_assert (default 0)")
    group.addoption("--initcheck-alpha", type=float, default=None, metavar="A",
                    help="family-wise false-failure rate of each initcheck_assert call (default 1e-6)")


@pytest.fixture
def initcheck_assert(request):
    """``initcheck_assert(target, expected=None, **options)``: :func:`initcheck.verify`
    that fails the test, with the table's rows as the message, unless it passed."""
    from initcheck.api import failure_message, verify

    defaults = _defaults(request.config)

    def check(target, expected=None, **options):
        verification = verify(target, expected, **{**defaults, **options})
        if not verification:
            pytest.fail(failure_message(verification), pytrace=False)
        return verification

    return check


def _defaults(config) -> dict:
    from initcheck.errors import InputError
    from initcheck.rows import parse_samples

    defaults = {}
    try:
        if config.getoption("initcheck_samples") is not None:
            defaults["samples"] = parse_samples(config.getoption("initcheck_samples"))
    except InputError as error:
        raise pytest.UsageError(f"--initcheck-samples: {error}") from None
    if config.getoption("initcheck_seed") is not None:
        defaults["seed"] = config.getoption("initcheck_seed")
    if config.getoption("initcheck_alpha") is not None:
        defaults["alpha"] = config.getoption("initcheck_alpha")
    return defaults


@pytest.fixture
def initcheck_model(request):
    """``initcheck_model(target, **options)``: :func:`initcheck.verify_model` that
    fails the test, naming every parameter that failed, unless it passed."""
    from initcheck.api import failure_message
    from initcheck.model import verify_model

    defaults = _defaults(request.config)

    def check(target, **options):
        verification = verify_model(target, **{**defaults, **options})
        if not verification:
            pytest.fail(f"{verification.summary_line}\n{failure_message(verification)}", pytrace=False)
        return verification

    return check
