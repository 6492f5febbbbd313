"""Email service contract: send one mail, its body given or made from a template (Layotto's
``components/email`` ``EmailService``)."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field

from pylotto.components.base import Component


@dataclass(frozen=True, slots=True)
class Addresses:
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TemplateRef:
    template_id: str
    params: Mapping[str, str] = field(default_factory=dict)


class EmailService(Component):
    """A component that sends mail; addressed by ``component_name``. Both verbs return the
    provider's id of the mail (pylotto's SMTP component: its Message-ID)."""

    @abc.abstractmethod
    async def send(self, addresses: Addresses, subject: str, text: str) -> str:
        """Send a mail whose body is the plain ``text``."""

    @abc.abstractmethod
    async def send_template(self, addresses: Addresses, subject: str,
                            template: TemplateRef) -> str:
        """Send a mail whose body is ``template`` filled with its parameters."""
