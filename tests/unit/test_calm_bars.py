"""Calm after a flash crash, judged against each symbol's own normal (issue 19): the bar a calm window must stay
under is the symbol's normal window range before the crash, never under the runbook's percent, never half the
crash; with too little history, the runbook's percent."""

import random
from decimal import Decimal as D

from engine.safety.pricemoves import PriceMoves


def walk(moves: PriceMoves, symbol: str, seconds: int, swing: float, start: float = 100.0, t0: float = 0.0) -> float:
    """One price a second, swinging up to ``swing`` percent either way around ``start`` (seeded)."""
    rng = random.Random(f"{symbol}{swing}")
    for t in range(seconds):
        moves.record(symbol, t0 + t, D(str(round(start * (1 + rng.uniform(-swing, swing) / 100), 4))))
    return t0 + seconds


def test_a_noisy_symbol_is_judged_by_its_own_normal_a_quiet_one_by_the_runbook():
    moves = PriceMoves(("NOISY", "QUIET"), keep_s=400, window_s=60)
    end = walk(moves, "NOISY", 900, swing=2.0)
    walk(moves, "QUIET", 900, swing=0.1)
    bars = moves.calm_bars(60, end, floor_pct=D(1), ceiling_pct=D(5))
    assert D("3.5") < bars["NOISY"] <= D(5), bars  # ~4 % a minute normally (x1.25), under the cap
    assert bars["QUIET"] == D(1), bars  # quieter than the runbook's 1 %: held to the runbook's rule


def test_the_bar_is_capped_at_half_the_crash_and_falls_back_without_history():
    moves = PriceMoves(("WILD", "NEW"), keep_s=400, window_s=60)
    end = walk(moves, "WILD", 900, swing=6.0)
    walk(moves, "NEW", 100, swing=2.0, t0=end - 100)  # under 5 windows of history
    bars = moves.calm_bars(60, end, floor_pct=D(1), ceiling_pct=D(5))
    assert bars == {"WILD": D(5), "NEW": D(1)}, bars


def test_calm_uses_each_symbols_bar_and_says_why_not():
    moves = PriceMoves(("A", "B"), keep_s=400, window_s=60)
    end = walk(moves, "A", 400, swing=1.0)
    walk(moves, "B", 400, swing=1.0)
    assert moves.not_calm(300, {"A": D(3), "B": D(3)}, end - 1) == {}
    why = moves.not_calm(300, {"A": D(3), "B": D("1.5")}, end - 1)
    assert set(why) == {"B"} and "calm: under 1.5%" in why["B"], why
