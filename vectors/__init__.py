"""Test vectors: the personas (YAML) and the revocation cases, with the code that builds and
runs them."""
