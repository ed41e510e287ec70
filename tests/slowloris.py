"""Slow clients, as an attacker (or a phone on a bad line) would be: connections that
send their headers a line at a time, or their body a byte at a time, and never
finish. Used by the slow-client test and ``benchmarks/slow_clients.py``; loopback
only, bounded in count and time, and it stops by itself."""

from __future__ import annotations

import socket
import threading
import time


class SlowClients:
    """``count`` connections to ``host:port`` trickling one piece every ``interval``
    seconds, half of them headers, half a body, until the ``with`` block ends (or
    ``limit`` seconds, whichever comes first). ``many_addresses``: each from its
    own loopback address (127.0.1.x, …), as a crowd would come, not one client
    that per-address limits stop at once."""

    def __init__(
        self,
        host: str,
        port: int,
        count: int,
        interval: float = 2.0,
        limit: float = 120.0,
        many_addresses: bool = False,
    ):
        self.host, self.port, self.count = host, port, count
        self.many_addresses = many_addresses
        self.interval, self.limit = interval, limit
        self.sockets: list[socket.socket] = []
        self.dropped = 0  # connections the server closed on us
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowClients:
        for k in range(self.count):
            source = (f"127.0.{1 + k // 250}.{1 + k % 250}", 0) if self.many_addresses else None
            connection = socket.create_connection(
                (self.host, self.port), timeout=5, source_address=source
            )
            if k % 2:  # a body that never arrives
                connection.sendall(
                    b"POST /api/predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                )
            else:  # headers that never end
                connection.sendall(b"POST /api/predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.sockets.append(connection)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        n = 0
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            n += 1
            for k, connection in enumerate(list(self.sockets)):
                try:
                    connection.sendall(b" " if k % 2 else f"X-Slow-{n}: {n}\r\n".encode())
                except OSError:
                    self.sockets.remove(connection)
                    self.dropped += 1

    @property
    def open(self) -> int:
        return len(self.sockets)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
        for connection in self.sockets:
            connection.close()
