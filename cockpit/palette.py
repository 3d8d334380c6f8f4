"""The command palette's cockpit commands, built from the one registry the CLI is built from (``SPECS``),
plus the entries that need a target from the current state (close one position, switch one strategy).

A symbol or a strategy's name came from outside (the venue, the configuration): every entry's words are shown
inert and as plain ``Content`` (the palette would read a string as markup), and a name reaches its action as a
Python literal (``repr``), never spliced into the action's text."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from cockpit.fleet import FleetLink
from cockpit.views import qty
from engine.kernel.commands import SPECS
from engine.kernel.text import inert


def _help(text: str) -> str:
    """The palette reads an entry's help as markup: inert, then escaped."""
    return escape(inert(text, limit=300))


def strategy_stats(status: dict) -> str:
    """A strategy's record in words: its round trips, wins, realised PnL, and why it is off when it is."""
    trips = status.get("round_trips", 0)
    words = f"{trips} round trip(s), {status.get('wins', 0)} won, PnL {status.get('realised_pnl', 0)}"
    if status.get("timeframe"):
        words = f"{status['timeframe']} candles · {words}"
    if not status.get("enabled", True) and status.get("reason"):
        words += f" · off: {status['reason']}"
    return words


class CockpitCommands(Provider):
    """Every operator command: the same ones as the keys and the CLI, run through the same actions."""

    def _entries(self) -> list[tuple[str, str, object]]:
        app = self.app
        out: list[tuple[str, str, object]] = []
        for spec in SPECS:
            if spec.action:
                out.append((spec.title, spec.help, partial(app.run_action, spec.action)))
        out.append(
            (
                "Cancel all, protective stops too",
                "halt, then cancel every open order at the venue, the positions' stops included (none is placed "
                "again until you resume)",
                partial(app.run_action, "cancel_all_with_stops"),
            )
        )
        # Every other binding (the screens, the order form, help, quit): one key or one palette entry, the same action.
        described = {spec.action for spec in SPECS if spec.action}
        for binding in app.BINDINGS:  # type: ignore[attr-defined]
            if binding.id and binding.action not in described:
                key = binding.key_display or binding.key
                out.append(
                    (
                        binding.description,
                        f"{app.DESCRIPTION.get(binding.id, '')} (key {key})",
                        partial(app.run_action, binding.action),
                    )
                )
        link = app.link  # type: ignore[attr-defined]
        lines = link.lines() if isinstance(link, FleetLink) else []  # a cockpit watching several engines
        if lines:
            out.append(
                (
                    "Halt all engines",
                    f"kill switch 1 on each of the {len(lines)} engines watched (asks once), each answer told",
                    partial(app.run_action, "halt_all"),
                )
            )
            for line in lines:
                out.append(
                    (
                        f"Watch engine {line.name}",
                        f"show engine {line.number} ({line.state}); the keys then act on it",
                        partial(app.run_action, f"select_engine({line.number - 1})"),
                    )
                )
        if not app.started.is_set() or not link.up:  # type: ignore[attr-defined]
            return out  # positions and strategies once the engine is up (and in reach)
        view = link.view
        for position in view.positions():
            out.append(
                (
                    f"Close position {position.symbol}",
                    f"cancel {position.symbol}'s orders and sell {qty(position.amount)} at market (asks once)",
                    partial(app.run_action, f"close_position({position.symbol!r})"),
                )
            )
        for status in view.strategies:
            name = status["strategy"]
            enabled = status["enabled"]
            verb = "Disable" if enabled else "Enable"
            out.append(
                (
                    f"{verb} strategy {name}",
                    f"{verb.lower()} the {name} strategy · {strategy_stats(status)}",
                    partial(app.run_action, f"set_strategy({name!r}, {not enabled!r})"),
                )
            )
        return [(inert(title, limit=200), help_text, run) for title, help_text, run in out]

    async def discover(self) -> Hits:
        for title, help_text, run in self._entries():
            yield DiscoveryHit(Content(title), run, text=title, help=_help(help_text))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, self._highlight(matcher, title), run, text=title, help=_help(help_text))

    @staticmethod
    def _highlight(matcher, title: str) -> Content:
        """``Matcher.highlight`` without its markup reading: the title as plain content, the matched letters
        styled."""
        content = Content(title)
        _, offsets = matcher.fuzzy_search.match(matcher.query, title)
        for offset in offsets:
            if not title[offset].isspace():
                content = content.stylize(matcher.match_style, offset, offset + 1)
        return content
