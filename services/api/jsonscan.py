"""A byte-level pre-scan of a request body: its nesting depth, its number of top-level array
elements and its first out-of-range integer, found before any Python object is built.

Why: ``orjson.loads`` turns an 8 MiB ``[{}, {}, ...]`` into two million dicts (hundreds of MB)
before the batch limit could refuse it, reads integers beyond 64 bits as floats (2**70 would be
forwarded as ``1.1805916207174113e+21``) and accepts 1,024 levels of nesting that its own
``dumps`` then refuses (a 500). The scan works on numpy arrays one chunk at a time, so its memory
is bounded by the chunk size and numpy's loops run without the GIL.

It assumes nothing about validity: on a body that is not JSON its figures are meaningless but
harmless, because the parser that runs afterwards rejects such a body with its own error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPENS = (ord("["), ord("{"))
_CLOSES = (ord("]"), ord("}"))
_COMMA = ord(",")
_WHITESPACE = b" \t\r\n"
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what orjson (and the stream's msgspec) keep exactly


@dataclass(frozen=True)
class JsonShape:
    """What :func:`scan` found: ``items`` is the number of top-level array elements (``None``
    when the body is not an array), ``big_int`` the first integer literal outside
    [``INT_MIN``, ``INT_MAX``] (as sent, shortened) and ``big_int_offset`` its byte offset."""

    depth: int
    items: int | None
    big_int: str | None = None
    big_int_offset: int | None = None


def _unescaped(quotes: np.ndarray, slashes: np.ndarray, carried: int) -> np.ndarray:
    """Mask of the quotes that end or start a string: not preceded by an odd backslash run.

    ``slashes`` are the chunk's backslash positions, ``carried`` the backslashes that ended the
    previous chunk (a run that starts at position 0 continues them).
    """
    # a quote at position 0 is escaped by the carried run alone
    first_escaped = bool(carried % 2 and quotes.size and quotes[0] == 0)
    if not slashes.size:
        keep = np.ones(quotes.size, dtype=bool)
        keep[:1] = not first_escaped
        return keep
    before = np.searchsorted(slashes, quotes)  # backslashes before each quote
    prev = np.maximum(before - 1, 0)
    adjacent = (before > 0) & (slashes[prev] == quotes - 1)
    # runs of consecutive positions share slashes[i] - i; each one's first index
    key = slashes - np.arange(slashes.size)
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    run_first = first[np.searchsorted(first, prev, side="right") - 1]
    run = before - run_first + np.where(slashes[run_first] == 0, carried, 0)
    keep = ~(adjacent & (run % 2 == 1))
    keep[:1] &= not first_escaped
    return keep


def _outside(positions: np.ndarray, quotes: np.ndarray, in_string: int) -> np.ndarray:
    """Mask of ``positions`` that lie outside strings (an even number of quotes before them)."""
    return ((np.searchsorted(quotes, positions) + in_string) & 1) == 0


def _number_at(body: bytes, start: int, end: int) -> tuple[bytes, int] | None:
    """The integer literal whose digits are ``body[start:end]`` and where it starts (its sign),
    or None when those digits are a fraction, an exponent or a float's mantissa."""
    if end < len(body) and body[end:end + 1] in (b".", b"e", b"E"):
        return None
    before = body[start - 1:start] if start else b""
    if before in (b".", b"e", b"E", b"+"):
        return None
    if before == b"-":
        if start >= 2 and body[start - 2:start - 1] in (b"e", b"E"):
            return None
        start -= 1
    return body[start:end], start


def _out_of_range(literal: bytes) -> bool:
    digits = literal.lstrip(b"-")
    # over 20 digits is out of range for sure (and int() refuses over 4,300 digits)
    return len(digits) > 20 or not INT_MIN <= int(literal) <= INT_MAX


def _shown(literal: bytes) -> str:
    text = literal.decode("ascii")
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text.lstrip('-'))} digits)"


