"""Bearer tokens of the remote API: created once (printed once), kept only as hashes, each with a role.

A token is 32 random bytes (``ckpt_`` and 43 URL-safe characters). Its SHA-256 is what the store keeps: a hash of a
random secret that long needs no slow hash (nobody can guess their way back), and a stolen store gives nobody a
token. Roles: ``viewer`` reads (GET and the event stream); ``operator`` also sends commands.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from engine.kernel.events import utcnow
from engine.store.db import Store

ROLES = ("viewer", "operator")
PREFIX = "ckpt_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


class TokenError(ValueError):
    """A token command that cannot be done as asked (a bad name or role, a name taken or unknown)."""


@dataclass(frozen=True)
class TokenHolder:
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"api:{self.name}"

    @property
    def may_command(self) -> bool:
        return self.role == "operator"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise TokenError(
            f"token name {name!r} is not usable: 1 to 40 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (it is the actor in the audit trail: api:NAME)"
        )
    return name


def create(store: Store, name: str, role: str, by: str) -> str:
    """A new token for ``name`` with ``role``; returns the token (the only time it exists in clear)."""
    check_name(name)
    if role not in ROLES:
        raise TokenError(f"role {role!r} is not one of {', '.join(ROLES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    with store.conn:
        if store.conn.execute("select 1 from api_tokens where name = ?", [name]).fetchone():
            raise TokenError(f"a token named {name!r} exists; revoke it first (`cockpit api token revoke {name}`)")
        store.conn.execute(
            "insert into api_tokens (name, role, hash, created_at, created_by, last_used_at) values (?, ?, ?, ?, ?, ?)",
            [name, role, digest(token), utcnow().isoformat(), by, None],
        )
    return token


def listing(store: Store) -> list[dict[str, Any]]:
    """Every token's name, role and dates (never its hash)."""
    return [
        {k: r[k] for k in ("name", "role", "created_at", "created_by", "last_used_at")}
        for r in store.db.query("select * from api_tokens order by name")
    ]


def revoke(store: Store, name: str) -> None:
    with store.conn:
        if store.conn.execute("delete from api_tokens where name = ?", [name]).rowcount == 0:
            raise TokenError(f"no token named {name!r} (see `cockpit api token list`)")


def holder(store: Store, token: str) -> TokenHolder | None:
    """Who holds ``token``, or None. The lookup is by the hash; the comparison of hashes takes constant time."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    wanted = digest(token)
    row = next(store.db.query("select name, role, hash from api_tokens where hash = ?", [wanted]), None)
    if row is None or not hmac.compare_digest(str(row["hash"]), wanted):
        return None
    return TokenHolder(str(row["name"]), str(row["role"]))
