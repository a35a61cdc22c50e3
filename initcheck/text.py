"""A decided row as plain text: what JUnit reports, pytest failures and
``str(result)`` print.

* :func:`row_label`: ``INITIALIZER | LAYER | DTYPE DEVICE`` on one line;
* :func:`row_text`: the row by its verdict.  FAIL: the reason, the row as the
  table shows it (law, N, mean and std with their z, bounds, KS D against its
  critical value), every failed check with statistic, threshold, p-value and
  Holm level, and the power statement; WARN: the cause and the same details;
  PASS: one line; SKIP: the reason.
"""

from __future__ import annotations

import re

from initcheck.checks import POWER
from initcheck.draw_checks import NAMES as DRAW_CHECKS
from initcheck.results import RowResult

#: Characters XML 1.0 does not allow, even escaped.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text) -> str:
    """``text`` as a string XML 1.0 can hold (ElementTree escapes the rest)."""
    return _INVALID_XML.sub("", str(text))


def flat(text) -> str:
    """One line: multi-line labels (initializer, layer) joined with spaces."""
    return " ".join(clean(text).split())


def _number(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _signed(value: float, decimals: int = 2) -> str:
    """A z score or a percentage: fixed decimals, unless it is huge (a broken sampler)."""
    return f"{value:+.{decimals}f}" if abs(value) < 1e6 else f"{value:+.3g}"


def row_label(result: RowResult) -> str:
    """``initializer | layer | dtype device``, each flattened to one line."""
    parts = [flat(result.name)] if result.name else []
    parts += [flat(result.initializer), flat(result.layer)]
    where = " ".join(p for p in (result.dtype, result.device) if p and p != "?")
    if where:
        parts.append(flat(where))
    return " | ".join(p for p in parts if p)


def _law_text(result: RowResult) -> str:
    text = result.law.describe()
    if result.summary is not None and result.summary.dtype16:
        text += f", rounded to {result.summary.dtype16} (exact bit-pattern counts)"
    return text


def _table_lines(result: RowResult) -> list[str]:
    """The row as the table shows it: law, N, mean and std against the law,
    bounds, KS, the other checks."""
    summary, law = result.summary, result.law
    lines = [
        f"framework: {result.framework}",
        f"api: {flat(result.api)}",
        f"shape: {'x'.join(map(str, result.shape)) or '?'}",
        f"law: {_law_text(result)}",
    ]
    count = f"N: {summary.total:,}"
    if summary.nonfinite:
        count += f" ({summary.count:,} finite, {summary.nan:,} NaN, {summary.posinf:,} +Inf, {summary.neginf:,} -Inf)"
    lines.append(count)
    mean, variance = result.check("mean"), result.check("variance")
    if mean is not None:
        lines.append(f"mean: {summary.mean:.4g} (law {law.mean:.4g}), z = {_signed(mean.statistic)}")
    if variance is not None:
        relative = summary.std / law.std - 1.0
        lines.append(
            f"std: {summary.std:.4g} (law {law.std:.4g}, {_signed(relative * 100)}%), z = {_signed(variance.statistic)}"
        )
    if summary.count:
        lines.append(f"min, max: [{summary.minimum:.4g}, {summary.maximum:.4g}]")
    else:
        lines.append("min, max: no finite value")
    ks = result.check("ks")
    if ks is not None:
        lines.append(f"KS D / crit: {ks.statistic:.3g} / {_number(ks.threshold, '.3g')}")
    return lines


def _check_line(check) -> str:
    line = f"{check.name}: {clean(check.detail)}"
    if check.statistical:
        line += (
            f" (statistic {_number(check.statistic, '.4g')}, threshold {_number(check.threshold, '.4g')},"
            f" p = {check.pvalue:.3g}, Holm level {_number(check.level, '.3g')})"
        )
    return line


def _power_line(result: RowResult) -> str | None:
    texts = [c.power_text for c in result.checks if c.power_text]
    if not texts or result.summary is None:
        return None
    return f"power at N = {result.summary.count:,} (probability {POWER}): detects " + ", ".join(texts)


def failure_text(result: RowResult) -> str:
    lines = [f"FAIL: {clean(result.reason)}", *_table_lines(result), "failed checks:"]
    lines += [f"  {_check_line(c)}" for c in result.checks if not c.passed]
    passed = [c.name for c in result.checks if c.passed]
    if passed:
        lines.append(f"passed checks: {', '.join(passed)}")
    power = _power_line(result)
    if power:
        lines.append(power)
    return "\n".join(lines) + "\n"


def pass_line(result: RowResult) -> str:
    """One line: the law, N, and what each check saw."""
    summary = result.summary
    verdict = "PASS (partial: interrupted, checked on what was drawn)" if result.partial else "PASS"
    parts = [f"{verdict}: {_law_text(result)}", f"N = {summary.total:,}"]
    mean, variance, ks = result.check("mean"), result.check("variance"), result.check("ks")
    if mean is not None:
        parts.append(f"mean {summary.mean:.3g} (z = {_signed(mean.statistic, 1)})")
    if variance is not None:
        relative = summary.std / result.law.std - 1.0
        parts.append(f"std {summary.std:.4g} ({_signed(relative * 100)}%, z = {_signed(variance.statistic, 1)})")
    if ks is not None:
        parts.append(f"KS D {ks.statistic:.2g} / {_number(ks.threshold, '.2g')}")
    constant = result.check("constant")
    if constant is not None:
        parts.append(clean(constant.detail))
    others = [c.name for c in result.checks
              if c.name in ("finite", "support", "spikes", "independence", *DRAW_CHECKS)]
    if others:
        parts.append(" ".join(f"{name} ok" for name in others))
    power = [c.power_text for c in result.checks if c.power_text]
    line = ", ".join(parts)
    if power:
        line += f"; detects {', '.join(power)}"
    return line + "\n"


def warn_text(result: RowResult) -> str:
    lines = [
        f"WARN: {clean(result.reason)}",
        "WARN is not a failure: 16-bit rounding at the bounds explains every failing check. "
        "Under --strict this row is FAIL.",
        *_table_lines(result),
        "checks that fail before the WARN rule:",
    ]
    lines += [f"  {_check_line(c)}" for c in result.checks if not c.passed]
    power = _power_line(result)
    if power:
        lines.append(power)
    return "\n".join(lines) + "\n"


def row_text(result: RowResult) -> str:
    """The row in plain text, headed by its verdict, framework and label."""
    head = f"{result.verdict} {result.framework} | {row_label(result)}"
    if result.summary is None:
        return f"{head}\n{result.verdict}: {clean(result.reason) or 'not run'}\n"
    if result.verdict == "FAIL":
        return f"{head}\n{failure_text(result)}"
    if result.verdict == "WARN":
        return f"{head}\n{warn_text(result)}"
    return f"{head}\n{pass_line(result)}"
