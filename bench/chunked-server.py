#!/usr/bin/env python3
"""HTTP/1.1 backend for `MODE=chunked` / `MODE=sized` of bench/proxy-instructions.sh (loopback).

  chunked-server.py PORT BODY CHUNKS chunked|sized

Answers every request on 127.0.0.1:PORT, keep-alive, with a 200 carrying BODY bytes: in CHUNKS
chunks of equal size (`transfer-encoding: chunked`) or with a `content-length`. The whole
response goes out in one write, so that the proxy under count sees the same reads every run.
A request body (chunked or sized) is read and dropped before the answer.
"""

import asyncio
import sys

PORT, BODY, CHUNKS = map(int, sys.argv[1:4])
FRAMING = sys.argv[4]


def response():
    body = b"x" * BODY
    if FRAMING == "sized":
        head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % BODY
        return head + body
    step = -(-BODY // CHUNKS)
    chunks = [body[i : i + step] for i in range(0, BODY, step)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"


RESPONSE = response()


async def read_chunked(reader):
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
            return
        await reader.readexactly(size + 2)


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            fields = head.lower()
            if b"transfer-encoding: chunked" in fields:
                await read_chunked(reader)
            elif b"content-length:" in fields:
                length = int(fields.split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
