"""Tests of the local safety screen (``cpo.safety.local`` and ``cpo.safety.normalize``).

The labelled evaluation set is ``tests/data/safety_eval.jsonl``: one JSON object per
line with ``id``, ``text``, ``label`` (safe | unsafe), ``category`` and ``band``
(low 2-3, medium 4-5, high 6-7; both null for safe texts), ``tags`` (idiom,
near-miss, obfuscated, leet, spaced, homoglyph, repeated, punctuation, long) and
``split``. The texts were written before the analyzer; the ``holdout`` split was
written at the same time but only scored once the analyzer was finished (it missed
one high-severity text then; see docs/safety.md).

Metrics follow the policy's bands: a safe text is a false positive when any
category scores >= 4 (it would need review); a high-severity unsafe text is
recalled when its labelled category scores >= 6 (it would be blocked).
"""

from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path

import pytest

from cpo.errors import ConfigError
from cpo.models import HARM_CATEGORIES, CategoryScores
from cpo.safety.local import DEFAULT_LEXICON_DIR, LocalSafetyAnalyzer
from cpo.safety.normalize import TextNormalizer, collapse_repeats, deleet, fold, normalize

EVAL_PATH = Path(__file__).resolve().parents[1] / "data" / "safety_eval.jsonl"
ROWS = [json.loads(line) for line in EVAL_PATH.read_text(encoding="utf-8").splitlines() if line]
SAFE = [r for r in ROWS if r["label"] == "safe"]
UNSAFE = [r for r in ROWS if r["label"] == "unsafe"]


def _ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


@pytest.fixture(scope="module")
def analyzer() -> LocalSafetyAnalyzer:
    return LocalSafetyAnalyzer()


@pytest.fixture(scope="module")
def scores(analyzer: LocalSafetyAnalyzer) -> dict[str, CategoryScores]:
    return {r["id"]: analyzer.analyze(r["text"]) for r in ROWS}


def _top(result: CategoryScores) -> int:
    return max(result.severities().values())


# --------------------------------------------------------------- the evaluation set


def test_eval_set_is_large_and_balanced_enough() -> None:
    assert len(SAFE) >= 70
    assert len(UNSAFE) >= 50
    for category in HARM_CATEGORIES:
        bands = {r["band"] for r in UNSAFE if r["category"] == category}
        assert bands == {"low", "medium", "high"}, category
    tags = {t for r in UNSAFE for t in r["tags"]}
    assert {"obfuscated", "leet", "spaced", "homoglyph", "repeated"} <= tags
    assert len({r["id"] for r in ROWS}) == len(ROWS)


BRIEF_IDIOMS = [
    "killer deal", "shoot us a message", "shoot us an email", "shoot us a note", "to die for",
    "drop-dead gorgeous", "crush your goals", "crush your fitness goals", "blast from the past",
    "this price is a steal", "steal of a deal", "bomb-proof", "bombproof", "killing it",
    "knock-out prices", "knockout", "slay", "dead simple", "shot at winning", "explosive growth",
    "attack the day", "sick deals", "hot", "sexy price", "sale ends tonight, don't miss it",
    "kill two birds with one stone", "drop-dead gorgeous colours",
]  # fmt: skip


@pytest.mark.parametrize("idiom", BRIEF_IDIOMS)
def test_eval_set_contains_every_idiom_of_the_brief(idiom: str) -> None:
    assert any(idiom.lower() in r["text"].lower() for r in SAFE), idiom


def test_high_severity_recall_is_at_least_95_percent(scores: dict[str, CategoryScores]) -> None:
    high = [r for r in UNSAFE if r["band"] == "high"]
    missed = [r["id"] for r in high if scores[r["id"]].severities()[r["category"]] < 6]
    recall = 1 - len(missed) / len(high)
    assert recall >= 0.95, f"recall {recall:.3f}; missed {missed}"


def test_false_positive_rate_is_at_most_5_percent(scores: dict[str, CategoryScores]) -> None:
    flagged = [r["id"] for r in SAFE if _top(scores[r["id"]]) >= 4]
    rate = len(flagged) / len(SAFE)
    assert rate <= 0.05, f"false-positive rate {rate:.3f}; flagged {flagged}"


