"""The store split by concern (schema, writer, queries, rows) keeps ``engine.store.db`` the one place to import from."""

import engine.store.db as db
from engine.store.db import Store
from engine.store.schema import SCHEMA_VERSION


def test_the_names_others_import_from_the_store_module_are_still_there():
    for name in db.__all__:
        assert getattr(db, name) is not None, name
    assert {"DB_NAME", "Store", "fill_from_row"} <= set(db.__all__)


def test_a_new_store_is_at_the_current_schema_and_queues_a_command(tmp_path):
    store = Store.in_dir(tmp_path)
    try:
        row = next(store.db.query("select value from meta where key = 'schema_version'"))
        assert int(row["value"]) == SCHEMA_VERSION
        first = store.submit_command("halt", "operator", "test")
        second = store.submit_command("resume", "operator", "test", {"why": 1})
        assert (first, second) == (1, 2)
        assert [c["id"] for c in store.pending_commands()] == [1, 2]
        assert store.claim_command(first) and not store.claim_command(first)
        store.finish_command(first, True, "halted", {"n": 1})
        assert store.command(first)["status"] == "done"
    finally:
        store.close()
