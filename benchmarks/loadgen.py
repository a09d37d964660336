"""Reading one HTTP/1.1 response off a raw asyncio stream, for abuse.py's hand-made requests.

This module was a closed-loop load generator; throughput figures now come from `wrk` (`wrk.py`), which costs
far less CPU per request on these 2-core machines. The figures in README.md marked as measured with the
Python load generator came from it."""

import asyncio


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (status line, headers, a Content-Length or chunked body); returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        k = key.strip().lower()
        if k == b"content-length":
            length = int(value.strip())
        elif k == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status
