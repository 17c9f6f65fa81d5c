"""python -m mynacard: the command line."""

from .cli import main

main()
