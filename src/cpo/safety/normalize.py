"""Text normalization for the local safety screen.

Harmful words are often disguised so that a naive word list misses them:
``K1LL``, ``k i l l``, ``k.i.l.l``, ``kiiiill``, ``k*ll``, Cyrillic look-alike
letters (``kіll`` with a Cyrillic ``і``), accents (``kíll``), zero-width
characters or full-width letters. This module undoes those disguises so that the
lexicon in ``cpo/data/safety/lexicon`` can be matched with plain word-boundary
regexes.

Two layers:

* :func:`fold` is character-level and needs no vocabulary: delete zero-width
  characters, Unicode NFKC, homoglyphs (Cyrillic/Greek look-alikes) to Latin,
  case folding, accent stripping, and dashes to spaces.
* :class:`TextNormalizer` adds token-level repairs guided by a vocabulary (the
  words of the lexicon). A repair that would change a word is applied only when
  it turns a disguised token into a vocabulary word, so ordinary words with
  double letters ("coffee", "killer", "shoot") or dotted tokens ("a.m.",
  "shop.com") are left alone:

  - spaced letters, ``k i l l`` / ``k-i-l-l`` / ``k.i.l.l`` -> ``kill`` (always
    joined; a joined run that hides several words, ``killyou``, is split around
    the lexicon words it contains);
  - punctuation inside a word, ``ki.ll`` / ``h*te`` -> ``kill`` / ``hate`` (only
    when the result is a vocabulary word; ``*`` is treated as a masked letter);
  - leetspeak, ``4 3 1 0 5 7 @ $ !`` -> ``a e i o s t a s i`` inside tokens that
    mix letters and those characters (``1`` is tried as ``i`` and as ``l``);
  - repeated letters, ``kiiiill`` / ``killlll`` -> ``kill``: a token with a run of
    three or more identical letters is compared with the vocabulary on its
    collapsed form (every run reduced to one letter) and replaced by the longest
    compatible vocabulary word; otherwise runs are cut to two letters.

Everything is precompiled; clean ASCII text costs a ``lower``, a ``translate`` and
a handful of regex scans that find nothing.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "TextNormalizer",
    "collapse_repeats",
    "deleet",
    "fold",
    "normalize",
]

# --------------------------------------------------------------------------- fold

_ZERO_WIDTH = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff\u00ad\u180e\u034f"),
    None,
)

# Look-alike letters mapped to the Latin letter they imitate. Applied to the whole
# text: this screen's lexicon is English, so genuine Cyrillic/Greek prose is
# transliterated by appearance (harmless for matching English terms).
_HOMOGLYPH_PAIRS = {
    # Cyrillic lower case
    "а": "a", "б": "b", "в": "b", "г": "r", "е": "e", "ё": "e", "ж": "x", "з": "3",
    "и": "u", "й": "u", "к": "k", "л": "n", "м": "m", "н": "h", "о": "o", "п": "n",
    "р": "p", "с": "c", "т": "t", "у": "y", "ф": "f", "х": "x", "ц": "u", "ч": "4",
    "ш": "w", "щ": "w", "ъ": "b", "ы": "bi", "ь": "b", "э": "e", "я": "r",
    "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q",
    "ԝ": "w", "ү": "y", "ғ": "f", "ҡ": "k", "ң": "h", "ɡ": "g",
    # Cyrillic upper case
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I",
    "Ј": "J", "Ԁ": "D", "Һ": "H", "Ӏ": "I", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "З": "3",
    # Greek
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "ζ": "z", "η": "n", "ι": "i",
    "κ": "k", "μ": "u", "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "ς": "s", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H",
    "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y",
    "Χ": "X",
    # Latin look-alikes outside ASCII
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ß": "ss", "æ": "ae",
    "œ": "oe", "ɑ": "a", "ɩ": "i", "ʟ": "l", "ᴋ": "k", "ᴏ": "o", "ᴜ": "u", "ʏ": "y",
}  # fmt: skip
_HOMOGLYPHS = str.maketrans(_HOMOGLYPH_PAIRS)

# Apostrophes to ASCII; dashes and hyphens to spaces, so "drop-dead", "drop dead"
# and "drop—dead" look the same to the lexicon (whose entries are folded alike).
_PUNCT = str.maketrans(
    {
        "\u2019": "'", "\u2018": "'", "\u201b": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
        "\u2032": "'", "-": " ", "\u2010": " ", "\u2011": " ", "\u2012": " ", "\u2013": " ",
        "\u2014": " ", "\u2015": " ", "\u2212": " ", "\u2043": " ", "\ufe58": " ",
    }
)  # fmt: skip
_ASCII_PUNCT = str.maketrans({"`": "'", "-": " "})
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """Return ``text`` folded to lower-case ASCII-like form (no vocabulary needed).

    Steps: delete zero-width characters; NFKC (full-width and "fancy" Unicode
    letters become plain ones); homoglyphs to Latin; case folding; accents
    stripped (NFD, combining marks removed); curly apostrophes to ``'``; hyphens
    and dashes to spaces.

    Args:
        text: Any text.

    Returns:
        The folded text (same words, same order).
    """
    if text.isascii():
        return text.lower().translate(_ASCII_PUNCT)
    text = unicodedata.normalize("NFKC", text.translate(_ZERO_WIDTH))
    text = text.translate(_HOMOGLYPHS).casefold()
    text = _COMBINING.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", text).translate(_PUNCT)


# ---------------------------------------------------------------- token helpers

_LEET_I = str.maketrans({"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t",
                         "@": "a", "$": "s", "!": "i", "|": "l"})  # fmt: skip
_LEET_L = str.maketrans({"4": "a", "3": "e", "1": "l", "0": "o", "5": "s", "7": "t",
                         "@": "a", "$": "s", "!": "i", "|": "i"})  # fmt: skip
_LEET_CHARS = frozenset("4310575@$!|")
_RUN = re.compile(r"([a-z])\1+")
_RUN3 = re.compile(r"([a-z])\1{2,}")


def collapse_repeats(word: str) -> str:
    """Return ``word`` with every run of a repeated letter reduced to one letter.

    >>> collapse_repeats("kiiiilll")
    'kil'
    """
    return _RUN.sub(r"\1", word)


def deleet(token: str, vocabulary: frozenset[str] = frozenset()) -> str:
    """Translate leetspeak in one token (``k1ll`` -> ``kill``, ``$3x`` -> ``sex``).

    ``1`` and ``|`` are ambiguous (i or l); when a vocabulary is given, the reading
    that is a vocabulary word wins, otherwise ``1`` reads as ``i``.

    Args:
        token: One lower-case token.
        vocabulary: Known words used to resolve ambiguous characters.

    Returns:
        The translated token.
    """
    first = token.translate(_LEET_I)
    if not vocabulary or first in vocabulary:
        return first
    second = token.translate(_LEET_L)
    return second if second in vocabulary else first


def _runs(word: str) -> list[tuple[str, int]]:
    return [(m.group(1), len(m.group(0))) for m in re.finditer(r"([a-z])\1*", word)]


# Separators allowed between the letters of a spaced-out word ("k i l l", "k.i.l.l").
_SEP = r"[ ._*|~+:/\\]"
_SPACED = re.compile(
    rf"(?<![a-z0-9@$])[a-z0-9@$](?:{_SEP}[a-z0-9@$](?![a-z0-9@$])){{2,}}",
)
_SEP_RE = re.compile(_SEP)
_INWORD = re.compile(r"(?<![a-z0-9@$])[a-z0-9@$]+(?:[.*_|~]+[a-z0-9@$]+)+")
_INWORD_SEP = re.compile(r"[._|~]+")
_LEET_TOKEN = re.compile(
    r"(?<![a-z0-9@$!|])(?=[a-z0-9@$!|]*[a-z])(?=[a-z]*[0-9@$!|])"
    r"[a-z0-9@$]+(?:[!|]+[a-z0-9@$]+)*"
)
_REPEAT_TOKEN = re.compile(r"(?<![a-z])[a-z]*([a-z])\1\1[a-z]*")
_WS = re.compile(r"\s+")


class TextNormalizer:
    """Fold text and repair disguised words, guided by a vocabulary.

    Args:
        vocabulary: Words the screen cares about (every word of every lexicon
            entry). Repairs that change a word are only made when they produce one
            of these words.
        split_words: Words that may be split out of a joined run of spaced letters
            (``k i l l y o u`` -> ``kill you``); usually the harmful terms and the
            pronouns the modifiers look for. Defaults to ``vocabulary``.

    Example:
        >>> TextNormalizer({"kill", "you"})("I w1ll K-I-L-L yoooou")
        'i will kill you'
    """

    def __init__(self, vocabulary: Iterable[str] = (), split_words: Iterable[str] | None = None):
        self.vocabulary = frozenset(w for w in vocabulary if w)
        by_collapse: dict[str, list[str]] = {}
        for word in sorted(self.vocabulary):
            by_collapse.setdefault(collapse_repeats(word), []).append(word)
        self._by_collapse = by_collapse
        by_shape: dict[tuple[int, str, str], list[str]] = {}
        for word in self.vocabulary:
            if word.isalpha() and len(word) >= 3:
                by_shape.setdefault((len(word), word[0], word[-1]), []).append(word)
        self._by_shape = {k: sorted(v) for k, v in by_shape.items()}
        self._split_words = self.vocabulary if split_words is None else frozenset(split_words)

    @functools.cached_property
    def _splitter(self) -> re.Pattern[str] | None:
        """Longest-first alternation of the split words (compiled on first use:
        only texts with spaced-out letters need it, and it is a large pattern)."""
        splittable = sorted(
            (w for w in self._split_words if w.isalpha() and len(w) >= 3), key=len, reverse=True
        )
        return re.compile("|".join(map(re.escape, splittable))) if splittable else None

    def __call__(self, text: str) -> str:
        """Return the normalized form of ``text`` (see the module docstring)."""
        text = fold(text)
        text = _SPACED.sub(self._join_spaced, text)
        text = _WS.sub(" ", text).strip()
        if "." in text or "*" in text or "_" in text or "|" in text or "~" in text:
            text = _INWORD.sub(self._join_inword, text)
        text = _LEET_TOKEN.sub(self._deleet_match, text)
        return _REPEAT_TOKEN.sub(self._unrepeat_match, text)

    # -- repairs -------------------------------------------------------------

    def resolve(self, token: str) -> str:
        """Return the vocabulary word a disguised token stands for, or ``token``.

        Tries leetspeak and repeated letters; used by every repair step.
        """
        if token in self.vocabulary:
            return token
        if any(ch in _LEET_CHARS for ch in token):
            token = deleet(token, self.vocabulary)
            if token in self.vocabulary:
                return token
        if _RUN3.search(token):
            return self._unrepeat(token)
        return token

    def _join_spaced(self, match: re.Match[str]) -> str:
        run = match.group(0)
        joined = _SEP_RE.sub("", run)
        if sum(ch.isalpha() for ch in joined) < 2:
            return run
        joined = self.resolve(joined)
        if joined in self.vocabulary or self._splitter is None:
            return joined
        return self._split(joined, self._splitter)

    def _split(self, joined: str, splitter: re.Pattern[str]) -> str:
        """Split a joined run around the lexicon words it contains ("killyou")."""
        pieces: list[str] = []
        last = 0
        for hit in splitter.finditer(joined):
            gap = joined[last : hit.start()]
            if 0 < len(gap) < 2:  # "s"+"kill" is "skill": a real word, not a disguise
                return joined
            if gap:
                pieces.append(gap)
            pieces.append(hit.group(0))
            last = hit.end()
        tail = joined[last:]
        if not pieces or 0 < len(tail) < 2:
            return joined
        if tail:
            pieces.append(tail)
        return " ".join(pieces)

    def _join_inword(self, match: re.Match[str]) -> str:
        token = match.group(0)
        if "*" in token:
            masked = self._unmask(token)
            if masked is not None:
                return masked
        joined = self.resolve(_INWORD_SEP.sub("", token))
        return joined if joined in self.vocabulary else token

    def _unmask(self, token: str) -> str | None:
        """Read ``*`` as one hidden letter: ``k*ll`` -> ``kill`` if that is known."""
        parts = [p for p in re.split(r"[._|~]+", token) if p]
        word = "".join(parts)
        if len(word) < 3 or word[0] == "*" or word[-1] == "*":
            return None
        candidates = self._by_shape.get((len(word), word[0], word[-1]), ())
        pattern = re.compile(re.escape(word).replace(r"\*", "[a-z]"))
        for candidate in candidates:
            if pattern.fullmatch(candidate):
                return candidate
        return None

    def _deleet_match(self, match: re.Match[str]) -> str:
        token = match.group(0)
        if not any(ch in _LEET_CHARS for ch in token):
            return token
        if not self.vocabulary:
            return deleet(token)
        # Only rewrite tokens that decode to a known word: "5pm" or "mp3" stay as they are.
        resolved = self.resolve(token)
        return resolved if resolved in self.vocabulary else token

    def _unrepeat_match(self, match: re.Match[str]) -> str:
        return self._unrepeat(match.group(0))

    def _unrepeat(self, token: str) -> str:
        """``kiiiill`` -> ``kill``; unknown words keep at most two of each letter."""
        runs = _runs(token)
        best = None
        for word in self._by_collapse.get(collapse_repeats(token), ()):
            word_runs = _runs(word)
            compatible = len(word_runs) == len(runs) and all(
                w <= t for (_, w), (_, t) in zip(word_runs, runs, strict=True)
            )
            if compatible and (best is None or len(word) > len(best)):
                best = word
        return best if best is not None else _RUN3.sub(r"\1\1", token)


_PLAIN = TextNormalizer()


def normalize(text: str, vocabulary: Iterable[str] | None = None) -> str:
    """Normalize ``text``; a convenience wrapper around :class:`TextNormalizer`.

    Without a vocabulary only vocabulary-free repairs happen (folding, spaced
    letters joined, leetspeak with ``1`` read as ``i``, runs of three or more
    letters cut to two). Build a :class:`TextNormalizer` once when normalizing
    many texts with a vocabulary.
    """
    normalizer = _PLAIN if vocabulary is None else TextNormalizer(vocabulary)
    return normalizer(text)
