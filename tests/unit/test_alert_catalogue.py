"""docs/alerts.md lists every alert code the engine can raise, and nothing it cannot."""

from __future__ import annotations

import re
from pathlib import Path

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, CloseAll
from engine.kernel.config import Settings
from engine.kernel.events import TradingState
from engine.venue.resilience import BreakerState

ROOT = Path(__file__).resolve().parents[2]
LITERAL = re.compile(r"(?:Severity\.[A-Z]+,|alert\(|raise_alert\()\s*\"([A-Z][A-Z_]{2,})\"")


def raised_codes(tmp_path) -> set[str]:
    codes: set[str] = set()
    engine_files = [p for p in (ROOT / "engine").rglob("*.py") if "sim" not in p.relative_to(ROOT / "engine").parts]
    for path in engine_files + list((ROOT / "cockpit").glob("*.py")):
        for match in LITERAL.finditer(path.read_text(encoding="utf-8")):
            codes.add(match.group(1))
    codes -= {"STRATEGY_", "EMERGENCY_"}  # prefixes of codes made from a name, below
    # Codes made from a name: the trading state, the breaker, strategy switches, the kill switch tiers, and the
    # monitors' own codes (a WARN or an un-actioned CRIT is raised under the monitor's code).
    codes |= {f"TRADING_{s.value}" for s in TradingState}
    codes |= {f"BREAKER_{s.value}" for s in BreakerState}
    codes |= {"STRATEGY_ENABLED", "STRATEGY_DISABLED", "CANCEL_ALL", "CLOSE_ALL", "CLOSE_POSITION"}
    codes |= {"EMERGENCY_" + c.name.upper().replace("-", "_") for c in (CancelAll, CloseAll)}
    engine = Engine(Settings(engine={"data_dir": tmp_path}))
    codes |= {code.upper() for code in engine.monitors.watches}
    return codes


def documented() -> set[str]:
    text = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([A-Z_]+)` \|", text, flags=re.M))


def test_every_code_is_in_the_catalogue_and_every_entry_is_raised(tmp_path):
    raised, docs = raised_codes(tmp_path), documented()
    assert raised - docs == set(), f"codes missing from docs/alerts.md: {sorted(raised - docs)}"
    assert docs - raised == set(), f"docs/alerts.md lists codes nothing raises: {sorted(docs - raised)}"


def test_every_entry_says_what_was_done_and_what_to_do():
    text = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        if re.match(r"^\| `[A-Z_]+` \|", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert len(cells) == 5 and all(cells[:3]), line
