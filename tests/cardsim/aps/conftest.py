"""Fixtures of the 券面 / card-info / free-space tests: the trust anchors of the session PKI."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynacard.client.records import load_trust_anchors


@pytest.fixture(scope="session")
def anchors(pki_dir: Path, card_templates) -> dict:
    card_templates("kokutou-mikiya")  # issuing creates the CV hierarchy beside the PKI
    return load_trust_anchors(pki_dir / "cvc")
