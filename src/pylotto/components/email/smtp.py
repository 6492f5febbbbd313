"""``smtp`` (also ``smtp.email``): Layotto's EmailService over any SMTP server.

Connection metadata is Dapr's SMTP binding's (``host``, ``port``, ``user``, ``password``,
``skipTLSVerify``; TLS, STARTTLS and AUTH as there, see
:mod:`pylotto.components._backends.smtp_client`). ``templatesPath`` (optional) is the folder
of the templates ``SendEmailWithTemplate`` uses (:mod:`pylotto.components.email.templates`);
without it that call is refused. ``SendEmail``'s text is a plain-text body; a template's body
is HTML or plain text by its file's extension. The returned id is the mail's Message-ID.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from pylotto.components._backends.smtp_client import Mail, SmtpClient, SmtpSettings
from pylotto.components.base import ComponentContext
from pylotto.components.email.base import Addresses, EmailService, TemplateRef
from pylotto.components.email.templates import TemplateFolder
from pylotto.core.errors import Unsupported
from pylotto.core.metadata import ComponentSettings


class SmtpEmailSettings(SmtpSettings):
    templates_path: str = Field("", alias="templatesPath")

    @field_validator("templates_path")
    @classmethod
    def _folder(cls, value: str) -> str:
        if value and not Path(value).is_dir():
            raise ValueError("not a folder")
        return value


class SmtpEmail(EmailService):
    Settings = SmtpEmailSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, SmtpEmailSettings):
            raise TypeError(f"{type(self).__name__} needs SmtpEmailSettings")
        self.config = settings
        self.client = SmtpClient(settings, f"email {name}")
        self.templates = TemplateFolder(Path(settings.templates_path)) \
            if settings.templates_path else None

    async def init(self) -> None:
        if self.config.skip_tls_verify:
            self.context.logger.warning("email %s: skipTLSVerify is on: the server's certificate "
                                        "is not checked (not for production)", self.name)

    async def send(self, addresses: Addresses, subject: str, text: str) -> str:
        return await self.client.send(Mail(
            sender=addresses.sender, to=addresses.to, cc=addresses.cc, subject=subject,
            body=text, subtype="plain"))

    async def send_template(self, addresses: Addresses, subject: str,
                            template: TemplateRef) -> str:
        if self.templates is None:
            raise Unsupported(f"email {self.name}: no templates (set templatesPath)")
        rendered = await self.templates.render(template.template_id, template.params)
        return await self.client.send(Mail(
            sender=addresses.sender, to=addresses.to, cc=addresses.cc, subject=subject,
            body=rendered.body, subtype=rendered.subtype))
