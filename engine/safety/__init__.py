"""What watches and acts when something is wrong: the runbooks' monitors and their readings, price moves, the
kill switch's tiers (and the no-engine emergency path built from the same assembly), stop-losses and stuck orders.
Every action goes through the one command path. It imports the order path, ops, the store, the venue and the
kernel."""
