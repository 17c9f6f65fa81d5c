"""Tests of the PC/SC side: the vpcd bridge, the pyscard back end, OpenSC interoperability."""
