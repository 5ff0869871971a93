"""A small RFC 6455 WebSocket client over asyncio streams, and an HTTP login.

Written for the benchmark instead of pulling in a library: 200 clients
share one core with the load generator, so each received frame must cost
little (no UTF-8 validation, no per-frame objects beyond the text)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import os
import re
import struct
import time
import urllib.parse
from http.cookies import SimpleCookie

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
MAX_FRAME = 64 * 1024 * 1024


class HandshakeError(Exception):
    """The server did not switch protocols (refused login, bad Origin)."""


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte mask, on whole integers rather than byte by byte."""
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return value.to_bytes(len(payload), "little")


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A final, masked frame, as a client must send."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + mask(payload, key)


class WSClient:
    """One connection; ``messages()`` yields (arrival time, text, wire bytes)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False

    @classmethod
    async def connect(
        cls, host: str, port: int, path: str, headers: dict[str, str], timeout: float = 10.0
    ) -> WSClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=MAX_FRAME), timeout
        )
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
            "",
            "",
        ]
        writer.write("\r\n".join(lines).encode("latin-1"))
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, TimeoutError) as exc:
            writer.close()
            raise HandshakeError(f"no handshake answer: {exc!r}") from exc
        status, *header_lines = head.decode("latin-1").split("\r\n")
        answer = {
            n.strip().lower(): v.strip()
            for n, _, v in (h.partition(":") for h in header_lines if h)
        }
        if " 101 " not in status + " " or answer.get("sec-websocket-accept") != accept_for(key):
            writer.close()
            raise HandshakeError(status)
        return cls(reader, writer)

    async def read_message(self) -> tuple[float, str, int] | None:
        """The next text message, answering pings on the way; ``None`` at close."""
        parts: list[bytes] = []
        wire = 0
        read = self.reader.readexactly
        while True:
            b0, b1 = await read(2)
            n = b1 & 0x7F
            wire += 2
            if n == 126:
                (n,) = struct.unpack("!H", await read(2))
                wire += 2
            elif n == 127:
                (n,) = struct.unpack("!Q", await read(8))
                wire += 8
            if b1 & 0x80:  # servers do not mask, but tolerate it
                key = await read(4)
                payload = mask(await read(n), key)
                wire += 4
            else:
                payload = await read(n) if n else b""
            wire += n
            opcode = b0 & 0x0F
            if opcode == OP_PING:
                self.writer.write(client_frame(OP_PONG, payload))
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.closed = True
                return None
            parts.append(payload)
            if b0 & 0x80:
                arrived = time.time()
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                return arrived, data.decode("utf-8", errors="replace"), wire

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.writer.write(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
                await asyncio.wait_for(self.writer.drain(), 1.0)
            except (OSError, TimeoutError, ConnectionError):
                pass
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, ConnectionError):
            pass


_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    jar: dict[str, str] = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        parsed = SimpleCookie()
        parsed.load(header)
        jar.update({name: morsel.value for name, morsel in parsed.items()})
    return jar


def login(host: str, port: int, username: str, password: str, timeout: float = 30.0) -> str:
    """Log in through Django's login form; the ``Cookie`` header to send after."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/accounts/login/")
        response = conn.getresponse()
        page = response.read().decode()
        jar = _cookies(response)
        found = _CSRF_INPUT.search(page)
        if response.status != 200 or not found or "csrftoken" not in jar:
            raise HandshakeError(f"login page: HTTP {response.status}")
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": found.group(1), "username": username, "password": password}
        )
        conn.request(
            "POST",
            "/accounts/login/",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={jar['csrftoken']}",
                "Referer": f"http://{host}:{port}/accounts/login/",
                "Origin": f"http://{host}:{port}",
            },
        )
        response = conn.getresponse()
        response.read()
        jar.update(_cookies(response))
        if response.status != 302 or "sessionid" not in jar:
            raise HandshakeError(f"login refused: HTTP {response.status}")
        return "; ".join(f"{k}={v}" for k, v in jar.items())
    finally:
        conn.close()


def http_get(
    host: str, port: int, path: str, cookie: str, timeout: float = 60.0
) -> tuple[int, float, int]:
    """GET ``path`` with the session: status, seconds to the last byte, size."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        body = response.read()
        return response.status, time.perf_counter() - started, len(body)
    finally:
        conn.close()
