"""Layotto's ``spec.proto.extension.v1.email.EmailService`` on the Layotto gRPC port."""

from __future__ import annotations

from typing import Any

from pylotto.capabilities.services import CapabilityServices
from pylotto.components.email.base import TemplateRef
from pylotto.proto.layotto import email_pb2, email_pb2_grpc

SERVICE = email_pb2.DESCRIPTOR.services_by_name["EmailService"].full_name


class EmailServicer(email_pb2_grpc.EmailServiceServicer):
    def __init__(self, services: CapabilityServices) -> None:
        self.services = services

    async def SendEmail(self, request: email_pb2.SendEmailRequest,
                        context: Any) -> email_pb2.SendEmailResponse:
        address = request.address
        request_id = await self.services.email.send_email(
            request.component_name, str(getattr(address, "from")), address.to, address.cc,
            request.subject, request.content.text)
        return email_pb2.SendEmailResponse(request_id=request_id)

    async def SendEmailWithTemplate(
        self, request: email_pb2.SendEmailWithTemplateRequest, context: Any
    ) -> email_pb2.SendEmailWithTemplateResponse:
        address = request.address
        template = TemplateRef(request.template.template_id,
                               dict(request.template.template_params))
        request_id = await self.services.email.send_email_with_template(
            request.component_name, str(getattr(address, "from")), address.to, address.cc,
            request.subject, template)
        return email_pb2.SendEmailWithTemplateResponse(request_id=request_id)
