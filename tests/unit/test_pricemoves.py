"""The flash-crash arithmetic: the largest move in a window, and calm as the runbooks define it."""

from decimal import Decimal as D

from engine.safety.pricemoves import PriceMoves


def feed(moves: PriceMoves, symbol: str, points: list[tuple[float, str]]) -> None:
    for t, price in points:
        moves.record(symbol, t, D(price))


def test_the_largest_move_in_the_window_is_found_and_old_samples_fall_out():
    moves = PriceMoves(("BTC/USDT", "ETH/USDT"), keep_s=100)
    feed(moves, "BTC/USDT", [(0, "100"), (30, "99"), (50, "85")])
    feed(moves, "ETH/USDT", [(0, "10"), (50, "10.1")])
    move, symbol = moves.largest(60, now=50)
    assert symbol == "BTC/USDT" and move == D(15)
    assert moves.move("BTC/USDT", 10, now=50) == 0  # one sample in the last 10 s
    moves.record("BTC/USDT", 200, D("85"))
    assert [t for t, _ in moves.samples["BTC/USDT"]] == [200]


def test_calm_needs_every_minute_of_the_period_under_the_limit_and_the_whole_period_covered():
    moves = PriceMoves(("BTC/USDT",), keep_s=1000)
    feed(moves, "BTC/USDT", [(t, "100") for t in range(0, 301, 5)])
    assert moves.calm(300, D(1), now=300)
    assert not moves.calm(400, D(1), now=300)  # samples cover only 300 s
    moves.record("BTC/USDT", 305, D("98"))  # a 2 % move in the last minute
    assert not moves.calm(300, D(1), now=305)
