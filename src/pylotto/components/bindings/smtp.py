"""``bindings.smtp``: an output binding that sends one email per call (Dapr's SMTP binding).

As components-contrib's ``bindings/smtp`` (Dapr 1.19): one operation, ``create``. Component
metadata: ``host`` and ``port`` (required), ``user`` and ``password`` (both or neither),
``skipTLSVerify``, and the mail's defaults ``emailFrom``, ``emailTo``, ``emailCC``,
``emailBCC``, ``subject``, ``priority`` (1 to 5, default 3, sent as ``X-priority``); request
metadata of the same names overrides them for that call. Several addresses are separated by
``;``. The data is the HTML body; data that is a quoted Go string literal (what Dapr's HTTP API
passes for a JSON string) is unquoted first, as Dapr does with ``strconv.Unquote``.

The connection (TLS, STARTTLS, AUTH) is :mod:`pylotto.components._backends.smtp_client`'s:
aiosmtplib, an asyncio client, rather than the standard library's ``smtplib``, which blocks
and would need a thread per mail. A server that cannot be reached is Unavailable; one that
refuses the mail, the credentials or a recipient is Internal (Dapr's binding errors), with the
server's answer.

Departure: Dapr's merge of request metadata writes into the component's own settings (its
``mergeWithRequestMetadata`` copies a pointer), so one call's ``emailTo`` or ``subject`` stays
the default of every later call that does not give its own: mail then goes to recipients the
caller did not name. Here a call's overrides apply to that call only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field, field_validator

from pylotto.components._backends.smtp_client import Mail, SmtpClient, SmtpSettings
from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import (
    BindingRequest,
    BindingResponse,
    BindingSettings,
    OutputBinding,
)
from pylotto.core.errors import InvalidArgument
from pylotto.core.metadata import ComponentSettings

DEFAULT_PRIORITY = 3
HIGHEST_PRIORITY = 1
LOWEST_PRIORITY = 5
MAIL_SEPARATOR = ";"
PRIORITY_RANGE = (f"smtp binding error:  priority value must be between {HIGHEST_PRIORITY} "
                  f"(highest) and {LOWEST_PRIORITY} (lowest)")


def parse_priority(text: str) -> int:
    """Dapr's ``parsePriority``: empty is 3; else a whole number from 1 to 5."""
    if not text:
        return DEFAULT_PRIORITY
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    priority = int(text)
    if not HIGHEST_PRIORITY <= priority <= LOWEST_PRIORITY:
        raise ValueError(PRIORITY_RANGE)
    return priority


class SmtpBindingSettings(BindingSettings, SmtpSettings):
    email_from: str = Field("", alias="emailFrom")
    email_to: str = Field("", alias="emailTo")
    email_cc: str = Field("", alias="emailCC")
    email_bcc: str = Field("", alias="emailBCC")
    subject: str = Field("", alias="subject")
    priority: int = Field(DEFAULT_PRIORITY, alias="priority")

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> int:
        return parse_priority("" if value is None else str(value).strip())


@dataclass(frozen=True, slots=True)
class Envelope:
    """The mail's settings for one call: the component's, overridden by the request's."""

    email_from: str
    email_to: str
    email_cc: str
    email_bcc: str
    subject: str
    priority: int


def addresses(text: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in text.split(MAIL_SEPARATOR) if a.strip())


_GO_ESCAPE = re.compile(r"""\\(?:([abfnrtv\\"])|x([0-9a-fA-F]{2})|([0-7]{3})|"""
                        r"""u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.|$))""", re.DOTALL)
_SIMPLE = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t",
           "v": b"\v", "\\": b"\\", '"': b'"'}


def go_unquote(text: str) -> str | None:
    """Go's ``strconv.Unquote`` of a double-quoted or back-quoted literal; None when ``text``
    is not one (then Dapr sends the data as it is)."""
    if len(text) >= 2 and text[0] == text[-1] == "`":
        inner = text[1:-1]
        return None if "`" in inner else inner.replace("\r", "")
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return None
    inner = text[1:-1]
    if "\n" in inner:
        return None
    out = bytearray()
    pos = 0
    for match in _GO_ESCAPE.finditer(inner):
        plain = inner[pos:match.start()]
        if '"' in plain:
            return None
        out += plain.encode()
        simple, hex2, octal, u4, u8, bad = match.groups()
        if bad is not None:
            return None
        if simple:
            out += _SIMPLE[simple]
        elif hex2:
            out.append(int(hex2, 16))
        elif octal:
            if int(octal, 8) > 255:
                return None
            out.append(int(octal, 8))
        else:
            code = int(u4 or u8, 16)
            if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                return None
            out += chr(code).encode()
        pos = match.end()
    rest = inner[pos:]
    if '"' in rest:
        return None
    out += rest.encode()
    return out.decode("utf-8", errors="replace")


class SmtpBinding(OutputBinding):
    Settings = SmtpBindingSettings
    operations = ("create",)

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, SmtpBindingSettings):
            raise TypeError(f"{type(self).__name__} needs SmtpBindingSettings")
        self.config = settings
        self.client = SmtpClient(settings, "error from smtp binding")

    async def init(self) -> None:
        log = self.context.logger
        if not self.config.user:
            log.warning("smtp binding %s: user and password are empty", self.name)
        if self.config.skip_tls_verify:
            log.warning("smtp binding %s: skipTLSVerify is on: the server's certificate is not "
                        "checked (not for production)", self.name)

    def envelope(self, metadata: dict[str, str]) -> Envelope:
        c = self.config
        try:
            priority = parse_priority(metadata["priority"]) if metadata.get("priority") \
                else c.priority
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        return Envelope(
            email_from=metadata.get("emailFrom") or c.email_from,
            email_to=metadata.get("emailTo") or c.email_to,
            email_cc=metadata.get("emailCC") or c.email_cc,
            email_bcc=metadata.get("emailBCC") or c.email_bcc,
            subject=metadata.get("subject") or c.subject,
            priority=priority)

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        if request.operation != "create":
            raise InvalidArgument(f"invalid operation type: {request.operation}")
        env = self.envelope(dict(request.metadata))
        for key, value in (("emailFrom", env.email_from), ("emailTo", env.email_to),
                           ("subject", env.subject)):
            if not value:
                raise InvalidArgument(f"smtp binding error: {key} property not supplied in "
                                      "configuration- or request-metadata")
        text = request.data.decode("utf-8", errors="replace")
        unquoted = go_unquote(text)
        await self.client.send(Mail(
            sender=env.email_from, to=addresses(env.email_to), cc=addresses(env.email_cc),
            bcc=addresses(env.email_bcc), subject=env.subject,
            body=text if unquoted is None else unquoted, subtype="html",
            headers={"X-priority": str(env.priority)}))
        self.context.logger.debug("smtp binding %s: sent email", self.name)
        return BindingResponse()
