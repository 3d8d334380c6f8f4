"""The engine's vocabulary and plumbing, which every other package uses: commands in, events out, the one
error a front end sees, the clock, the event bus, owned tasks, the narrow ports the parts receive, and the frozen
configuration. It imports nothing else of the engine (the ports name ``Venue`` for type checking only)."""
