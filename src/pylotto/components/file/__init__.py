"""file components: named file stores (GetFile, PutFile, ListFile, DelFile, GetFileMeta)."""

ALIASES: dict[str, str] = {
    "local": "pylotto.components.file.local:LocalFileStore",
}
