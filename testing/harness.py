"""The harness behind the pytest plugin, usable without pytest: one simulator PKI (with its
CRL/OCSP server on loopback), one virtual clock, and a factory of card images.

Issuing a card generates six RSA-2048 key pairs (most of a second), so each distinct persona is
issued once as a template; every card the factory hands out is a copy of that template that
becomes a card of its own in the PKI (a new PKI card id and fresh certificates over the copied
keys). Two copies of one template can therefore go through different lifecycles (one lost, the
other renewed) without seeing each other's revocations.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..cardsim import jpki_ap
from ..cardsim.jpki_ap import JPKIApplication, certificate_files
from ..cardsim.perso import reissue
from ..cardsim.perso.issue import PKI_CARD_ID, default_cvca, issue_card
from ..cardsim.perso.persona import Persona, parse_persona
from ..cardsim.storage import CardStore, image_key
from ..clock import VirtualClock
from ..errors import MynacardError
from ..facts.cvc import KeyId
from ..facts.person import PersonError, Resident
from ..jpki import lifecycle
from ..jpki.ca import SimulatorPKI
from ..jpki.fetch import http_fetch
from ..jpki.ocsp import OCSPResponder
from ..jpki.profile import CA_KINDS
from ..jpki.publish import publish
from ..jpki.server import RevocationServer
from ..jpki.validate import Policy, RevocationMethod, Validator

PERSONAS_DIR = Path(__file__).resolve().parent.parent / "vectors" / "personas"
"""The personas shipped with mynacard (``vectors/personas/*.yaml``), addressed by file stem."""

DEFAULT_PERSONA = "kokutou-mikiya"
CRL_ONLY = Policy(methods=(RevocationMethod.CRL,))
ROLLOVER_INTERVAL = dt.timedelta(days=365)

PersonaSpec = str | Path | Mapping[str, Any]
"""A shipped persona's name, a persona YAML file, or the persona's fields as a mapping."""


class PersonaSpecError(MynacardError, ValueError):
    """A persona given to the card factory cannot be found or read."""


def shipped_personas() -> list[str]:
    return sorted(p.stem for p in PERSONAS_DIR.glob("*.yaml"))


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` on top of ``base``; mappings merge field by field (``pins={"auth": …}``
    changes one PIN and keeps the others), anything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def persona_fields(spec: PersonaSpec, **overrides: Any) -> tuple[dict[str, Any], Path | None]:
    """The persona's fields with ``overrides`` applied, and the directory its relative image
    paths are resolved against."""
    base: Path | None = None
    if isinstance(spec, Mapping):
        data: Any = dict(spec)
    else:
        path = Path(spec)
        if isinstance(spec, str) and path.suffix not in (".yaml", ".yml") and "/" not in spec:
            path = PERSONAS_DIR / f"{spec}.yaml"
            if not path.is_file():
                raise PersonaSpecError(f"no shipped persona {spec!r}: use one of "
                                       f"{', '.join(shipped_personas())}, a YAML file or a "
                                       "mapping")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PersonaSpecError(f"{path}: cannot be read ({exc.strerror})") from None
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise PersonaSpecError(f"{path}: not a persona YAML file ({exc})") from None
        base = path.parent
    if not isinstance(data, dict):
        raise PersonError("(top level)", "must be a mapping of fields")
    return _merge(data, overrides), base


@dataclass(frozen=True, slots=True)
class _Template:
    """An issued card image the factory copies, with the public keys its copies carry."""

    path: Path
    auth_key: rsa.RSAPublicKey
    sign_key: rsa.RSAPublicKey | None


def _jpki_public_keys(card_dir: Path) -> tuple[rsa.RSAPublicKey, rsa.RSAPublicKey | None]:
    store = CardStore.open(card_dir)
    try:
        keys = [image_key(JPKIApplication.NAME, fid)
                for fid in (jpki_ap.EF_AUTH_KEY, jpki_ap.EF_SIGN_KEY)]
        auth, sign = (store.key(name).public_key() if name in store.content.keys else None
                      for name in keys)
    finally:
        store.close()
    assert auth is not None, "issuance always writes an authentication key"
    return auth, sign


class Harness:
    """A PKI in ``workdir`` with its revocation server running, a clock, and a card factory.

    ``clock`` is shared by everything the harness builds (OCSP answers, CRL dates, lifecycle
    events, validators, the "today" personas are issued on); it runs in real time until a test
    freezes it.
    """

    def __init__(self, workdir: Path, *, clock: VirtualClock | None = None,
                 ca_generations: int = 1) -> None:
        self.workdir = Path(workdir)
        self.clock = clock or VirtualClock()
        self.crl_dir = self.workdir / "crl"
        self.crl_dir.mkdir(parents=True, exist_ok=True)
        self.pki = SimulatorPKI.open(self.workdir / "pki", now=self.clock())
        self.responder = OCSPResponder(self.pki, clock=self.clock)
        self.server = RevocationServer("127.0.0.1", 0, self.crl_dir, self.responder)
        # Certificates name their CRL and OCSP URLs: point them at this server. Only CA and
        # responder certificates exist yet, and they carry no URL.
        with self.pki.store.transaction() as db:
            self.pki.store.set_meta(db, "base_url", self.server.url)
        self.server.start_background()
        for generation in range(2, ca_generations + 1):
            for kind in CA_KINDS.values():
                # Past rollovers, so the newest generation is the one issuing today.
                self.pki.rollover(kind, self.clock() - (ca_generations - generation)
                                  * ROLLOVER_INTERVAL)
        self._templates: dict[str, _Template] = {}
        self._card_ids: dict[Path, str] = {}
        self._copies = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.pki.store.close()

    # personas and cards ------------------------------------------------------------------

    def persona(self, spec: PersonaSpec = DEFAULT_PERSONA, **overrides: Any) -> Persona:
        """The persona as issuance sees it, "today" being the clock's date."""
        data, base = persona_fields(spec, **overrides)
        return parse_persona(data, today=self.clock().date(), base=base)

    def card(self, spec: PersonaSpec = DEFAULT_PERSONA, out: Path | None = None,
             **overrides: Any) -> Path:
        """A new card image for the persona (its own card in the PKI); returns its directory."""
        data, base = persona_fields(spec, **overrides)
        today = self.clock().date()
        key = json.dumps([data, str(base), today.isoformat()], sort_keys=True, default=str,
                         ensure_ascii=False)
        persona = parse_persona(data, today=today, base=base)
        if key not in self._templates:
            template = self.workdir / "templates" / f"t{len(self._templates)}"
            issue_card(persona, template, self.pki)
            self._templates[key] = _Template(template, *_jpki_public_keys(template))
        template = self._templates[key]
        self._copies += 1
        target = Path(out) if out is not None else self.workdir / "cards" / f"card-{self._copies}"
        shutil.copytree(template.path, target, ignore=shutil.ignore_patterns("lock"))
        self._enrol_copy(target, persona, template)
        return target

    def _enrol_copy(self, card_dir: Path, persona: Persona, template: _Template) -> None:
        """Make a template copy a card of its own: a new PKI card id, fresh certificates (new
        serials) over the keys the copy carries, written into the image."""
        store = CardStore.open(card_dir)
        try:
            card_id = secrets.token_hex(8)
            issued_at = dt.datetime.combine(persona.issued, dt.time(9, 0), dt.UTC)
            certs = lifecycle.issue_card(self.pki, persona.resident, template.auth_key,
                                         template.sign_key, issued_at, persona.card_expiry,
                                         card_id=card_id)
            der = serialization.Encoding.DER
            files = certificate_files(
                auth=certs.auth.public_bytes(der), auth_ca=certs.auth_ca.public_bytes(der),
                sign_ca=certs.sign_ca.public_bytes(der),
                sign=certs.sign.public_bytes(der) if certs.sign is not None else None)
            store.update_content(files=files, metadata={PKI_CARD_ID: card_id})
            self._card_ids[card_dir.resolve()] = card_id
        finally:
            store.close()

    def card_id(self, card_dir: Path) -> str:
        """The card's id in the PKI store (known without opening an image the factory made, so
        events that change only the PKI work while the card sits in a reader)."""
        known = self._card_ids.get(Path(card_dir).resolve())
        return known if known is not None else reissue.card_id(card_dir)

    # lifecycle events, dated by the clock --------------------------------------------------

    def renew(self, card_dir: Path) -> lifecycle.EventResult:
        """更新: new keys and certificates on the card; the old certificates superseded."""
        return reissue.renew(self.pki, card_dir, self.clock())

    def move(self, card_dir: Path, address: str) -> lifecycle.EventResult:
        """転居: the signing certificate (which carries the address) revoked and replaced."""
        current = lifecycle.card(self.pki, self.card_id(card_dir)).resident
        moved = Resident.from_mapping({**current.to_mapping(), "address": address})
        return reissue.change_resident(self.pki, card_dir, moved, self.clock())

    def report_loss(self, card_dir: Path) -> lifecycle.EventResult:
        """紛失: both certificates on hold."""
        return lifecycle.report_loss(self.pki, self.card_id(card_dir), self.clock())

    def report_found(self, card_dir: Path) -> lifecycle.EventResult:
        """The lost card turned up: its held certificates revoked (a hold is never lifted)."""
        return lifecycle.card_found(self.pki, self.card_id(card_dir), self.clock())

    def report_death(self, card_dir: Path) -> lifecycle.EventResult:
        """死亡: both certificates revoked, the card closed."""
        return lifecycle.death(self.pki, self.card_id(card_dir), self.clock())

    # revocation ----------------------------------------------------------------------------

    def publish(self, out_dir: Path | None = None) -> list[Path]:
        """Issue complete and delta CRLs and ARLs dated now, into the served directory (or
        ``out_dir``)."""
        return publish(self.pki, out_dir or self.crl_dir, self.clock())

    def cv_trust_anchors(self) -> dict[KeyId, rsa.RSAPublicKey]:
        """The CV root keys the 券面 APs' certificates chain to (for ``client.text``/``visual``)."""
        return default_cvca(self.pki).trust_anchors()

    def validator(self, crls: list[bytes] | None = None, *, policy: Policy = CRL_ONLY,
                  fetch: bool = False) -> Validator:
        """A relying party trusting every CA generation, on the clock. ``crls`` None: the CRLs
        currently served. ``fetch``: it may fetch CRLs and ask OCSP on the server."""
        if crls is None:
            crls = [p.read_bytes() for p in sorted(self.crl_dir.glob("*.crl"))]
        return Validator(self.pki.trust_anchors(), self.pki.link_certificates(), crls,
                         policy=policy, clock=self.clock, fetcher=http_fetch if fetch else None)
