"""The composition root: ``Engine`` builds the parts and wires their ports, runs the one ``execute`` with its
command handlers, and composes a paper validation run on the simulator's clock."""
