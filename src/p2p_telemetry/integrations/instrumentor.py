"""Zero-code instrumentation: ``opentelemetry-instrument python node.py`` instruments every py-libp2p host.

Registered under the ``opentelemetry_instrumentor`` entry point as ``p2p_telemetry_libp2p``, so
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=p2p_telemetry_libp2p`` turns it off. It wraps
``libp2p.new_host`` so that each host it returns is passed to ``instrument_host`` with one
``MetricsCollector`` on the meter provider given to ``instrument()`` (else the global one, which
``opentelemetry-instrument`` sets up from ``OTEL_*`` variables through opentelemetry-distro).
A node that imported ``new_host`` by name before instrumentation keeps the unwrapped function;
under ``opentelemetry-instrument`` the instrumentor runs before the node's code, so it does not.
The pubsub routers, DHTs and relays a node builds on those hosts are found by their constructors.
``uninstrument()`` closes every handle and, when no other host is instrumented, takes the
process-wide hooks off py-libp2p.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from ..collector import MetricsCollector
from .libp2p import HostInstrumentation, instrument_host, patches

__all__ = ["Libp2pInstrumentor"]

logger = logging.getLogger("p2p_telemetry")


class Libp2pInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every host that ``libp2p.new_host()`` creates; ``uninstrument()`` undoes it."""

    collector: MetricsCollector | None = None
    handles: list[HostInstrumentation] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        """The py-libp2p versions this instrumentation supports."""
        return ("libp2p >= 0.8, < 0.9",)

    def _instrument(self, **kwargs: Any) -> None:
        import libp2p

        collector = kwargs.get("collector") or MetricsCollector(kwargs.get("meter_provider"))
        options = {key: kwargs[key] for key in ("on_disconnect", "metric_events") if key in kwargs}
        handles: list[HostInstrumentation] = []
        self.collector, self.handles = collector, handles

        def new_host(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            host = wrapped(*args, **kw)
            try:
                handles.append(instrument_host(host, collector, **options))
            except Exception:
                logger.warning("p2p-telemetry: a libp2p host was left uninstrumented", exc_info=True)
            return host

        wrap_function_wrapper(libp2p, "new_host", new_host)

    def _uninstrument(self, **kwargs: Any) -> None:
        import libp2p

        unwrap(libp2p, "new_host")
        for handle in self.handles:
            handle.close()
        self.handles = []
        if not any(not handle.closed for handle in list(patches.HOSTS.values())):
            patches.remove_all()
