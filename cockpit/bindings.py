"""Every key of the cockpit: its binding (each with an id, remappable in the config's ``[keys]``), what it does in
words (the footer, the help screen, the palette), which send a command to the engine, the kill switch's keys and the
command each is in the CLI; and the check of a ``[keys]`` keymap (a bad one fails at the start, naming the key).

Loaded with the app, before the first frame: Textual's ``Binding`` and key names only."""

from __future__ import annotations

import functools

from textual.binding import Binding

ACTOR = "operator:key"  # who a key's command says sent it
BINDINGS = [
    # The kill switch: one key, no question (halt, cancel all), one question (close all); on every screen.
    Binding("h", "halt", "Halt", id="halt", priority=True),
    Binding("c", "cancel_all", "Cancel all", id="cancel_all", priority=True),
    Binding("x", "close_all", "Close all", id="close_all", priority=True),
    Binding("r", "reconnect", "Reconnect", id="reconnect", show=False),
    Binding("u", "resume", "Resume", id="resume"),
    Binding("d", "reduce_only", "Reduce only", id="reduce_only", show=False),
    Binding("m", "mode", "Mode", id="mode", show=False),
    Binding("a", "ack", "Ack", id="ack"),
    Binding("A", "ack_all", "Ack all", id="ack_all", show=False),
    Binding("s", "snapshot", "Snapshot", id="snapshot", show=False),
    Binding("n", "new_order", "Order", id="new_order", show=False),
    Binding("g", "checklist", "Go/no-go", id="checklist", show=False),
    Binding("f", "fills", "Fills", id="fills", show=False),
    Binding("o", "order_history", "Order history", id="order_history", show=False),
    Binding("v", "reconciliation", "Reconciliation", id="reconciliation", show=False),
    Binding("l", "alert_log", "Alert log", id="alert_log", show=False),
    Binding("i", "incidents", "Incidents", id="incidents", show=False),
    Binding("t", "audit_log", "Audit", id="audit_log", show=False),
    Binding("S", "strategies", "Strategies", id="strategies", show=False),
    Binding("e", "next_engine", "Next engine", id="next_engine", show=False),
    Binding("slash", "filter_markets", "Filter markets", id="filter_markets", show=False, key_display="/"),
    Binding("question_mark,f1", "help", "Help", id="help", key_display="?"),
    Binding("q", "quit_cockpit", "Quit", id="quit"),
]
BINDING_IDS = tuple(b.id for b in BINDINGS if b.id)
DESCRIPTION = {
    "halt": "kill switch 1: no new orders from anyone, at once (no question)",
    "cancel_all": "kill switch 2: halt, cancel every open order at the venue (no question)",
    "close_all": "kill switch 3: halt, cancel every order, sell every position at market (asks once)",
    "reconnect": "reopen streams and REST session, reload markets, reconcile",
    "resume": "back to ACTIVE (asks once; refused while the trigger holds)",
    "reduce_only": "only orders that shrink a position (asks once)",
    "mode": "switch to dry-run (decide and log, send nothing) or back (asks once)",
    "ack": "acknowledge the alert under the cursor (stops its escalation)",
    "ack_all": "acknowledge every alert",
    "snapshot": "write a snapshot archive of the whole state",
    "new_order": "an order through the same risk checks as any order",
    "checklist": "the go/no-go checklist: every check with its evidence; F5 runs it now (asks once)",
    "fills": "every fill, newest first (beside the alerts from 120 columns)",
    "order_history": "the selected open order's every event and its source",
    "reconciliation": "the last reconciliation: what was adopted, what needs the operator",
    "alert_log": "every stored alert, filtered by severity",
    "incidents": "every kill-switch trip and its report",
    "audit_log": "every command carried out, by every actor",
    "strategies": "every strategy: on or off and why, its symbols and candles, its round trips, wins and PnL",
    "filter_markets": "only the markets whose name holds what you type (Enter keeps it, Esc clears it)",
    "next_engine": "show the next engine this cockpit watches (the list under the banner; the palette names each)",
    "help": "this screen",
    "quit": "quit: asks what to do with open orders and positions",
}
DETACH = "detach: leave the engine running (this screen attached to it)"
# What a key sends, by its id (a viewer's token sends none of them); the kill switch's keys, and the command each
# is in the CLI (what to run from a shell when the engine cannot be reached from here).
COMMAND_ACTIONS = frozenset(
    {
        "halt",
        "cancel_all",
        "close_all",
        "reconnect",
        "resume",
        "reduce_only",
        "mode",
        "ack",
        "ack_all",
        "snapshot",
        "new_order",
    }
)
KILL_CLI = {"halt": "halt", "cancel_all": "cancel-all", "close_all": "close-all"}


# The kill switch's keys: a [keys] entry may add a key to them, never take these away or give them to another action.
KILL_KEYS = {"halt": "h", "cancel_all": "c", "close_all": "x"}
MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})


@functools.cache
def _key_names() -> frozenset[str]:
    """Textual's key names (f2, escape, question_mark), worked out once: every binding's key is checked before the
    first frame, twice."""
    from textual.keys import Keys, _character_to_key

    return frozenset({k.value for k in Keys} | {_character_to_key(chr(c)) for c in range(33, 127)} | {"space"})


def _is_key(name: str) -> bool:
    """Whether Textual knows ``name`` as a key: one printable character, or a key name (f2, escape,
    question_mark), optionally after modifiers (ctrl+x)."""
    *mods, base = name.split("+")
    if not base or any(m not in MODIFIERS for m in mods):
        return False
    if len(base) == 1:
        return base.isprintable() and not base.isspace()
    return base in _key_names()


def check_keymap(keymap: dict[str, str]) -> dict[str, str]:
    """The keymap the app runs with, from ``[keys]``; a ValueError names what is wrong: an id that names no
    binding, a key Textual does not know, one key for two actions, or a key of the kill switch (h, c, x) given to
    anything else. The kill switch keeps h, c and x whatever is configured (an entry for it adds a key)."""
    unknown = sorted(set(keymap) - set(BINDING_IDS))
    if unknown:
        raise ValueError(f"[keys] {', '.join(unknown)}: no such binding; the ids are {', '.join(BINDING_IDS)}")
    effective: dict[str, str] = {}
    owner: dict[str, str] = {}
    for binding in BINDINGS:
        if not binding.id:
            continue
        keys = [k.strip() for k in keymap.get(binding.id, binding.key).split(",")]
        if binding.id in KILL_KEYS and KILL_KEYS[binding.id] not in keys:
            keys.insert(0, KILL_KEYS[binding.id])
        for key in keys:
            if not _is_key(key):
                raise ValueError(f"[keys] {binding.id} = {key!r}: not a key name (e.g. f2, ctrl+k, X, escape)")
            if key in owner:
                first = owner[key]
                if first in KILL_KEYS or binding.id in KILL_KEYS:
                    kill = first if first in KILL_KEYS else binding.id
                    raise ValueError(
                        f"[keys] {key!r} is the kill switch's key for {kill}: it cannot be given to "
                        f"{binding.id if kill == first else first}; choose another key"
                    )
                raise ValueError(f"[keys] {key!r} is bound to both {first} and {binding.id}; give each its own key")
            owner[key] = binding.id
        if binding.id in keymap:
            effective[binding.id] = ",".join(keys)
    return effective
