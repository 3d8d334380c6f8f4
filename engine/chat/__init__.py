"""Chat control: the kill switch and status from Telegram and Slack, for the operator away from the desk (runbook
003 "Emergency Procedures": /stop, /closeall, /resume, /status; runbook 004 "Slack Commands": /mode halt,
/snapshot now). Each bot is one more transport of the engine's one API (``engine.core.service``): it reads through
its queries and commands through its ``execute`` with its own actor (``telegram:<user id> <name>``,
``slack:<user id> <name>``), inside the engine's process, by long polling or Socket Mode (no inbound port).

``desk`` holds what both transports share (the commands, the allow-lists' answer, the rate limit, close-all's
confirmation, the replies made inert); ``telegram`` and ``slack`` speak each service through its own library;
``bots`` supervises them (state, one alert per outage, backoff). It imports the API, ops and the kernel.
"""
