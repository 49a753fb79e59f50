"""What the parts of benches/report.py share: the repository root, the policies and N of the
plan-time section, reading a raw JSON file, the log-log slope fit and the page's number formats."""

import json
import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

POLICIES = ["full", "random", "epsilon_greedy", "ucb", "infobatch", "el2n", "grand",
            "forgetting", "influence"]
IMAGENET = 1_281_167


def read(raw, name):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fit_slope(points):
    """Least-squares slope and intercept of log10(t) against log10(N)."""
    xs = [math.log10(n) for n, _ in points]
    ys = [math.log10(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan"), float("nan")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def fmt_n(n):
    exp = math.log10(n)
    if abs(exp - round(exp)) < 1e-9:
        return f"10^{int(round(exp))}"
    return f"{n / 1e6:.2f}M"


def ms(s):
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "—"
    if s >= 1:
        return f"{s:,.2f} s"
    return f"{s * 1e3:,.2f} ms"


def verdict(ok):
    return "**met**" if ok else "**missed**"
