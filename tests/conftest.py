"""Shared fixtures: a real simulator on loopback and a real ccxt client pointed at it."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

# Stateful property tests drive a real engine: slow examples, no example database written into the tree. The default
# run is small; `--hypothesis-profile=long` is the long one (README "Proof suites").
_SLOW = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("cockpit", max_examples=3, stateful_step_count=10, **_SLOW)
settings.register_profile("long", max_examples=100, stateful_step_count=40, **_SLOW)
settings.load_profile("cockpit")

from engine.sim import Simulator  # noqa: E402
from engine.venue.exchange import build_exchange  # noqa: E402

RUNBOOK_TOGGLES = ("DRY_RUN", "RISK_KILL_SWITCH_ENABLED", "RISK_REDUCE_ONLY_MODE")


@pytest.fixture(autouse=True)
def isolated_from_the_operator(monkeypatch, tmp_path):
    """No test reads the developer's COCKPIT_* variables, runbook toggles or a .env in the working directory:
    an operator's .env could otherwise point a test at a real exchange."""
    for key in list(os.environ):
        if key.startswith("COCKPIT_") or key in RUNBOOK_TOGGLES:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    # The default data directory is per user ($XDG_STATE_HOME/cockpit): a test never reaches the developer's.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # The first frame's record (cockpit.firstframe) likewise: never the developer's cache, never another test's.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def tmux_installed() -> str:
    """tmux, or the test fails with how to install it (``needs.tmux``): the tmux tests never skip silently."""
    import needs

    return needs.tmux()


@pytest.fixture
async def sim():
    """A fresh simulator on free loopback ports, stopped after the test."""
    simulator = Simulator(seed=7)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def exchange(sim):
    """The real ccxt.pro binance client, pointed at the simulator with its paper keys."""
    ex = build_exchange(
        "binance",
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        timeout_ms=5_000,
    )
    try:
        yield ex
    finally:
        await ex.close()


