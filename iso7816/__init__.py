"""ISO/IEC 7816-4 wire formats shared by the card and the host: APDUs, status words, TLV.

Nothing here performs I/O; both sides of the wire build on it.
"""
