"""The venue: the one adapter over ccxt (``Venue``, built only by ``Venue.from_settings``), the ccxt client's
construction, the rate limiter, the venue's clock, its health as its answers show it, the classes of its errors,
resilience (retries, the circuit breaker, latency), and the user stream's hold while the kill switch's cancels are
out. Nothing outside this package imports ccxt; it imports only the kernel."""
