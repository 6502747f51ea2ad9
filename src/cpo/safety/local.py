"""The embedded default safety screen: lexicon + context rules, no network.

:class:`LocalSafetyAnalyzer` scores a text for the four harm categories (hate,
violence, self_harm, sexual) on Azure AI Content Safety's 0-7 scale. It is a
baseline that runs anywhere in well under a millisecond per email; Azure AI
Content Safety is the production screen.

Method (details and the data format in ``cpo/data/safety/lexicon/README.yaml``
and ``docs/safety.md``):

1. Normalize the text (:mod:`cpo.safety.normalize`): Unicode, case, accents,
   homoglyphs, leetspeak, spaced / dotted / masked / repeated letters.
2. Find every lexicon term on word boundaries by set lookups over the text's
   runs of letters and digits (no big regex to compile). Most marketing texts
   stop here.
3. Drop matches that lie entirely inside a safe idiom ("killer deal").
4. Score each remaining match: its base severity, ``with_group`` when a
   protected group is next to it, then the modifiers of its category found in
   the same sentence (threat phrasing, targets, intensity, encouragement,
   minors, negation, support context ...), then floors; clamp to 0-7.
5. Per category: the highest match, +1 when two different terms of severity
   >= 4 match.

Evidence strings name the category, the lexicon term and the modifiers that
applied (``violence:kill+threat+target_person=6``); they never contain the
screened text.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from cpo.errors import ConfigError
from cpo.models import HARM_CATEGORIES, CategoryScores
from cpo.registry import BackendSettings
from cpo.safety.base import SafetyAnalyzer, SafetyContext
from cpo.safety.normalize import TextNormalizer, fold
from cpo.settings_base import StrictModel
from cpo.yamlio import describe_validation_error, read_yaml_mapping

__all__ = ["DEFAULT_LEXICON_DIR", "LocalSafetyAnalyzer", "LocalSafetySettings"]

#: The lexicon shipped with the package.
DEFAULT_LEXICON_DIR = Path(__file__).resolve().parent.parent / "data" / "safety" / "lexicon"

Category = Literal["hate", "violence", "self_harm", "sexual"]
Severity = Field(ge=0, le=7)
_SLOT = re.compile(r"\{(\w+)(\?)?\}")
_MAX_EXPANSIONS = 20_000
_BOUNDARY_CHARS = "a-z0-9"
_PASSIVE_REACH = 4


# ------------------------------------------------------------------ file schema


class TermSpec(StrictModel):
    """One entry of a category file's ``terms`` list."""

    term: str = Field(min_length=1)
    severity: int = Severity
    forms: list[str] = Field(default_factory=list)
    weak: bool = False
    escalate: bool = True
    with_group: int | None = Field(default=None, ge=0, le=7)
    group_link: Literal["near", "copula"] = "near"
    also: dict[Category, int] = Field(default_factory=dict)
    note: str = ""

    @field_validator("also")
    @classmethod
    def _check_also(cls, value: dict[str, int]) -> dict[str, int]:
        for category, severity in value.items():
            if not 0 <= severity <= 7:
                raise ValueError(f"severity for '{category}' must be 0-7, got {severity}")
        return value


class ModifierSpec(StrictModel):
    """One context rule of ``modifiers``."""

    name: str = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)
    side: Literal["before", "after", "both"]
    window: int = Field(default=6, ge=1, le=40)
    bonus: int = Field(ge=-7, le=7)
    floor: int | None = Field(default=None, ge=0, le=7)
    min_base: int | None = Field(default=None, ge=0, le=7)
    max_base: int | None = Field(default=None, ge=0, le=7)
    passive: bool = False
    sentence_start: bool = False
    skip_weak: bool = False
    also_scores: list[Category] = Field(default_factory=list)
    blocked_by: list[str] = Field(default_factory=list)
    phrases: list[str] = Field(min_length=1)


class FloorSpec(StrictModel):
    """A minimum severity when certain modifiers applied together."""

    categories: list[Category] = Field(min_length=1)
    all: list[str] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    at_least: int = Severity
    include_weak: bool = False


class IdiomSpec(StrictModel):
    """A safe idiom with optional guards."""

    phrase: str = Field(min_length=1)
    not_after: list[str] = Field(default_factory=list)
    not_before: list[str] = Field(default_factory=list)
    note: str = ""


class ScreenSettings(StrictModel):
    """Windows and the multi-hit rule (``settings`` in modifiers.yaml)."""

    group_before: int = Field(default=5, ge=0, le=20)
    group_after: int = Field(default=2, ge=0, le=20)
    copula: list[str] = Field(default_factory=lambda: ["are", "is", "were", "was", "be"])
    passive_markers: list[str] = Field(default_factory=lambda: ["be", "been", "get", "got"])
    multi_hit_min: int = Field(default=4, ge=0, le=7)
    multi_hit_bonus: int = Field(default=1, ge=0, le=7)


