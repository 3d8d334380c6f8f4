"""Typing into a live app without the pilot's per-key idle wait.

`Pilot.press` waits for the process to go idle (up to a second, twice) after every key. With an engine and its
simulator running in the same process the process is never idle, so typing a 24-letter reason took 13 s of test time.
`typed` puts the same key events on the driver's queue, in order, as the pilot does, and lets the caller wait for
the condition that matters (the field's value, a screen) with `eventually`.
"""

from __future__ import annotations

from textual import events
from textual.app import App


def typed(app: App, text: str) -> None:
    """Send each character of ``text`` as a key press, the way a terminal delivers typing."""
    driver = app._driver
    assert driver is not None, "the app is not running"
    for char in text:
        key = "space" if char == " " else char
        event = events.Key(key, char)
        event.set_sender(app)
        driver.send_message(event)


async def type_into(app: App, text: str) -> None:
    """Type ``text`` into the focused field and wait until the field holds it."""
    from eventually import eventually

    field = app.focused
    assert field is not None and hasattr(field, "value"), f"no field has the cursor (focused: {field!r})"
    before = field.value
    typed(app, text)
    await eventually(lambda: field.value == before + text, message=f"{text!r} typed into {field.id or field!r}")
