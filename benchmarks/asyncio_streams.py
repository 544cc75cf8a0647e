"""CPU per MiB moved over loopback in 4 KiB writes: plain asyncio streams vs p2p-telemetry's instrumented ones.

    python benchmarks/asyncio_streams.py [--mib 64] [--rounds 11]

Both ends live in this process (one writer, one reader draining it), so the CPU time counts
both sides' stream work. Rounds alternate plain/instrumented; the best round of each is kept.
Target: instrumented at most 5 % more CPU per MiB than plain.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

from opentelemetry.sdk.metrics import MeterProvider

from p2p_telemetry import MetricsCollector
from p2p_telemetry.integrations import asyncio as instrumented

try:
    from benchmarks._timing import table
except ImportError:  # run as a script from the benchmarks directory
    from _timing import table  # type: ignore[no-redef]

CHUNK = 4096


async def move(mib: int, collector: MetricsCollector | None) -> float:
    """CPU seconds to move ``mib`` MiB from a client to a server in 4 KiB writes."""
    total = mib << 20
    done = asyncio.get_running_loop().create_future()
    block = b"\0" * CHUNK

    async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = 0
        while got < total:
            got += len(await reader.read(1 << 16))
        writer.close()
        done.set_result(got)

    if collector is None:
        server = await asyncio.start_server(drain, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    else:
        server = await instrumented.start_server(drain, "127.0.0.1", 0, collector=collector, protocol="task")
        port = server.sockets[0].getsockname()[1]
        reader, writer = await instrumented.open_connection("127.0.0.1", port, collector=collector,
                                                            protocol="task")
    started = time.process_time()
    for _ in range(total // CHUNK):
        writer.write(block)
        await writer.drain()
    await done
    cpu = time.process_time() - started
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return cpu


def overhead(mib: int = 64, rounds: int = 11) -> dict[str, float]:
    """CPU ms per MiB of plain and instrumented streams (best round each), and the overhead in %."""
    collector = MetricsCollector(MeterProvider(), sample_resources=False)
    best = {"plain": float("inf"), "instrumented": float("inf")}
    gc.disable()
    try:
        for _ in range(rounds):
            best["plain"] = min(best["plain"], asyncio.run(move(mib, None)))
            best["instrumented"] = min(best["instrumented"], asyncio.run(move(mib, collector)))
    finally:
        gc.enable()
    sent = collector.network.totals()["bytes_sent"]
    assert sent == rounds * (mib << 20), sent  # every byte counted
    per_mib = {name: cpu / mib * 1e3 for name, cpu in best.items()}
    return {**per_mib, "overhead_pct": (per_mib["instrumented"] / per_mib["plain"] - 1) * 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    result = overhead(args.mib, args.rounds)
    rows = [(name, f"{result[name]:.3f}") for name in ("plain", "instrumented")]
    print(table(rows, ("streams", "CPU ms per MiB (4 KiB writes)")))
    print(f"overhead: {result['overhead_pct']:+.1f} % (target <= 5 %)")


if __name__ == "__main__":
    main()
