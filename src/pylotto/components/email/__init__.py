"""email components: send mail for Layotto's EmailService (docs/email.md)."""

ALIASES: dict[str, str] = {
    "smtp": "pylotto.components.email.smtp:SmtpEmail",
    "smtp.email": "pylotto.components.email.smtp:SmtpEmail",
}
"""``smtp`` (``email.smtp`` in a Dapr-style manifest) and ``smtp.email``, spelled as Layotto
spells its providers (``aliyun.email``)."""
