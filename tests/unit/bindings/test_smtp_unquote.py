"""``bindings.smtp``'s body: Go's ``strconv.Unquote`` rules (a literal unquoted, anything else
sent as it is) and Dapr's priority parsing."""

from __future__ import annotations

import pytest

from pylotto.components.bindings.smtp import go_unquote, parse_priority


@pytest.mark.parametrize(("text", "expected"), [
    ('"plain"', "plain"),
    ('"a\\tb\\nc\\\\d\\"e"', 'a\tb\nc\\d"e'),
    ('"\\x41\\101\\u00e9\\U0001F600"', "AAé😀"),
    ("`raw \\n kept\r`", "raw \\n kept"),
    ('""', ""),
    ('"\\a\\b\\f\\r\\v"', "\a\b\f\r\v"),
])
def test_go_literals_are_unquoted(text: str, expected: str) -> None:
    assert go_unquote(text) == expected


@pytest.mark.parametrize("text", [
    "<b>not quoted</b>", '"unterminated', 'x"y"', '"bad \\q escape"', '"inner " quote"',
    '"line\nbreak"', "`back`tick`", '"\\777"', '"\\uD800"', '"\\\'"', '"', "",
])
def test_anything_else_is_not_a_literal(text: str) -> None:
    assert go_unquote(text) is None


def test_priority_as_dapr_parses_it() -> None:
    assert [parse_priority(t) for t in ("", "1", "+5", "3")] == [3, 1, 5, 3]
    for bad, text in (("0", "between 1"), ("6", "between 1"), ("-1", "between 1"),
                      (" 2", "invalid syntax"), ("2.0", "invalid syntax"), ("x", "invalid")):
        with pytest.raises(ValueError, match=text):
            parse_priority(bad)
