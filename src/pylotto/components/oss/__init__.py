"""oss components: object storage for Layotto's ObjectStorageService (docs/oss.md)."""

ALIASES: dict[str, str] = {
    "aws.oss": "pylotto.components.oss.s3:S3ObjectStorage",
    "minio": "pylotto.components.oss.s3:S3ObjectStorage",
    "ceph": "pylotto.components.oss.s3:S3ObjectStorage",
}
"""Layotto's S3 types (``aws.oss``, ``ceph``) and ``minio``: one S3 client, pointed at AWS or
at any S3-compatible server by ``endpoint``."""
