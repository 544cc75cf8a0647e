"""One command, one table: ``python -m benchmarks [--quick]``.

Hot path against a plain increment, the raw OTel SDK and prometheus_client; collection cost
against peer count; memory per peer; one alert-evaluation tick; asyncio stream overhead;
telemetry's CPU share in a soak of the demo swarm. Everything runs in this process, side by
side, in bounded loops on loopback. ``--quick`` shortens the stream and soak runs. ``--fleet``
adds a fleet of 50 node processes with agents and a central Prometheus (about 5 more minutes;
not run by default; also ``python -m benchmarks.fleet``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from typing import TypeVar

from benchmarks import alerts, asyncio_streams, fleet, hot_path, libp2p, peers, soak
from benchmarks._timing import table

T = TypeVar("T")


def versions() -> str:
    """The versions the figures were measured with."""
    names = ("p2p-telemetry", "opentelemetry-sdk", "opentelemetry-exporter-prometheus", "prometheus_client", "psutil")
    return ", ".join(f"{name} {version(name)}" for name in names)


def in_fresh_process(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a new interpreter: a ratio of small per-call costs is not skewed by this process's heap."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter stream and soak runs")
    parser.add_argument("--fleet", action="store_true",
                        help="also a fleet of 50 node processes with two agents and a central Prometheus (~5 min)")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []

    calls = {r["case"]: r for r in hot_path.record_calls()}
    for case, r in calls.items():
        context = f"{r['x_plain']:.2f}x plain; SDK {r['sdk_over']:.1f}x it"
        rows.append((f"hot path: {case}", f"{r['ns']:.0f} ns", context))
    for size in peers.SIZES:
        r = peers.peer_table(size)
        rows.append((f"full collection, {size:,} peers", f"{r['collect_ms']:.2f} ms",
                     f"peers.update {r['update_ns'] / 1000:.2f} us"))
        if size == peers.SIZES[-1]:
            rows.append(("memory per peer (100,000 peers)", f"{r['bytes_per_peer']:.0f} B",
                         f"{r['bytes_per_peer_with_ids']:.0f} B with its 52-char id"))
    for size in (1_000, 100_000):
        r = alerts.tick_cost(size)
        rows.append((f"alert evaluation tick, {size:,} peers", f"{r['median']:.2f} ms",
                     f"p99 {r['p99']:.2f} ms; target <= 5 ms"))
    delays = alerts.delivery_delay(1.0, 3 if args.quick else 6)
    rows.append(("threshold crossing -> callback sink (1 s checks)", f"{max(delays) * 1000:.0f} ms max",
                 f"mean {sum(delays) / len(delays) * 1000:.0f} ms; target <= 1100 ms"))
    r = in_fresh_process(asyncio_streams.overhead, 16 if args.quick else 64, 5 if args.quick else 11)
    rows.append(("asyncio streams, 4 KiB writes", f"{r['overhead_pct']:+.1f} % CPU",
                 f"{r['plain']:.2f} -> {r['instrumented']:.2f} ms/MiB; target <= 5 %"))
    rows += in_fresh_process(libp2p.rows, 600 if args.quick else 2000, 3 if args.quick else 5)
    s = soak.soak(40.0 if args.quick else 120.0)
    rows.append((f"soak {s.seconds:.0f} s: telemetry CPU", f"{s.telemetry_cpu_share:.2%} of a core",
                 f"RSS {s.rss_drift:+.1%}, series {s.series_after_warmup} -> {s.series_at_end}; target < 2 %"))
    if args.fleet:
        rows += fleet.rows(*fleet.measure(50, 90.0))

    print(f"# p2p-telemetry benchmarks, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"# Python {platform.python_version()} on {platform.machine()}, {versions()}\n")
    print(table(rows, ("measurement", "figure", "context")))


if __name__ == "__main__":
    sys.exit(main())
