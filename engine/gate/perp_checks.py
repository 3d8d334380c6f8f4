"""The checklist's checks of a USDⓈ-M perpetuals account (runbook 002): each symbol's leverage at most the maximum,
the margin type as configured, one-way position mode, and the venue's dead-man's switch set (and armed, with an
engine running)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.gate.checklist import Check, Status
from engine.kernel.config import Settings
from engine.venue.adapter import Venue


class PerpChecks:
    """The perpetuals account's checks, against the same venue client as the venue's checks."""

    def __init__(
        self,
        settings: Settings,
        *,
        venue: Venue | None,
        live: bool,
        venue_missing: Callable[[str, str], Check | None],
        deadman_state: Callable[[], dict[str, Any] | None] | None,
    ) -> None:
        self.settings = settings
        self.venue = venue
        self.live = live
        self._venue_missing = venue_missing  # the venue checks' answer when there is no venue client to ask
        self.deadman_state = deadman_state  # a running engine's dead-man's switch state, None: no engine

    async def leverage(self) -> Check:
        """Runbook 002 RISK_MAX_LEVERAGE: each symbol's leverage at the venue at most [risk] max_leverage."""
        c = ("leverage", "Leverage at most the maximum")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        cap = self.settings.risk.max_leverage
        held = await self.venue.symbol_settings(self.settings.venue.symbols)
        over = {s: str(lev) for s, (lev, _) in held.items() if lev is None or lev > cap}
        evidence = {"max_leverage": str(cap), "leverage": {s: str(lev) for s, (lev, _) in held.items()}}
        if over:
            return Check(
                *c,
                Status.FAIL,
                f"over {cap}x (or unknown) at the venue: " + ", ".join(f"{s} {v}x" for s, v in over.items()),
                evidence,
                "lower the leverage at the venue, or let the engine set [risk] leverage (reconnect)",
            )
        return Check(*c, Status.PASS, f"every symbol at most {cap}x ({evidence['leverage']})", evidence)

    async def margin_type(self) -> Check:
        c = ("margin_type", "Margin type as configured")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        want = self.settings.risk.margin_mode
        held = await self.venue.symbol_settings(self.settings.venue.symbols)
        wrong = {s: mode for s, (_, mode) in held.items() if mode != want}
        evidence = {"margin_mode": want, "at_venue": {s: mode for s, (_, mode) in held.items()}}
        if wrong:
            return Check(
                *c,
                Status.FAIL,
                f"not {want} at the venue: " + ", ".join(f"{s} {m}" for s, m in wrong.items()),
                evidence,
                "the venue changes it only with no position and no open order in the symbol: close them, then "
                "reconnect (the engine sets [risk] margin_mode)",
            )
        return Check(*c, Status.PASS, f"{want} on every symbol", evidence)

    async def position_mode(self) -> Check:
        c = ("position_mode", "One-way position mode")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        mode = await self.venue.position_mode()
        if mode != "one-way":
            return Check(
                *c,
                Status.FAIL,
                f"the account is in {mode} mode: cockpit trades one signed position per symbol",
                {"position_mode": mode},
                "switch the account to one-way mode at the venue",
            )
        return Check(*c, Status.PASS, "one-way", {"position_mode": mode})

    async def deadman(self) -> Check:
        """The venue cancels a dead engine's orders within [venue] deadman_s: set, and (with an engine) armed."""
        c = ("deadman", "Dead-man's switch armed")
        seconds = self.settings.venue.deadman_s
        if seconds <= 0:
            return Check(
                *c,
                Status.FAIL if self.live else Status.WARN,
                "off ([venue] deadman_s = 0): a dead engine's working orders stay at the venue",
                {"deadman_s": seconds},
                "set [venue] deadman_s (runbook 002: nothing rests that no one watches)",
            )
        state = self.deadman_state() if self.deadman_state is not None else None
        if state is None:
            if (missing := self._venue_missing(*c)) is not None:
                return missing
            assert self.venue is not None
            # No engine runs: the venue is asked whether it takes the countdown, with 0 (which arms nothing).
            await self.venue.arm_deadman(self.settings.venue.symbols[0], 0)
            return Check(*c, Status.PASS, f"{seconds:g}s; the venue takes countdownCancelAll", {"deadman_s": seconds})
        if not state.get("armed"):
            why = state.get("failure") or state.get("held_back") or "not renewed yet"
            return Check(*c, Status.FAIL, f"not armed: {why}", dict(state), "see DEADMAN_FAILED; check the venue")
        return Check(*c, Status.PASS, f"armed, renewed {state.get('renewed_s_ago')}s ago ({seconds:g}s)", dict(state))
