"""The command palette's cockpit commands, built from the one registry the CLI is built from (``SPECS``),
plus the entries that need a target from the current state (close one position, switch one strategy)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from engine.kernel.commands import SPECS


class CockpitCommands(Provider):
    """Every operator command: the same ones as the keys and the CLI, run through the same actions."""

    def _entries(self) -> list[tuple[str, str, object]]:
        app = self.app
        engine = app.engine  # type: ignore[attr-defined]
        out: list[tuple[str, str, object]] = []
        for spec in SPECS:
            if spec.action:
                out.append((spec.title, spec.help, partial(app.run_action, spec.action)))
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
        if engine is None or not app.started.is_set():  # type: ignore[attr-defined]
            return out  # positions and strategies once the engine is up
        for position in engine.portfolio.positions():
            out.append(
                (
                    f"Close position {position.symbol}",
                    f"cancel {position.symbol}'s orders and sell {position.amount} at market (asks once)",
                    partial(app.run_action, f"close_position('{position.symbol}')"),
                )
            )
        for status in engine.runner.status():
            name = status["strategy"]
            enabled = status["enabled"]
            verb = "Disable" if enabled else "Enable"
            out.append(
                (
                    f"{verb} strategy {name}",
                    f"{verb.lower()} the {name} strategy",
                    partial(app.run_action, f"set_strategy('{name}', {not enabled})"),
                )
            )
        return out

    async def discover(self) -> Hits:
        for title, help_text, run in self._entries():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
