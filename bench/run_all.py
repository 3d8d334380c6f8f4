"""Run every benchmark, each in its own process, and print their JSON objects and a summary table (under 10 minutes
on a 2-core machine; ``--quick`` for a few seconds each with tiny parameters).

``--before DIR`` also runs each benchmark, right after, against the code in DIR (e.g. ``git archive main | tar -x -C
DIR``: its packages come first on PYTHONPATH), so that before and after are measured under the same load.

Run: .venv/bin/python bench/run_all.py [--quick] [--only kill_switch,round_trips] [--before DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# In the order they run: the ones that need a quiet machine first.
BENCHMARKS = (
    "kill_switch",
    "perps",
    "tui_kill_switch",
    "tui_attached",
    "round_trips",
    "venue_stops",
    "persistence",
    "engine_events",
    "tui_storm",
    "cold_start",
    "cli_startup",
    "cli_halt",
    "chat_kill_switch",
    "soak",
    "scale",
    "backtest",
    "sim_push",
)


def argv_for(name: str, quick: bool) -> list[str]:
    sys.path.insert(0, str(HERE))
    module = importlib.import_module(name)
    params = module.QUICK if quick else module.PARAMS
    args = [sys.executable, str(HERE / f"{name}.py")]
    for key, value in params.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def headline(result: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(figure, measured, floor or goal) rows for the summary table."""
    name = result.get("benchmark")
    med = lambda d: (d or {}).get("median")
    p99 = lambda d: (d or {}).get("p99")
    if name == "kill_switch":
        rows = []
        for where in ("process", "inline"):
            v = result.get(f"venue_{where}")
            if not v:
                continue
            c, i, x = v["cancel_all_1_symbol"], v["cancel_all_idle_2_symbols"], v["close_all_2_positions"]
            tag = "sim in its own process" if where == "process" else "sim in the engine's process"
            rows += [
                (
                    f"cancel-all {result['orders']} orders, 1 symbol ({tag}): p50 / p99 ms",
                    f"{med(c['done'])} / {p99(c['done'])}",
                    f"floor {med(c['floor_bare_ccxt_delete_and_listing'])} / "
                    f"{p99(c['floor_bare_ccxt_delete_and_listing'])}",
                ),
                ("  ... until the venue holds none: p50 ms", med(c["venue_clear"]), ""),
                (
                    "cancel-all, idle engine, 2 symbols: p50 / p99 ms",
                    f"{med(i['done'])} / {p99(i['done'])}",
                    f"floor {med(i['floor_bare_ccxt_2_deletes_and_listing'])} / "
                    f"{p99(i['floor_bare_ccxt_2_deletes_and_listing'])}",
                ),
                (
                    "close-all 2 positions: p50 ms",
                    med(x["done"]),
                    f"floor {med(x['floor_bare_ccxt_listing_and_2_sells'])} "
                    f"(same calls {med(x['floor_bare_ccxt_same_calls'])})",
                ),
                ("halt: p50 ms", med(v["halt"]), ""),
            ]
        return rows
    if name == "backtest":
        return [
            (
                f"backtest {result['simulated_h']} h x {result['symbols']} symbols, 1m candles: wall s, pace",
                f"{result['wall_s_command']} s, x{result['pace']}",
                f"goal 30 days in 180 s (x14,400); on CPU x{result['pace_on_cpu']}",
            )
        ]
    if name == "sim_push":
        return [
            (
                f"simulator push after {result['minutes_held']} minutes held: ticker stats, forming candle, touch (us)",
                f"{result['stats_us']} / {result['forming_candle_us']} / {result['touch_us']}",
                "",
            )
        ]
    if name == "perps":
        x, c = result["close_all_2_positions"], result["cancel_all_2_symbols"]
        return [
            (
                "perps close-all 2 positions (flat at the venue): p50 / p99 ms",
                f"{med(x['done'])} / {p99(x['done'])}",
                f"bare ccxt {med(x['floor_bare_ccxt_positions_2_closes_positions'])} "
                f"(same calls {med(x['floor_bare_ccxt_same_calls'])})",
            ),
            (
                f"perps cancel-all {result['orders']} orders, 2 symbols: p50 / p99 ms",
                f"{med(c['done'])} / {p99(c['done'])}",
                f"bare ccxt {med(c['floor_bare_ccxt_2_deletes_and_listing'])}",
            ),
        ]
    if name == "tui_kill_switch":
        return [
            (
                f"key c -> command done, {result['orders']} orders / 2 symbols: p50 / p99 ms",
                f"{med(result['key_c_to_done'])} / {p99(result['key_c_to_done'])}",
                f"floor {med(result['floor_bare_ccxt_deletes_and_listing'])}",
            ),
            ("  ... key c -> venue clear (inside the simulator): p50 ms", med(result["key_c_to_venue_clear"]), ""),
            ("key h -> HALTED: p50 ms", med(result["key_h_to_halted_on_screen"]), ""),
        ]
    if name == "chat_kill_switch":
        return [
            (
                "Telegram /halt -> HALTED / reply: p50 / p99 ms",
                f"{med(result['chat_halt_to_done'])} / {p99(result['chat_halt_to_done'])}, "
                f"reply {med(result['chat_halt_to_reply'])} / {p99(result['chat_halt_to_reply'])}",
                f"cockpit halt {med(result['cli_halt_to_done'])}",
            ),
            (
                "Telegram /stop -> venue clear / reply: p50 / p99 ms",
                f"{med(result['chat_stop_to_done'])} / {p99(result['chat_stop_to_done'])}, "
                f"reply {med(result['chat_stop_to_reply'])} / {p99(result['chat_stop_to_reply'])}",
                f"cockpit cancel-all {med(result['cli_cancel_all_to_done'])}",
            ),
        ]
    if name == "venue_stops":
        f = result["fill_to_stop_resting"]
        return [
            (
                "entry fill -> stop resting at the venue: p50 / p99 ms",
                f"{med(f)} / {p99(f)}",
                f"bare order {med(result['floor_bare_ccxt_order'])} (x{result['ratio_vs_bare_order']})",
            )
        ]
    if name == "round_trips":
        m, p = result["market"], result["pair"]
        return [
            (
                "market order round trip: engine / bare ccxt, same budget: p50 ms",
                f"{med(m['engine'])} / {med(m.get('engine_budget'))}",
                f"x{m['ratio_engine_vs_bare_same_budget']}",
            ),
            (
                "limit place+cancel: engine / bare ccxt, same budget: p50 ms",
                f"{med(p['engine'])} / {med(p.get('engine_budget'))}",
                f"x{p['ratio_engine_vs_bare_same_budget']}",
            ),
        ]
    if name == "persistence":
        return [
            (
                "store: order-event rows/s (batch / single)",
                f"{result['batch']['rows_per_s']} / {result['single']['rows_per_s']}",
                f"floor {result['floor_raw_sqlite_one_transaction']['rows_per_s']}",
            ),
            (
                "store: commit p99 ms (batch / single)",
                f"{result['batch']['commit_ms'].get('p99')} / {result['single']['commit_ms'].get('p99')}",
                "",
            ),
        ]
    if name == "engine_events":
        return [
            (
                "engine: order reports/s (batch / single), tickers/s",
                f"{result['order_reports_batch']['per_s']} / {result['order_reports_single']['per_s']}, "
                f"{result['tickers']['per_s']}",
                f"floor {result['floor_tracker_alone']['per_s']}",
            )
        ]
    if name == "tui_storm":
        target = result["target"]
        return [
            (
                f"storm of {target['order_events_per_s']} order events + {target['tickers_per_s']} tickers/s: "
                "events/s achieved",
                result["achieved_events_per_s"],
                "",
            ),
            (
                "  ... event -> widget p50 / p99 ms",
                f"{med(result['event_to_widget_ms'])} / {p99(result['event_to_widget_ms'])}",
                "",
            ),
            (
                "  ... key h -> HALTED p50 / p99 ms",
                f"{med(result['key_to_halted_ms'])} / {p99(result['key_to_halted_ms'])}",
                f"n={(result['key_to_halted_ms'] or {}).get('n')}",
            ),
        ]
    if name == "cold_start":
        return [
            (
                "TUI first frame / ready: p50 ms",
                f"{med(result['first_frame'])} / {med(result.get('ready'))}",
                f"floor {med(result['floor_bare_textual_first_frame'])}",
            ),
            (
                "attached TUI first frame / ready: p50 ms",
                f"{med(result.get('attached_first_frame'))} / {med(result.get('attached_ready'))}",
                f"floor {med(result['floor_bare_textual_first_frame'])}",
            ),
        ] + (
            [
                (
                    "TUI first frame, CPU used: in-process / attached p50 ms",
                    f"{med(result['first_frame_cpu_ms'])} / {med(result.get('attached_first_frame_cpu_ms'))}",
                    f"floor {med(result.get('floor_bare_textual_first_frame_cpu_ms'))}",
                )
            ]
            if "first_frame_cpu_ms" in result  # recorded since the CPU pairs (a --before tree may predate them)
            else []
        )
    if name == "cli_startup":
        return [
            (
                "cockpit status, missing dir: p50 ms / MiB",
                f"{med(result['status_missing_dir'])} / {med(result['status_peak_rss_mib'])}",
                f"floor {med(result['floor_bare_python'])}",
            )
        ]
    if name == "tui_attached":
        return [
            (
                f"attached / in-process: key {k} p50 ms",
                f"{med(result[key]['attached'])} / {med(result[key]['in_process'])}",
                f"x{result[key]['ratio']} (goal <= 1.5)",
            )
            for k, key in (("h -> HALTED", "h_in_engine"), ("c -> venue clear", "c_venue_clear"))
        ]
    if name == "cli_halt":
        return [
            (
                "cockpit halt, engine running: socket / store inbox p50 ms",
                f"{med(result['halt_by_socket'])} / {med(result['halt_by_inbox'])}",
                f"floor {med(result['floor_bare_python'])}",
            )
        ]
    if name == "scale":
        at = str(result.get("goals_at_symbols"))
        r = (result.get("by_symbols") or {}).get(at) or {}
        return [
            (
                f"{at} symbols: idle CPU % / RSS MB / event -> screen p99 ms",
                f"{r.get('idle_cpu_pct')} / {r.get('rss_mb')} / {p99(r.get('event_to_screen_ms'))}",
                "goal <= 15 / 300 / 100",
            ),
            (
                f"{at} symbols: cancel-all / close-all p50 ms",
                f"{med((r.get('cancel_all') or {}).get('done_ms'))} / {med((r.get('close_all') or {}).get('done_ms'))}",
                f"floor {med((r.get('cancel_all') or {}).get('floor_ms'))} / "
                f"{med((r.get('close_all') or {}).get('floor_ms'))}",
            ),
        ]
    if name == "soak":
        return [
            (
                "soak: RSS growth MB per simulated hour (slope ± spread) / per wall hour",
                f"{result['growth_mb_per_simulated_hour']} ± {result.get('growth_spread_mb_per_simulated_hour')}"
                f" / {result.get('growth_mb_per_wall_hour')}",
                f"{result['simulated_hours']} h simulated",
            )
        ]
    return []


