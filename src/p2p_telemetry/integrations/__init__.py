"""Integrations that instrument a node without touching its code: asyncio streams, py-libp2p hosts,
and the zero-code ``opentelemetry-instrument`` instrumentor (import the submodules directly)."""

__all__: list[str] = []
