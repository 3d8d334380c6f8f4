"""Configuration that used to fail open is refused at start, naming the key and the fix (issue 25 §4), driven
through the real CLI: a number that is not finite or out of range, an empty retry list, a port that is not a port,
a misspelled COCKPIT_ variable, and live or paper pointed at the wrong kind of host."""

from __future__ import annotations

import pytest
from test_bad_input import in_process, said_clearly

from engine.gate.checklist import Status
from engine.gate.config_checks import is_loopback, listens_locally, mode, venue_host_problem
from engine.kernel.config import EngineConfig, Settings, VenueConfig


@pytest.mark.parametrize(
    "text, words",
    [
        ("[monitors]\ninterval_s = inf\n", ("monitors.interval_s", "finite")),
        ("[monitors]\ninterval_s = nan\n", ("monitors.interval_s", "finite")),
        ("[monitors]\ninterval_s = 1e9\n", ("monitors.interval_s", "less than or equal to 60")),
        ("[risk]\nmax_position_pct = 'Infinity'\n", ("risk.max_position_pct", "finite")),
        ("[venue]\nretry_backoff_s = []\n", ("venue.retry_backoff_s", "at least 1 item")),
        ("[venue]\nretry_backoff_s = [1, -2]\n", ("venue.retry_backoff_s", "greater than 0")),
        ('[[alerts.notify]]\nurl = "json://127.0.0.1:99999/hook"\n', ("alerts.notify.0.url", "not a port")),
    ],
)
def test_numbers_that_would_switch_a_safety_off_are_refused(tmp_path, capsys, text, words):
    path = tmp_path / "c.toml"
    path.write_text(text)
    said_clearly(in_process(capsys, "status", "--config", str(path), "--data-dir", str(tmp_path)), str(path), *words)


def test_a_misspelled_cockpit_variable_is_refused_with_the_closest_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COCKPIT_RISKS__KILL_SWITCH", "1")
    said_clearly(
        in_process(capsys, "halt", "--data-dir", str(tmp_path)),
        "COCKPIT_RISKS__KILL_SWITCH is not a cockpit setting",
        "COCKPIT_RISK__KILL_SWITCH",
    )
    monkeypatch.delenv("COCKPIT_RISKS__KILL_SWITCH")
    (tmp_path / ".env").write_text("COCKPIT_MONITORS__INTERVALS=1\n")
    monkeypatch.chdir(tmp_path)
    said_clearly(in_process(capsys, "status", "--data-dir", str(tmp_path)), "COCKPIT_MONITORS__INTERVAL_S")


def _settings(mode_: str, rest_url: str | None, exchange: str = "binance") -> Settings:
    return Settings(venue=VenueConfig(exchange=exchange, rest_url=rest_url), engine=EngineConfig(mode=mode_))


@pytest.mark.parametrize(
    "url",
    [
        "https://testnet.binance.vision/api",
        "http://0.0.0.0:9000",
        "http://127.0.0.1:9000",
        "http://127.evil.example",
        "https://api.binance.com.evil.example",
    ],
)
def test_live_accepts_only_the_venues_real_api_hosts(url):
    live = _settings("live", url)
    assert venue_host_problem(live) is not None
    assert mode(live, confirm_live=True).status == Status.FAIL


def test_live_on_a_real_host_or_ccxts_own_url_and_paper_anywhere_but_a_real_host():
    assert venue_host_problem(_settings("live", "https://api.binance.com/api")) is None
    assert venue_host_problem(_settings("live", None)) is None
    assert venue_host_problem(_settings("live", "https://my-proxy.example", exchange="kraken")) is not None
    assert venue_host_problem(_settings("paper", "https://api.binance.com")) is not None  # real money: never paper
    paper = _settings("paper", "https://testnet.binance.vision")
    assert venue_host_problem(paper) is None
    check = mode(paper, confirm_live=False)
    assert check.status == Status.PASS and "testnet.binance.vision" in check.detail


def test_loopback_is_parsed_not_guessed():
    assert is_loopback("http://127.0.0.1:1") and is_loopback("http://[::1]:1") and is_loopback("http://localhost")
    assert is_loopback("http://0.0.0.0:9000")  # connecting to it reaches this machine
    assert not is_loopback("http://127.evil.example") and not is_loopback("http://10.0.0.1")
    assert listens_locally("127.0.0.1") and not listens_locally("0.0.0.0") and not listens_locally("::")
