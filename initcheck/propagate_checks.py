"""The theory of variance propagation, and the check of a measured stack against it.

**Theory** (Glorot and Bengio, 2010, eq. 5-7; He et al., 2015, eq. 7-10).
With ``x`` of unit variance, weights of second moment ``v_l = E[(W^l)²]`` and
``p_0 = E[x²] = 1``, the pre-activations and activations of layer l have

    q_l = n_{l-1} v_l p_{l-1},        p_l = m(q_l)   (forward),
    d_L = c,                          d_{l-1} = n_l v_l c d_l   (backward),

``p_l = E[(h^l)²]``, ``d_l = E[(∂C/∂s^l)²]``, ``m`` and ``c = E[f'(s)²]`` of
the activation:

* linear: m(q) = q, c = 1, **exact in expectation**: E[(s^l)²] = n_{l-1} v_l
  E[(h^{l-1})²] for any h independent of W^l, and d^l (the gradient from
  iid unit-variance output gradients through W^{l+1..L}) is independent of W^l.
  So p_l = Var[x] prod n_{l-1} v_l (Glorot's Var[z^i]) and d_l = prod n_l v_l
  (Glorot's Var[∂C/∂s^i]).  ``standard`` (v = 1/(3n)) gives (1/3)^l,
  ``xavier`` on equal widths 1.
* relu: m(q) = q / 2, **exact in expectation forward**: s^l is symmetric (W^l
  is), so E[(s⁺)²] = E[s²] / 2; this is the second moment He keeps (E[x²],
  not Var[x]), and kaiming (v = 2 / n_in) gives p_l = 1.  Backward (c = 1/2)
  rests on He's assumption that f'(s^l) and the gradient reaching it are
  independent, which holds only as the widths grow: informational.
* tanh, softsign: m(q) = q, c = 1 (tanh(s) ~ s near 0); sigmoid: m(q) = 1/4 +
  q / 16, c = 1/16 (sigmoid(s) ~ 1/2 + s/4): the paper's linear-regime
  approximation, informational.

The per-example weight gradient's variance is the paper's product
p_{l-1} d_l (eq. 6), informational everywhere (it assumes the activations and
the gradients independent).

**Check** (where the theory is exact).  The measured mean square of a layer is
a product of factors of conditional mean 1 over the theory's value:

    P_l / p_l = (mean x²) prod_{m <= l} r_m [t_m],   D_l / d_l = (mean g²) prod_{m > l} r'_m,

``r_m`` = mean (s^m)² / (n_{m-1} v_m mean (h^{m-1})²), of conditional mean 1
given the layers below (the columns of W^m are iid and independent of
h^{m-1}); its conditional relative variance is exactly
[2 tr(G²) + (kappa - 3) sum G_jj²] / (n_m (tr G)²), G = h^{m-1}ᵀ h^{m-1},
kappa the weight law's kurtosis (:func:`initcheck.propagate._relative_quadratic_variance`).
For ReLU ``t_m`` = 2 mean (s⁺)² / mean s², of conditional mean 1 given the
columns of s^m up to sign, relative variance sum (A_k - B_k)² / (sum (A_k +
B_k))².  Backward (linear) ``r'_m`` is the same with the rows of W^m and
G = d^mᵀ d^m.  The weights are one draw, so these spreads, not the iid formula
of a sample variance, are the measured variance's sampling spread; they are
computed from the run itself (scale-free, so a wrong gain does not hide in
them).  Summed (a martingale: each factor's conditional mean is 1 given what
came before) they give V, and

    z = (log(measured / theory) + V / 2) / sqrt(V)

is close to N(0, 1) (V/2: the log's bias).  Each factor averages many iid
terms, but not infinitely many: a factor of relative variance rho is about a
chi-square of nu = 2 / rho degrees of freedom over nu, so the sum's excess
kurtosis is about 6 sum rho³ / (sum rho)², the one of Student's t with

    nu = (sum rho)² / sum rho³ + 4

degrees of freedom, and the p-value is t_nu's (at the command's widths nu is
in the thousands and t_nu is the normal; on narrow ReLU stacks it widens the
tails, which the log's slight skew there needs).  A factor of fewer than
:data:`MIN_DEGREES` degrees of freedom is too skewed for either, and the
layer is informational with that reason.  The two-sided p-values of every
check of one call form one Holm family (:func:`initcheck.policy.holm`),
family-wise false-failure rate alpha.  The tolerance shown is the relative
deviation the check allows at its Holm level: exp(t_crit sqrt(V) - V/2) - 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable

import numpy as np
from scipy.special import stdtr, stdtrit

from initcheck.policy import holm

#: Effective degrees of freedom every factor of a checked layer must have.
MIN_DEGREES = 100
SCHEMA = "initcheck-propagate/1"


@dataclass(frozen=True)
class Regime:
    """What the theory says for one activation, and where it is exact."""

    #: E[f(s)²] for s symmetric of variance q.
    mean_square: Callable[[float], float]
    #: E[f'(s)²].
    slope_square: float
    exact_forward: bool
    exact_backward: bool
    note: str


REGIMES = {
    "linear": Regime(lambda q: q, 1.0, True, True, "linear: exact in expectation, both directions checked"),
    "relu": Regime(lambda q: q / 2.0, 0.5, True, False,
                   "relu: forward E[h²] halves per layer, exact in expectation (checked); backward rests on "
                   "He's independence of f'(s) and the gradient (informational)"),
    "tanh": Regime(lambda q: q, 1.0, False, False, "tanh: linear-regime approximation tanh(s) ~ s (informational)"),
    "softsign": Regime(lambda q: q, 1.0, False, False,
                       "softsign: linear-regime approximation softsign(s) ~ s (informational)"),
    "sigmoid": Regime(lambda q: 0.25 + q / 16.0, 1.0 / 16.0, False, False,
                      "sigmoid: linear-regime approximation sigmoid(s) ~ 1/2 + s/4 (informational)"),
}


@dataclass(frozen=True)
class Check:
    """One measured variance against the theory."""

    statistic: float
    pvalue: float
    #: Relative standard deviation of the measured value, sqrt(V).
    spread: float
    level: float | None = None
    passed: bool | None = None
    #: Relative deviation allowed at ``level``, one each side (low, high).
    tolerance: tuple[float, float] | None = None
    #: Degrees of freedom of the t law of ``statistic`` (module docstring).
    degrees: float = math.inf

    def to_dict(self) -> dict:
        return {"z": self.statistic, "pvalue": self.pvalue, "relative_spread": self.spread,
                "degrees_of_freedom": self.degrees, "level": self.level, "passed": self.passed,
                "tolerance": None if self.tolerance is None else {"low": self.tolerance[0],
                                                                  "high": self.tolerance[1]}}


@dataclass(frozen=True)
class LayerResult:
    index: int
    fan_in: int
    fan_out: int
    forward_variance: float
    theory_forward_variance: float
    backward_variance: float
    theory_backward_variance: float
    weight_gradient_variance: float
    theory_weight_gradient_variance: float
    saturated: float | None
    #: PASS, FAIL or INFO (not checked: ``forward_reason`` says why).
    forward_verdict: str
    backward_verdict: str
    forward_check: Check | None = None
    backward_check: Check | None = None
    forward_reason: str = ""
    backward_reason: str = ""
    activations: np.ndarray = field(default=None, repr=False, compare=False)
    gradients: np.ndarray = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "layer": self.index, "fan_in": self.fan_in, "fan_out": self.fan_out,
            "forward_variance": self.forward_variance, "theory_forward_variance": self.theory_forward_variance,
            "backward_variance": self.backward_variance, "theory_backward_variance": self.theory_backward_variance,
            "weight_gradient_variance": self.weight_gradient_variance,
            "theory_weight_gradient_variance": self.theory_weight_gradient_variance,
            "saturated": self.saturated,
            "forward_verdict": self.forward_verdict, "backward_verdict": self.backward_verdict,
            "forward_check": None if self.forward_check is None else self.forward_check.to_dict(),
            "backward_check": None if self.backward_check is None else self.backward_check.to_dict(),
            "forward_reason": self.forward_reason, "backward_reason": self.backward_reason,
        }


@dataclass(frozen=True)
class PropagationRow:
    init: str
    framework: str
    api: str
    activation: str
    widths: tuple[int, ...]
    batch: int
    layers: tuple[LayerResult, ...]
    #: PASS, FAIL, INFO (nothing checked) or SKIP (the framework has no such initializer).
    verdict: str
    reason: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"init": self.init, "framework": self.framework, "api": self.api, "activation": self.activation,
                "widths": list(self.widths), "batch": self.batch, "verdict": self.verdict, "reason": self.reason,
                "seconds": round(self.seconds, 3), "layers": [layer.to_dict() for layer in self.layers]}


@dataclass(frozen=True)
class Propagation:
    """Every init's stack, decided under one Holm family; ``bool()``: no check failed."""

    rows: tuple[PropagationRow, ...]
    alpha: float
    #: The call's settings (read-only): layers, widths, activation, batch, seed, alpha, dist, inits, frameworks.
    settings: Mapping = field(compare=False)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def __bool__(self) -> bool:
        return self.passed

    @property
    def passed(self) -> bool:
        return not any(row.verdict == "FAIL" for row in self.rows)

    @property
    def checks(self) -> int:
        return sum(check is not None for row in self.rows for layer in row.layers
                   for check in (layer.forward_check, layer.backward_check))

    @property
    def exit_code(self) -> int:
        """1 when a check failed, 3 when every row was skipped, else 0."""
        if not self.passed:
            return 1
        return 3 if all(row.verdict == "SKIP" for row in self.rows) else 0

    @property
    def verdicts(self) -> dict[str, int]:
        return {v.lower(): sum(row.verdict == v for row in self.rows) for v in ("PASS", "FAIL", "INFO", "SKIP")}

    def row(self, init: str, framework: str | None = None) -> PropagationRow:
        return next(r for r in self.rows if r.init == init and (framework is None or r.framework == framework))

    def to_dict(self, env: dict | None = None, code: int | None = None) -> dict:
        """The report of schema initcheck-propagate/1 (initcheck/schemas/propagate-1.json)."""
        import datetime
        import sys

        return {
            "schema": SCHEMA,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": sys.argv,
            "environment": env or {},
            "settings": {key: list(value) if isinstance(value, tuple) else value
                         for key, value in self.settings.items()},
            "theory": REGIMES[self.settings["activation"]].note,
            "verdicts": self.verdicts,
            "exit_code": self.exit_code if code is None else code,
            "rows": [row.to_dict() for row in self.rows],
        }


