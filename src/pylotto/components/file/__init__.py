"""file components: named file stores (GetFile, PutFile, ListFile, DelFile, GetFileMeta)."""

ALIASES: dict[str, str] = {
    "local": "pylotto.components.file.local:LocalFileStore",
    "aws.s3": "pylotto.components.file.s3:S3FileStore",
    "minio": "pylotto.components.file.s3:MinioFileStore",
}
"""Layotto's file types served here: ``local``, and its S3 ones (``aws.s3``, ``minio``) on any
S3-compatible server; its cloud ones are refused by name (config/layotto.py)."""
