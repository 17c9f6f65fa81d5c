"""Without pyscard the core still imports, and asking for PC/SC says what to install."""

from __future__ import annotations

import sys

import pytest

from mynacard.readers import open_reader
from mynacard.readers.pcsc import PcscUnavailableError, list_pcsc_readers


@pytest.fixture
def no_pyscard(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes ``import smartcard`` raise ImportError.
    monkeypatch.setitem(sys.modules, "smartcard", None)
    monkeypatch.setitem(sys.modules, "smartcard.scard", None)


def test_listing_readers_names_the_missing_extra(no_pyscard):
    with pytest.raises(PcscUnavailableError, match=r"install mynacard\[pcsc\]"):
        list_pcsc_readers()


def test_pcsc_reader_spec_names_the_missing_extra(no_pyscard):
    with pytest.raises(PcscUnavailableError, match="libpcsclite-dev"):
        open_reader("pcsc")
