"""Log lines: RFC 3339 times, an escaped message in logfmt, daprd's JSON fields."""

from __future__ import annotations

import json
import logging
import re

import pytest

from pylotto.observability import logs


def emit(fmt: str, message: str, capsys: pytest.CaptureFixture[str]) -> str:
    logs.setup("info", fmt)
    try:
        logging.getLogger("pylotto.test").info(message)
    finally:
        logs.setup("info", "text")
    return capsys.readouterr().err.strip()


RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"


def test_logfmt_quotes_and_escapes_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    line = emit("text", 'a "quoted" word\nlevel=error forged', capsys)
    assert "\n" not in line
    assert re.fullmatch(rf'time={RFC3339} level=info scope=pylotto.test '
                        r'msg="a \\"quoted\\" word\\nlevel=error forged"', line), line


def test_json_lines_have_daprds_fields(capsys: pytest.CaptureFixture[str]) -> None:
    logs.name_app("orders")
    try:
        record = json.loads(emit("json", "Component loaded: s (state.redis/v1)", capsys))
    finally:
        logs.name_app("")
    assert re.fullmatch(RFC3339, record.pop("time"))
    assert record.pop("instance")
    assert record == {"level": "info", "scope": "pylotto.test", "type": "log",
                      "app_id": "orders", "ver": record["ver"],
                      "msg": "Component loaded: s (state.redis/v1)"}