class LexiconFile(StrictModel):
    """Everything one lexicon YAML file may contain."""

    category: Category | None = None
    blocklist: str | None = None
    encoding: Literal["plain", "rot13"] = "plain"
    terms: list[TermSpec] = Field(default_factory=list)
    slots: dict[str, list[str]] = Field(default_factory=dict)
    settings: ScreenSettings | None = None
    modifiers: list[ModifierSpec] = Field(default_factory=list)
    floors: list[FloorSpec] = Field(default_factory=list)
    idioms: list[str | IdiomSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _terms_need_category(self) -> LexiconFile:
        if self.terms and self.category is None:
            raise ValueError("a file with `terms` must name its `category`")
        return self


# ------------------------------------------------------------- compiled records


class _LazyRegex:
    """A regex built and compiled on first use.

    Most texts match no lexicon term, and a modifier's pattern is needed only
    around a match, so a run usually compiles few of them.
    """

    __slots__ = ("_build", "_pattern")

    def __init__(self, build: Callable[[], re.Pattern[str]]) -> None:
        self._build = build
        self._pattern: re.Pattern[str] | None = None

    def get(self) -> re.Pattern[str]:
        """The compiled pattern (compiled now if this is its first use)."""
        if self._pattern is None:
            self._pattern = self._build()
        return self._pattern


@dataclass(frozen=True, slots=True)
class _Entry:
    category: str
    label: str
    severity: int
    weak: bool
    escalate: bool
    with_group: int | None
    copula: bool
    also: tuple[tuple[str, int], ...]
    blocklist: str | None


@dataclass(frozen=True, slots=True)
class _Modifier:
    name: str
    side: str
    window: int
    bonus: int
    floor: int | None
    min_base: int | None
    max_base: int | None
    passive: bool
    sentence_start: bool
    skip_weak: bool
    also_scores: tuple[str, ...]
    pattern: _LazyRegex
    blocked_by: _LazyRegex | None


@dataclass(frozen=True, slots=True)
class _Floor:
    all: frozenset[str]
    any: frozenset[str]
    at_least: int
    include_weak: bool


@dataclass(frozen=True, slots=True)
class _Idiom:
    pattern: re.Pattern[str]
    not_after: frozenset[str]
    not_before: frozenset[str]
    reach: int


@dataclass
class _Loaded:
    """Raw, validated content of a lexicon folder before compilation."""

    files: list[tuple[Path, LexiconFile]] = field(default_factory=list)
    slots: dict[str, list[str]] = field(default_factory=dict)
    settings: ScreenSettings = field(default_factory=ScreenSettings)


# -------------------------------------------------------------------- helpers


def _fold_phrase(text: str) -> str:
    """Fold a lexicon phrase exactly like screened text (case, accents, hyphens)."""
    return " ".join(fold(text).split())


def _trie_regex(strings: Iterable[str]) -> str:
    """Return a regex body matching any of ``strings`` (factored as a trie).

    Python's ``re`` tries alternatives one by one; a trie turns hundreds of terms
    into a few branches per character, which keeps scanning fast.
    """
    trie: dict[str, Any] = {}
    for text in strings:
        node = trie
        for char in text:
            node = node.setdefault(char, {})
        node[""] = True
    return _emit(trie) if trie else "(?!)"


def _emit(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _emit(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:
        return f"(?:{body})?" if len(body) > 1 else f"{body}?"
    return body


def _bounded(strings: Iterable[str], soft: bool = False) -> re.Pattern[str]:
    """Compile ``strings`` into one word-bounded regex.

    A word followed by an apostrophe and a letter is a different word ("you" is
    not in "you'll"); ``soft`` also rejects the tail of a contraction ("re" in
    "they're") while still allowing an opening quote ("'I will ...").
    """
    left = r"(?<![a-z0-9])(?<![a-z0-9]')" if soft else r"(?<![a-z0-9])"
    body = _trie_regex(sorted(set(strings)))
    return re.compile(rf"{left}(?:{body})(?![{_BOUNDARY_CHARS}]|'[a-z])")


def _modifier_regex(phrases: tuple[str, ...], sentence_start: bool) -> re.Pattern[str]:
    """A modifier's pattern: its phrases word-bounded, or (``sentence_start``) a
    run of them, each followed by a space or the end, to ``fullmatch`` a sentence's opening."""
    if sentence_start:
        return re.compile(rf"(?:(?:{_trie_regex(sorted(set(phrases)))})(?: |$))*")
    return _bounded(phrases, soft=True)


def _overlapping(body: str) -> re.Pattern[str]:
    """Compile ``body`` so that ``finditer`` reports matches at every word start.

    The match sits in a lookahead (group 1), so overlapping idioms are all found.
    """
    return re.compile(rf"(?<![{_BOUNDARY_CHARS}])(?=({body})(?![{_BOUNDARY_CHARS}]|'[a-z]))")


def _unit_trie(sequences: Iterable[tuple[str, ...]]) -> dict[Any, Any]:
    trie: dict[Any, Any] = {}
    for sequence in sequences:
        node = trie
        for unit in sequence:
            node = node.setdefault(unit, {})
        node[None] = True
    return trie


def _emit_units(node: dict[Any, Any], slot_res: dict[str, str]) -> str:
    """Regex for a trie whose edges are words or ``{slot}`` units, joined by spaces.

    Literal words at one node are merged into a character trie, so the regex
    engine dispatches on the first letter instead of trying every idiom in turn.
    """
    literal_tails: dict[str, str] = {}
    branches: list[str] = []
    for unit, child in sorted(node.items(), key=lambda kv: (kv[0] is None, str(kv[0]))):
        if unit is None:
            continue
        tail = _unit_tail(child, slot_res)
        if unit.startswith("{"):
            branches.append(f"(?:{slot_res[unit[1:-1]]}){tail}")
        else:
            literal_tails[unit] = tail
    if literal_tails:
        branches.insert(0, _tail_trie(literal_tails))
    if not branches:
        return "(?!)"  # matches nothing (no idioms defined)
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def _unit_tail(child: dict[Any, Any], slot_res: dict[str, str]) -> str:
    if all(key is None for key in child):
        return ""
    rest = " " + _emit_units(child, slot_res)
    return f"(?:{rest})?" if None in child else rest


def _tail_trie(words: dict[str, str]) -> str:
    """Character trie over ``words``, each followed by its own regex tail."""
    trie: dict[str, Any] = {}
    for word, tail in words.items():
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = tail

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(c) + emit(child) for c, child in sorted(node.items()) if c]
        if "" in node:
            branches.append(node[""])
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(trie)


#: A run of the characters a term starts and ends with (terms are word-bounded on them).
_RUN = re.compile(rf"[{_BOUNDARY_CHARS}]+")
#: Splits a text into separators and runs, the runs at the odd positions.
_SPLIT_RUNS = re.compile(rf"([{_BOUNDARY_CHARS}]+)")


class _TermIndex:
    """Finds lexicon terms in normalized text by set lookups, without a big regex.

    It returns exactly what ``_bounded(terms).finditer(text)`` (one word-bounded
    trie regex of every term) returns, and needs no regex compile: that regex
    of ~5,000 terms took most of the lexicon's load time. A term starts and ends
    with a letter or digit and is bounded by neither, so a match starts where a
    run of letters and digits starts and ends where one ends (not before an
    apostrophe and a letter: "you" is not in "you'll"). At each run start the
    longest term ending at one of the next runs' ends wins, and the scan goes on
    after it, as the regex's leftmost, greedy, non-overlapping matches do.

    Args:
        terms: The folded term literals (non-empty, each starting and ending
            with ``[a-z0-9]``).
    """

    def __init__(self, terms: Iterable[str]):
        self.terms = frozenset(terms)
        #: One-run terms ("kill"): a term without an inner separator is its only run.
        self.single = frozenset(term for term in self.terms if _RUN.fullmatch(term))
        counts: dict[tuple[str, str], set[int]] = {}
        for term in self.terms - self.single:
            runs = _RUN.findall(term)
            counts.setdefault((runs[0], runs[1]), set()).add(len(runs))
        #: (first run, second run) of the longer terms -> their run counts, longest first.
        self.multi = {pair: tuple(sorted(n, reverse=True)) for pair, n in counts.items()}
        #: Runs that can start a term: only these are looked at.
        self.firsts = self.single | {first for first, _ in self.multi}

    def find(self, text: str) -> list[tuple[int, int]]:
        """The (start, end) spans of the terms in ``text``, left to right."""
        parts = _SPLIT_RUNS.split(text)  # separator, run, separator, run, ..., separator
        words = parts[1::2]
        firsts = self.firsts
        gates = [index for index, word in enumerate(words) if word in firsts]
        if not gates:
            return []
        # ends[2 * i] is where run i starts, ends[2 * i + 1] where it ends.
        ends = list(itertools.accumulate(map(len, parts)))
        hits: list[tuple[int, int]] = []
        free = 0  # the first run after the last match: matches do not overlap
        for index in gates:
            if index < free:
                continue
            last = self._last_run(text, words, ends, index)
            if last >= 0:
                hits.append((ends[2 * index], ends[2 * last + 1]))
                free = last + 1
        return hits

    def _last_run(self, text: str, words: list[str], ends: list[int], index: int) -> int:
        """Last run of the longest term starting at run ``index`` (-1: none)."""
        start = ends[2 * index]
        if index + 1 < len(words):
            for length in self.multi.get((words[index], words[index + 1]), ()):
                last = index + length - 1
                if last < len(words):
                    end = ends[2 * last + 1]
                    if text[start:end] in self.terms and not _in_contraction(text, end):
                        return last
        if words[index] in self.single and not _in_contraction(text, ends[2 * index + 1]):
            return index
        return -1


def _in_contraction(text: str, end: int) -> bool:
    """A word ending at ``end`` is followed by an apostrophe and a letter ("you'll")."""
    return text.startswith("'", end) and "a" <= text[end + 1 : end + 2] <= "z"


def _mask(word: str) -> str:
    """Mask a slur for evidence strings: first and last letter only."""
    return " ".join(w[0] + "*" * (len(w) - 2) + w[-1] if len(w) > 2 else w for w in word.split())


class _Expander:
    """Expands ``{slot}`` placeholders into literal, folded phrases."""

    def __init__(self, slots: dict[str, list[str]]):
        self.slots = {
            name: sorted({_fold_phrase(v) for v in values}) for name, values in slots.items()
        }

    def units(self, phrase: str, where: str) -> list[tuple[str, ...]]:
        """Split ``phrase`` into word / ``{slot}`` units; optional slots give two sequences."""
        choices: list[list[str | None]] = []
        for token in _fold_phrase(_SLOT.sub(lambda m: f" {m.group(0)} ", phrase)).split():
            slot = _SLOT.fullmatch(token)
            if slot is None:
                choices.append([token])
                continue
            name, optional = slot.group(1), slot.group(2)
            self._check_slot(name, phrase, where)
            choices.append([f"{{{name}}}", None] if optional else [f"{{{name}}}"])
        out = {tuple(u for u in combo if u is not None) for combo in itertools.product(*choices)}
        out.discard(())
        return sorted(out)

    def _check_slot(self, name: str, phrase: str, where: str) -> None:
        if name not in self.slots:
            known = ", ".join(sorted(self.slots)) or "(none defined)"
            raise ConfigError(
                f"{where}: unknown slot '{{{name}}}' in '{phrase}'",
                hint=f"define it under `slots:` in modifiers.yaml; known slots: {known}",
            )

    def expand(self, phrase: str, where: str) -> list[str]:
        """Return every literal phrase ``phrase`` stands for (folded)."""
        parts = _SLOT.split(phrase)
        # re.split with two groups yields [text, name, optional, text, name, optional, ...]
        choices: list[list[str]] = []
        for index in range(0, len(parts), 3):
            choices.append([parts[index]])
            if index + 1 < len(parts):
                name, optional = parts[index + 1], parts[index + 2]
                self._check_slot(name, phrase, where)
                choices.append(self.slots[name] + ([""] if optional else []))
        total = 1
        for options in choices:
            total *= len(options)
        if total > _MAX_EXPANSIONS:
            raise ConfigError(
                f"{where}: '{phrase}' expands to {total} phrases (limit {_MAX_EXPANSIONS})",
                hint="split it into several entries or use smaller slots",
            )
        out = {_fold_phrase("".join(combo)) for combo in itertools.product(*choices)}
        out.discard("")
        return sorted(out)


# -------------------------------------------------------------------- loading


def _read_lexicon_dir(lexicon_dir: Path) -> _Loaded:
    if not lexicon_dir.is_dir():
        raise ConfigError(
            f"{lexicon_dir}: safety lexicon folder not found",
            hint="point lexicon_dir at a folder of *.yaml term lists "
            f"(the packaged one is {DEFAULT_LEXICON_DIR})",
        )
    loaded = _Loaded()
    settings_file: Path | None = None
    paths = sorted(lexicon_dir.glob("*.yaml")) + sorted(lexicon_dir.glob("*.yml"))
    if not paths:
        raise ConfigError(f"{lexicon_dir}: no *.yaml files in the safety lexicon folder")
    for path in paths:
        data = read_yaml_mapping(path, allow_empty=True)
        if data is None:  # comment-only file such as README.yaml
            continue
        try:
            spec = LexiconFile.model_validate(data)
        except ValidationError as exc:
            message = describe_validation_error(path, LexiconFile, exc, "safety lexicon file")
            raise ConfigError(message) from None
        if spec.encoding == "rot13":
            spec = _decode_rot13(spec)
        for name, values in spec.slots.items():
            loaded.slots.setdefault(name, []).extend(values)
        if spec.settings is not None:
            if settings_file is not None:
                raise ConfigError(
                    f"{path}: `settings` is already defined in {settings_file.name}",
                    hint="keep one `settings:` section per lexicon folder",
                )
            settings_file, loaded.settings = path, spec.settings
        loaded.files.append((path, spec))
    return loaded


def _decode_rot13(spec: LexiconFile) -> LexiconFile:
    def decode(text: str) -> str:
        # Slot names stay readable; only the words around them are encoded.
        pieces = _SLOT.split(text)
        for index in range(0, len(pieces), 3):
            pieces[index] = codecs.decode(pieces[index], "rot13")
        for index in range(1, len(pieces), 3):
            pieces[index] = "{" + pieces[index] + (pieces[index + 1] or "") + "}"
            pieces[index + 1] = ""
        return "".join(pieces)

    terms = [
        t.model_copy(update={"term": decode(t.term), "forms": [decode(f) for f in t.forms]})
        for t in spec.terms
    ]
    return spec.model_copy(update={"terms": terms})


# ------------------------------------------------------------------ compiling


class _Lexicon:
    """A lexicon folder compiled into regexes and lookup tables."""

    def __init__(self, lexicon_dir: Path):
        loaded = _read_lexicon_dir(lexicon_dir)
        self.settings = loaded.settings
        self.expander = _Expander(loaded.slots)
        self.entries: dict[str, list[_Entry]] = {}
        self.modifiers: dict[str, list[_Modifier]] = {c: [] for c in HARM_CATEGORIES}
        self.floors: dict[str, list[_Floor]] = {c: [] for c in HARM_CATEGORIES}
        self.idiom_units: list[tuple[str, ...]] = []
        self.guarded_idioms: list[_Idiom] = []
        vocabulary: set[str] = set()
        for path, spec in loaded.files:
            self._add_terms(path, spec, vocabulary)
            self._add_modifiers(path, spec, vocabulary)
            self._add_idioms(path, spec, vocabulary)
        for path, spec in loaded.files:  # after all files, so floors may name any modifier
            for index, floor in enumerate(spec.floors):
                self._add_floor(path, index, floor)
        if not self.entries:
            raise ConfigError(
                f"{lexicon_dir}: the safety lexicon defines no terms",
                hint="add a file with `category:` and `terms:` (see README.yaml)",
            )
        self.terms = _TermIndex(self.entries)
        self.idiom_reach = max((self._reach(seq) for seq in self.idiom_units), default=0)
        self.idiom_reach = max([self.idiom_reach] + [g.reach for g in self.guarded_idioms])
        groups = self.expander.slots.get("group", [])
        vocabulary.update(w for g in groups for w in g.split())
        split_words = {w for term in self.entries for w in term.split()}
        split_words.update(w for w in self.expander.slots.get("person", []) if " " not in w)
        self.vocabulary = frozenset(vocabulary)
        self.split_words = frozenset(split_words)

    def _add_terms(self, path: Path, spec: LexiconFile, vocabulary: set[str]) -> None:
        for index, term in enumerate(spec.terms):
            where = f"{path}: terms[{index}]"
            assert spec.category is not None  # enforced by LexiconFile
            label = _fold_phrase(term.term)
            if spec.encoding == "rot13":
                label = _mask(label)
            entry = _Entry(
                category=spec.category,
                label=label,
                severity=term.severity,
                weak=term.weak,
                escalate=term.escalate,
                with_group=term.with_group,
                copula=term.group_link == "copula",
                also=tuple(sorted(term.also.items())),
                blocklist=spec.blocklist,
            )
            for phrase in [term.term, *term.forms]:
                for literal in self.expander.expand(phrase, where):
                    self._check_literal(literal, where)
                    self.entries.setdefault(literal, []).append(entry)
                    vocabulary.update(literal.split())

    @staticmethod
    def _check_literal(literal: str, where: str) -> None:
        if not re.match(r"[a-z0-9]", literal) or not re.search(r"[a-z0-9]$", literal):
            raise ConfigError(
                f"{where}: '{literal}' must start and end with a letter or digit",
                hint="terms are matched on word boundaries; drop leading/trailing punctuation",
            )

    def _add_modifiers(self, path: Path, spec: LexiconFile, vocabulary: set[str]) -> None:
        for index, mod in enumerate(spec.modifiers):
            where = f"{path}: modifiers[{index}] ({mod.name})"
            phrases = [lit for p in mod.phrases for lit in self.expander.expand(p, where)]
            vocabulary.update(w for p in phrases for w in p.split())
            blocked = tuple(lit for p in mod.blocked_by for lit in self.expander.expand(p, where))
            compiled = _Modifier(
                name=mod.name,
                side=mod.side,
                window=mod.window,
                bonus=mod.bonus,
                floor=mod.floor,
                min_base=mod.min_base,
                max_base=mod.max_base,
                passive=mod.passive,
                sentence_start=mod.sentence_start,
                skip_weak=mod.skip_weak,
                also_scores=tuple(mod.also_scores),
                pattern=_LazyRegex(
                    functools.partial(_modifier_regex, tuple(phrases), mod.sentence_start)
                ),
                blocked_by=(
                    _LazyRegex(functools.partial(_bounded, blocked, True)) if blocked else None
                ),
            )
            for category in mod.categories:
                self.modifiers[category].append(compiled)

    def _add_floor(self, path: Path, index: int, floor: FloorSpec) -> None:
        known = {m.name for mods in self.modifiers.values() for m in mods}
        unknown = sorted((set(floor.all) | set(floor.any)) - known)
        if unknown:
            raise ConfigError(
                f"{path}: floors[{index}] names unknown modifier(s): {', '.join(unknown)}",
                hint=f"known modifiers: {', '.join(sorted(known))}",
            )
        compiled = _Floor(
            frozenset(floor.all), frozenset(floor.any), floor.at_least, floor.include_weak
        )
        for category in floor.categories:
            self.floors[category].append(compiled)

    def _add_idioms(self, path: Path, spec: LexiconFile, vocabulary: set[str]) -> None:
        for index, item in enumerate(spec.idioms):
            idiom = IdiomSpec(phrase=item) if isinstance(item, str) else item
            guard = IdiomSpec(
                phrase=idiom.phrase,
                not_after=[_fold_phrase(w) for w in idiom.not_after],
                not_before=[_fold_phrase(w) for w in idiom.not_before],
            )
            units = self.expander.units(idiom.phrase, f"{path}: idioms[{index}]")
            for unit in (u for seq in units for u in seq):
                words = self.expander.slots[unit[1:-1]] if unit.startswith("{") else [unit]
                vocabulary.update(w for phrase in words for w in phrase.split())
            if guard.not_after or guard.not_before:
                self.guarded_idioms.append(
                    _Idiom(
                        pattern=_overlapping(self._unit_regex(units)),
                        not_after=frozenset(guard.not_after),
                        not_before=frozenset(guard.not_before),
                        reach=max(self._reach(seq) for seq in units),
                    )
                )
            else:
                self.idiom_units.extend(units)

    def _reach(self, sequence: tuple[str, ...]) -> int:
        """Longest text (in characters) a word / slot sequence can match."""
        lengths = [
            max(map(len, self.expander.slots[u[1:-1]]), default=0) if u.startswith("{") else len(u)
            for u in sequence
        ]
        return sum(lengths) + len(lengths) - 1

    def _unit_regex(self, sequences: Sequence[tuple[str, ...]]) -> str:
        """Regex for word sequences whose units are words or ``{slot}`` references."""
        return _emit_units(_unit_trie(sequences), self._slot_res)

    @functools.cached_property
    def _slot_res(self) -> dict[str, str]:
        """Regex body of each slot's values (built once, shared by every idiom)."""
        return {name: _trie_regex(values) for name, values in self.expander.slots.items()}

    # The patterns below are needed only once a term has matched (most marketing
    # texts match none), so each is compiled on first use, not when the lexicon loads.

    @functools.cached_property
    def idiom_re(self) -> re.Pattern[str]:
        """Every unguarded safe idiom, matched at every word start."""
        return _overlapping(self._unit_regex(self.idiom_units))

    @functools.cached_property
    def group_re(self) -> re.Pattern[str] | None:
        """The protected groups of the ``group`` slot (None when the slot is empty)."""
        groups = self.expander.slots.get("group", [])
        return _bounded(groups, soft=True) if groups else None

    @functools.cached_property
    def copula_re(self) -> re.Pattern[str]:
        """Copulas linking a term to a group ("X are ...")."""
        return _bounded(map(_fold_phrase, self.settings.copula), soft=True)

    @functools.cached_property
    def passive_re(self) -> re.Pattern[str]:
        """Markers of the passive voice before a term."""
        return _bounded(map(_fold_phrase, self.settings.passive_markers), soft=True)


# -------------------------------------------------------------------- context


class _Context:
    """The sentence around one term match, split into words on demand."""

    __slots__ = ("_left", "_right", "term")

    def __init__(self, text: str, start: int, end: int):
        begin = max(text.rfind(". ", 0, start), text.rfind("! ", 0, start),
                    text.rfind("? ", 0, start), text.rfind("; ", 0, start))  # fmt: skip
        begin = 0 if begin < 0 else begin + 2
        stops = [i for i in (text.find(". ", end), text.find("! ", end), text.find("? ", end),
                             text.find("; ", end)) if i >= 0]  # fmt: skip
        finish = min(stops) if stops else len(text)
        self.term = text[start:end]
        self._left = text[begin:start].split()
        self._right = text[end:finish].split()

    def before(self, words: int) -> str:
        return " ".join(self._left[-words:]) if words else ""

    def prefix(self) -> str:
        """All words of the sentence before the term."""
        return " ".join(self._left)

    def after(self, words: int, with_term: bool = True) -> str:
        tail = " ".join(self._right[:words])
        return f"{self.term} {tail}" if with_term else tail


# ------------------------------------------------------------------- analyzer


def _fingerprint(lexicon_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the lexicon files (the cache key)."""
    if not lexicon_dir.is_dir():
        return ()
    return tuple(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(lexicon_dir.iterdir())
        if p.suffix in (".yaml", ".yml")
    )


@functools.lru_cache(maxsize=8)
def _compile(
    lexicon_dir: Path, fingerprint: tuple[tuple[str, int, int], ...]
) -> tuple[_Lexicon, TextNormalizer]:
    """Compile a lexicon folder once per content version (compiling takes ~0.5 s)."""
    lexicon = _Lexicon(lexicon_dir)
    return lexicon, TextNormalizer(lexicon.vocabulary, lexicon.split_words)


class LocalSafetySettings(BackendSettings):
    """``services.safety.local``.

    Attributes:
        lexicon_dir: Lexicon folder replacing the bundled one (start from a copy of
            ``cpo/data/safety/lexicon``). Relative paths are resolved against the
            config folder; ``null`` = the bundled lexicon.
    """

    lexicon_dir: str | None = None


class LocalSafetyAnalyzer:
    """Lexicon-and-rules harm screen (the ``local`` safety backend).

    Args:
        lexicon_dir: Folder of lexicon YAML files; ``None`` uses the packaged
            lexicon (``cpo/data/safety/lexicon``). The folder replaces the
            packaged one entirely, so start from a copy of it.

    Raises:
        ConfigError: the folder is missing, a file is malformed or invalid.

    Example:
        >>> analyzer = LocalSafetyAnalyzer()
        >>> analyzer.analyze("I will kill you").violence
        6
        >>> analyzer.analyze("Our killer deal ends tonight").violence
        0
    """

    name = "local"
    settings_model: ClassVar[type[BackendSettings]] = LocalSafetySettings

    def __init__(self, lexicon_dir: Path | None = None):
        self.lexicon_dir = Path(lexicon_dir) if lexicon_dir is not None else DEFAULT_LEXICON_DIR
        self._lex, self._normalize = _compile(
            self.lexicon_dir.resolve(), _fingerprint(self.lexicon_dir)
        )

    @classmethod
    def from_settings(
        cls, settings: LocalSafetySettings, ctx: SafetyContext
    ) -> LocalSafetyAnalyzer:
        """Build with the configured lexicon folder (relative to the config folder)."""
        return cls(ctx.resolve(settings.lexicon_dir) if settings.lexicon_dir else None)

    def normalize(self, text: str) -> str:
        """Return the normalized form of ``text`` the lexicon is matched against."""
        return self._normalize(text)

    def analyze(self, text: str) -> CategoryScores:
        """Score ``text`` for hate, violence, self_harm and sexual (0-7 each).

        Args:
            text: The text to screen (subject and body may be passed together).

        Returns:
            The severities, evidence strings (term and category, never the text)
            and the names of custom blocklists that matched.

        Raises:
            TypeError: ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise TypeError(f"analyze() needs a str, got {type(text).__name__}")
        norm = self._normalize(text)
        hits = self._lex.terms.find(norm)
        if not hits:
            return CategoryScores()
        scores = dict.fromkeys(HARM_CATEGORIES, 0)
        strong: dict[str, set[str]] = {c: set() for c in HARM_CATEGORIES}
        evidence: list[str] = []
        blocklists: list[str] = []
        for start, end in hits:
            if self._in_idiom(norm, start, end):
                continue
            context = _Context(norm, start, end)
            for entry in self._lex.entries[norm[start:end]]:
                for category, severity, applied in self._score(entry, context):
                    if severity <= 0:
                        continue
                    scores[category] = max(scores[category], severity)
                    if severity >= self._lex.settings.multi_hit_min and applied is not None:
                        strong[category].add(entry.label)
                    evidence.append(_evidence(category, entry.label, applied, severity))
                    if entry.blocklist:
                        blocklists.append(entry.blocklist)
        bonus = self._lex.settings.multi_hit_bonus
        for category, labels in strong.items():
            if len(labels) >= 2:
                scores[category] = min(7, scores[category] + bonus)
                evidence.append(f"{category}:{len(labels)} distinct terms>=medium+{bonus}")
        return CategoryScores(
            **scores,
            matches=tuple(dict.fromkeys(evidence)),
            blocklist_hits=tuple(dict.fromkeys(blocklists)),
        )

    # -- scoring ------------------------------------------------------------

    def _in_idiom(self, norm: str, start: int, end: int) -> bool:
        """True when the match ``norm[start:end]`` lies entirely inside a safe idiom.

        Only the neighbourhood of the match is scanned: an idiom containing it
        starts at most ``idiom_reach`` characters earlier.
        """
        lex = self._lex
        low = max(0, start - lex.idiom_reach)
        for match in lex.idiom_re.finditer(norm, low):
            if match.start() > start:
                break
            if match.end(1) >= end:
                return True
        for idiom in lex.guarded_idioms:
            for match in idiom.pattern.finditer(norm, max(0, start - idiom.reach)):
                if match.start() > start:
                    break
                if match.end(1) >= end and _guard_allows(idiom, norm, *match.span(1)):
                    return True
        return False

    def _score(
        self, entry: _Entry, ctx: _Context
    ) -> Iterator[tuple[str, int, tuple[str, ...] | None]]:
        """Yield (category, severity, applied modifiers) for one match of one entry.

        Cross-category scores from ``also`` are yielded with ``applied=None`` so
        that they never count towards the multi-hit rule.
        """
        severity = entry.severity
        applied: list[str] = []
        if entry.with_group is not None and self._group_near(ctx, entry.copula):
            severity = max(severity, entry.with_group)
            applied.append("group")
        also_scores: list[str] = []
        if entry.escalate:
            severity, fired, also_scores = self._apply_modifiers(entry, ctx, severity)
            applied.extend(fired)
        severity = max(0, min(7, severity))
        yield entry.category, severity, tuple(applied)
        for category in also_scores:
            yield category, severity, None
        for category, value in entry.also:
            yield category, value, None

    def _apply_modifiers(
        self, entry: _Entry, ctx: _Context, severity: int
    ) -> tuple[int, list[str], list[str]]:
        fired: list[str] = []
        also: list[str] = []
        floor = 0
        lowered = False
        passive = None
        for mod in self._lex.modifiers[entry.category]:
            if mod.min_base is not None and entry.severity < mod.min_base:
                continue
            if mod.max_base is not None and entry.severity > mod.max_base:
                continue
            if mod.skip_weak and entry.weak:
                continue
            if mod.passive and passive is None:
                passive = bool(self._lex.passive_re.search(ctx.before(4)))
            if not _modifier_found(mod, ctx, bool(passive)):
                continue
            severity += mod.bonus
            fired.append(mod.name if mod.bonus >= 0 else f"-{mod.name}")
            lowered = lowered or mod.bonus < 0
            if mod.floor is not None:
                floor = max(floor, mod.floor)
            also.extend(mod.also_scores)
        names = set(fired)
        for rule in self._lex.floors[entry.category]:
            if entry.weak and not rule.include_weak:
                continue
            if rule.all <= names and (not rule.any or rule.any & names):
                floor = max(floor, rule.at_least)
        if not lowered:
            severity = max(severity, floor)
        return severity, fired, also

    def _group_near(self, ctx: _Context, copula: bool) -> bool:
        group_re = self._lex.group_re
        if group_re is None:
            return False
        settings = self._lex.settings
        right = ctx.after(settings.group_after, with_term=False)
        if copula:
            if group_re.match(right):
                return True
            left = ctx.before(settings.group_before)
            last = None
            for last in group_re.finditer(left):  # noqa: B007 - we want the closest match
                pass
            return last is not None and bool(self._lex.copula_re.search(left, last.end()))
        return bool(group_re.search(ctx.before(settings.group_before)) or group_re.search(right))


def _guard_allows(idiom: _Idiom, norm: str, start: int, end: int) -> bool:
    before = norm[max(0, start - 40) : start].split()[-1:]
    after = norm[end : end + 40].split()[:1]
    if before and before[0].strip(".,!?;:") in idiom.not_after:
        return False
    return not (after and after[0].strip(".,!?;:") in idiom.not_before)


def _modifier_found(mod: _Modifier, ctx: _Context, passive: bool) -> bool:
    if mod.sentence_start:
        # The term opens its sentence, preceded at most by the listed filler words
        # ("Kill them all", "Just go stab him"): an imperative.
        prefix = ctx.prefix()
        return len(prefix.split()) <= mod.window and mod.pattern.get().fullmatch(prefix) is not None
    if mod.side in ("after", "both") and mod.pattern.get().search(ctx.after(mod.window)):
        return True
    if mod.side in ("before", "both") or (mod.passive and passive):
        # In the passive ("X should all be shot") the target is the subject, which can
        # sit further back than an object would sit after the verb.
        left = ctx.before(mod.window if mod.side != "after" else mod.window + _PASSIVE_REACH)
        last = None
        for last in mod.pattern.get().finditer(left):  # noqa: B007 - we want the closest match
            pass
        if last is None:
            return False
        return mod.blocked_by is None or not mod.blocked_by.get().search(left, last.end())
    return False


def _evidence(category: str, label: str, applied: Sequence[str] | None, severity: int) -> str:
    mods = "".join(m if m.startswith("-") else f"+{m}" for m in applied or ())
    via = "" if applied is not None else "(also)"
    return f"{category}:{label}{via}{mods}={severity}"


if TYPE_CHECKING:
    _conforms: type[SafetyAnalyzer] = LocalSafetyAnalyzer
