"""The JPKI side: residents' records, certificate profiles, CAs, revocation, validation."""
