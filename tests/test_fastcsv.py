"""cpo.fastcsv writes exactly the bytes pandas' to_csv writes, or declines."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from cpo.fastcsv import write_frame
from cpo.runfiles import write_csv

TEXTS = ["", "plain", "a,b", 'say "hi"', "line\nbreak", " lead", "trail ", "é ü 日本", "'=1+2", "-"]
FLOATS = [0.0, -0.0, 1.0, 0.1, 1e-5, 1e16, 123456789.123, np.nan, np.inf, -np.inf, 5e-324]


def _pandas_bytes(frame: pd.DataFrame) -> bytes:
    text = io.StringIO()
    frame.to_csv(text, index=False, lineterminator="\n")
    return text.getvalue().encode("utf-8")


def _random_frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Columns of every supported kind, with missing values and characters that need quoting."""
    texts = np.array(TEXTS, dtype=object)
    frame = pd.DataFrame(
        {
            "id": pd.Series([f"C{i}" for i in rng.permutation(rows)], dtype=str),
            "text": pd.Series(rng.choice(texts, rows), dtype=object),
            "count": rng.integers(-(10**12), 10**12, rows),
            "flag": rng.random(rows) < 0.5,
            "rate": rng.choice(np.array(FLOATS), rows) * rng.choice([1.0, 3.0, 0.5], rows),
            "small": rng.integers(0, 2, rows).astype(np.int8),
            "label": pd.Categorical(rng.choice(texts, rows)),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "text"] = None
    frame["label"] = frame["label"].where(rng.random(rows) > 0.1)
    return frame


@pytest.mark.parametrize("seed", range(25))
def test_random_frames_match_pandas_byte_for_byte(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _random_frame(rng, int(rng.integers(0, 60)))
    columns = list(rng.permutation(frame.columns)[: int(rng.integers(2, len(frame.columns) + 1))])
    frame = frame[columns]
    out = io.BytesIO()
    assert write_frame(out, frame)
    assert out.getvalue() == _pandas_bytes(frame)


def test_blocks_join_into_the_same_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written in several blocks give the file one block would."""
    monkeypatch.setattr("cpo.fastcsv.BLOCK_ROWS", 7)
    frame = _random_frame(np.random.default_rng(99), 50)
    out = io.BytesIO()
    assert write_frame(out, frame)
    assert out.getvalue() == _pandas_bytes(frame)


def test_arrow_backed_text_in_several_chunks() -> None:
    """pandas' Arrow-backed string columns arrive as chunked arrays after a concat."""
    part = pd.DataFrame({"id": pd.Series(["a", "b,c"], dtype="str"), "n": [1, 2]})
    frame = pd.concat([part, part, part], ignore_index=True)
    out = io.BytesIO()
    assert write_frame(out, frame)
    assert out.getvalue() == _pandas_bytes(frame)


def test_header_names_needing_quotes() -> None:
    frame = pd.DataFrame({"a,b": ["1"], 'q"': ["2"], "plain": [3]})
    out = io.BytesIO()
    assert write_frame(out, frame)
    assert out.getvalue() == _pandas_bytes(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"only": ["a", ""]}),  # one column: pandas quotes an empty cell
        pd.DataFrame({"a": ["x\ry", "z"], "b": [1, 2]}),  # carriage return
        pd.DataFrame({"a": [1, "x"], "b": [1, 2]}),  # mixed object column
        pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1, 2]}),  # nullable int
        pd.DataFrame({"a": pd.to_datetime(["2026-01-01", "2026-01-02"]), "b": [1, 2]}),
    ],
)
def test_unsupported_frames_write_nothing(frame: pd.DataFrame) -> None:
    out = io.BytesIO(b"keep")
    out.seek(4)
    assert not write_frame(out, frame)
    assert out.getvalue() == b"keep"


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": ["x\ry", "=SUM(A1)"], "b": [1, 2]}),
        pd.DataFrame({"id": ["C1", "C2"], "name": ["+danger", "ok"], "n": [1.5, np.nan]}),
    ],
)
def test_write_csv_gives_the_pandas_file_either_way(tmp_path, frame: pd.DataFrame) -> None:
    """write_csv (formula escaping, then Arrow or pandas) gives what pandas alone gave."""
    from cpo.runfiles import escape_formulas

    target = tmp_path / "out.csv"
    write_csv(target, frame)
    assert target.read_bytes() == _pandas_bytes(escape_formulas(frame))
