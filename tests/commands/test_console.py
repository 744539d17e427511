"""Table formatting of figures: an undefined one is ``-``, never a number."""

from __future__ import annotations

import math

from mqc.commands._console import fmt_num, fmt_pct


def test_undefined_figures_print_as_a_dash():
    for x in (None, math.nan, math.inf, -math.inf):
        assert fmt_num(x, 2) == "-" and fmt_pct(x) == "-"
    assert (fmt_num(0.0, 2), fmt_pct(0.0), fmt_pct(-0.00001)) == ("0.00", "0.00%", "0.00%")
