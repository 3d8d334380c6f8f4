"""The venue: the one adapter over ccxt (``Venue``, built only by ``Venue.from_settings``), the ccxt client's
construction, the rate limiter, the venue's clock, its health as its answers show it, the classes of its errors,
and resilience (retries, the circuit breaker, latency). Nothing outside this package imports ccxt; it imports only
the kernel."""
