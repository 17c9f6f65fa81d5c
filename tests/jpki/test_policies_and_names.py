"""Policy and name-constraint processing beyond what PKITS exercises: iPAddress constraints,
unprocessable name forms failing closed, and the bound on the valid_policy_tree."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mynacard.jpki import policies
from mynacard.jpki.name_constraints import NameConstraintError, check_name_constraints
from mynacard.jpki.policies import PolicyError, PolicyInputs, check_policies

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
KEY = ec.derive_private_key(7, ec.SECP256R1())
P1 = "2.16.840.1.101.3.2.1.48.1"
P2 = "2.16.840.1.101.3.2.1.48.2"


def _cert(subject: str, issuer: str, *extensions: x509.ExtensionType) -> x509.Certificate:
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(KEY.public_key()).serial_number(1)
               .not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=1)))
    for ext in extensions:
        builder = builder.add_extension(ext, critical=True)
    return builder.sign(KEY, hashes.SHA256())


def _ip_chain(address: str) -> list[x509.Certificate]:
    ca = _cert("CA", "Root", x509.NameConstraints(
        permitted_subtrees=[x509.IPAddress(ipaddress.ip_network("192.0.2.0/24"))],
        excluded_subtrees=None))
    ee = _cert("EE", "CA", x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address(address))]))
    return [ca, ee]


def test_ip_address_inside_the_permitted_network_passes() -> None:
    check_name_constraints(_ip_chain("192.0.2.10"))


@pytest.mark.parametrize("address", ["198.51.100.1", "2001:db8::1"])
def test_ip_address_outside_the_permitted_network_fails(address: str) -> None:
    with pytest.raises(NameConstraintError, match="outside the permitted"):
        check_name_constraints(_ip_chain(address))


def test_constraint_on_an_unprocessable_form_rejects_names_of_that_form() -> None:
    registered = x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4"))
    ca = _cert("CA", "Root", x509.NameConstraints(permitted_subtrees=None,
                                                  excluded_subtrees=[registered]))
    ee = _cert("EE", "CA", x509.SubjectAlternativeName([registered]))
    with pytest.raises(NameConstraintError, match="does not process"):
        check_name_constraints([ca, ee])


def _policy_ca(subject: str, issuer: str, *oids: str) -> x509.Certificate:
    return _cert(subject, issuer, x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in oids]))


def test_user_constrained_policy_set_is_the_intersection() -> None:
    chain = [_policy_ca("CA", "Root", P1, P2), _policy_ca("EE", "CA", P1)]
    assert check_policies(chain, PolicyInputs()) == {P1}
    with pytest.raises(PolicyError):
        check_policies(chain, PolicyInputs(frozenset({P2}), initial_explicit_policy=True))


def test_a_tree_beyond_the_node_bound_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policies, "MAX_POLICY_NODES", 3)
    chain = [_policy_ca("CA", "Root", P1, P2), _policy_ca("EE", "CA", P1, P2)]
    with pytest.raises(PolicyError, match="grows beyond"):
        check_policies(chain, PolicyInputs())
