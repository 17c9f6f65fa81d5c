"""The command groups of ``mynacard``: one module per group, loaded only when its command runs
(``cli.py`` holds the table). With ``cli.py`` and ``apps/*/cli.py``, the only code that
imports click."""
