"""A small py-libp2p node with no telemetry code: it dials a second node, echoes bytes, then idles.

Usage: plain_libp2p_node.py READY_FILE [SECONDS]. Writes READY_FILE when its traffic is done.
"""

import sys

import multiaddr
import trio
from libp2p import new_host
from libp2p.peer.peerinfo import info_from_p2p_addr

ECHO = "/plain-node/echo/1.0.0"
PAYLOAD = b"0123456789abcdef" * 640  # 10,240 bytes


async def echo(stream):
    data = b""
    while len(data) < len(PAYLOAD):
        data += await stream.read(len(PAYLOAD) - len(data))
    await stream.write(data)
    await stream.close()


async def main(ready_file: str, idle: float) -> None:
    node, peer = new_host(), new_host()
    peer.set_stream_handler(ECHO, echo)
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    async with node.run(listen), peer.run(listen):
        await node.connect(info_from_p2p_addr(peer.get_addrs()[0]))
        stream = await node.new_stream(peer.get_id(), [ECHO])
        await stream.write(PAYLOAD)
        received = b""
        while len(received) < len(PAYLOAD):
            received += await stream.read(len(PAYLOAD) - len(received))
        await stream.close()
        assert received == PAYLOAD
        await trio.Path(ready_file).write_text("ready\n")
        await trio.sleep(idle)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 30.0)
