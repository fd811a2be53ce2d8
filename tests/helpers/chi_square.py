"""Pearson's chi-square for the sampling tests: is a sample of tokens distributed as p?"""

import math


def chi_square_p_value(counts, probs):
    """Upper-tail p-value of Pearson's chi-square (Wilson-Hilferty approximation), merging tiny cells."""
    n = sum(counts)
    observed, expected, rest_o, rest_e = [], [], 0, 0.0
    for c, p in zip(counts, probs):
        if n * p >= 5:
            observed.append(c)
            expected.append(n * p)
        else:
            rest_o += c
            rest_e += n * p
    if rest_e > 0:
        observed.append(rest_o)
        expected.append(max(rest_e, 1e-9))
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected))
    df = len(observed) - 1
    z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))