def test_holdout_split_meets_the_same_targets(scores: dict[str, CategoryScores]) -> None:
    safe = [r for r in SAFE if r["split"] == "holdout"]
    high = [r for r in UNSAFE if r["split"] == "holdout" and r["band"] == "high"]
    assert len(safe) >= 20 and len(high) >= 10
    assert sum(_top(scores[r["id"]]) >= 4 for r in safe) / len(safe) <= 0.05
    assert sum(scores[r["id"]].severities()[r["category"]] >= 6 for r in high) / len(high) >= 0.9


@pytest.mark.parametrize("category", HARM_CATEGORIES)
def test_per_category_bands(category: str, scores: dict[str, CategoryScores]) -> None:
    rows = [r for r in UNSAFE if r["category"] == category]
    value = {r["id"]: scores[r["id"]].severities()[category] for r in rows}
    high = [r["id"] for r in rows if r["band"] == "high"]
    medium = [r["id"] for r in rows if r["band"] == "medium"]
    low = [r["id"] for r in rows if r["band"] == "low"]
    assert sum(value[i] >= 6 for i in high) / len(high) >= 0.9
    # Medium texts must at least reach review.
    assert all(value[i] >= 4 for i in medium), {i: value[i] for i in medium}
    # Low texts (fiction, stereotypes, suggestive copy) must not be blocked.
    assert all(value[i] <= 5 for i in low), {i: value[i] for i in low}


OBFUSCATED = [r for r in UNSAFE if "obfuscated" in r["tags"]]
IDIOMS = [r for r in SAFE if "idiom" in r["tags"]]


@pytest.mark.parametrize("row", OBFUSCATED, ids=_ids(OBFUSCATED))
def test_obfuscated_texts_are_detected(row: dict, analyzer: LocalSafetyAnalyzer) -> None:
    minimum = {"high": 6, "medium": 4, "low": 2}[row["band"]]
    assert analyzer.analyze(row["text"]).severities()[row["category"]] >= minimum


@pytest.mark.parametrize("row", IDIOMS, ids=_ids(IDIOMS))
def test_marketing_idioms_pass(row: dict, analyzer: LocalSafetyAnalyzer) -> None:
    assert _top(analyzer.analyze(row["text"])) <= 3


def test_evidence_never_contains_the_screened_text(
    analyzer: LocalSafetyAnalyzer, scores: dict[str, CategoryScores]
) -> None:
    checked = 0
    for row in ROWS:
        text = row["text"]
        normalized = analyzer.normalize(text)
        if len(normalized) < 20:  # "kys" or "k i l l  y o u r s e l f" IS a lexicon term
            continue
        for evidence in scores[row["id"]].matches:
            assert text.lower() not in evidence.lower()
            assert normalized not in evidence
            assert evidence.split(":", 1)[0] in HARM_CATEGORIES
            checked += 1
    assert checked > 50


def test_slurs_are_masked_in_evidence(analyzer: LocalSafetyAnalyzer) -> None:
    slur = codecs.decode("gbjryurnqf", "rot13")
    result = analyzer.analyze(f"Those {slur} are ruining the neighborhood.")
    assert result.hate >= 4
    assert result.matches
    assert all(slur[:-1] not in m for m in result.matches)


# ------------------------------------------------------------- behaviour in context


@pytest.mark.parametrize(
    ("text", "category", "low", "high"),
    [
        ("kill", "violence", 1, 3),
        ("He said the cold could kill you", "violence", 3, 5),
        ("Kill you all", "violence", 6, 7),  # an imperative aimed at people
        ("I will kill you", "violence", 6, 6),
        ("I will slowly kill you", "violence", 7, 7),
        ("We should kill all immigrants", "hate", 6, 7),
        ("I would never hurt you", "violence", 0, 3),
        ("Call the suicide prevention hotline if you are struggling", "self_harm", 0, 1),
        ("You deserve to die for what you did", "violence", 4, 7),
        ("I will kill you, this price is a steal", "violence", 6, 7),
        ("Our pest control gets rid of rats and other vermin", "hate", 0, 1),
        ("Immigrants are vermin", "hate", 6, 7),
        ("Our women's collection is made without harming animals", "hate", 0, 0),
        ("Sexy summer dresses", "sexual", 1, 3),
        ("Sexy photos of teens", "sexual", 6, 7),
        ("Sex education resources for parents of teens", "sexual", 0, 3),
        ("We'll shoot you a reminder before your plan renews", "violence", 0, 1),
        ("He fired a shot at the crowd", "violence", 4, 5),
        ("Cut yourself a slice of cake", "self_harm", 0, 0),
        ("Go cut yourself", "self_harm", 6, 7),
    ],
)
def test_context_rules(
    text: str, category: str, low: int, high: int, analyzer: LocalSafetyAnalyzer
) -> None:
    value = analyzer.analyze(text).severities()[category]
    assert low <= value <= high, (text, value)


