"""Local mail templates: lookup by id in the folder only, placeholders filled, HTML escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylotto.components.email.templates import MAX_TEMPLATE_BYTES, TemplateFolder
from pylotto.core.errors import InvalidArgument, NotFound


async def test_html_first_then_txt_and_values_escaped_in_html_only(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("<p>{{x}} {{ x }}</p>")
    (tmp_path / "a.txt").write_text("never used: a.html wins")
    (tmp_path / "b.txt").write_text("{{x}}&{{y}}")
    folder = TemplateFolder(tmp_path)
    html = await folder.render("a", {"x": "<i>&\"'"})
    assert (html.body, html.subtype) == (
        "<p>&lt;i&gt;&amp;&quot;&#x27; &lt;i&gt;&amp;&quot;&#x27;</p>", "html")
    text = await folder.render("b", {"x": "<1>", "y": "2", "extra": "ignored"})
    assert (text.body, text.subtype) == ("<1>&2", "plain")


async def test_a_placeholder_without_a_value_is_named(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("{{b}} {{a}} {{c}}")
    with pytest.raises(InvalidArgument, match="template t: no value for a, b in"):
        await TemplateFolder(tmp_path).render("t", {"c": "1"})


@pytest.mark.parametrize("template_id", ["../secret", ".hidden", "a/b", "a..b", "", "x" * 300])
async def test_ids_never_leave_the_folder(tmp_path: Path, template_id: str) -> None:
    (tmp_path.parent / "secret.txt").write_text("outside")
    with pytest.raises(InvalidArgument, match="invalid template id"):
        await TemplateFolder(tmp_path).render(template_id, {})


async def test_missing_too_large_or_not_utf8(tmp_path: Path) -> None:
    folder = TemplateFolder(tmp_path)
    with pytest.raises(NotFound, match="template nope not found"):
        await folder.render("nope", {})
    (tmp_path / "big.txt").write_bytes(b"x" * (MAX_TEMPLATE_BYTES + 1))
    with pytest.raises(InvalidArgument, match="larger than"):
        await folder.render("big", {})
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        await folder.render("latin", {})
    (tmp_path / "dir.html").mkdir()
    (tmp_path / "dir.txt").write_text("the folder named dir.html is skipped")
    assert (await folder.render("dir", {})).body == "the folder named dir.html is skipped"
