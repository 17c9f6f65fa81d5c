"""What the public documents fix about the card: data and pure functions, no I/O.

Used alike by the card side (``cardsim``), the issuer (``jpki``), host clients (``client``)
and the municipal apps, so that each identifier and record layout is written once:

* ``jpki``, ``text``, ``visual``, ``common``, ``juki``, ``mf``: each application's AID, EF ids
  and record layouts (OpenSC's ``jpki.h`` plays this part for its driver);
* ``atr``: the published answers-to-reset; ``pins``: PIN policies (tries, format rules);
* ``person``: the resident record, eras, the My Number check digit, 照合番号B;
* ``cvc``: the CV-certificate format of the 券面 APs; ``digest_info``: PKCS#1 DigestInfo;
* ``tlv_lengths``: how the card writes BER lengths in its records.

Tests keep literal hex as their independent oracle rather than importing these.
"""