def theory(widths: tuple[int, ...], second_moments: list[float], regime: Regime):
    """(p_l, d_l, weight-gradient variance) for l = 1..L (module docstring)."""
    count = len(widths) - 1
    forward, previous = [], 1.0
    for l in range(count):
        q = widths[l] * second_moments[l] * previous
        previous = regime.mean_square(q)
        forward.append(previous)
    backward = [0.0] * count
    backward[-1] = regime.slope_square
    for l in range(count - 1, 0, -1):
        backward[l - 1] = widths[l + 1] * second_moments[l] * regime.slope_square * backward[l]
    inputs = [1.0, *forward[:-1]]
    return forward, backward, [inputs[l] * backward[l] for l in range(count)]


def _statistic(measured: float, predicted: float, spreads: list[float]) -> Check | str:
    """The check's z and p-value, or the reason there is none."""
    weakest = min(2.0 / s if s > 0 else math.inf for s in spreads)
    if not math.isfinite(measured) or measured <= 0.0:
        return Check(math.inf, 0.0, math.nan)
    if weakest < MIN_DEGREES:
        return (f"a factor of {weakest:.0f} effective degrees of freedom (< {MIN_DEGREES}: widths or batch too "
                "small for a normal tolerance)")
    variance = sum(spreads)
    z = (math.log(measured / predicted) + variance / 2.0) / math.sqrt(variance)
    degrees = variance**2 / sum(s**3 for s in spreads) + 4.0
    return Check(z, float(2.0 * stdtr(degrees, -abs(z))), math.sqrt(variance), degrees=degrees)