def goal_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, ratio ± spread vs goal, verdict) for each goal a benchmark judged (``benchlib.judge``), then each
    CPU-time ratio it judged the same way beside them (``cpu_ratios``: the work, which the load does not stretch)."""
    rows = []
    judged = {**(result.get("goals") or {}), **(result.get("cpu_ratios") or {})}
    for figure, g in judged.items():
        if g.get("ratio") is None:
            rows.append((figure, "no data", g.get("verdict", "no data")))
            continue
        rows.append((figure, f"x{g['ratio']} ± {g['spread']} (goal <= {g['goal']}, n={g['n']})", g["verdict"].upper()))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny parameters: checks that each benchmark runs")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--before", default="", metavar="DIR", help="also run each against the code in DIR")
    parser.add_argument("--out", default="", help="also write every result to this JSON file")
    args = parser.parse_args()
    names = [n for n in (args.only.split(",") if args.only else BENCHMARKS) if n]
    results, rows, goals, failed = [], [], [], []
    start = time.perf_counter()
    for name in names:
        for code in ("after", "before") if args.before else ("after",):
            env = dict(os.environ)
            if code == "before":
                env["PYTHONPATH"] = os.pathsep.join(p for p in (args.before, env.get("PYTHONPATH", "")) if p)
            began = time.perf_counter()
            proc = subprocess.run(
                argv_for(name, args.quick),
                capture_output=True,
                text=True,
                env=env,
                cwd=HERE.parent if code == "after" else args.before,
            )
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode != 0 or not lines:
                failed.append(f"{name} ({code})")
                print(f"{name} ({code}): FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            result = json.loads(lines[-1])
            result["wall_s"] = round(time.perf_counter() - began, 1)
            result["code"] = code
            # The summary table's rows in the JSON too: its figures and its judged ratios (wall and CPU).
            result["summary"] = {
                "figures": [[figure, str(measured), str(floor)] for figure, measured, floor in headline(result)],
                "ratios": [list(row) for row in goal_rows(result)],
            }
            results.append(result)
            print(json.dumps(result))
            rows += [
                (f"[{code}] {figure}" if args.before else figure, measured, floor)
                for figure, measured, floor in headline(result)
            ]
            goals += [(f"[{code}] {figure}" if args.before else figure, *rest) for figure, *rest in goal_rows(result)]
    print(f"\n{'figure':<86} {'measured':<32} floor / ratio", file=sys.stderr)
    for figure, measured, floor in rows:
        print(f"{figure:<86} {str(measured):<32} {floor}", file=sys.stderr)
    if goals:
        print(
            "\nratios against their goals: a spread (half the 90 % band over resamples) wider than the distance to "
            "the goal is NOT DECIDED, not a pass",
            file=sys.stderr,
        )
        for figure, judged, verdict in goals:
            print(f"{figure:<86} {judged:<44} {verdict}", file=sys.stderr)
    print(
        f"\n{len(results)} benchmarks in {time.perf_counter() - start:.0f} s"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        file=sys.stderr,
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
