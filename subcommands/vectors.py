"""``mynacard vectors …``: build the revocation test vectors and run any validator over them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group()
def vectors() -> None:
    """Vendor revocation test vectors."""


@vectors.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("vectors/revocation"),
              show_default=True)
def build(out: Path) -> None:
    """Write the revocation vectors (deterministic) and their manifest."""
    from ..vectors.build import build_vectors

    cases = build_vectors(out)
    click.echo(f"{len(cases)} cases written to {out}")


@vectors.command()
@click.option("--dir", "directory", type=click.Path(exists=True, path_type=Path),
              default=Path("vectors/revocation"), show_default=True)
@click.option("--validator", "template", default=None,
              help="Command template run per case; fields: {dir} {cert} {anchors} "
                   "{intermediates} {chain} {crls} {crls_der} {ocsp} {time} {epoch} {method} "
                   "{nonce}. "
                   "Exit status 0 means valid. Default: this project's validator, in process.")
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def run(directory: Path, template: str | None, timeout: float, as_json: bool) -> None:
    """Run a validator over every case and print a pass/fail table."""
    from ..vectors.run import run_vectors

    results = run_vectors(directory, template, timeout)
    if as_json:
        click.echo(json.dumps([r._asdict() for r in results], indent=2))
    else:
        width = max((len(r.case_id) for r in results), default=4)
        click.echo(f"{'case':<{width}}  {'expected':<28} {'got':<28} result")
        for r in results:
            click.echo(f"{r.case_id:<{width}}  {r.expected:<28} {r.got:<28} "
                       f"{'PASS' if r.passed else 'FAIL'}")
    passed = sum(r.passed for r in results)
    click.echo(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


@vectors.command()
@click.option("--dir", "directory", type=click.Path(exists=True, path_type=Path),
              default=Path("vectors/revocation"), show_default=True)
@click.option("--doc", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("docs/vectors.md"), show_default=True,
              help="Markdown file whose generated compatibility section is replaced.")
def compat(directory: Path, doc: Path) -> None:
    """Run OpenSSL and pyhanko-certvalidator over every case and rewrite the compatibility
    table in DOC."""
    from ..vectors.compat import write_table

    table = write_table(directory, doc)
    click.echo(f"compatibility table written to {doc} "
               f"({table.count('**miss**')} misses)")
