"""Membership indexes of a training corpus's token n-grams (the ``regurgitation`` score's index).

Tokens (tokenizer ``norm-v1``, the default): ``tokenize`` first brings the text to a normal form,
so that the style changes that bypass verbatim filters (Ippolito et al. 2022, "Preventing
Verbatim Memorization in Language Models Gives a False Sense of Privacy") give the same tokens:

1. Unicode NFKC (compatibility forms: fullwidth and mathematical letters, ligatures);
2. case folding (``str.casefold``: ALL CAPS, and ``STRASSE`` = ``straße``);
3. re-spacing undone: a region of >= 2 isolated letters joined by separators of 1-2 characters
   from ``[ -_.*·]`` is split at every separator other than its most frequent one (the
   intra-word separator; the shortest on ties) and the letters of each piece are joined, when a
   piece is >= 3 letters long: ``t h e  c a t`` -> ``the  cat``, ``T-H-E C-A-T`` -> ``the cat``;
   ``e.g. a`` (pieces ``eg``, ``a``) is left alone;

then keeps the words, ``WORD_PATTERN`` = ``[^\\W_]+(?:_+[^\\W_]+)*`` (runs of letters and digits,
joined by inner underscores): whitespace and punctuation are dropped, so a punctuation change is
no edit, and ASCII art or rules of ``=====`` give no tokens. The former tokenizer ``regex-v1``
(``tokenize_regex_v1``: ``TOKEN_PATTERN`` = ``\\w+|[^\\w\\s]`` of ``text.lower()``, punctuation
characters as tokens) is kept as the verbatim baseline; ``load_index`` refuses its indexes with a
request to rebuild. An injected ``tokenize`` callable (e.g. a model tokenizer giving ints)
replaces both.

Token ids: blake2b-64 of a token's UTF-8 (``str`` tokens) or splitmix64 of the int. n-gram hash:
the Karp-Rabin rolling hash (Karp & Rabin 1987) ``h_i = sum_{j<n} id_{i+j} B^(n-1-j) mod 2^64``,
computed for every window at once from a prefix sum of ``id_t B^-t`` (B odd, so invertible mod
2^64), then the splitmix64 finaliser. Two indexes share the ``NgramIndex`` interface:

* ``BloomIndex`` -- a Bloom filter (Bloom 1970, "Space/Time Trade-offs in Hash Coding with
  Allowable Errors") of ``m`` bits and ``k`` probes, sized for ``N`` n-grams at target rate
  ``p`` by ``m = -N ln p / (ln 2)^2`` and ``k = (m/N) ln 2``; the probes are
  ``g_i = h1 + i h2 mod m`` (double hashing, Kirsch & Mitzenmacher 2006, "Less Hashing, Same
  Performance"). Its stated false-positive rate is ``(X/m)^k`` with X the bits set.
* ``ExactIndex`` -- the sorted unique 64-bit hashes, probed by ``np.searchsorted``; false
  positives only by a 64-bit hash collision (rate ``size / 2^64``).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Protocol

import numpy as np

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
HASH_VERSION = "kr64-splitmix-v1"
DEFAULT_TOKENIZER = "norm-v1"
LEGACY_TOKENIZER = "regex-v1"  # lower() and TOKEN_PATTERN only: indexes built before normalisation
_SEP = r"[ \-_.*\u00b7]"
_RESPACED = re.compile(r"(?<!\w)[^\W\d_](?:" + _SEP + r"{1,2}[^\W\d_](?!\w))+")
_SEP_SPLIT = re.compile("(" + _SEP + "{1,2})")
WORD_PATTERN = re.compile(r"[^\W_]+(?:_+[^\W_]+)*")
_B = 0x100000001B3  # odd base (the FNV-64 prime)
_B_INV = pow(_B, -1, 1 << 64)
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
Tokenizer = Callable[[str], Sequence[str] | Sequence[int]]


def _join_respaced(match: re.Match) -> str:
    parts = _SEP_SPLIT.split(match.group(0))
    letters, seps = parts[0::2], parts[1::2]
    intra = min(Counter(seps).items(), key=lambda kv: (-kv[1], len(kv[0])))[0]
    pieces, boundaries = [letters[0]], []
    for sep, letter in zip(seps, letters[1:], strict=True):
        if sep == intra:
            pieces[-1] += letter
        else:
            boundaries.append(sep)
            pieces.append(letter)
    if max(map(len, pieces)) < 3:
        return match.group(0)
    return pieces[0] + "".join(b + p for b, p in zip(boundaries, pieces[1:], strict=True))


def normalise(text: str) -> str:
    """The normal form ``norm-v1`` takes its words from: NFKC, casefold, re-spacing undone."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return _RESPACED.sub(_join_respaced, text.casefold())


