"""Venue settings for tests against a fast-ticking simulator: backoff, polling and staleness small enough that
fault tests finish in seconds."""

FAST = dict(retry_backoff_s=(0.05, 0.1, 0.2), poll_s=0.1, stale_s=0.5)
