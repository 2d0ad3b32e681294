"""Reading an answer's body with bounded memory and time, compressed or not.

httpx decodes a whole network chunk through every content-coding before a caller sees a byte: with
`Content-Encoding: gzip, gzip` a 2 KB body can stand for gigabytes, all inflated at once. So the body is read
raw here and decoded by us, one content-coding at most (we ask for `gzip, deflate`; LaunchDarkly applies one),
in slices of at most `SLICE` bytes of output, with the size cap and the request's deadline checked after each
slice: memory stays within the cap plus one slice, whatever the compression ratio.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable
from typing import Protocol

ACCEPT_ENCODING = "gzip, deflate"
SLICE = 1024 * 1024  # bytes of decoded output per step


class TooLarge(Exception):
    """The decoded body is larger than the limit."""


class PastDeadline(Exception):
    """The request's deadline passed while its body was decoded."""


class BadEncoding(Exception):
    """The body's content-coding cannot be used; the message says why."""


class Decompressor(Protocol):  # what zlib.decompressobj() returns
    @property
    def unconsumed_tail(self) -> bytes: ...
    @property
    def eof(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...
    def flush(self, length: int = ..., /) -> bytes: ...


def _decoder(content_encoding: str) -> Decompressor | None:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if len(codings) > 1:
        raise BadEncoding(f"it is compressed {len(codings)} times over (Content-Encoding: "
                          f"{content_encoding[:60]!r}); metrics-sync takes one compression")
    if not codings:
        return None
    if codings[0] in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if codings[0] == "deflate":
        return zlib.decompressobj()  # zlib-wrapped, as the standard says (a raw stream is tried below)
    raise BadEncoding(f"it is compressed with {codings[0][:30]!r}, which metrics-sync did not ask for")


def read_body(chunks: Iterable[bytes], content_encoding: str, *, limit: int, deadline: float,
              truncate: bool = False) -> bytes:
    """The decoded body of an answer whose raw body arrives as `chunks`: at most `limit` bytes. Past the limit
    it raises `TooLarge`, or, with `truncate`, returns the first `limit` bytes (an error answer: its start says
    enough). Past `deadline` (time.monotonic()) it raises `PastDeadline`."""
    decoder = _decoder(content_encoding)
    parts: list[bytes] = []
    size, first = 0, True
    for raw in chunks:
        data = raw
        while data:
            if time.monotonic() > deadline:
                raise PastDeadline
            room = limit - size + 1  # one byte more than allowed tells "too large" from "exactly the limit"
            if decoder is None:
                out, data = data[:room], b""
            else:
                try:
                    out = decoder.decompress(data, min(room, SLICE))
                except zlib.error:
                    if not (first and content_encoding.strip().lower() == "deflate"):
                        raise BadEncoding("its compressed body is damaged") from None
                    decoder, first = zlib.decompressobj(-zlib.MAX_WBITS), False  # raw deflate, as servers send it
                    continue
                data = decoder.unconsumed_tail
                if not out and decoder.eof:
                    data = b""  # what follows the compressed stream is ignored (as httpx does)
            first = False
            size += len(out)
            if size > limit:
                if truncate:
                    parts.append(out[:len(out) - (size - limit)])
                    return b"".join(parts)
                raise TooLarge
            parts.append(out)
    if decoder is not None and size <= limit:  # what the decoder still holds (a window's worth at most)
        out = decoder.flush(limit - size + 1)
        if size + len(out) > limit:
            if not truncate:
                raise TooLarge
            out = out[:limit - size]
        parts.append(out)
    return b"".join(parts)
