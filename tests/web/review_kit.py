"""Inputs for a run that stops for human review: a config with the approval gate on,
and a content folder whose every claim makes a guarantee (a banned phrase that the
local safety screen sends to review, never blocks).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from cpo.config import init_config
from cpo.sample_data import bundled_content

#: The banned phrase of the default safety thresholds that sends a variant to review.
REVIEW_PHRASE = "guaranteed"


def review_inputs(folder: Path) -> tuple[Path, Path]:
    """Write ``folder/config`` (require_approval: true) and ``folder/content``.

    Returns:
        The config folder and the content folder.
    """
    config = folder / "config"
    init_config(config)
    experiment = config / "experiment_config.yaml"
    text = experiment.read_text(encoding="utf-8")
    assert "require_approval: false" in text
    experiment.write_text(text.replace("require_approval: false", "require_approval: true"))
    content = folder / "content"
    content.mkdir()
    for path in bundled_content().glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        document["content"] = re.sub(r"\.(\s|$)", rf", {REVIEW_PHRASE}.\1", document["content"])
        (content / path.name).write_text(json.dumps(document), encoding="utf-8")
    return config, content