def tokenize(text: str) -> list[str]:
    """The default tokenizer (``norm-v1``): ``WORD_PATTERN.findall(normalise(text))``."""
    return WORD_PATTERN.findall(normalise(text))


def tokenize_regex_v1(text: str) -> list[str]:
    """The former default tokenizer (``regex-v1``): ``TOKEN_PATTERN.findall(text.lower())``."""
    return TOKEN_PATTERN.findall(text.lower())


BUILTIN_TOKENIZERS: dict[str, Tokenizer] = {DEFAULT_TOKENIZER: tokenize, LEGACY_TOKENIZER: tokenize_regex_v1}


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (Steele et al. 2014), a bijection on uint64."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def token_ids(token_lists: Sequence[Sequence[str] | Sequence[int]]) -> list[np.ndarray]:
    """uint64 ids of each list's tokens: blake2b-64 of ``str`` tokens, splitmix64 of int tokens."""
    if not token_lists:
        return []
    flat = list(chain.from_iterable(token_lists))
    if flat and not isinstance(flat[0], str):
        ids = _mix(np.asarray(flat, dtype=np.int64).astype(np.uint64))
    else:
        table = {t: int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
                 for t in set(flat)}
        ids = np.fromiter(map(table.__getitem__, flat), dtype=np.uint64, count=len(flat))
    return np.split(ids, np.cumsum([len(t) for t in token_lists])[:-1].astype(np.intp))


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """``np.unique`` by sort and compare (several times faster than numpy 2's ``np.unique`` here)."""
    x = np.sort(np.asarray(x, dtype=np.uint64))
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def _powers(base: int, count: int) -> np.ndarray:
    p = np.full(count, base, dtype=np.uint64)
    p[0] = 1
    return np.multiply.accumulate(p)


