"""How the figures write numbers on their axes.

Plotly's default writes small numbers with SI prefixes: 0.0001 becomes "100µ" (in some fonts
"100u"), which a learner reads as a unit. Learning rates and gradient norms are written as
decimals (0.001) or, when very small, in e-notation (1e-7).
"""

from __future__ import annotations

from typing import Any

# d3's "~g": six significant digits, trailing zeros dropped; e-notation below 1e-6 and above 1e21.
PLAIN_NUMBERS: dict[str, Any] = {"tickformat": "~g", "exponentformat": "e"}

# A logarithmic axis written in plain numbers.
LOG_AXIS: dict[str, Any] = {"type": "log", **PLAIN_NUMBERS}
