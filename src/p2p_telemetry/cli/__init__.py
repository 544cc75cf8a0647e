"""The ``p2p-telemetry`` command: ``demo`` runs a small swarm on loopback; ``rules`` prints the Prometheus rule file."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence

__all__ = ["main", "parser"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _peers(text: str) -> int:
    if not text.isdigit() or not 2 <= int(text) <= 50:
        raise argparse.ArgumentTypeError(f"must be a whole number from 2 to 50, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    top = argparse.ArgumentParser(prog="p2p-telemetry", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run a small instrumented swarm on 127.0.0.1 with a live view",
        description="Start an instrumented node and N peers in this process, on 127.0.0.1, over real asyncio TCP "
                    "connections. They exchange task, discovery and resource messages; the node pings every peer's "
                    "health each second. The last peer is flaky (healthy -> degraded -> unhealthy -> healthy on a "
                    "20 s cycle), and now and then a dial fails. Metrics are served for Prometheus (and/or sent over "
                    "OTLP); alerts fire and resolve in the live view, and in Alertmanager with --alertmanager.")
    demo.add_argument("--peers", type=_peers, default=5, help="number of peers besides the node (default 5)")
    demo.add_argument("--duration", type=_positive, default=None, metavar="S",
                      help="stop by itself after S seconds (default: run until Ctrl-C)")
    demo.add_argument("--prometheus-host", default="127.0.0.1",
                      help="address of the Prometheus endpoint (default 127.0.0.1)")
    demo.add_argument("--prometheus-port", type=_port, default=9464,
                      help="port of the Prometheus endpoint (default 9464; 0 picks a free one)")
    demo.add_argument("--no-prometheus", dest="prometheus", action="store_false",
                      help="do not serve the Prometheus endpoint (use with --otlp-endpoint)")
    demo.add_argument("--otlp-endpoint", metavar="URL", default=None,
                      help="also export over OTLP to this collector, e.g. http://127.0.0.1:4317")
    demo.add_argument("--otlp-protocol", choices=("grpc", "http/protobuf"), default=None,
                      help="OTLP protocol (default grpc, or OTEL_EXPORTER_OTLP_METRICS_PROTOCOL)")
    demo.add_argument("--export-interval", type=_positive, default=5.0, metavar="S",
                      help="seconds between OTLP exports (default 5)")
    demo.add_argument("--alertmanager", metavar="URL", default=None,
                      help="send alerts to this Alertmanager, e.g. http://127.0.0.1:9093")
    demo.add_argument("--alert-check-interval", type=_positive, default=1.0, metavar="S",
                      help="seconds between alert evaluations (default 1)")
    demo.add_argument("--health-check-interval", type=_positive, default=1.0, metavar="S",
                      help="seconds between health pings of each peer (default 1)")
    demo.add_argument("--rules", dest="rules_file", metavar="FILE", default=None,
                      help="a YAML file of extra alert rules, beside the default four")
    demo.add_argument("--no-view", dest="view", action="store_false",
                      help="no live view (alerts are still logged)")
    demo.add_argument("--seed", type=int, default=None, help="random seed for the swarm's traffic")

    rules = commands.add_parser("rules", help="print the alert rules as a Prometheus rule file",
                                description="Print the default alert rules (and those of --file) as a Prometheus "
                                            "alerting-rule file, in PromQL over the catalogue's series.")
    rules.add_argument("--file", metavar="FILE", default=None, help="a YAML file of extra rules")
    rules.add_argument("--no-defaults", dest="defaults", action="store_false", help="leave out the default four")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``p2p-telemetry`` console command."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "rules":
        from ..alerting import default_rules, fleet_rules, load_rules, rules_to_prometheus
        rules = (default_rules() if args.defaults else []) + (load_rules(args.file) if args.file else [])
        sys.stdout.write(rules_to_prometheus(rules, fleet=fleet_rules() if args.defaults else ()))
        return 0
    from .demo import DemoOptions, run
    options = DemoOptions(**{k: v for k, v in vars(args).items() if k != "command"})
    try:
        return run(options)
    except (ValueError, OSError) as error:
        print(f"p2p-telemetry demo: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
