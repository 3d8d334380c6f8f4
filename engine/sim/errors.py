"""Binance error codes and messages the simulator answers with (``{"code": .., "msg": ..}``).

The texts are Binance's own: ccxt maps several of them by exact message (facts note, section 3).
"""

from __future__ import annotations


class VenueError(Exception):
    """An error answered to the client as ``{"code": code, "msg": msg}`` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400, data: dict[str, object] | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data  # cancelReplace's failures say what each half did (``data``)

    def to_json(self) -> dict[str, object]:
        """The error body Binance sends."""
        body: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            body["data"] = self.data
        return body


INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."


def missing(param: str) -> VenueError:
    """-1102: a mandatory parameter is absent or empty."""
    return VenueError(-1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed.")


def not_required(param: str) -> VenueError:
    """-1106: a parameter that this order type does not take."""
    return VenueError(-1106, f"Parameter '{param}' sent when not required.")


def illegal(param: str, legal: str = "^([0-9]{1,20})(\\.[0-9]{1,20})?$") -> VenueError:
    """-1100: a parameter with characters outside its legal range."""
    return VenueError(-1100, f"Illegal characters found in parameter '{param}'; legal range is '{legal}'.")


def invalid_symbol() -> VenueError:
    """-1121: unknown symbol."""
    return VenueError(-1121, "Invalid symbol.")


def filter_failure(name: str) -> VenueError:
    """-1013: an order breaks one of the symbol's filters."""
    return VenueError(-1013, f"Filter failure: {name}")


def insufficient_balance() -> VenueError:
    """-2010 with the exact text ccxt maps to InsufficientFunds."""
    return VenueError(-2010, INSUFFICIENT_BALANCE)


def rejected(msg: str) -> VenueError:
    """-2010: new order rejected for another reason (duplicate id, would take, ...)."""
    return VenueError(-2010, msg)


def order_does_not_exist() -> VenueError:
    """-2013: query of an unknown order."""
    return VenueError(-2013, "Order does not exist.")


def unknown_order() -> VenueError:
    """-2011: cancel of an unknown (or no longer open) order."""
    return VenueError(-2011, "Unknown order sent.")


def invalid_api_key() -> VenueError:
    """-2015 (HTTP 401): unknown API key."""
    return VenueError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def api_key_format() -> VenueError:
    """-2014 (HTTP 401): API key header missing or malformed."""
    return VenueError(-2014, "API-key format invalid.", status=401)


def bad_signature() -> VenueError:
    """-1022: HMAC does not match."""
    return VenueError(-1022, "Signature for this request is not valid.")


def outside_recv_window() -> VenueError:
    """-1021: timestamp too old for recvWindow or too far ahead of server time."""
    return VenueError(-1021, "Timestamp for this request is outside of the recvWindow.")


MAINTENANCE = "System is under maintenance."

# Binance's HTTP status and text for the codes a fault may answer with (spot errors.md). HTTP 5XX means the
# execution status is unknown: the request may have been processed.
KNOWN_CODES: dict[int, tuple[int, str]] = {
    1: (503, MAINTENANCE),
    -1000: (500, "An unknown error occurred while processing the request."),
    -1001: (503, "Internal error; unable to process your request. Please try again."),
    -1003: (
        429,
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    ),
    -1006: (503, "An unexpected response was received from the message bus. Execution status unknown."),
    -1007: (503, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."),
    -1008: (503, "Server is currently overloaded with other requests. Please try again in a few minutes."),
    -1013: (400, "Filter failure: LOT_SIZE"),
    -1015: (429, "Too many new orders; current limit is 100 orders per 10 SECOND."),
    -1016: (400, "This service is no longer available."),
    -1021: (400, "Timestamp for this request is outside of the recvWindow."),
    -1022: (400, "Signature for this request is not valid."),
    -2010: (400, "New order rejected."),
    -2011: (400, "Unknown order sent."),
    -2013: (400, "Order does not exist."),
    -2014: (401, "API-key format invalid."),
    -2015: (401, "Invalid API-key, IP, or permissions for action."),
}


def by_code(code: int, msg: str | None = None, status: int | None = None) -> VenueError:
    """A VenueError for ``code`` with Binance's own text and HTTP status unless given."""
    known_status, known_msg = KNOWN_CODES.get(code, (400, f"Simulated error {code}."))
    return VenueError(code, msg or known_msg, status or known_status)
