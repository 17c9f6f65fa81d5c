"""The reader end of the vpcd protocol, played by a test on a plain socket."""

from __future__ import annotations

import socket

import pytest

from mynacard.cardsim.vpcd import frame


class FakeVpcd:
    """The reader end of the protocol: listens, accepts the bridge, exchanges frames."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port: int = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 5.0) -> socket.socket:
        self.server.settimeout(timeout)
        conn, _ = self.server.accept()
        conn.settimeout(timeout)
        self.conn = conn
        return conn

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(frame(payload))

    def recv_exact(self, n: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise EOFError("bridge closed the connection")
            data += chunk
        return data

    def recv(self) -> bytes:
        length = int.from_bytes(self.recv_exact(2), "big")
        return self.recv_exact(length)

    def exchange(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.recv()

    def assert_silent(self, wait: float = 0.2) -> None:
        """Nothing arrives from the bridge within ``wait`` seconds."""
        assert self.conn is not None
        self.conn.settimeout(wait)
        try:
            data = self.conn.recv(1)
        except TimeoutError:
            return
        finally:
            self.conn.settimeout(5.0)
        pytest.fail(f"bridge sent {data!r} where no reply was due")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()
