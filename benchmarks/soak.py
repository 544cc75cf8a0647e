"""Soak: the demo swarm at the library's default intervals; memory drift, series count, telemetry's CPU share.

Run: python -m benchmarks.soak [--seconds 300]   (bounded: stops by itself)

The demo (node + 5 peers, one flaky) runs in this process, serving Prometheus on a free
loopback port that is scraped every 15 s (Prometheus's default). After a warm-up that
covers one whole cycle of the flaky peer, it measures:

- resident memory at the end against its value after the warm-up;
- the number of exported series (``p2p_alert_active`` aside: its series follow the alerts);
- CPU of the telemetry threads (resource sampler, alert evaluator, health checker: by thread,
  from psutil) plus the scrapes (each counted at its whole wall time: an upper bound), as a
  share of one core.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
import urllib.request
from dataclasses import dataclass

import psutil

from p2p_telemetry.cli.demo import DemoOptions, run

TELEMETRY_THREADS = ("p2p-telemetry-",)
MiB = 1 << 20


@dataclass
class SoakResult:
    """What one soak measured."""

    seconds: float
    rss_after_warmup: int
    rss_at_end: int
    series_after_warmup: int
    series_at_end: int
    telemetry_cpu_share: float  # of one core
    scrape_ms: float  # mean wall time of one scrape

    @property
    def rss_drift(self) -> float:
        """Relative change of resident memory from the end of the warm-up to the end."""
        return self.rss_at_end / self.rss_after_warmup - 1


class _Output:
    """A text sink for the demo's output that another thread can read."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)


def _telemetry_cpu() -> float:
    """CPU seconds so far of this process's telemetry threads."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    return sum(t.user_time + t.system_time for t in psutil.Process().threads()
               if names.get(t.id, "").startswith(TELEMETRY_THREADS))


def _scrape(url: str) -> tuple[int, float]:
    """(number of series, seconds) of one scrape, ``p2p_alert_active`` aside."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    elapsed = time.perf_counter() - started
    series = [line for line in text.splitlines() if line and not line.startswith("#")
              and not line.startswith("p2p_alert_active")]
    return len(series), elapsed


def soak(seconds: float = 60.0, warmup: float = 22.0, scrape_interval: float = 15.0) -> SoakResult:
    """Run the demo for ``seconds`` and measure it after ``warmup`` seconds."""
    out = _Output()
    options = DemoOptions(duration=seconds + 3, prometheus_port=0, view=False, seed=1, health_check_interval=5.0,
                          alert_check_interval=1.0)
    demo = threading.Thread(target=run, args=(options, out), name="soak-demo", daemon=True)
    started = time.monotonic()
    demo.start()
    deadline = started + 30
    while not (match := re.search(r"Prometheus: (http://\S+/metrics)", out.text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    if match is None:
        raise RuntimeError(f"the demo did not start: {out.text()[-2000:]}")
    url = match.group(1)
    process = psutil.Process()
    scrapes: list[float] = []
    next_scrape = time.monotonic()
    baseline: tuple[float, float, int, int] | None = None
    series = 0
    while time.monotonic() < started + seconds:
        now = time.monotonic()
        if now >= next_scrape:
            series, elapsed = _scrape(url)
            scrapes.append(elapsed)
            next_scrape = now + scrape_interval
        if baseline is None and now >= started + warmup:
            series, _ = _scrape(url)
            baseline = (time.monotonic(), _telemetry_cpu(), process.memory_info().rss, series)
            scrapes.clear()
        time.sleep(0.1)
    series, elapsed = _scrape(url)
    scrapes.append(elapsed)
    ended, cpu, rss = time.monotonic(), _telemetry_cpu(), process.memory_info().rss
    demo.join(timeout=30)
    assert baseline is not None
    measured = ended - baseline[0]
    share = (cpu - baseline[1] + sum(scrapes)) / measured
    return SoakResult(seconds, baseline[2], rss, baseline[3], series, share, sum(scrapes) / len(scrapes) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()
    result = soak(args.seconds)
    print(f"soak {result.seconds:.0f} s: RSS {result.rss_after_warmup / MiB:.1f} -> {result.rss_at_end / MiB:.1f} MiB "
          f"({result.rss_drift:+.1%}), series {result.series_after_warmup} -> {result.series_at_end}, "
          f"telemetry CPU {result.telemetry_cpu_share:.2%} of a core (scrape {result.scrape_ms:.1f} ms)")


if __name__ == "__main__":
    main()
