"""Email: Layotto's ``SendEmail`` / ``SendEmailWithTemplate`` on a named email component (see
docs/email.md).

The request's rules are Layotto's (its Aliyun component's ``checkSendRequest``): a sender and at
least one recipient; ``SendEmail`` needs a text, ``SendEmailWithTemplate`` a template id. The
subject, which Layotto's proto calls required but no Layotto component checks, is required here
too: SMTP servers and mail clients treat a mail without one as suspect. Each address must be a
plain ``user@domain`` address without line breaks, so no header can be smuggled through one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pylotto.capabilities.base import Capability
from pylotto.components.email.base import Addresses, EmailService, TemplateRef
from pylotto.core.errors import InvalidArgument, PylottoError

_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


def _invalid(operation: str, what: str) -> InvalidArgument:
    return InvalidArgument(f"invalid argument: {what}", where=f"email.{operation}")


def checked(operation: str, sender: str, to: Iterable[str], cc: Iterable[str],
            subject: str) -> Addresses:
    to, cc = tuple(to), tuple(cc)
    if not sender:
        raise _invalid(operation, "address.from is required")
    if not to:
        raise _invalid(operation, "address.to needs at least one address")
    for address in (sender, *to, *cc):
        if not _ADDRESS.fullmatch(address):
            raise _invalid(operation, f"{address!r} is not an email address (user@domain)")
    if not subject:
        raise _invalid(operation, "subject is required")
    if "\r" in subject or "\n" in subject:
        raise _invalid(operation, "subject has a line break")
    return Addresses(sender, to, cc)


class EmailCapability(Capability[EmailService]):
    """Unknown component: Layotto's ``component not found`` (InvalidArgument); a bad request:
    InvalidArgument naming what is wrong; the mail server down: Unavailable; refused by it:
    Internal with its answer."""

    async def send_email(self, component_name: str, sender: str, to: Iterable[str],
                         cc: Iterable[str], subject: str, text: str) -> str:
        component = self.components.get(component_name)
        addresses = checked("send", sender, to, cc, subject)
        if not text:
            raise _invalid("send", "content.text is required")
        try:
            return await self.call(component_name,
                                   lambda: component.send(addresses, subject, text))
        except PylottoError as err:
            raise err.at("email.send", name=component_name) from None

    async def send_email_with_template(self, component_name: str, sender: str,
                                       to: Iterable[str], cc: Iterable[str], subject: str,
                                       template: TemplateRef) -> str:
        component = self.components.get(component_name)
        addresses = checked("send_template", sender, to, cc, subject)
        if not template.template_id:
            raise _invalid("send_template", "template.template_id is required")
        try:
            return await self.call(component_name,
                                   lambda: component.send_template(addresses, subject, template))
        except PylottoError as err:
            raise err.at("email.send_template", name=component_name) from None
