"""Block-level tar walker: one bounded entry per member, never a large read, nothing kept.

Python's ``tarfile`` reads a pax or GNU long-name record whole before anyone can look at it
and keeps every member it has seen, so a 400 KiB upload could cost the coordinator hundreds of
MiB. This walker reads the 512-byte headers itself, refuses an extension record larger than
``MAX_EXTENSION_BYTES`` *before* reading its payload, skips file data in chunks and forgets
each member once it has been handed out.

It reads members the way ``tarfile`` does (the agent unpacks with ``tarfile``): the ustar
prefix, the V7 directory slash, pax ``path``/``linkpath``/``size`` overriding the header, data
blocks only after regular files. Where ``tarfile`` is lenient it is strict instead, so the two
can never disagree about what an accepted archive contains: a bad checksum or truncation
after the first member (``tarfile`` silently stops there), sparse files, unknown types,
conflicting or repeated extension records and global headers that rename members are refused.
"""

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from shared.errors import InvalidRequest

BLOCK: Final = 512
# The largest single read the walker asks for (file data is skipped in reads of this size).
CHUNK: Final = 64 * 1024
# PATH_MAX: longer member names or link targets cannot be unpacked on Linux anyway.
MAX_NAME_BYTES: Final = 4096
# One pax or GNU long-name record; a real one holds a path and a few small fields.
MAX_EXTENSION_BYTES: Final = 64 * 1024
# Extension headers in front of one member (one each of pax, long name, long link, global).
MAX_EXTENSION_HEADERS: Final = 4
NOT_A_GZIP_TAR: Final = "archive is not a gzip tar"
# Error messages quote at most this much of a member name (the name itself may be huge).
QUOTE_CHARS: Final = 80

_REGULAR: Final = frozenset({b"0", b"\0", b"7"})
_SPECIAL: Final = frozenset({b"3", b"4", b"6"})
_PAX: Final = frozenset({b"x", b"X"})
_EXTENSIONS: Final = _PAX | {b"g", b"L", b"K"}
# mode, uid, gid, size, mtime, devmajor, devminor: tarfile stops reading at a header whose
# number fields do not parse, so one that would be cut short there is refused here.
_NUMBERS: Final = (
    slice(100, 108),
    slice(108, 116),
    slice(116, 124),
    slice(124, 136),
    slice(136, 148),
    slice(329, 337),
    slice(337, 345),
)
_RECORD: Final = re.compile(rb"(\d+) ([^=]+)=")
_SIGNED: Final = struct.Struct("148b8x356b")
_UNSIGNED: Final = struct.Struct("148B8x356B")
# pax keywords that would rename or resize every later member when set globally.
_MEMBER_FIELDS: Final = frozenset({"path", "linkpath", "size"})


class Readable(Protocol):
    """What the walker reads from: a decompressing file object, or any bytes stream."""

    def read(self, size: int, /) -> bytes:
        """At most ``size`` bytes; empty at the end."""
        ...


class Kind(StrEnum):
    """What a member is, as far as unpacking it is concerned."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    SPECIAL = "special"


@dataclass(frozen=True, slots=True)
class Entry:
    """One member: its name and link target as ``tarfile`` would report them, kind and size."""

    name: str
    linkname: str
    kind: Kind
    size: int


def quote(name: str) -> str:
    """``name`` for an error message: repr of at most ``QUOTE_CHARS`` characters."""
    if len(name) <= QUOTE_CHARS:
        return repr(name)
    return repr(name[:QUOTE_CHARS]) + f"... ({len(name)} characters)"


def refuse(name: str, why: str) -> InvalidRequest:
    """The refusal of one member; the name is quoted short so the answer stays small."""
    short = name if len(name) <= QUOTE_CHARS else name[:QUOTE_CHARS] + "..."
    # Undecodable bytes are kept as surrogates, which JSON cannot carry: spell them \xNN.
    short = short.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return InvalidRequest(f"archive member {quote(name)} {why}", details={"member": short})


def _malformed() -> InvalidRequest:
    return InvalidRequest(NOT_A_GZIP_TAR)


def _text(raw: bytes) -> str:
    # tarfile's default on Linux: UTF-8, undecodable bytes kept as surrogates.
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 (leading 0x80 / 0xff)."""
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0o377 else value
    try:
        return int(field.split(b"\0", 1)[0].decode("ascii").strip() or "0", 8)
    except ValueError as exc:
        raise _malformed() from exc


def _read(stream: Readable, size: int) -> bytes:
    """Up to ``size`` (at most ``CHUNK``) bytes; shorter only at the end of the stream."""
    parts: list[bytes] = []
    missing = size
    while missing > 0:
        data = stream.read(missing)
        if not data:
            break
        parts.append(data)
        missing -= len(data)
    return b"".join(parts)


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _skip(stream: Readable, size: int) -> None:
    """Read past ``size`` bytes of data (padded to a block) without keeping them."""
    remaining = _padded(size)
    while remaining > 0:
        data = stream.read(min(remaining, CHUNK))
        if not data:
            raise _malformed()
        remaining -= len(data)


def _checksum_ok(header: bytes) -> bool:
    stored = _number(header[148:156])
    return stored in (256 + sum(_UNSIGNED.unpack(header)), 256 + sum(_SIGNED.unpack(header)))


