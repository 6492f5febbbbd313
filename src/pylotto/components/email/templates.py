"""Local mail templates: a folder of files named by template id (``welcome.html``,
``receipt.txt``), read when a mail is sent (an edited template is used at once).

A template's placeholders are ``{{name}}`` (spaces inside the braces allowed), each replaced by
the request's ``template_params[name]``; in an ``.html`` template the values are HTML-escaped,
so a parameter cannot inject markup. A placeholder without a value is an error naming it (no
mail with a hole in it is sent); a parameter no placeholder uses is ignored. A template id is a
plain file name (letters, digits, ``_ - .``, not starting with a dot): no path leaves the
folder.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pylotto.core.errors import InvalidArgument, NotFound

MAX_TEMPLATE_BYTES = 1024 * 1024
EXTENSIONS = {".html": "html", ".htm": "html", ".txt": "plain"}
"""A template's file extension → the MIME subtype of the mail's body, in lookup order."""
_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    subtype: str


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_TEMPLATE_BYTES + 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise InvalidArgument(f"template {path.name} is larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"template {path.name} is not UTF-8 text") from None


class TemplateFolder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _find(self, template_id: str) -> tuple[str, str]:
        if not _ID.fullmatch(template_id) or ".." in template_id:
            raise InvalidArgument(f"invalid template id {template_id!r}: a file name of "
                                  "letters, digits, '_', '-' and '.'")
        for extension, subtype in EXTENSIONS.items():
            text = _read(self.root / f"{template_id}{extension}")
            if text is not None:
                return text, subtype
        raise NotFound(f"template {template_id} not found (no {template_id}"
                       f"{{{','.join(EXTENSIONS)}}} in {self.root})")

    async def render(self, template_id: str, params: Mapping[str, str]) -> Rendered:
        text, subtype = await asyncio.to_thread(self._find, template_id)
        missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(params))
        if missing:
            raise InvalidArgument(f"template {template_id}: no value for "
                                  f"{', '.join(missing)} in template_params")
        escape = html.escape if subtype == "html" else str
        body = _PLACEHOLDER.sub(lambda m: escape(params[m.group(1)]), text)
        return Rendered(body, subtype)
