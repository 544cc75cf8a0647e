"""pytest plugin (registered under the ``pytest11`` entry point): the ``p2p_telemetry`` fixture.

Installed with p2p-telemetry, it offers every test a fresh ``p2p_telemetry.testing.TelemetryCapture``
(a MetricsCollector on its own MeterProvider and InMemoryMetricReader), shut down after the test::

    def test_my_node_counts_its_bytes(p2p_telemetry):
        node = MyNode(collector=p2p_telemetry.collector)
        ...
        assert p2p_telemetry.value("p2p.network.io", {"p2p.protocol": "task"}, exact=False) == 1024

It imports p2p-telemetry only when a test asks for the fixture, so it costs other test runs of
the environment nothing. ``pytest -p no:p2p_telemetry`` turns it off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import TelemetryCapture

__all__ = ["p2p_telemetry"]


@pytest.fixture
def p2p_telemetry() -> Iterator[TelemetryCapture]:
    """A fresh TelemetryCapture: ``.collector`` for the node, ``.value()``/``.histogram()``/``.points()`` to read."""
    from .testing import TelemetryCapture

    with TelemetryCapture() as capture:
        yield capture
