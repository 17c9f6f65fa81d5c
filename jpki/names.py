"""Distinguished-name comparison as RFC 5280 §7.1 asks of path validation.

Attribute values compare case-insensitively with leading, trailing and repeated inner white space
ignored (a simplified LDAP StringPrep); RDN order matters, attribute order inside an RDN does not.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography import x509

NameKey = tuple[frozenset[tuple[str, str | bytes]], ...]


def _normalise_value(value: str | bytes) -> str | bytes:
    if isinstance(value, bytes):
        return value
    return " ".join(value.split()).casefold()


@lru_cache(maxsize=4096)
def name_key(name: x509.Name) -> NameKey:
    """A value equal for exactly the names that RFC 5280 name matching considers equal."""
    return tuple(frozenset((attr.oid.dotted_string, _normalise_value(attr.value)) for attr in rdn)
                 for rdn in name.rdns)


def names_match(a: x509.Name, b: x509.Name) -> bool:
    return name_key(a) == name_key(b)