def ngram_hashes(ids: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the n-grams of several token-id sequences, none spanning two sequences.

    Returns ``(hashes, offsets)``: sequence j's ``max(0, len_j - n + 1)`` window hashes, in
    order, are ``hashes[offsets[j]:offsets[j + 1]]``.
    """
    lens = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
    offsets = np.concatenate([[0], np.cumsum(np.maximum(lens - n + 1, 0))])
    total = int(lens.sum())
    if offsets[-1] == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    x = np.concatenate(ids).astype(np.uint64)
    with np.errstate(over="ignore"):
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(x * _powers(_B_INV, total), out=prefix[1:])
        h = (prefix[n:] - prefix[:-n]) * _powers(_B, total)[n - 1:]
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    owner = np.repeat(np.arange(len(ids)), lens)[: total - n + 1]
    valid = np.arange(total - n + 1) + n <= (starts + lens)[owner]
    return _mix(h[valid] ^ np.uint64(n)), offsets


class NgramIndex(Protocol):
    """What the regurgitation audit needs from an n-gram membership index."""

    n: int

    def hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...
    def tokens(self, text: str) -> Sequence[str] | Sequence[int]: ...
    def add_documents(self, docs: Iterable[str]) -> None: ...
    def contains(self, ngram_hash: int) -> bool: ...
    def contains_many(self, hashes: np.ndarray) -> np.ndarray: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def false_positive_rate(self) -> float: ...


class _Base:
    kind = ""

    def __init__(self, n: int = 50, tokenize: Tokenizer | None = None,
                 tokenizer_name: str = DEFAULT_TOKENIZER):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if tokenize is not None and tokenizer_name in BUILTIN_TOKENIZERS:
            raise ValueError("an injected tokenize needs its own tokenizer_name (saved with the index)")
        if tokenize is None and tokenizer_name not in BUILTIN_TOKENIZERS:
            raise ValueError(f"tokenizer_name {tokenizer_name!r} is not built in: pass its tokenize")
        self.n, self.tokenizer_name = n, tokenizer_name
        self._tokenize = tokenize or BUILTIN_TOKENIZERS[tokenizer_name]
        self.reset()

    def tokens(self, text: str) -> Sequence[str] | Sequence[int]:
        """``text``'s tokens under this index's tokenizer (the positions ``Overlap`` counts)."""
        return self._tokenize(text)

    def reset(self) -> None:
        raise NotImplementedError

    def hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``ngram_hashes`` of ``texts`` under this index's tokenizer and n: ``(hashes, offsets)``."""
        return ngram_hashes(token_ids([self._tokenize(t) for t in texts]), self.n)

    def add_documents(self, docs: Iterable[str], chunk_chars: int = 4_000_000) -> None:
        """Add every n-gram of every document (none spanning two documents)."""
        batch: list[str] = []
        size = 0
        for d in docs:
            batch.append(d)
            size += len(d)
            if size >= chunk_chars:
                self.add_hashes(self.hashes(batch)[0])
                batch, size = [], 0
        if batch:
            self.add_hashes(self.hashes(batch)[0])

    def add_hashes(self, hashes: np.ndarray) -> None:
        raise NotImplementedError

    def contains(self, ngram_hash: int) -> bool:
        return bool(self.contains_many(np.array([ngram_hash], dtype=np.uint64))[0])

    def _meta(self) -> dict:
        return {"kind": self.kind, "n": self.n, "tokenizer": self.tokenizer_name, "hash": HASH_VERSION}


class ExactIndex(_Base):
    """Exact comparator: the sorted unique uint64 n-gram hashes (8 bytes per distinct n-gram)."""

    kind = "exact"

    def reset(self) -> None:
        self._h = np.zeros(0, dtype=np.uint64)

    @classmethod
    def from_documents(cls, docs: Iterable[str], n: int = 50, **kw) -> ExactIndex:
        index = cls(n, **kw)
        index.add_documents(docs)
        return index

    def add_hashes(self, hashes: np.ndarray) -> None:
        self._h = sorted_unique(np.concatenate([self._h, np.asarray(hashes, dtype=np.uint64)]))

    def merge(self, other: ExactIndex) -> None:
        """Union with an index of the same n and tokenizer (e.g. one per Spark partition)."""
        _check_same(self, other)
        self.add_hashes(other._h)

    def contains_many(self, hashes: np.ndarray) -> np.ndarray:
        hashes = np.asarray(hashes, dtype=np.uint64)
        if not len(self._h):
            return np.zeros(hashes.shape, dtype=bool)
        pos = np.searchsorted(self._h, hashes)
        return self._h[np.minimum(pos, len(self._h) - 1)] == hashes

    def __len__(self) -> int:
        return len(self._h)

    @property
    def size_bytes(self) -> int:
        return self._h.nbytes

    @property
    def false_positive_rate(self) -> float:
        """Probability that an absent n-gram collides with a stored 64-bit hash: ``size / 2^64``."""
        return len(self._h) / 2.0**64

    def save(self, path: str | Path) -> None:
        np.savez(path, hashes=self._h, **self._meta())


class BloomIndex(_Base):
    """Bloom filter of n-gram hashes, sized for ``expected_ngrams`` at ``target_fpr``.

    ``false_positive_rate`` is the stated rate from the actual fill, ``(X/m)^k``.
    """

    kind = "bloom"

    def __init__(self, n: int = 50, expected_ngrams: int = 1_000_000, target_fpr: float = 1e-6,
                 tokenize: Tokenizer | None = None, tokenizer_name: str = DEFAULT_TOKENIZER,
                 m: int | None = None, k: int | None = None):
        if not 0 < target_fpr < 1 or expected_ngrams < 1:
            raise ValueError("need 0 < target_fpr < 1 and expected_ngrams >= 1")
        self.expected_ngrams, self.target_fpr = expected_ngrams, target_fpr
        self.m = m or math.ceil(-expected_ngrams * math.log(target_fpr) / math.log(2) ** 2)
        self.k = k or max(1, round(self.m / expected_ngrams * math.log(2)))
        super().__init__(n, tokenize, tokenizer_name)

    def reset(self) -> None:
        self._bits = np.zeros((self.m + 7) // 8, dtype=np.uint8)

    @classmethod
    def from_documents(cls, docs: Iterable[str], n: int = 50, target_fpr: float = 1e-6,
                       **kw) -> BloomIndex:
        """Size the filter for the corpus's distinct n-grams, then add them."""
        distinct = ExactIndex(n, **kw)
        distinct.add_documents(docs)
        index = cls(n, max(1, len(distinct)), target_fpr, **kw)
        index.add_hashes(distinct._h)
        return index

    def _h1_h2(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Double hashing: probe i of a hash is ``(h1 + i h2) mod m``, with h2 in [1, m - 1]."""
        h2 = _mix(hashes ^ np.uint64(0x9E3779B97F4A7C15)) % np.uint64(max(self.m - 1, 1)) + np.uint64(1)
        return hashes % np.uint64(self.m), h2

    def add_hashes(self, hashes: np.ndarray, chunk: int = 1 << 20) -> None:
        hashes = np.asarray(hashes, dtype=np.uint64)
        for s in range(0, len(hashes), chunk):
            h1, h2 = self._h1_h2(hashes[s: s + chunk])
            pos = (h1[:, None] + np.arange(self.k, dtype=np.uint64) * h2[:, None]) % np.uint64(self.m)
            pos = pos.ravel()
            np.bitwise_or.at(self._bits, (pos >> np.uint64(3)).astype(np.intp),
                             np.left_shift(1, (pos & np.uint64(7)).astype(np.uint8)).astype(np.uint8))

    def merge(self, other: BloomIndex) -> None:
        """Bitwise OR with a filter of the same n, tokenizer, m and k (e.g. one per Spark partition)."""
        _check_same(self, other)
        if (self.m, self.k) != (other.m, other.k):
            raise ValueError(f"cannot merge Bloom filters of (m, k) {self.m, self.k} and {other.m, other.k}")
        self._bits |= other._bits

    def contains_many(self, hashes: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
        """Probe by probe, keeping only the hashes whose probes so far were all set: an absent
        n-gram costs about 1 / (1 - fill) probes instead of k."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        out = np.zeros(hashes.shape, dtype=bool)
        for s in range(0, len(hashes), chunk):
            h1, h2 = self._h1_h2(hashes[s: s + chunk])
            alive = np.arange(len(h1))
            for i in range(self.k):
                pos = (h1[alive] + np.uint64(i) * h2[alive]) % np.uint64(self.m)
                byte = self._bits[(pos >> np.uint64(3)).astype(np.intp)]
                alive = alive[((byte >> (pos & np.uint64(7)).astype(np.uint8)) & 1).astype(bool)]
            out[s + alive] = True
        return out

    @property
    def fill(self) -> float:
        """Share of the m bits that are set."""
        return int(_POP8[self._bits].sum(dtype=np.int64)) / self.m

    @property
    def size_bytes(self) -> int:
        return self._bits.nbytes

    @property
    def false_positive_rate(self) -> float:
        """Stated false-positive rate of one absent n-gram, ``fill ** k``."""
        return self.fill**self.k

    def save(self, path: str | Path) -> None:
        np.savez(path, bits=self._bits, m=self.m, k=self.k, expected_ngrams=self.expected_ngrams,
                 target_fpr=self.target_fpr, **self._meta())


def _check_same(a: _Base, b: _Base) -> None:
    if (a.n, a.tokenizer_name) != (b.n, b.tokenizer_name):
        raise ValueError(f"indexes differ: n/tokenizer {a.n, a.tokenizer_name} vs {b.n, b.tokenizer_name}")


def load_index(path: str | Path, tokenize: Tokenizer | None = None) -> BloomIndex | ExactIndex:
    """Load a ``save``d index; pass the same ``tokenize`` it was built with unless it used the default.

    An index of the former default tokenizer ``regex-v1`` is refused (ValueError, rebuild it): its
    tokens are not the normal form the queries now take."""
    not_an_index = ValueError(f"{path} is not a Parrotwatch n-gram index (an .npz archive of its arrays); "
                              "build one with `parrotwatch index build`")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError:
        raise not_an_index from None
    if not isinstance(archive, np.lib.npyio.NpzFile) or "hash" not in archive.files:
        if isinstance(archive, np.lib.npyio.NpzFile):
            archive.close()
        raise not_an_index
    with archive as z:
        if str(z["hash"]) != HASH_VERSION:
            raise ValueError(f"{path}: n-gram hash {z['hash']} is not {HASH_VERSION}; rebuild the index")
        name = str(z["tokenizer"])
        if name == LEGACY_TOKENIZER:
            raise ValueError(f"{path} was built with tokenizer {name!r} (verbatim tokens, before the "
                             f"normalised {DEFAULT_TOKENIZER!r}): rebuild it with `parrotwatch index build`")
        if (name in BUILTIN_TOKENIZERS) != (tokenize is None):
            raise ValueError(f"{path} was built with tokenizer {name!r}: pass it as tokenize")
        kw = {"n": int(z["n"]), "tokenize": tokenize, "tokenizer_name": name}
        if str(z["kind"]) == "exact":
            index: BloomIndex | ExactIndex = ExactIndex(**kw)
            index._h = z["hashes"]
        else:
            index = BloomIndex(expected_ngrams=int(z["expected_ngrams"]), target_fpr=float(z["target_fpr"]),
                               m=int(z["m"]), k=int(z["k"]), **kw)
            index._bits = z["bits"]
    return index
