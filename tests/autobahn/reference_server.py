"""A known-good WebSocket echo server (the ``websockets`` library) for the Autobahn harness.

``scripts/autobahn.sh --server reference`` runs the fuzzing client against it, to tell a
problem of the harness (wstest, the spec, the report) from one of saltare. It echoes every
message back unchanged and offers permessage-deflate, as saltare's ``ws_app:raw_echo`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


async def echo(websocket: ServerConnection) -> None:
    try:
        async for message in websocket:
            await websocket.send(message)
    except ConnectionClosed:
        pass


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    # Autobahn's largest message (cases 9.1.6 and 9.2.6) is 16 MiB: allow what saltare does.
    # No keepalive pings: an unsolicited ping in the middle of a case fails it.
    async with serve(echo, host, port, max_size=16 * 1024 * 1024, ping_interval=None):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
