"""Returning a directory of generated files as one zip download."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from fastapi import Response

__all__ = ["zip_response"]


def zip_response(directory: Path, filename: str) -> Response:
    """Zip every file directly in ``directory`` into an attachment named ``filename``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(directory.iterdir()):
            if f.is_file():
                zf.write(f, f.name)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
