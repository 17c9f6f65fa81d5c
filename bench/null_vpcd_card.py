"""The floor of the PC/SC benchmark: a vpcd card that does nothing (``9000`` to every APDU).

``python bench/null_vpcd_card.py PORT ATR_HEX`` connects to vpcd's slot on PORT and answers until
the connection ends. It speaks the vpcd protocol the cheapest way Python can, with the same
socket settings as ``cardsim.vpcd`` (TCP_NODELAY, TCP_QUICKACK re-armed before each receive),
so the simulator's distance to it is what the bridge and the card model cost per APDU.
"""

from __future__ import annotations

import socket
import sys

GET_ATR = 0x04
OK = b"\x00\x02\x90\x00"


def serve(port: int, atr: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    quickack = getattr(socket, "TCP_QUICKACK", None)
    buffer = b""
    while True:
        while len(buffer) < 2 or len(buffer) < 2 + int.from_bytes(buffer[:2], "big"):
            if quickack is not None:
                sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            chunk = sock.recv(65538)
            if not chunk:
                return
            buffer += chunk
        length = int.from_bytes(buffer[:2], "big")
        message, buffer = buffer[2:2 + length], buffer[2 + length:]
        if len(message) == 1:
            if message[0] == GET_ATR:
                sock.sendall(len(atr).to_bytes(2, "big") + atr)
            continue  # power on/off and reset get no reply
        sock.sendall(OK)


if __name__ == "__main__":
    serve(int(sys.argv[1]), bytes.fromhex(sys.argv[2]))
