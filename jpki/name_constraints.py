"""Name constraints of RFC 5280 §6.1.3 (b)(c) and §6.1.4 (g) (rules in §4.2.1.10).

Forms processed: directoryName (RDN prefix, compared as §7.1 asks), rfc822Name (mailbox, host,
or ".domain"), dNSName (the constraint plus zero or more labels on the left), URI (on the host
part) and iPAddress (address inside the network). An emailAddress attribute in a subject DN is
checked as an rfc822Name (§4.2.1.10). Any other form fails closed: a constraint on a form this
module cannot evaluate rejects every certificate that carries a name of that form.

Permitted subtrees intersect by keeping one layer per certificate: a name must lie in some
subtree of every layer that constrains its form, which is exactly the intersection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..errors import MynacardError
from .names import name_key, names_match

_FORMS = (x509.DirectoryName, x509.RFC822Name, x509.DNSName, x509.UniformResourceIdentifier,
          x509.IPAddress)


class NameConstraintError(MynacardError):
    """A name of the path lies outside the permitted subtrees or inside an excluded one."""


def _extension(cert: x509.Certificate, cls: type) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _domain_within(domain: str, constraint: str) -> bool:
    """dNSName rule: ``constraint`` plus zero or more labels; a leading dot means one or more."""
    domain, constraint = domain.casefold().rstrip("."), constraint.casefold().rstrip(".")
    if not constraint:
        return True
    if constraint.startswith("."):
        return domain.endswith(constraint)
    return domain == constraint or domain.endswith("." + constraint)


def _host_within(host: str, constraint: str) -> bool:
    """rfc822Name/URI host rule: a host matches exactly, ".domain" matches its subdomains."""
    host, constraint = host.casefold(), constraint.casefold()
    if constraint.startswith("."):
        return host.endswith(constraint)
    return host == constraint


def _within(name: x509.GeneralName, subtree: x509.GeneralName) -> bool:
    if isinstance(name, x509.DirectoryName):
        prefix = name_key(subtree.value)
        return name_key(name.value)[:len(prefix)] == prefix
    if isinstance(name, x509.RFC822Name):
        mailbox = name.value
        local, _, domain = mailbox.rpartition("@")
        constraint = subtree.value
        if "@" in constraint:
            c_local, _, c_domain = constraint.rpartition("@")
            return local == c_local and domain.casefold() == c_domain.casefold()
        return _host_within(domain, constraint)
    if isinstance(name, x509.DNSName):
        return _domain_within(name.value, subtree.value)
    if isinstance(name, x509.UniformResourceIdentifier):
        host = urlsplit(name.value).hostname
        return bool(host) and _host_within(host, subtree.value)  # type: ignore[arg-type]
    if isinstance(name, x509.IPAddress):
        network = subtree.value
        address = name.value
        if not isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) or \
                not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return address.version == network.version and address in network
    return False


def _names(cert: x509.Certificate) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    if cert.subject.rdns:
        names.append(x509.DirectoryName(cert.subject))
    names += [x509.RFC822Name(a.value) for a in
              cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
              if isinstance(a.value, str)]
    san = _extension(cert, x509.SubjectAlternativeName)
    names += list(san or ())  # type: ignore[call-overload]
    return names


@dataclass
class NameConstraintState:
    """permitted_subtrees (as layers) and excluded_subtrees of §6.1.2 (b)(c)."""

    permitted: list[list[x509.GeneralName]] = field(default_factory=list)
    excluded: list[x509.GeneralName] = field(default_factory=list)

    def check(self, cert: x509.Certificate) -> None:
        """§6.1.3 (b)(c): every name of ``cert`` permitted and not excluded."""
        for name in _names(cert):
            form = type(name)
            for layer in self.permitted:
                same_form = [s for s in layer if type(s) is form]
                if same_form and not any(_safe_within(name, s) for s in same_form):
                    raise NameConstraintError(f"{_show(name)} is outside the permitted "
                                              "subtrees (nameConstraints)")
            for subtree in self.excluded:
                if type(subtree) is form and _safe_within(name, subtree):
                    raise NameConstraintError(f"{_show(name)} is inside an excluded subtree "
                                              f"({_show(subtree)})")

    def update(self, cert: x509.Certificate) -> None:
        """§6.1.4 (g): narrow the state with ``cert``'s nameConstraints."""
        ext = _extension(cert, x509.NameConstraints)
        if ext is None:
            return
        permitted = list(ext.permitted_subtrees or ())  # type: ignore[attr-defined]
        if permitted:
            self.permitted.append(permitted)
        self.excluded += list(ext.excluded_subtrees or ())  # type: ignore[attr-defined]


def _safe_within(name: x509.GeneralName, subtree: x509.GeneralName) -> bool:
    """True when ``name`` is inside ``subtree``; an unprocessable form counts as inside an
    excluded subtree and outside a permitted one, which ``check`` arranges by raising here."""
    if not isinstance(name, _FORMS):
        raise NameConstraintError(f"a name constraint applies to {type(name).__name__}, "
                                  "a name form this validator does not process")
    return _within(name, subtree)


def _show(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return f"directoryName {name.value.rfc4514_string()}"
    return f"{type(name).__name__} {name.value}"


def check_name_constraints(chain: Sequence[x509.Certificate]) -> None:
    """Apply name constraints along ``chain`` (trust anchor excluded, end entity last)."""
    state = NameConstraintState()
    for i, cert in enumerate(chain):
        final = i == len(chain) - 1
        # Self-issued intermediates are exempt (§6.1.3 (b)): a CA re-keying under its own name.
        if final or not names_match(cert.subject, cert.issuer):
            state.check(cert)
        if not final:
            state.update(cert)