def _pax_records(payload: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records, parsed exactly as ``tarfile`` does."""
    records: dict[str, str] = {}
    position = 0
    while match := _RECORD.match(payload, position):
        try:
            length = int(match.group(1))
        except ValueError as exc:  # more digits than int() accepts
            raise _malformed() from exc
        if length == 0:
            raise _malformed()
        value = payload[match.end(2) + 1 : match.start(1) + length - 1]
        key = match.group(2).decode("utf-8", "surrogateescape")
        records[key] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


class _Extensions:
    """The extension records read in front of one member."""

    def __init__(self) -> None:
        self.pax: dict[str, str] = {}
        self.seen: set[bytes] = set()
        self.long_name: str | None = None
        self.long_link: str | None = None

    def add(self, kind: bytes, payload: bytes) -> None:
        kind = b"x" if kind in _PAX else kind
        # tarfile lets the outermost of two records win; refusing repeats avoids the question.
        if kind in self.seen and kind != b"g":
            raise InvalidRequest("archive has a repeated extended header for one member")
        self.seen.add(kind)
        if kind == b"L":
            self.long_name = _text(payload)
        elif kind == b"K":
            self.long_link = _text(payload)
        else:
            records = _pax_records(payload)
            if any(key.startswith("GNU.sparse") for key in records):
                raise InvalidRequest("archive holds sparse files, which are not supported")
            if kind == b"g":
                if _MEMBER_FIELDS & records.keys():
                    raise InvalidRequest("archive has a global header that renames members")
            else:
                self.pax = records
        if (self.long_name is not None and "path" in self.pax) or (
            self.long_link is not None and "linkpath" in self.pax
        ):
            raise InvalidRequest("archive has conflicting extended headers for one member")


def _entry(header: bytes, extensions: _Extensions) -> Entry:
    """The member a header block plus its extension records describes."""
    kind_byte = header[156:157]
    name = _text(header[0:100])
    linkname = _text(header[157:257])
    prefix = _text(header[345:500])
    if kind_byte == b"\0" and name.endswith("/"):
        kind_byte = b"5"
    if prefix:
        name = prefix + "/" + name
    if kind_byte == b"5":
        name = name.rstrip("/")
    size = _number(header[124:136])
    if extensions.long_name is not None:
        name = extensions.long_name
        if kind_byte == b"5":
            name = name.removesuffix("/")
    if extensions.long_link is not None:
        linkname = extensions.long_link
    if "path" in extensions.pax:
        name = extensions.pax["path"].rstrip("/")
    if "linkpath" in extensions.pax:
        linkname = extensions.pax["linkpath"]
    if "size" in extensions.pax:
        try:
            size = int(extensions.pax["size"])
        except ValueError as exc:
            raise _malformed() from exc
    for value in (name, linkname):
        if len(value.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise refuse(value, f"has a name or link target over {MAX_NAME_BYTES} bytes")
    if size < 0:
        raise _malformed()
    kind = {b"1": Kind.HARDLINK, b"2": Kind.SYMLINK, b"5": Kind.DIR}.get(kind_byte)
    if kind_byte in _REGULAR:
        kind = Kind.FILE
    elif kind_byte in _SPECIAL:
        kind = Kind.SPECIAL
    elif kind is None:
        # Sparse files and unknown types: tarfile would unpack them as files of another size.
        raise refuse(name, "has an unsupported type")
    if kind is not Kind.FILE and size != 0:
        # tarfile does not skip data after them, so a reader could disagree on what follows.
        raise refuse(name, "has data but is not a regular file")
    return Entry(name, linkname, kind, size)


def walk(stream: Readable) -> Iterator[Entry]:
    """Yield the members of the uncompressed tar ``stream``; raises ``InvalidRequest``.

    An entry is yielded before its data is skipped, so a caller can stop on its declared size
    without the walker reading it. ``stream.read`` is never asked for more than ``CHUNK`` bytes.
    """
    first = True
    while True:
        extensions = _Extensions()
        count = 0
        while True:
            header = _read(stream, BLOCK)
            if not header and not first and count == 0:
                return  # no end-of-archive blocks: tarfile accepts that too
            if len(header) < BLOCK:
                raise _malformed()
            if header.count(0) == BLOCK:
                if count:
                    raise _malformed()
                return
            if not _checksum_ok(header):
                raise _malformed()
            for field in _NUMBERS:
                _ = _number(header[field])
            first = False
            kind_byte = header[156:157]
            if kind_byte not in _EXTENSIONS:
                break
            count += 1
            if count > MAX_EXTENSION_HEADERS:
                raise InvalidRequest("archive has too many extended headers for one member")
            size = _number(header[124:136])
            if not 0 <= size <= MAX_EXTENSION_BYTES:
                raise InvalidRequest(
                    f"archive has an extended header of {size} bytes "
                    f"(at most {MAX_EXTENSION_BYTES} allowed)"
                )
            payload = _read(stream, _padded(size))
            if len(payload) < _padded(size):
                raise _malformed()
            extensions.add(kind_byte, payload[:size])
        entry = _entry(header, extensions)
        yield entry
        if entry.kind is Kind.FILE:
            _skip(stream, entry.size)


__all__ = [
    "CHUNK",
    "MAX_EXTENSION_BYTES",
    "MAX_NAME_BYTES",
    "NOT_A_GZIP_TAR",
    "Entry",
    "Kind",
    "Readable",
    "quote",
    "refuse",
    "walk",
]
