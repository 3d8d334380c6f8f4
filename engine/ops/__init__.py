"""Operations around the engine: the alert book, notifications to people, incidents and their snapshot archives,
the JSON log files, /health and /metrics, and the daily report. It imports the store and the kernel."""
