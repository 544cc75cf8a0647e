"""The node's identity on its telemetry: the OpenTelemetry resource configure() gives the provider."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource

__all__ = ["node_resource", "DEFAULT_SERVICE_NAME"]

DEFAULT_SERVICE_NAME = "p2p-node"
SERVICE_NAME = "service.name"
SERVICE_INSTANCE_ID = "service.instance.id"

_process_instance_id: tuple[int, str] | None = None


def _random_instance_id() -> str:
    """A random id per process (what SDK 1.43+ sets itself; older SDKs set none)."""
    global _process_instance_id
    if _process_instance_id is None or _process_instance_id[0] != os.getpid():
        _process_instance_id = (os.getpid(), str(uuid.uuid4()))
    return _process_instance_id[1]


def node_resource(service_name: str | None, service_instance_id: str | None,
                  attributes: Mapping[str, Any]) -> Resource:
    """The resource: the SDK's detection (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), then
    ``attributes`` over it, then ``service_name`` and ``service_instance_id`` over both.

    Without a name from anywhere, ``p2p-node``; without an instance id, a random one per process.
    """
    given = dict(attributes)
    if service_name is not None:
        given[SERVICE_NAME] = service_name
    if service_instance_id is not None:
        given[SERVICE_INSTANCE_ID] = service_instance_id
    resource = Resource.create(given)
    defaults: dict[str, Any] = {}
    if SERVICE_NAME not in given and str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        defaults[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    if not resource.attributes.get(SERVICE_INSTANCE_ID):
        defaults[SERVICE_INSTANCE_ID] = _random_instance_id()
    return resource.merge(Resource(defaults)) if defaults else resource
