"""Names of actors, their methods, reminders and timers, as daprd checks them, and the key
scheme of actor state (docs/design/actors.md §1.1, §2.2, §3).

- :func:`check_name` is daprd's ``ValidateName`` (pkg/messaging/method/normalize.go): no
  ``# ? NUL / \\``, no control character (bytes < 0x20 and DEL), not ``.`` or ``..``.
- :func:`normalize_method` is daprd's ``NormalizeMethod``: no ``# ? NUL`` or control
  character, then ``path.Clean`` with the leading ``../`` removed (``.`` and ``..`` → ``""``).
- state keys are ``<appid>||<type>||<id>||<key>``, with the metadata ``partitionKey`` =
  ``<appid>||<type>||<id>`` (pkg/actors/state/state.go).
"""

from __future__ import annotations

from pylotto.capabilities.actors.api import SEPARATOR, ActorRef
from pylotto.core.errors import InvalidArgument, PermissionDenied

RESERVED_PREFIX = "dapr.internal."
"""Actor types of Dapr's workflow runtime; the actor APIs refuse them (ERR_ACTOR_TYPE_RESERVED)."""

PARTITION_KEY = "partitionKey"


def _control_at(text: str) -> int | None:
    for at, byte in enumerate(text.encode()):
        if byte < 0x20 or byte == 0x7F:
            return at
    return None


def check_name(name: str) -> str | None:
    """Why ``name`` is not a valid actor type, id, reminder or timer name (daprd's text);
    None when it is."""
    if any(c in name for c in "#?\x00/\\"):
        return f"name contains forbidden character: {_go_quote(name)}"
    at = _control_at(name)
    if at is not None:
        return f"name contains control character at position {at}: {_go_quote(name)}"
    if name in (".", ".."):
        return f"name is a path traversal sequence: {_go_quote(name)}"
    return None


def validate_name(name: str, what: str = "") -> str:
    """``name`` if valid; else InvalidArgument at ``actors.name`` (``what``: ``actorType``,
    ``actorId``: daprd's "invalid actorType: …" prefix; "" for reminder and timer names)."""
    problem = check_name(name)
    if problem is None:
        return name
    text = f"invalid {what}: {problem}" if what else problem
    raise InvalidArgument(f"invalid request: {text}", where="actors.name", detail=text,
                          name=name)


def actor_ref(actor_type: str, actor_id: str) -> ActorRef:
    """A validated :class:`ActorRef` (the checks daprd makes on an invoke's type and id)."""
    return ActorRef(validate_name(actor_type, "actorType"), validate_name(actor_id, "actorId"))


def check_reserved(actor_type: str) -> None:
    """PermissionDenied at ``actors.reserved`` for the workflow runtime's types."""
    if actor_type.startswith(RESERVED_PREFIX):
        text = (f"actor type {_go_quote(actor_type)} is reserved for the Dapr workflow runtime; "
                "direct actor API access is not permitted")
        raise PermissionDenied(text, where="actors.reserved", detail=text, type=actor_type)


def normalize_method(method: str) -> str:
    """daprd's ``NormalizeMethod``; a bad method is InvalidArgument at ``actors.name``."""
    if any(c in method for c in "#?\x00"):
        problem = f"method contains forbidden character: {_go_quote(method)}"
    else:
        at = _control_at(method)
        problem = ("" if at is None else
                   f"method contains control character at position {at}: {_go_quote(method)}")
    if problem:
        raise InvalidArgument(f"invalid request: {problem}", where="actors.name", detail=problem,
                              name=method)
    cleaned = _go_clean(method)
    while cleaned.startswith("../"):
        cleaned = cleaned[3:]
    if cleaned in ("..", "."):
        cleaned = ""
    return cleaned


def _go_clean(path: str) -> str:
    """Go's ``path.Clean`` (``""`` → ``"."``; a rooted path stays rooted, ``..`` beyond the
    root dropped)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the texts of these errors (printable characters kept)."""
    out = ['"']
    for c in text:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif c == "\x00":
            out.append("\\x00")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def actor_prefix(app_id: str, actor: ActorRef) -> str:
    """``<appid>||<type>||<id>``: the partition key of the actor's state."""
    return SEPARATOR.join((app_id, actor.type, actor.id))


def state_key(app_id: str, actor: ActorRef, key: str) -> str:
    """``<appid>||<type>||<id>||<key>``: the key as the store holds it (no ``keyPrefix``)."""
    return f"{actor_prefix(app_id, actor)}{SEPARATOR}{key}"


def owner_key(app_id: str, actor: ActorRef) -> str:
    """The fencing key of ``actor`` (docs/design/actors.md §4.1):
    ``_actors.<appid>.owner.<type>||<id>``."""
    return f"_actors.{app_id}.owner.{actor.key}"


__all__ = ["PARTITION_KEY", "RESERVED_PREFIX", "actor_prefix", "actor_ref", "check_name",
           "check_reserved", "normalize_method", "owner_key", "state_key", "validate_name"]