def test_threat_escalates_monotonically(analyzer: LocalSafetyAnalyzer) -> None:
    steps = ["stab", "stab him", "I will stab him", "I will stab him to death"]
    values = [analyzer.analyze(t).violence for t in steps]
    assert values == sorted(values) and values[0] < values[-1]


def test_evidence_names_term_and_modifiers(analyzer: LocalSafetyAnalyzer) -> None:
    result = analyzer.analyze("I will kill you")
    assert result.matches == ("violence:kill+threat+target_person=6",)
    assert result.blocklist_hits == ()


def test_empty_and_clean_texts_score_zero(analyzer: LocalSafetyAnalyzer) -> None:
    assert analyzer.analyze("") == CategoryScores()
    assert analyzer.analyze("Spring styles are here: free shipping over $50.") == CategoryScores()


def test_non_text_input_raises(analyzer: LocalSafetyAnalyzer) -> None:
    with pytest.raises(TypeError):
        analyzer.analyze(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ normalization


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("KILL", "kill"),
        ("\uff2b\uff29\uff2c\uff2c", "kill"),  # full-width letters
        ("K\u00edll", "kill"),  # accent
        ("k\u200bill", "kill"),  # zero-width space
        ("k\u0456ll", "kill"),  # Cyrillic i
        ("\u043a\u0456ll", "kill"),  # Cyrillic k and i
        ("\u03baill", "kill"),  # Greek kappa
        ("k\u0336i\u0336l\u0336l\u0336", "kill"),  # combining strikethrough
        ("\U0001d424\U0001d422\U0001d425\U0001d425", "kill"),  # mathematical bold
        ("drop-dead", "drop dead"),
        ("stone \u2014 gear", "stone   gear"),
        ("don\u2019t", "don't"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


VOCAB = {"kill", "you", "yourself", "will", "hate", "sex", "porn", "shoot", "immigrants", "vermin"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("k i l l", "kill"),
        ("k.i.l.l", "kill"),
        ("k-i-l-l", "kill"),
        ("k_i_l_l", "kill"),
        ("ki.ll", "kill"),
        ("k*ll", "kill"),
        ("h4te", "hate"),
        ("$3x", "sex"),
        ("p0rn", "porn"),
        ("k1ll", "kill"),
        ("ki11", "kill"),  # 1 read as l because "kill" is a known word
        ("K!LL", "kill"),
        ("kiiiill", "kill"),
        ("killllll", "kill"),
        ("shooooot", "shoot"),
        ("sh00t", "shoot"),
        ("1mm1gr4nts are v3rm1n", "immigrants are vermin"),
        ("k i l l  y o u", "kill you"),  # two spaces separate words
        ("k i l l y o u", "kill you"),  # one run, split around known words
        ("I w1ll K-I-L-L yoooou", "i will kill you"),
        # real words and ordinary tokens are left alone
        ("coffee", "coffee"),
        ("good", "good"),
        ("shoot", "shoot"),
        ("s k i l l s", "skills"),
        ("a.m. shop.com 5pm mp3 24/7", "a.m. shop.com 5pm mp3 24/7"),
        ("I'm", "i'm"),
        ("goooood", "good"),
    ],
)
def test_normalizer_repairs_disguises(raw: str, expected: str) -> None:
    assert TextNormalizer(VOCAB)(raw) == expected


def test_normalize_without_vocabulary() -> None:
    assert normalize("K1LL") == "kill"
    assert normalize("k i l l") == "kill"
    assert normalize("kiiiill") == "kiill"  # no vocabulary: runs are only cut to two


def test_token_helpers() -> None:
    assert collapse_repeats("kiiiilll") == "kil"
    assert deleet("k1ll") == "kill"
    assert deleet("ki11", frozenset({"kill"})) == "kill"


def test_normalization_matches_in_the_analyzer(analyzer: LocalSafetyAnalyzer) -> None:
    assert analyzer.normalize("I w1ll k\u0456ll y0u") == "i will kill you"


# ------------------------------------------------------------------- lexicon files


def _copy_lexicon(tmp_path: Path) -> Path:
    target = tmp_path / "lexicon"
    shutil.copytree(DEFAULT_LEXICON_DIR, target)
    return target


def test_a_new_lexicon_file_changes_the_score(tmp_path: Path) -> None:
    text = "Our rivals will get frobnicated tonight."
    assert LocalSafetyAnalyzer().analyze(text).violence == 0
    lexicon = _copy_lexicon(tmp_path)
    (lexicon / "brand.yaml").write_text(
        "category: violence\n"
        "blocklist: brand_terms\n"
        "terms:\n"
        "  - {term: frobnicate, severity: 5, forms: [frobnicated]}\n",
        encoding="utf-8",
    )
    result = LocalSafetyAnalyzer(lexicon).analyze(text)
    assert result.violence >= 5
    assert result.blocklist_hits == ("brand_terms",)
    assert any("frobnicate" in m for m in result.matches)


def test_a_new_idiom_neutralizes_a_term(tmp_path: Path) -> None:
    lexicon = _copy_lexicon(tmp_path)
    (lexicon / "brand_idioms.yaml").write_text(
        "idioms:\n  - murder your to do list\n", encoding="utf-8"
    )
    text = "Murder your to-do list this week."
    assert LocalSafetyAnalyzer().analyze(text).violence >= 2
    assert LocalSafetyAnalyzer(lexicon).analyze(text).violence == 0


def test_editing_a_file_is_picked_up(tmp_path: Path) -> None:
    lexicon = _copy_lexicon(tmp_path)
    assert LocalSafetyAnalyzer(lexicon).analyze("a zorbly day").sexual == 0
    with (lexicon / "sexual.yaml").open("a", encoding="utf-8") as handle:
        handle.write("  - {term: zorbly, severity: 4}\n")
    assert LocalSafetyAnalyzer(lexicon).analyze("a zorbly day").sexual == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("category: violence\nterms:\n  - {term: zap, severity: 9}\n", "terms.0.severity"),
        ("category: violence\nterms:\n  - {term: zap, severity: 2, colour: red}\n", "unknown key"),
        ("terms:\n  - {term: zap, severity: 2}\n", "must name its `category`"),
        ("category: gore\nterms: []\n", "category"),
        ("category: violence\nterms:\n  - {term: 'zap {nope}', severity: 2}\n", "unknown slot"),
        ("category: violence\nterms: [\n", "malformed YAML"),
        ("idioms:\n  - 'killer {nothing}'\n", "unknown slot"),
        ("floors:\n  - {categories: [violence], all: [nope], at_least: 6}\n", "unknown modifier"),
    ],
)
def test_invalid_lexicon_files_fail_with_the_file_and_key(
    tmp_path: Path, content: str, message: str
) -> None:
    lexicon = tmp_path / "lexicon"
    lexicon.mkdir()
    (lexicon / "zz_custom.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        LocalSafetyAnalyzer(lexicon)
    assert "zz_custom.yaml" in str(info.value)
    assert message in str(info.value)


def test_a_minimal_one_file_lexicon_works(tmp_path: Path) -> None:
    (tmp_path / "terms.yaml").write_text(
        "category: hate\nterms:\n  - {term: zorg, severity: 5}\n", encoding="utf-8"
    )
    analyzer = LocalSafetyAnalyzer(tmp_path)
    assert analyzer.analyze("You are a Z0RG.").hate == 5
    assert analyzer.analyze("I will kill you").violence == 0


def test_missing_lexicon_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        LocalSafetyAnalyzer(tmp_path / "nowhere")


def test_packaged_lexicon_files_document_their_format() -> None:
    for path in DEFAULT_LEXICON_DIR.glob("*.yaml"):
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith("#"), path.name


def test_registered_as_the_local_backend() -> None:
    from cpo import registry

    assert registry.get("safety", "local") is LocalSafetyAnalyzer


# ------------------------------------------------------------------------ speed
