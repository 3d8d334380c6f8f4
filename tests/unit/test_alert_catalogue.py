"""docs/alerts.md lists every alert code the engine can raise, and nothing it cannot; and each code it lists is one
some test asserts was raised.

How "raised by some test" is checked: statically. Every test module under tests/ is parsed (``ast``) and each
listed code must appear as a string literal inside an assertion: an ``assert`` statement, or a call of the
helpers that assert (``afterwards(alerts=[...])``, ``first_alert``, ``eventually`` and the like, which fail the
test when the condition does not hold). A record of codes raised at run time was the other way: it would need the
whole suite (in parallel workers) to have run before this test, in one session, and would pass or fail with what
was selected; the static check gives the same answer whatever runs, in a fraction of a second. What it cannot see
is a code a test raises but never names: such a code counts as untested, which is the point.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from engine.core.engine import Engine
from engine.core.handlers import STRATEGY_CODES
from engine.kernel.commands import CancelAll, CloseAll
from engine.kernel.config import Settings
from engine.kernel.events import TradingState
from engine.safety.killswitch import DONE_CODES
from engine.venue.resilience import BreakerState

ROOT = Path(__file__).resolve().parents[2]
# Test helpers that fail the test unless what they are given holds (their string arguments count as asserted).
ASSERTING = {"afterwards", "eventually", "first_alert", "tripped"}
CODE = re.compile(r"[A-Z][A-Z_]{2,}")
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
    codes |= set(STRATEGY_CODES.values()) | set(DONE_CODES.values())  # the engine's own tables, not a list here
    codes |= {"EMERGENCY_" + c.name.upper().replace("-", "_") for c in (CancelAll, CloseAll)}
    engine = Engine(Settings(engine={"data_dir": tmp_path}))
    codes |= {code.upper() for code in engine.monitors.watches}
    perps = Engine(Settings(engine={"data_dir": tmp_path / "usdm"}, venue={"market": "usdm"}))
    codes |= {code.upper() for code in perps.monitors.watches}  # the perps monitors ([venue] market = "usdm")
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


def _called(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _asserted_strings(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) or (isinstance(node, ast.Call) and _called(node) in ASSERTING):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    yield sub.value


def asserted_codes() -> dict[str, list[str]]:
    """Each code-like string asserted somewhere under tests/ -> the test files that assert it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for text in set(_asserted_strings(tree)):
            if CODE.fullmatch(text):
                found.setdefault(text, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_listed_code_is_asserted_raised_by_some_test():
    asserted = asserted_codes()
    untested = sorted(code for code in documented() if code not in asserted)
    assert untested == [], f"docs/alerts.md lists codes no test asserts were raised: {untested}"
