"""Layotto's ``spec.proto.extension.v1.cryption.CryptionService`` on the Layotto gRPC port."""

from __future__ import annotations

from typing import Any

from pylotto.capabilities.services import CapabilityServices
from pylotto.proto.layotto import cryption_pb2, cryption_pb2_grpc

SERVICE = cryption_pb2.DESCRIPTOR.services_by_name["CryptionService"].full_name


class CryptionServicer(cryption_pb2_grpc.CryptionServiceServicer):
    def __init__(self, services: CapabilityServices) -> None:
        self.services = services

    async def Encrypt(self, request: cryption_pb2.EncryptRequest,
                      context: Any) -> cryption_pb2.EncryptResponse:
        ciphertext, key_id = await self.services.crypto.cryption_encrypt(
            request.component_name, request.plain_text, request.key_id)
        return cryption_pb2.EncryptResponse(cipher_text=ciphertext, key_id=key_id)

    async def Decrypt(self, request: cryption_pb2.DecryptRequest,
                      context: Any) -> cryption_pb2.DecryptResponse:
        plaintext, key_id = await self.services.crypto.cryption_decrypt(
            request.component_name, request.cipher_text)
        return cryption_pb2.DecryptResponse(plain_text=plaintext, key_id=key_id)
