"""Certificate policy processing of RFC 5280 §6.1 (valid_policy_tree, explicit_policy,
inhibit_anyPolicy, policy_mapping) as steps 6.1.2 (a)(d)(e)(f), 6.1.3 (d)–(f), 6.1.4 (a)(b)
(h)–(j) and 6.1.5 (a)(b)(g) describe them.

The tree is kept level by level; every step mirrors one paragraph of the RFC so a reader can
check the two side by side. A tree that grows beyond ``MAX_POLICY_NODES`` (the exponential
policy-mapping attack, CVE-2023-0464) makes the path invalid instead of exhausting memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ..errors import MynacardError
from .names import names_match

ANY_POLICY = "2.5.29.32.0"
MAX_POLICY_NODES = 10_000


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """The four policy inputs of RFC 5280 §6.1.1 (c), (e), (f) and (g)."""

    initial_policy_set: frozenset[str] = frozenset({ANY_POLICY})
    initial_explicit_policy: bool = False
    initial_policy_mapping_inhibit: bool = False
    initial_any_policy_inhibit: bool = False


@dataclass(eq=False, slots=True)
class _Node:
    valid_policy: str
    qualifiers: tuple[object, ...]
    expected: set[str]
    parent: _Node | None
    children: list[_Node] = field(default_factory=list)

    def add_child(self, valid_policy: str, qualifiers: tuple[object, ...],
                  expected: set[str]) -> _Node:
        child = _Node(valid_policy, qualifiers, expected, self)
        self.children.append(child)
        return child


class PolicyError(MynacardError):
    """The path fails policy processing; the message says which step."""


def _extension(cert: x509.Certificate, cls: type) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _policies(cert: x509.Certificate) -> dict[str, tuple[object, ...]] | None:
    ext = _extension(cert, x509.CertificatePolicies)
    if ext is None:
        return None
    return {p.policy_identifier.dotted_string: tuple(p.policy_qualifiers or ())
            for p in ext}  # type: ignore[attr-defined]


def _mappings(cert: x509.Certificate) -> list[tuple[str, str]] | None:
    """(issuerDomainPolicy, subjectDomainPolicy) pairs; cryptography leaves policyMappings
    unparsed, so asn1crypto decodes it (a malformed one raises ValueError: fail closed)."""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.POLICY_MAPPINGS).value
    except x509.ExtensionNotFound:
        return None
    raw = getattr(ext, "value", None)
    if not isinstance(raw, bytes):
        raise ValueError("policyMappings is not an unparsed extension value")
    parsed = asn1_x509.PolicyMappings.load(raw, strict=True)
    return [(m["issuer_domain_policy"].dotted, m["subject_domain_policy"].dotted)
            for m in parsed]


class _Tree:
    def __init__(self) -> None:
        self.root: _Node | None = _Node(ANY_POLICY, (), {ANY_POLICY}, None)
        self.size = 1

    def level(self, depth: int) -> list[_Node]:
        nodes = [self.root] if self.root else []
        for _ in range(depth):
            nodes = [c for n in nodes for c in n.children]
        return nodes

    def grow(self, parent: _Node, valid_policy: str, qualifiers: tuple[object, ...],
             expected: set[str]) -> None:
        self.size += 1
        if self.size > MAX_POLICY_NODES:
            raise PolicyError("the valid_policy_tree grows beyond "
                              f"{MAX_POLICY_NODES} nodes (policy-mapping explosion)")
        parent.add_child(valid_policy, qualifiers, expected)

    def delete(self, node: _Node) -> None:
        if node.parent is None:
            self.root = None
        else:
            node.parent.children.remove(node)

    def prune(self, depth: int) -> None:
        """Remove childless nodes above ``depth``, bottom-up (the tree may become NULL)."""
        for d in range(depth - 1, -1, -1):
            for node in self.level(d):
                if not node.children:
                    self.delete(node)


def check_policies(chain: Sequence[x509.Certificate], inputs: PolicyInputs) -> frozenset[str]:
    """Run policy processing over ``chain`` (trust anchor excluded, end entity last).

    Returns the user-constrained policy set (``{ANY_POLICY}`` when the tree keeps anyPolicy
    at the leaves); raises ``PolicyError`` when the path is invalid under the inputs.
    """
    n = len(chain)
    tree = _Tree()
    explicit_policy = 0 if inputs.initial_explicit_policy else n + 1
    inhibit_any = 0 if inputs.initial_any_policy_inhibit else n + 1
    policy_mapping = 0 if inputs.initial_policy_mapping_inhibit else n + 1

    for i, cert in enumerate(chain, start=1):
        final = i == n
        self_issued = names_match(cert.subject, cert.issuer)
        policies = _policies(cert)
        # 6.1.3 (d)
        if policies is not None and tree.root is not None:
            parents = tree.level(i - 1)
            for oid, qualifiers in policies.items():
                if oid == ANY_POLICY:
                    continue
                matched = [p for p in parents if oid in p.expected]
                if not matched:
                    matched = [p for p in parents if p.valid_policy == ANY_POLICY][:1]
                for parent in matched:
                    tree.grow(parent, oid, qualifiers, {oid})
            if ANY_POLICY in policies and (inhibit_any > 0 or (not final and self_issued)):
                for parent in parents:
                    present = {c.valid_policy for c in parent.children}
                    for oid in sorted(parent.expected - present):
                        tree.grow(parent, oid, policies[ANY_POLICY], {oid})
            tree.prune(i)
        # 6.1.3 (e)
        if policies is None:
            tree.root = None
        # 6.1.3 (f)
        if explicit_policy <= 0 and tree.root is None:
            raise PolicyError(f"{cert.subject.rfc4514_string()}: no acceptable certificate "
                              "policy while an explicit policy is required")
        if final:
            break
        # 6.1.4 (a), (b)
        mappings = _mappings(cert)
        if mappings is not None:
            mapped: dict[str, set[str]] = {}
            for issuer_p, subject_p in mappings:
                if ANY_POLICY in (issuer_p, subject_p):
                    raise PolicyError(f"{cert.subject.rfc4514_string()} maps to or from "
                                      "anyPolicy (policyMappings)")
                mapped.setdefault(issuer_p, set()).add(subject_p)
            if tree.root is not None:
                _apply_mappings(tree, i, mapped, policy_mapping > 0, policies or {})
        # 6.1.4 (h)
        if not self_issued:
            explicit_policy = max(explicit_policy - 1, 0)
            policy_mapping = max(policy_mapping - 1, 0)
            inhibit_any = max(inhibit_any - 1, 0)
        # 6.1.4 (i)
        constraints = _extension(cert, x509.PolicyConstraints)
        if constraints is not None:
            require = constraints.require_explicit_policy  # type: ignore[attr-defined]
            if require is not None:
                explicit_policy = min(explicit_policy, require)
            inhibit = constraints.inhibit_policy_mapping  # type: ignore[attr-defined]
            if inhibit is not None:
                policy_mapping = min(policy_mapping, inhibit)
        # 6.1.4 (j)
        inhibit_ext = _extension(cert, x509.InhibitAnyPolicy)
        if inhibit_ext is not None:
            inhibit_any = min(inhibit_any, inhibit_ext.skip_certs)  # type: ignore[attr-defined]

    # 6.1.5 (a), (b)
    explicit_policy = max(explicit_policy - 1, 0)
    constraints = _extension(chain[-1], x509.PolicyConstraints) if chain else None
    if constraints is not None and constraints.require_explicit_policy == 0:  # type: ignore[attr-defined]
        explicit_policy = 0
    # 6.1.5 (g)
    accepted = _intersect(tree, n, inputs.initial_policy_set)
    if explicit_policy <= 0 and not accepted:
        raise PolicyError("no certificate policy of the path is in the initial policy set "
                          "while an explicit policy is required")
    return accepted


def _apply_mappings(tree: _Tree, depth: int, mapped: dict[str, set[str]], allowed: bool,
                    policies: dict[str, tuple[object, ...]]) -> None:
    """6.1.4 (b): rewrite expected policy sets, or delete mapped nodes when inhibited."""
    nodes = tree.level(depth)
    for issuer_p, subjects in mapped.items():
        holders = [n for n in nodes if n.valid_policy == issuer_p]
        if allowed:
            for node in holders:
                node.expected = set(subjects)
            if not holders:
                any_nodes = [n for n in nodes if n.valid_policy == ANY_POLICY]
                for any_node in any_nodes[:1]:
                    assert any_node.parent is not None  # depth >= 1
                    tree.grow(any_node.parent, issuer_p, policies.get(ANY_POLICY, ()),
                              set(subjects))
        else:
            for node in holders:
                tree.delete(node)
            tree.prune(depth)


def _intersect(tree: _Tree, n: int, initial: frozenset[str]) -> frozenset[str]:
    """6.1.5 (g): the user-constrained policy set (empty when the intersection is NULL)."""
    if tree.root is None:
        return frozenset()
    if ANY_POLICY not in initial:
        # (g)(iii)(1)–(2): drop branches whose policy the user did not ask for.
        boundary = [c for d in range(n) for node in tree.level(d)
                    if node.valid_policy == ANY_POLICY for c in node.children]
        for node in boundary:
            if node.valid_policy != ANY_POLICY and node.valid_policy not in initial:
                tree.delete(node)
        # (g)(iii)(3): an anyPolicy leaf stands for every requested policy not yet present.
        present = {node.valid_policy for node in boundary}
        for leaf in [x for x in tree.level(n) if x.valid_policy == ANY_POLICY]:
            assert leaf.parent is not None
            for oid in sorted(initial - present):
                tree.grow(leaf.parent, oid, leaf.qualifiers, {oid})
            tree.delete(leaf)
        # (g)(iii)(4)
        tree.prune(n)
        if tree.root is None:
            return frozenset()
    return frozenset(node.valid_policy for node in tree.level(n))
