"""The APDU codec: every case and length form round-trips; malformed lengths answer 6700."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mynacard.iso7816.apdu import APDUFormatError, CommandAPDU, ResponseAPDU
from mynacard.iso7816.sw import SW, describe


@st.composite
def commands(draw: st.DrawFn) -> CommandAPDU:
    extended = draw(st.booleans())
    data = draw(st.binary(max_size=300 if extended else 255))
    le = draw(st.none() | st.integers(1, 65536 if extended else 256))
    header = [draw(st.integers(0, 255)) for _ in range(4)]
    return CommandAPDU(*header, data, le, extended=extended or len(data) > 255)


@given(commands())
def test_encode_then_parse_is_identity(command: CommandAPDU) -> None:
    parsed = CommandAPDU.parse(command.encode())
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data, parsed.le) == (
        command.cla, command.ins, command.p1, command.p2, command.data, command.le)


@pytest.mark.parametrize("raw, case", [
    ("00A40000", (b"", None)),
    ("00B0000000", (b"", 256)),
    ("00B0000010", (b"", 16)),
    ("00A4040C02AABB", (bytes.fromhex("AABB"), None)),
    ("802A00800211 2200", (bytes.fromhex("1122"), 256)),
    ("00B00000000000", (b"", 65536)),
    ("00B00000000100", (b"", 256)),
    ("80A20000000002AABB", (bytes.fromhex("AABB"), None)),
    ("80A20000000002AABB0000", (bytes.fromhex("AABB"), 65536)),
])
def test_parse_cases(raw: str, case: tuple[bytes, int | None]) -> None:
    parsed = CommandAPDU.parse(bytes.fromhex(raw.replace(" ", "")))
    assert (parsed.data, parsed.le) == case


@pytest.mark.parametrize("raw", [
    "", "00", "00A404", "00A4040C0311", "00A4040C01112233", "00A4040C00AA",
    "00A404000000", "80A200000000", "80A20000000003AABB", "80A20000000002AABB00",
])
def test_malformed_lengths_answer_wrong_length(raw: str) -> None:
    with pytest.raises(APDUFormatError) as caught:
        CommandAPDU.parse(bytes.fromhex(raw))
    assert caught.value.sw == SW.WRONG_LENGTH


def test_response_parsing_needs_a_status_word() -> None:
    assert ResponseAPDU.parse(bytes.fromhex("01029000")) == ResponseAPDU(b"\x01\x02", 0x9000)
    with pytest.raises(APDUFormatError):
        ResponseAPDU.parse(b"\x90")


def test_status_word_descriptions() -> None:
    assert describe(0x63C2) == "verification failed, 2 tries left"
    assert describe(0x6A82) == "file or application not found"
    assert "Le=32" in describe(0x6C20)