@pytest.fixture
def collector_off():
    """Python's cyclic collector off for one test that times its event loop (TST-08): a long-lived test worker's
    full collection held the loop for 0.5-1.4 s under load, longer than such a test's margin."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


# ---------------------------------------------------------------------------------------------------- test tiers
# `pytest -m "not slow"` is the fast tier (meant for under a minute on 2 cores); the README's plain command runs all.
# A test is slow by kind (what it starts: real processes, tmux, long runs) or by measured duration: over ~2 s each
# in `.venv/bin/python -m pytest -q -n 3 -p no:cacheprovider --durations=0` on 2 cores. A new slow test: put
# `@pytest.mark.slow` on it, or its node id in a group below (one reason per group). Per-test timeouts: `timeout` in
# pyproject.toml for all, and TIMEOUTS below for the few that may take longer by design.

# Whole files, by kind.
SLOW_FILES = {
    "tests/chaos/test_stateful_faults.py": "stateful chaos: hypothesis drives a real engine through random faults",
    "tests/tui/test_tmux.py": "the real program in tmux",
    "tests/integration/test_monitors_ii.py": "monitors II: engines waiting out stream ends, calm periods and backoffs",
    "tests/tui/test_hangup.py": "the real program on a pseudo-terminal, hung up",
    "tests/tui/test_fleet.py": "two engines on their own simulators, and the app following both",
    "tests/integration/test_many_markets.py": "an engine on four markets of the simulator, orders on three",
    "tests/integration/test_validation.py": "validation runs: simulated hours of trading, and `cockpit validate`",
    "tests/integration/test_bench_smoke.py": "bench smoke: every benchmark script, each in its own process",
    "tests/integration/test_no_secret_anywhere.py": "an engine, the app under Pilot, CLI processes and tmux",
    "tests/integration/test_cli_kill_switch.py": "the CLI from another shell: one process per command",
    "tests/integration/test_cli_monitors.py": "the CLI from another shell: one process per command",
    "tests/integration/test_remote_commands.py": "the CLI from another shell: one process per command",
    "tests/integration/test_second_shell.py": "the CLI from another shell: one process per command",
    "tests/sim/test_standalone.py": "the simulator's runner in its own process",
    "tests/tui/test_screens.py": "the app under Pilot through its other screens, 1.5 to 10 s each",
    "tests/tui/test_hostile_text_screens.py": "the app under Pilot, a halt from another shell, and tmux",
    "tests/integration/test_hostile_text.py": "hostile texts through every field: CLI processes, a running engine",
    "tests/integration/test_odd_numbers.py": "the CLI from another shell: one process per command",
    "tests/integration/test_foreign_store.py": "the CLI from another shell on each kind of store that is not cockpit's",
    "tests/integration/test_full_disk.py": "a real tmpfs filled up, the kill switch from another shell",
    "tests/tui/test_tmux_attach.py": "the real programs in tmux: a headless engine, three screens attached to it",
    "tests/integration/test_attach_link.py": "a headless engine process stopped, continued and restarted",
    # Kept out of the fast tier (under 60 s on this 2-core machine) by weight: each runs real engines for seconds.
    "tests/tui/test_attach.py": "screens attached to a running engine under Pilot, over its socket and HTTP",
    "tests/integration/test_service_api.py": "engines serving their API, clients over the socket, HTTP, TLS and WS",
    "tests/integration/test_alert_codes.py": "an engine per alert code, each fault waited out",
    "tests/sim/test_faults_rest.py": "hang and latency faults: each waits out the client's timeout",
    "tests/tui/test_first_use.py": "the app under Pilot, as a first-time operator goes through it",
    "tests/integration/test_chat_control.py": "engines on the simulator commanded from fake Telegram and Slack",
    "tests/chaos/test_stop_survives.py": "kill -9 of the engine process twice, a simulator in its own process",
    "tests/integration/test_venue_stops.py": "an engine through a refused stop, its retry, an amend and a venue fill",
    "tests/chaos/test_after_answer.py": "kill -9 of the engine process after it answered, a simulator of its own",
    "tests/chaos/test_halt_latch.py": "kill -9 of the engine process before its halt is synced, a simulator of its own",
    "tests/scenarios/test_perp_scenarios.py": "perps (runbook 002): engines on the USDⓈ-M simulator, prices moved",
    "tests/scenarios/test_perp_deadman.py": "perps: a headless engine killed -9, the venue's countdown waited out",
    "tests/scenarios/test_scale_scenarios.py": "an engine on 50 markets: 50 orders placed, cancel-all and its retries",
    "tests/integration/test_perp_stops.py": "perps stops at the venue: two engines, a restart, a venue fill, ~5 s",
    "tests/chaos/test_strategy_records.py": "kill -9 of an engine process trading a strategy, a simulator of its own",
}

# Single tests (a parametrized test by its name without the [id]), by group.
SLOW_TESTS = {
    "user strategies: an engine on a market 60 times faster, waiting out a websocket drop and its refused reconnects": (
        "tests/integration/test_user_strategies.py::test_user_strategies_load_trade_fail_alone_and_keep_whole_candles",
    ),
    "market data and a backtest: a download from the simulator, then `cockpit validate` in a process of its own": (
        "tests/integration/test_backtest.py::test_download_list_and_backtest_a_user_strategy",
    ),
    "a backtest twice on the same candles, the streams over websockets then in-process (GATE-17), ~7 s": (
        "tests/integration/test_backtest.py::test_the_in_process_streams_decide_as_the_loopback_websockets",
    ),
    "crash loop: kill -9 of a busy engine process and restarts": (
        "tests/chaos/test_crash_loop.py::test_kills_of_a_busy_engine_lose_nothing_and_keep_the_halt",
        "tests/chaos/test_crash_loop.py::test_kills_of_an_engine_on_perps_lose_nothing_and_never_flip",
    ),
    "the real program (`python -m cockpit.cli`, or a fresh interpreter) in subprocesses": (
        "tests/integration/test_preflight.py::test_cockpit_preflight_exits_1_for_no_go_2_when_it_cannot_run",
        "tests/integration/test_preflight.py::test_cockpit_preflight_asks_the_running_engine_go_is_0_and_a_live_run_is_refused",
        "tests/integration/test_resilience_sim.py::test_live_needs_config_and_confirmation",
        "tests/integration/test_resilience_sim.py::test_headless_run_logs_json_and_stops_on_signal",
        "tests/integration/test_resilience_sim.py::test_headless_run_with_unknown_symbols_exits_with_an_error",
        "tests/integration/test_alerts_health_incidents.py::test_an_automatic_trip_opens_an_incident_with_a_snapshot_and_no_secret_anywhere",
        "tests/integration/test_alerts_health_incidents.py::test_acknowledge_from_the_cli_and_a_snapshot_on_demand",
        "tests/integration/test_daily_report.py::test_the_daily_report_is_the_summary_the_sinks_receive",
        "tests/integration/test_bad_input.py::test_a_server_answering_html_is_called_garbage_by_the_real_program",
        "tests/scenarios/test_halt_scenarios.py::test_a_halt_survives_a_restart_and_nothing_is_sent_until_an_operator_resumes",
        "tests/scenarios/test_halt_scenarios.py::test_resume_is_refused_from_every_front_end_while_the_trigger_holds",
        "tests/unit/test_store_safety.py::test_random_bytes_are_refused_and_left_as_they_were",
        "tests/unit/test_store_safety.py::test_a_foreign_sqlite_database_is_refused_untouched",
        "tests/unit/test_store_safety.py::test_a_read_only_data_dir_is_read_and_refused_for_writing_with_a_reason",
        "tests/unit/test_engine_headless.py::test_importing_engine_does_not_import_textual",
        "tests/unit/test_engine_headless.py::test_ccxt_is_imported_only_where_the_venue_is_connected",
        "tests/sim/test_headless.py::test_engine_sim_does_not_import_textual",
        "tests/integration/test_operator_slips.py::test_a_pipe_closed_early_ends_quietly",
        "tests/integration/test_operator_slips.py::test_the_data_directory_is_the_users_wherever_cockpit_runs_from",
        "tests/integration/test_service_unit.py::test_ready_then_watchdog_pings_at_half_the_timeout_then_stopping_on_sigterm",
        "tests/integration/test_service_unit.py::test_a_kill_9_comes_back_halted_with_an_incident_and_a_clean_stop_keeps_the_state",
        "tests/integration/test_service_unit.py::test_after_unclean_stop_keep_keeps_the_state",
    ),
    "over ~2 s measured: an engine waiting out the venue's timings (retry-after, stale limits, calm periods), "
    "the app under Pilot through a question or two, or many hypothesis examples": (
        "tests/tui/test_kill_switch_keys.py::test_palette_entry_runs_the_same_command_as_the_key",
        "tests/tui/test_kill_switch_keys.py::test_x_asks_once_listing_what_it_sells_then_flattens_the_venue",
        "tests/tui/test_kill_switch_keys.py::test_a_acknowledges_the_selected_alert_and_capital_a_all_of_them",
        "tests/tui/test_kill_switch_keys.py::test_a_question_is_withdrawn_when_the_kill_switch_fires",
        "tests/tui/test_kill_switch_keys.py::test_a_question_is_withdrawn_when_another_shell_halts",
        "tests/tui/test_kill_switch_keys.py::test_x_answered_no_does_nothing",
        "tests/tui/test_kill_switch_keys.py::test_r_reconnects",
        "tests/tui/test_app.py::test_the_screen_comes_before_the_engine_and_a_kill_key_pressed_meanwhile_is_not_lost",
        "tests/tui/test_app.py::test_resume_asks_once",
        "tests/tui/test_app.py::test_a_refused_resume_asks_a_second_question_and_resumes_as_an_override",
        "tests/scenarios/test_loss_scenarios.py::test_flash_crash_halts_and_resume_waits_for_the_calm_the_runbook_asks",
        "tests/scenarios/test_rest_scenarios.py::test_429_storm_waits_out_every_retry_after_is_never_banned_and_pauses_orders",
        "tests/scenarios/test_rest_scenarios.py::test_signed_calls_refused_after_every_resync_halt_instead_of_staying_active",
        "tests/scenarios/test_rest_scenarios.py::test_503_504_storm_halts_backs_off_and_a_5xx_that_hid_a_placed_order_is_not_placed_twice",
        "tests/scenarios/test_websocket_scenarios.py::test_connected_but_silent_reconnects_then_closes_everything",
        "tests/scenarios/test_websocket_scenarios.py::test_ws_drop_longer_than_the_stale_limit_closes_all_with_a_crit_and_a_snapshot",
        "tests/scenarios/test_order_scenarios.py::test_a_kill_switch_that_cannot_complete_reports_what_is_left_and_keeps_trying",
        "tests/scenarios/test_order_scenarios.py::test_a_stop_the_venue_refuses_is_crit_and_the_engine_keeps_it",
        "tests/scenarios/test_websocket_scenarios.py::test_a_stop_that_triggers_during_a_websocket_drop_is_recorded_from_the_venue",
        "tests/integration/test_kill_switch.py::test_cancel_all_keeps_the_protective_stops_unless_asked_to_take_them",
        "tests/integration/test_monitors.py::test_429_pauses_every_request_for_retry_after_and_418_halts",
        "tests/integration/test_monitors.py::test_two_buys_waiting_out_a_retry_after_cannot_both_pass_the_position_limit",
        "tests/integration/test_kill_switch.py::test_an_exception_in_a_risk_monitor_fails_closed_and_the_others_go_on",
        "tests/integration/test_alerts_health_incidents.py::test_alerts_reach_a_loopback_receiver_and_a_failing_one_is_reported",
        "tests/integration/test_preflight.py::test_a_configuration_unfit_for_live_fails_and_warns",
        "tests/integration/test_preflight.py::test_the_venues_faults_fail_their_checks",
        "tests/integration/test_group_commit.py::test_a_client_id_is_on_disk_while_its_request_is_at_the_venue",
        "tests/integration/test_resilience_sim.py::test_send_that_never_arrived_is_marked_rejected",
        "tests/integration/test_private_files.py::test_every_file_an_engine_run_writes_is_owner_only",
        "tests/unit/test_portfolio.py::test_pnl_adds_up_from_random_fills_with_fees_in_base_or_quote",
        "tests/integration/test_kill_switch.py::test_close_all_answers_from_what_it_knew_and_closes_what_the_read_back_finds",
    ),
    "strategies (issue 23): two engines on one data directory, and an engine on the USDⓈ-M simulator, 2-3 s each": (
        "tests/integration/test_user_strategies.py::test_the_template_enters_and_exits_and_a_restart_keeps_every_strategys_record_and_its_disable",
        "tests/integration/test_user_strategies.py::test_the_ladder_on_perps_asks_for_nothing_under_the_markets_minimum_notional",
    ),
    "waits up to 10 s for the wall clock to be well inside a minute (the venue counts weight per minute)": (
        "tests/sim/test_limits.py::test_over_the_limit_429_with_retry_after_then_418_ban",
    ),
    "a backtest with a strategy slower than its step: decided on the loop, disabled (GATE-19), ~2 s": (
        "tests/integration/test_backtest.py::test_a_backtest_disables_a_strategy_that_hangs_and_goes_on",
    ),
}

# Longer than the default timeout by design (seconds).
TIMEOUTS = {
    # kills=2: up to three engine starts, each waited for 60 s before the loop itself says what did not happen.
    "tests/chaos/test_crash_loop.py::test_kills_of_a_busy_engine_lose_nothing_and_keep_the_halt": 300,
    "tests/chaos/test_crash_loop.py::test_kills_of_an_engine_on_perps_lose_nothing_and_never_flip": 300,
    # About 75 s by itself (COCKPIT_SLOW_TESTS=1: .ci/run runs it in CI, after the suite).
    "tests/integration/test_validation.py::test_cockpit_validate_48h_finishes_in_under_two_minutes": 300,
}

_SLOW_IDS = {node_id for group in SLOW_TESTS.values() for node_id in group}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: not in the fast tier (`pytest -m 'not slow'`); see tests/conftest.py")
    if not hasattr(config, "workerinput"):  # once, not in every xdist worker
        _warn_of_stale_entries(config)


def _warn_of_stale_entries(config) -> None:
    """A renamed or moved test leaves its entry behind, and the test silently joins the fast tier: say so."""
    root = Path(config.rootpath)
    for node_id in [*SLOW_FILES, *_SLOW_IDS, *TIMEOUTS]:
        file, _, name = node_id.partition("::")
        path = root / file
        if not path.is_file() or (name and f"def {name}(" not in path.read_text()):
            config.issue_config_time_warning(
                pytest.PytestConfigWarning(f"tests/conftest.py names {node_id}, which does not exist"),
                stacklevel=2,
            )


def pytest_collection_modifyitems(config, items):
    for item in items:
        file, _, name = item.nodeid.partition("::")
        node_id = f"{file}::{name.split('[')[0]}"
        if file in SLOW_FILES or node_id in _SLOW_IDS:
            item.add_marker(pytest.mark.slow)
        if node_id in TIMEOUTS:
            item.add_marker(pytest.mark.timeout(TIMEOUTS[node_id]))


# A test of the fast tier well over the bar: named at the end of the run, so that it gets marked.
_SLOW_HINT_S = 5.0
_unmarked_slow: list[tuple[str, float]] = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and report.duration > _SLOW_HINT_S and "slow" not in report.keywords:
        _unmarked_slow.append((report.nodeid, report.duration))


# In parallel runs (pytest-xdist) each worker times its runbook scenarios (tests/runbook.py): the workers hand their
# results to the controller, which prints them and writes build/proof/scenarios.md once with all of them (what
# tests/scenarios/conftest.py does in a run without workers, or on a controller that loaded it).
_FROM_WORKERS = pytest.StashKey[bool]()


def pytest_sessionfinish(session):
    runbook = sys.modules.get("runbook")
    if hasattr(session.config, "workeroutput") and runbook is not None:
        session.config.workeroutput["runbook_results"] = list(runbook.RESULTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    results = getattr(node, "workeroutput", {}).get("runbook_results")
    if results:
        import runbook

        runbook.RESULTS.extend(results)
        node.config.stash[_FROM_WORKERS] = True


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(_FROM_WORKERS, False) and not any(
        Path(str(name)).as_posix().endswith("tests/scenarios/conftest.py")
        for name, _ in config.pluginmanager.list_name_plugin()
    ):
        from runbook import RESULTS, write_results

        path = write_results(RESULTS)
        terminalreporter.section(f"runbook scenarios: fault -> action (with runbook sections: {path})")
        for r in RESULTS:
            terminalreporter.write_line(f"{r['seconds']:6.2f}s  {r['scenario'][:60]}: {r['action']}")
    if _unmarked_slow:
        terminalreporter.section("slow tests not marked slow")
        for node_id, seconds in sorted(_unmarked_slow, key=lambda t: -t[1]):
            terminalreporter.write_line(f"{seconds:6.2f}s  {node_id}")
        terminalreporter.write_line(
            f"over {_SLOW_HINT_S:g} s: mark them slow (SLOW_TESTS in tests/conftest.py, or @pytest.mark.slow)"
        )
