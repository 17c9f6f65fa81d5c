"""Load files of the free-space area: applet classes INSTALL can instantiate, by load-file AID.

An applet is an ``Applet``: a card ``Application`` (file table, PINs, instruction table)
plus ``initial_data`` turning INSTALL's parameters into its first storage.
"""

from __future__ import annotations

from typing import ClassVar

from ..application import Application
from ..freespace import AppletData


class Applet(Application):
    NAME = "applet"
    AID = b""
    """Instances get their AID at INSTALL; the class has none."""
    LOAD_FILE: ClassVar[bytes]
    TITLE: ClassVar[str]

    @classmethod
    def initial_data(cls, params: bytes) -> AppletData:
        """First storage of a new instance from INSTALL's C9 parameters; ValueError → 6A80."""
        raise NotImplementedError


def _load_files() -> dict[bytes, type[Applet]]:
    from .counter import CounterApplet
    from .taxi import TaxiApplet

    return {cls.LOAD_FILE: cls for cls in (CounterApplet, TaxiApplet)}


LOAD_FILES: dict[bytes, type[Applet]] = _load_files()
