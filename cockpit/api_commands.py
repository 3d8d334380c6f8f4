"""``cockpit api token create | list | revoke``: the remote API's bearer tokens, kept in the store as hashes.

A new token is printed once, alone on stdout, so that
``(umask 077; cockpit api token create phone --role viewer > phone.token)`` keeps it in a file only its owner reads;
the store keeps its SHA-256. Creating and revoking work with or without
an engine running: an engine checks the store at every request, so a revoked token is refused at once.
"""

from __future__ import annotations

import json
import sys

from engine.kernel.config import Settings
from engine.kernel.text import inert


def token(settings: Settings, action: str, name: str | None, role: str, as_json: bool) -> int:
    from engine.api import tokens
    from engine.api.inbox import cli_actor
    from engine.store.db import Store

    data_dir = settings.engine.data_dir
    store = Store.in_dir(data_dir)
    try:
        if action == "list":
            rows = tokens.listing(store)
            if as_json:
                print(json.dumps(rows))
            elif not rows:
                print("no API tokens (create one: cockpit api token create NAME --role viewer|operator)")
            else:
                print(f"{'NAME':<24} {'ROLE':<9} CREATED BY")
                for r in rows:
                    created = f"{inert(r['created_at'])[:19]} {inert(r['created_by'])}"
                    print(f"{inert(r['name']):<24} {inert(r['role']):<9} {created}")
            return 0
        assert name is not None
        try:
            if action == "create":
                secret = tokens.create(store, name, role, by=cli_actor())
            else:
                tokens.revoke(store, name)
        except tokens.TokenError as exc:
            print(f"cockpit api token {action}: {inert(exc)}", file=sys.stderr)
            return 2
    finally:
        store.close()
    if action == "create":
        print(secret)
        print(
            f"token {name!r} ({role}) created: shown once, only its hash is kept in {data_dir}. Send it as "
            f"`Authorization: Bearer <token>`; its commands are audited as api:{name}.",
            file=sys.stderr,
        )
    else:
        print(f"token {name!r} revoked: it is refused from now on", file=sys.stderr)
    return 0
