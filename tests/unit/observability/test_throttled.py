"""ThrottledLog: one line per kind per interval, the dropped ones counted."""

from __future__ import annotations

import logging

import pytest

from pylotto.observability.throttled import ThrottledLog, ThrottledServerLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_and_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    throttled = ThrottledLog(logging.getLogger("pylotto.test.throttled"), 60, clock=clock)
    with caplog.at_level(logging.WARNING, "pylotto.test.throttled"):
        assert [throttled.warning("a", "bad %s", n) for n in range(1000)].count(True) == 1
        assert throttled.warning("b", "other")
        clock.now = 59.9
        assert not throttled.warning("a", "bad again")
        clock.now = 60.0
        assert throttled.warning("a", "bad %s", "later")
    assert [r.getMessage() for r in caplog.records] == [
        "bad 0", "other", "bad later (1000 more like it since the last such line, not logged)"]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)


def test_the_kinds_remembered_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    throttled = ThrottledLog(logging.getLogger("pylotto.test.kinds"), 60, clock=Clock(),
                             max_kinds=8)
    with caplog.at_level(logging.WARNING, "pylotto.test.kinds"):
        for n in range(100):
            throttled.warning(f"kind {n}", "line")
    assert len(throttled._kinds) == 8
    assert len(caplog.records) == 100  # every new kind once: none is remembered forever


def test_below_the_level_nothing_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("pylotto.test.quiet")
    throttled = ThrottledLog(logger, 60, clock=Clock())
    with caplog.at_level(logging.ERROR, "pylotto.test.quiet"):
        assert not throttled.warning("a", "hidden")
    assert throttled._kinds == {}


def test_server_log_keeps_tracebacks_for_bugs_only(caplog: pytest.LogCaptureFixture) -> None:
    log = ThrottledServerLog(logging.getLogger("pylotto.test.server"),
                             lambda exc: isinstance(exc, ValueError))
    with caplog.at_level(logging.DEBUG, "pylotto.test.server"):
        for _ in range(50):
            log.exception("Error handling request from %s", "127.0.0.1",
                          exc_info=ValueError("bad line"))
            log.exception("Unhandled exception", exc_info=KeyError("bug"))
    assert [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("WARNING", "Error handling request from 127.0.0.1: ValueError: bad line", False),
        ("ERROR", "Unhandled exception", True),
    ]


def test_a_library_logger_is_throttled_and_loses_its_traceback() -> None:
    from pylotto.observability.throttled import ThrottledRecords

    now = [0.0]
    logger = logging.getLogger("tests.library.cygrpc")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    logger.propagate = False
    logger.addFilter(ThrottledRecords(60, clock=lambda: now[0]))
    try:
        for _ in range(500):
            try:
                raise RuntimeError("ExecuteBatchError: client gone")
            except RuntimeError:
                logger.exception("Unexpected [%s] raised by a stream", "write")
        now[0] = 61.0
        logger.error("Unexpected [%s] raised by a stream", "write")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2
    assert records[0].exc_info is None and "client gone" in records[0].getMessage()
    assert "499 more like it" in records[1].getMessage()
