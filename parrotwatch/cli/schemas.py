"""``parrotwatch schemas -o DIR``: the JSON Schemas of the v1 contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def schemas(out: Annotated[Path, typer.Option("-o", "--out")] = Path("docs/schemas")) -> None:
    """Write the JSON Schemas of the v1 contracts."""
    from parrotwatch.contracts import export_json_schemas

    for path in export_json_schemas(out):
        typer.echo(path)
