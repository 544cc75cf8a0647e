"""``python -m p2p_telemetry``: the ``p2p-telemetry`` command."""

import sys

from .cli import main

sys.exit(main())
