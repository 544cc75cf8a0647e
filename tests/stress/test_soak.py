"""Soak: the demo swarm runs for 60 s at the default intervals; memory, series and telemetry CPU stay flat."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for benchmarks/

from benchmarks.soak import soak


def test_soak_sixty_seconds():
    result = soak(60.0)
    assert abs(result.rss_drift) <= 0.10, f"RSS {result.rss_after_warmup} -> {result.rss_at_end}"
    assert result.series_at_end == result.series_after_warmup > 100
    assert result.telemetry_cpu_share < 0.02, f"telemetry used {result.telemetry_cpu_share:.2%} of a core"
