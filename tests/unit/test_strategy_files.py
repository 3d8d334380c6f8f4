"""`cockpit strategy new` and `cockpit strategy list` on files, with no engine: the template is written where the
config says, a broken file is named with its error and takes nothing else down, and a wrong parameter fails the
configuration at start with the key and the reason."""

from __future__ import annotations

import json

from cockpit.cli import main


def test_new_list_and_a_wrong_parameter(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text('[strategy]\npaths = ["mine"]\nrun = ["dip", "broken"]\n', encoding="utf-8")
    assert main(["strategy", "new", "dip", "--config", str(config)]) == 0
    written = tmp_path / "mine" / "dip.py"
    assert capsys.readouterr().out.strip() == str(written) and written.is_file()  # the directory was created
    assert main(["strategy", "new", "dip", "--config", str(config)]) == 2  # never overwritten
    assert "exists already" in capsys.readouterr().err
    (tmp_path / "mine" / "broken.py").write_text("def broken(:\n", encoding="utf-8")

    assert main(["strategy", "list", "--json", "--config", str(config)]) == 1  # broken is to run and cannot
    found = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert found["broken"]["error"].startswith("SyntaxError") and not found["broken"]["runs"]
    assert found["dip"]["error"] is None and found["dip"]["runs"] and found["dip"]["timeframe"] == "1m"
    period = next(p for p in found["dip"]["params"] if p["name"] == "period")
    assert period["default"] == 14 and period["bounds"] == {"ge": 2, "le": 200}
    assert found["ladder"]["runs"] and found["ladder"]["source"] == "built-in"

    config.write_text(
        '[strategy]\npaths = ["mine"]\nrun = ["dip"]\n[strategy.params.dip]\nperiod = 1\nspeed = 2\n', encoding="utf-8"
    )
    assert main(["run", "--headless", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "[strategy.params.dip]" in err and "period: Input should be greater than or equal to 2" in err
    assert "speed: unknown parameter" in err and "Traceback" not in err


def test_a_sweep_is_a_small_grid_of_values_checked_like_the_config():
    import pytest

    from cockpit.sweep import parse_sweep
    from engine.core.validation import with_params
    from engine.kernel.config import ConfigError, Settings

    assert parse_sweep(["period=10, 14", "oversold=30"]) == {"period": ["10", "14"], "oversold": ["30"]}
    for bad in ("period", "period=", "=1,2"):
        with pytest.raises(ValueError, match="must look like period=10,14,20"):
            parse_sweep([bad])
    with pytest.raises(ValueError, match="at most 50"):
        parse_sweep(["a=" + ",".join(map(str, range(8))), "b=" + ",".join(map(str, range(8)))])
    swept = with_params(Settings(), "ma_cross", {"fast": "5", "slow": "40"})
    assert (swept.strategy.ma_cross.fast, swept.strategy.ma_cross.slow) == (5, 40)
    with pytest.raises(ConfigError, match="slow"):
        with_params(Settings(), "ma_cross", {"fast": "50", "slow": "40"})  # slow must be longer than fast
    assert with_params(Settings(), "dip", {"period": "9"}).strategy.params == {"dip": {"period": "9"}}


def test_a_strategy_from_an_installed_package_through_its_entry_point(tmp_path, monkeypatch):
    """The entry point group cockpit.strategies, read by importlib.metadata from a real dist-info on the path."""
    from engine.kernel.config import StrategyConfig
    from engine.strategies.loader import discover, load_strategies

    package = tmp_path / "acme_strats"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from engine.strategies.api import Strategy\n\n\nclass Quiet(Strategy):\n    name = 'acme_quiet'\n"
        "    timeframe = '5m'\n    history = 10\n\n    def decide(self, view):\n        return []\n",
        encoding="utf-8",
    )
    info = tmp_path / "acme_strats-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strats\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[cockpit.strategies]\nquiet = acme_strats:Quiet\nbad = acme_strats:Nothing\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = StrategyConfig(paths=(tmp_path / "none",), run=("acme_quiet",))
    found = {f.name: f for f in discover(cfg)}
    assert found["acme_quiet"].source == "entry point quiet = acme_strats:Quiet" and found["acme_quiet"].error is None
    assert "AttributeError" in (found["bad"].error or "")
    (built,) = [s for s in load_strategies(cfg, ("BTC/USDT",)).strategies if s.name == "acme_quiet"]
    assert built.symbols == ("BTC/USDT",) and built.timeframe == "5m"
