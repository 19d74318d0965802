"""Confidence intervals for proportions."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval (95% by default) of ``successes`` out of ``n``; None if n == 0.

    Unlike the normal approximation it stays inside [0, 1] and is honest for small ``n``:
    3 out of 3 gives about [0.44, 1.0], not "100%".
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson: need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # Rounding can leave the estimate a hair outside (k == n gives 0.9999999999999998).
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))
