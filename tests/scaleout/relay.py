"""A TCP relay from inside a network namespace to the same address outside.

PostgreSQL and Redis listen on the machine's loopback; processes inside a
private namespace have a loopback of their own. The relay listens on
127.0.0.1:PORT inside the namespace and pipes each connection to
127.0.0.1:PORT outside, so DATABASE_URL and REDIS_URL read the same in both.
Threads only; every socket is closed by close()."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.netns import NetNS


class Relay:
    def __init__(self, netns: NetNS, host: str, port: int) -> None:
        self.target = (host, port)
        with netns.entered():
            self.server = socket.create_server((host, port))
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        # Created outside `entered()`: the thread, and the sockets it opens
        # to the target, live in the machine's namespace.
        self._thread = threading.Thread(target=self._accept, name=f"relay-{port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                inside, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                outside = socket.create_connection(self.target, timeout=5)
                outside.settimeout(None)
            except OSError:
                inside.close()
                continue
            with self._lock:
                if self._closed:
                    inside.close()
                    outside.close()
                    return
                self._sockets |= {inside, outside}
            for src, dst in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, set()
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.server.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(timeout=5)
