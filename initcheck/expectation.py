"""What a parameter of a model should follow, and where that claim comes from.

``initcheck model`` gives every parameter an :class:`Expectation`: the law its
values must follow, the source of that claim (a rule of ``--rules``, a preset,
or the documented default of the parameter's layer type in its framework) and
what the law was built from, in words.  Some parameters are partly fixed: an
embedding's padding row is exactly zero while the other rows follow the law
(``exact_rows``).  Structured laws (orthogonal, sparse, eye, dirac) add checks
made on each whole draw (``draw_checks``, see :mod:`initcheck.draw_checks`).

When no source knows the parameter, the model engine gets a reason instead
(:class:`Unknown`) and the row is a SKIP that says how to add a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from initcheck.laws import Law


@dataclass(frozen=True)
class Expectation:
    """The law of one parameter.

    ``law``     the law of every value, except the ``exact_rows``;
    ``source``  where it comes from: ``rule 2 (match "*.weight")``,
                ``transformers preset``, ``torch.nn.Linear default``;
    ``text``    how the law follows from the layer, for people:
                ``kaiming_uniform_(a=√5): U(±1/√fan_in), fan_in 784``;
    ``exact_rows``  (index, value) pairs: rows along the first axis whose every
                value is exactly ``value`` (an embedding's padding row);
    ``draw_checks`` a factory of per-draw checks for structured laws, or None.
    """

    law: Law
    source: str
    text: str = ""
    exact_rows: tuple[tuple[int, float], ...] = ()
    draw_checks: Callable[[], list] | None = None


@dataclass(frozen=True)
class Unknown:
    """No source knows the law of a parameter: the row is a SKIP with ``reason``."""

    reason: str