def decide(runs, alpha: float, settings: dict) -> Propagation:
    """Theory, checks, Holm over every check of every run, verdicts."""
    regime = REGIMES[settings["activation"]]
    pending = []  # (run, [per layer: dict of fields, forward Check|str|None, backward Check|str|None])
    for run in runs:
        if run.skipped:
            pending.append((run, []))
            continue
        forward, backward, weight = theory(run.widths, [layer.weight_second_moment for layer in run.layers], regime)
        layers = []
        for i, layer in enumerate(run.layers):
            forward_check = backward_check = None
            if regime.exact_forward:
                spreads = [run.input_spread] + [m.forward_increment for m in run.layers[:i + 1]]
                forward_check = _statistic(layer.forward_mean_square, forward[i], spreads)
            if regime.exact_backward:
                spreads = [run.output_spread] + [m.backward_increment for m in run.layers[i + 1:]]
                backward_check = _statistic(layer.backward_mean_square, backward[i], spreads)
            layers.append((layer, forward[i], backward[i], weight[i], forward_check, backward_check))
        pending.append((run, layers))

    family = [check for _, layers in pending for layer in layers for check in layer[4:] if isinstance(check, Check)]
    decided = dict(zip(map(id, family), holm([c.pvalue for c in family], alpha)))

    def settle(check, exact: bool):
        if check is None or isinstance(check, str):
            reason = check or ("" if exact else regime.note)
            return None, "INFO", reason
        level, rejected = decided[id(check)]
        critical = -float(stdtrit(check.degrees, level / 2.0))
        variance = check.spread**2
        tolerance = None
        if math.isfinite(variance):
            tolerance = (math.exp(-critical * check.spread - variance / 2.0) - 1.0,
                         math.exp(critical * check.spread - variance / 2.0) - 1.0)
        final = Check(check.statistic, check.pvalue, check.spread, level, not rejected, tolerance, check.degrees)
        return final, "FAIL" if rejected else "PASS", ""

    rows = []
    for run, layers in pending:
        if run.skipped:
            rows.append(PropagationRow(run.init, run.framework, run.api, run.activation, run.widths, run.batch, (),
                                       "SKIP", run.reason, run.seconds))
            continue
        results = []
        for layer, p, d, w, forward_check, backward_check in layers:
            fc, fv, fr = settle(forward_check, regime.exact_forward)
            bc, bv, br = settle(backward_check, regime.exact_backward)
            results.append(LayerResult(
                layer.index, layer.fan_in, layer.fan_out, layer.forward_mean_square, p, layer.backward_mean_square,
                d, layer.weight_gradient_mean_square, w, layer.saturated, fv, bv, fc, bc, fr, br,
                layer.activations, layer.gradients))
        verdicts = {v for r in results for v in (r.forward_verdict, r.backward_verdict)}
        verdict = "FAIL" if "FAIL" in verdicts else "PASS" if "PASS" in verdicts else "INFO"
        failing = [f"layer {r.index} {direction}" for r in results
                   for direction, v in (("forward", r.forward_verdict), ("backward", r.backward_verdict))
                   if v == "FAIL"]
        reason = ("the measured variance leaves its tolerance at " + ", ".join(failing)) if failing else ""
        rows.append(PropagationRow(run.init, run.framework, run.api, run.activation, run.widths, run.batch,
                                   tuple(results), verdict, reason, run.seconds))
    frozen = MappingProxyType({key: tuple(value) if isinstance(value, list) else value
                               for key, value in settings.items()})
    return Propagation(tuple(rows), alpha, frozen)
