"""Personalisation: personas in, card images out, and lifecycle events written back into them.

The only part of the card side that may import the PKI (``jpki``): the card OS and its
applications never do, and the PKI never imports the card (PersoSim keeps ``perso/`` apart
from its platform the same way).

* ``persona``: card profiles from YAML, every broken rule named;
* ``issue``: a persona and the simulator PKI in, a complete card image out;
* ``face``: placeholder card-face images;
* ``reissue``: renewal, address change and reissue applied to an image and the store at once;
* ``issuer_keys``: the issuer's SCP03 master key beside the PKI.
"""
