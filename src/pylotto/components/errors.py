"""Driver errors declared as data, turned into pylotto errors by one function.

Components raise only pylotto errors. Which driver exceptions mean "the server did not answer
in time" and which mean "the server is unreachable" (worth a retry: kombu's
``connection_errors`` / ``recoverable_connection_errors``) differs per driver; how they are
reported does not. So each backend client declares a :class:`DriverErrors` table — exception
classes by name, so the driver is imported only when an error is mapped, plus :class:`Rule`
for the cases a class alone does not decide (a MySQL error code, a gRPC status) — and
:func:`map_error` reads it: the same order and the same message shapes for every backend.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from pylotto.core.errors import Internal, PylottoError, Unavailable

Classes = tuple[type[BaseException], ...]
ErrorMapper = Callable[[BaseException, str], PylottoError]
"""``map_error(exc, what)``: ``what`` names the component (``"state store orders"``)."""


@functools.cache
def resolve(names: tuple[str, ...]) -> Classes:
    """The classes ``"module:Class"`` names (``"builtins:OSError"``), imported on first use."""
    classes: list[type[BaseException]] = []
    for name in names:
        module, _, attribute = name.partition(":")
        found = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
        assert isinstance(found, type) and issubclass(found, BaseException), name
        classes.append(found)
    return tuple(classes)


@dataclass(frozen=True, slots=True)
class Rule:
    """A special case, tried before the class lists: an error of one of ``classes`` for which
    ``when`` holds becomes ``error`` with ``message`` — formatted like the messages of
    :class:`DriverErrors`, plus ``{reason}``, what ``reason`` says of the error."""

    classes: tuple[str, ...]
    error: type[PylottoError]
    message: str
    when: Callable[[BaseException], bool] | None = None
    reason: Callable[[BaseException], object] = str


@dataclass(frozen=True, slots=True)
class DriverErrors:
    """What a driver's exceptions mean. Messages are templates with ``{backend}``, ``{exc}``
    (the driver's text) and ``{type}`` (the exception's class name); each is prefixed with
    the component's name."""

    backend: str
    """The server's name in messages (``"redis"``)."""
    timeout_errors: tuple[str, ...] = ("builtins:TimeoutError",)
    """The server did not answer in time: Unavailable (a retry may succeed)."""
    connection_errors: tuple[str, ...] = ()
    """The server is unreachable or the connection broke: Unavailable (a retry may succeed)."""
    rules: tuple[Rule, ...] = ()
    timeout_message: str = "{backend} did not answer in time"
    connection_message: str = "{backend} unreachable: {exc}"
    internal_message: str = "{backend}: {exc}"
    """Anything else: Internal (a retry would fail the same way)."""

    def map(self, exc: BaseException, what: str) -> PylottoError:
        """This table's :func:`map_error` (bound, so a client module can export it)."""
        return map_error(exc, what, self)

    def is_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, resolve(self.timeout_errors))

    def is_connection_error(self, exc: BaseException) -> bool:
        return isinstance(exc, resolve(self.connection_errors))


def map_error(exc: BaseException, what: str, errors: DriverErrors) -> PylottoError:
    """The pylotto error for driver error ``exc`` raised while ``what`` called the backend:
    a pylotto error stays as it is; then the table's rules, its timeouts, its connection
    errors (all Unavailable), and Internal for the rest."""
    if isinstance(exc, PylottoError):
        return exc

    def text(template: str, reason: object = "") -> str:
        return f"{what}: " + template.format(backend=errors.backend, exc=exc,
                                             type=type(exc).__name__, reason=reason)

    for rule in errors.rules:
        if isinstance(exc, resolve(rule.classes)) and (rule.when is None or rule.when(exc)):
            return rule.error(text(rule.message, rule.reason(exc)))
    if errors.is_timeout(exc):
        return Unavailable(text(errors.timeout_message))
    if errors.is_connection_error(exc):
        return Unavailable(text(errors.connection_message))
    return Internal(text(errors.internal_message))
