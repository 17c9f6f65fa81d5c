"""The 券面 APs' access matrix as a property: for any order of VERIFYs (right or wrong),
re-selections and reads, every READ BINARY answers exactly what the facts' matrix and the
retry counters say — checked against a model of the card."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from helpers import BIRTH, CODE_A, CODE_B, TEXT_PIN, apdu, select_ef, verify_apdu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mynacard.cardsim.card import VirtualCard

APS = {
    "text": {
        "select": "00A4040C0AD3921000310001010408",
        "credentials": {0x0011: (TEXT_PIN, "9999", 3), 0x0014: (CODE_A, "000000000000", 10),
                        0x0015: (CODE_B, "00000000000000", 10)},
        "files": {0x0001: {0x0011, 0x0014}, 0x0002: {0x0011, 0x0015},
                  0x0003: {0x0011, 0x0014, 0x0015}, 0x0004: None, 0x0005: None,
                  0x0006: {0x0011, 0x0014, 0x0015}, 0x0007: {0x0011, 0x0014, 0x0015}},
    },
    "visual": {
        "select": "00A4040C0AD3921000310001010402",
        "credentials": {0x0011: (BIRTH, "000000", 10), 0x0012: (CODE_B, "00000000000000", 10),
                        0x0013: (CODE_A, "000000000000", 10)},
        "files": {0x0001: {0x0011}, 0x0002: {0x0012, 0x0013}, 0x0003: None, 0x0004: None,
                  0x0005: {0x0013}, 0x0006: {0x0012, 0x0013}},
    },
}


def actions(ap: str) -> st.SearchStrategy:
    spec = APS[ap]
    return st.lists(st.one_of(
        st.tuples(st.just("verify"), st.sampled_from(sorted(spec["credentials"])), st.booleans()),
        st.tuples(st.just("read"), st.sampled_from(sorted(spec["files"])), st.just(False)),
        st.tuples(st.just("reselect"), st.just(0), st.just(False)),
    ), max_size=25)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_read_answers_what_the_matrix_and_counters_say(card_templates, data) -> None:
    ap = data.draw(st.sampled_from(sorted(APS)))
    steps = data.draw(actions(ap))
    spec = APS[ap]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "card"
        shutil.copytree(card_templates("kokutou-mikiya"), target)
        card = VirtualCard.open(target, sync=False)
        card.power_on()
        try:
            assert apdu(card, spec["select"])[1] == 0x9000
            verified: set[int] = set()
            tries = {fid: limit for fid, (_, _, limit) in spec["credentials"].items()}
            for action, fid, correct in steps:
                if action == "reselect":
                    assert apdu(card, spec["select"])[1] == 0x9000
                    verified.clear()
                elif action == "verify":
                    right, wrong, limit = spec["credentials"][fid]
                    apdu(card, select_ef(fid))
                    sw = apdu(card, verify_apdu(right if correct else wrong))[1]
                    if tries[fid] == 0:
                        assert sw == 0x6984
                    elif correct:
                        assert sw == 0x9000
                        tries[fid] = limit
                        verified.add(fid)
                    else:
                        tries[fid] -= 1
                        verified.discard(fid)
                        assert sw == 0x63C0 | tries[fid]
                    # The non-consuming query always reports the model's counter.
                    assert apdu(card, "00200080")[1] == 0x63C0 | tries[fid]
                else:
                    opens = spec["files"][fid]
                    apdu(card, select_ef(fid))
                    sw = apdu(card, "00B0000001")[1]
                    expected = 0x9000 if opens is None or opens & verified else 0x6982
                    assert sw == expected, (ap, hex(fid), sorted(verified))
        finally:
            card.close()
