"""Persistence: the SQLite store (schema, migrations, the writer that subscribes to events, typed queries) and the
data directory (its lock, its files, what to say when it cannot be opened). It imports only the kernel."""
