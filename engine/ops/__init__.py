"""Operations around the engine: the alert book, notifications to people, incidents and their snapshot archives,
the JSON log files, /health and /metrics, the daily report, and systemd's notify and watchdog protocol. It imports
the store and the kernel."""
