"""The order path and the books it keeps: pre-trade risk and the trading state (what each state permits),
the order tracker, execution (checks, persist, send, the venue's answers into state), the portfolio, daily
statistics, the holdings reconciled against the venue, and the sync that keeps the picture fresh. It imports the
venue and the kernel."""