def scan(body: bytes, chunk_bytes: int = 1 << 20) -> JsonShape:
    """Depth, top-level element count and the first out-of-range integer of ``body``.

    Works on the positions of the few structural bytes of each chunk: quotes (one preceded by
    an odd run of backslashes is escaped), brackets, commas and runs of 19 digits or more. A
    position is inside a string when an odd number of unescaped quotes precede it. The string
    state, the trailing backslash run, the depth and a digit run cut at the chunk's end carry
    over to the next chunk.
    """
    start = len(body) - len(body.lstrip(_WHITESPACE))
    is_array = body[start:start + 1] == b"["
    in_string = backslashes = depth = max_depth = commas = 0
    run_from: int | None = None  # a digit run open at the end of the previous chunk
    big: tuple[str, int] | None = None
    for offset in range(0, len(body), chunk_bytes):
        end = min(offset + chunk_bytes, len(body))
        c = np.frombuffer(body, dtype=np.uint8, count=end - offset, offset=offset)
        quotes = np.flatnonzero(c == _QUOTE)
        slashes = np.empty(0, dtype=np.intp)
        if backslashes or body.find(b"\\", offset, end) != -1:
            slashes = np.flatnonzero(c == _BACKSLASH)
            quotes = quotes[_unescaped(quotes, slashes, backslashes)]
        brackets = np.flatnonzero((c == _OPENS[0]) | (c == _OPENS[1])
                                  | (c == _CLOSES[0]) | (c == _CLOSES[1]))
        brackets = brackets[_outside(brackets, quotes, in_string)]
        step = np.where((c[brackets] == _OPENS[0]) | (c[brackets] == _OPENS[1]), 1, -1)
        levels = np.cumsum(step, dtype=np.int64) + depth
        if levels.size:
            max_depth = max(max_depth, int(levels.max()))
        if is_array:
            at = np.flatnonzero(c == _COMMA)
            at = at[_outside(at, quotes, in_string)]
            j = np.searchsorted(brackets, at)
            level = np.where(j > 0, levels[np.maximum(j - 1, 0)] if levels.size else depth, depth)
            commas += int(np.count_nonzero(level == 1))
        if big is None:
            digits = np.r_[False, (c - ord("0")) < 10, False].view(np.int8)
            edges = np.diff(digits)
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            starts, ends = starts.astype(np.int64) + offset, ends.astype(np.int64) + offset
            if run_from is not None:  # the run cut at the previous chunk's end goes on, or ends
                if starts.size and starts[0] == offset:
                    starts[0] = run_from
                else:
                    starts, ends = np.r_[run_from, starts], np.r_[offset, ends]
            outside = _outside(np.clip(starts - offset, 0, None), quotes, in_string)
            outside[starts < offset] = True  # carried runs were outside strings (checked there)
            starts, ends = starts[outside], ends[outside]
            run_from = None
            if ends.size and ends[-1] == end and end < len(body):  # cut: finish it next chunk
                run_from, starts, ends = int(starts[-1]), starts[:-1], ends[:-1]
            long = np.flatnonzero(ends - starts >= 19)
            if long.size:
                for s, e in zip(starts[long], ends[long], strict=True):
                    found = _number_at(body, int(s), int(e))
                    if found is not None and _out_of_range(found[0]):
                        big = _shown(found[0]), found[1]
                        break
        in_string = (in_string + quotes.size) & 1
        if levels.size:
            depth = int(levels[-1])
        if c[-1] == _BACKSLASH:
            trailing = (end - offset) - len(body[offset:end].rstrip(b"\\"))
            backslashes = trailing + (backslashes if trailing == end - offset else 0)
        else:
            backslashes = 0
    items = None
    if is_array:
        empty = body[start + 1:].lstrip(_WHITESPACE)[:1] == b"]"
        items = 0 if empty else commas + 1
    if big is None:
        return JsonShape(max_depth, items)
    return JsonShape(max_depth, items, big_int=big[0], big_int_offset=big[1])
