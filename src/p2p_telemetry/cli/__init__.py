"""The ``p2p-telemetry`` command: ``demo`` runs a small swarm on loopback, ``fleet`` runs N nodes as processes that
are peers of each other; ``rules`` prints the Prometheus rule file."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from typing import Any

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


def _whole(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text!r}")
        return int(text)
    return parse


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
    demo.add_argument("--libp2p", action="store_true",
                      help="run the swarm on real py-libp2p hosts: gossipsub, a Kademlia DHT, pings (the libp2p extra)")

    fleet = commands.add_parser(
        "fleet", help="run N instrumented nodes as processes on 127.0.0.1, peers of each other",
        description="Start N instrumented nodes as separate processes on 127.0.0.1. Each one serves Prometheus on "
                    "its own port (--base-port, --base-port + 1, ...) with its own service.instance.id (node-1 ... "
                    "node-N), listens for peers and dials its ring neighbours, who dial it back; every node pings "
                    "its peers' health and evaluates the default alert rules. One node in --flaky-every has the "
                    "demo's flaky listener (answers, answers slowly, goes silent, recovers on a 20 s cycle), so its "
                    "neighbours see it go degraded and unhealthy. The fleet writes a Prometheus file_sd target file "
                    "(--file-sd), shows one line per node (redrawn on a terminal, every 10 s on a pipe), and stops "
                    "after --duration or on Ctrl-C/SIGTERM, stopping and reaping every node; a node whose fleet "
                    "dies stops by itself. 50 nodes run on 2 cores.")
    fleet.add_argument("--nodes", type=_whole(1, 1000), default=10, metavar="N", help="number of nodes (default 10)")
    fleet.add_argument("--base-port", type=_port, default=9464, metavar="PORT",
                       help="Prometheus port of node-1; node-K serves PORT+K-1 (default 9464; 0 picks free ports)")
    fleet.add_argument("--prometheus-host", default="127.0.0.1",
                       help="address the nodes serve Prometheus on (default 127.0.0.1)")
    fleet.add_argument("--file-sd", metavar="PATH", default=None,
                       help="where to write the Prometheus file_sd target file, removed at the end "
                            "(default <temp dir>/p2p-telemetry-fleet/targets.json)")
    fleet.add_argument("--duration", type=_positive, default=None, metavar="S",
                       help="stop by itself S seconds after every node is up (default: run until Ctrl-C)")
    fleet.add_argument("--peers-per-node", type=_whole(1, 100), default=4, metavar="K",
                       help="ring neighbours each node dials and is dialled by (default 4; a full mesh when N <= K+1)")
    fleet.add_argument("--flaky-every", type=_whole(0, 1000), default=10, metavar="K",
                       help="node-N, node-(N-K), ... have a flaky listener (default 10; 0: none)")
    fleet.add_argument("--message-interval", type=_positive, default=0.2, metavar="S",
                       help="mean seconds between messages to each peer (default 0.2; the demo uses 0.05)")
    fleet.add_argument("--idle", action="store_true",
                       help="no messages nor failed dials: only health pings, resource sampling and alert checks")
    fleet.add_argument("--traffic-seconds", type=_positive, default=None, metavar="S",
                       help="after S seconds, stop all traffic (messages, dials, health pings): the nodes keep serving "
                            "their final counters until the fleet stops, to compare totals exactly")
    fleet.add_argument("--health-check-interval", type=_positive, default=1.0, metavar="S",
                       help="seconds between health pings of each peer (default 1)")
    fleet.add_argument("--alert-check-interval", type=_positive, default=1.0, metavar="S",
                       help="seconds between alert evaluations in each node (default 1)")
    fleet.add_argument("--alertmanager", metavar="URL", default=None,
                       help="each node also sends its alerts to this Alertmanager, e.g. http://127.0.0.1:9093")
    fleet.add_argument("--no-view", dest="view", action="store_false", help="no per-node summary")
    fleet.add_argument("--seed", type=int, default=None, help="random seed for the nodes' ids and traffic")

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
    settings = {k: v for k, v in vars(args).items() if k != "command"}
    if args.command == "fleet":
        from .fleet import DEFAULT_FILE_SD, FleetOptions
        from .fleet import run as run_fleet
        options = FleetOptions(**{**settings, "file_sd": settings["file_sd"] or DEFAULT_FILE_SD})
        if options.base_port and options.base_port + options.nodes - 1 > 65535:
            print(f"p2p-telemetry fleet: --base-port {options.base_port} leaves no room for {options.nodes} nodes",
                  file=sys.stderr)
            return 2
        try:
            return run_fleet(options)
        except OSError as error:
            print(f"p2p-telemetry fleet: {error}", file=sys.stderr)
            return 2
    from .demo import DemoOptions, run
    if settings.pop("libp2p", False):
        from .libp2p_demo import run
    try:
        return run(DemoOptions(**settings))
    except (ValueError, OSError) as error:
        print(f"p2p-telemetry demo: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
