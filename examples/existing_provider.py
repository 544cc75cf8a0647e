"""Dropping p2p-telemetry into a node that already set up OpenTelemetry with its own OTLP exporter.

    python examples/existing_provider.py [--otlp-endpoint http://127.0.0.1:4317]

The node owns its MeterProvider and exporter; p2p-telemetry is given nothing and replaces
nothing: ``MetricsCollector()`` reports through the node's global provider, beside the node's
own instruments, and ``configure()`` returns the node's provider with a warning. With no
collector listening, the exports fail quietly and the node still finishes (the exporter's
timeout is short).
"""

from __future__ import annotations

import argparse
import logging

from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from p2p_telemetry import HealthStatus, MetricsCollector, configure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otlp-endpoint", default="http://127.0.0.1:4317", help="the node's own collector (gRPC)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    # --- the node's own OpenTelemetry set-up, done before p2p-telemetry is involved -------------
    exporter = OTLPMetricExporter(endpoint=args.otlp_endpoint, timeout=2)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=1000, export_timeout_millis=2000)
    provider = MeterProvider(metric_readers=[reader],
                             resource=Resource.create({"service.name": "existing-node"}))
    metrics.set_meter_provider(provider)
    node_requests = metrics.get_meter("my.node").create_counter("node.requests", unit="{request}")

    # --- p2p-telemetry dropped in: no provider passed, nothing replaced --------------------------
    collector = MetricsCollector(sample_resources=False)
    assert collector.meter_provider is provider
    assert configure() is provider  # keeps the node's provider, and says so in a warning

    sent = collector.network.sent(protocol="task", transport="tcp")
    for _ in range(16):
        sent.add(256)  # 4096 bytes
        node_requests.add(1)
    collector.network.bytes_received(1024, protocol="discovery", transport="tcp")
    collector.protocols.increment("task", "submitted", 16)
    collector.peers.update("12D3KooWexample", health=HealthStatus.HEALTHY, latency=0.012, reputation=0.8)

    provider.shutdown()  # the node's shutdown: exports what is left, within the exporter's timeout
    print(f"existing_provider: recorded {collector.network_snapshot().bytes_sent} bytes sent through the node's "
          f"own provider, exported to {args.otlp_endpoint}")


if __name__ == "__main__":
    main()
