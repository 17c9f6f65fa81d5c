"""Builds the one compiled piece: the DER scanner for very large CRLs (jpki/_crlscan.c).

It is optional: without a C compiler the install still succeeds and ``jpki.crlindex``
falls back to parsing CRLs with ``cryptography`` (correct, but slow on huge lists).
Everything else is declared in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("jpki._crlscan", ["jpki/_crlscan.c"],
                             extra_compile_args=["-O2", "-Wall"], optional=True)])
