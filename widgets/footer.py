"""The footer of keys, drawn with the screen's first frame and again only when what it shows changes.

Textual's ``Footer`` composes no key until the screen first says its bindings changed, and recomposes all of them
a refresh after every such word: at a start that is three times (a widget focused, the screen resumed, the focus
refreshed), each one a new set of keys whose styles are worked out three times over. The cockpit's kill-switch
keys were on the screen a refresh or two after the rest of it, and the start paid for keys drawn twice more
unchanged. This footer composes its keys at once, from the bindings in force then, and recomposes only when the
keys it would show (key, label, enabled or not) differ from those it shows. Decision BEN-10.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeyFooter(Footer):
    """Textual's footer, with its keys in the first frame and recomposed only when they change."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_reactive(Footer._bindings_ready, True)
        self._shown: tuple[Any, ...] | None = None  # the keys composed last (``_keys``)
        self._pending = False  # a look at the keys is already due after the next refresh

    def _keys(self) -> tuple[Any, ...]:
        """What the footer shows of the screen's bindings: each shown binding with its key as displayed, whether it
        is enabled and its tooltip (the command palette's key among them)."""
        app = self.app
        return tuple(
            (binding, app.get_key_display(binding), enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == app.COMMAND_PALETTE_BINDING
        )

    def compose(self) -> ComposeResult:
        self._shown = self._keys()
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                # Born in the footer's style: a key is built compact and its binding to the footer's ``compact``
                # then restyles it (Textual's ``FooterKey``), which made each key's styles worked out twice more.
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        if not screen.app.app_focus:
            return  # as Textual's: redrawn when the terminal has the focus again (which says the bindings changed)
        if self.is_attached and screen is self.screen and not self._pending:
            self._pending = True
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        self._pending = False
        if self.is_attached and self._keys() != self._shown:
            await self.recompose()
