"""gunicorn's gevent worker with a bound on the connections one address holds.

A gevent worker holds up to ``worker_connections`` sockets (900), slow and idle
ones included; without nginx in front (``make run``), about 4,600 slow
connections took every worker of a machine, and one address could open them
all. Each worker now holds at most its share of ``DIGITS_CONNECTIONS_PER_ADDRESS``
from one address (IPv6: one /64, as the rate limits count it), and answers the
connection past it with a 429 and closes it: an address gets about that many in
all, spread by the kernel across the workers, and it takes many addresses to
fill the machine. Counted per worker, in its memory: nothing is shared that a
killed worker could leave locked or miscounted.

Behind a trusted proxy (nginx, which bounds connections per address itself)
every connection comes from the proxy, and none is counted.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os

from gunicorn.workers.ggevent import GeventWorker

# A browser opens at most six connections to a site: no worker ever refuses fewer
# than this from one address, whatever the number of workers.
MIN_PER_WORKER = 8

_REFUSAL_BODY = (
    b'{"error": "Too many connections from your address; close some.", "code": "throttled"}'
)
REFUSAL = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nRetry-After: 5\r\n"
    + f"Content-Length: {len(_REFUSAL_BODY)}\r\n\r\n".encode()
    + _REFUSAL_BODY
)


def per_worker(total: int, workers: int) -> int:
    """One worker's share of an address's connections."""
    return max(MIN_PER_WORKER, math.ceil(total / max(1, workers)))


class Worker(GeventWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        total = int(os.environ.get("DIGITS_CONNECTIONS_PER_ADDRESS", "64"))
        self.per_address = per_worker(total, self.cfg.workers)
        self.open: collections.Counter[str] = collections.Counter()

    def handle_quit(self, sig, frame) -> None:
        """Ctrl-C (SIGINT, which the terminal sends every process of ``make run``) and
        a quick stop (SIGQUIT) end a worker as SIGTERM does: it stops accepting,
        answers what it holds and exits quietly, within a second or two (the master
        kills it after ``graceful_timeout`` if not). gunicorn's quick exit calls
        ``sys.exit`` inside a gevent greenlet, which printed a ``SystemExit``
        traceback for every worker at every Ctrl-C."""
        self.handle_exit(sig, frame)

    def handle(self, listener, client, addr) -> None:
        from digits_site import clients  # settings: loaded by now

        peer = clients.parse_address(addr[0]) if isinstance(addr, tuple) and addr else None
        if peer is None or clients.is_trusted_proxy(peer):
            return super().handle(listener, client, addr)
        key = clients.address_group(str(peer))
        if self.open[key] >= self.per_address:
            with contextlib.suppress(OSError):
                client.sendall(REFUSAL)
            client.close()
            return None
        self.open[key] += 1
        try:
            return super().handle(listener, client, addr)
        finally:
            self.open[key] -= 1
            if not self.open[key]:
                del self.open[key]
