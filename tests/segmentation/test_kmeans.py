"""k-means segmentation: k choice, determinism, labels, confidence, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from cpo.errors import ConfigError
from cpo.sample_data.customers import generate_customers
from cpo.segmentation import segment
from cpo.segmentation.settings import SegmentationSettings


def kmeans(**options) -> SegmentationSettings:
    return SegmentationSettings.model_validate({"method": "kmeans", "kmeans": options})


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return generate_customers(1500, seed=3)


def test_silhouette_chooses_k_in_range(customers: pd.DataFrame):
    result = segment(customers, kmeans(k_range=[3, 5]), seed=1)
    scores = result.details["silhouette_by_k"]
    assert set(scores) == {3, 4, 5}
    assert result.details["k"] == max(scores, key=scores.get)
    assert len(result.profiles) == result.details["k"]


def test_fixed_k_labels_unique_and_ordered_by_size(customers: pd.DataFrame):
    result = segment(customers, kmeans(k=4), seed=1)
    names = [p.name for p in result.profiles]
    assert len(set(names)) == 4
    sizes = [p.size for p in result.profiles]
    assert sizes == sorted(sizes, reverse=True)
    assert all(p.definition.startswith(p.name) for p in result.profiles)
    frame = result.assignments
    assert frame["confidence"].between(0, 1).all()
    assert frame["reason"].str.contains("nearest centroid").all()


def test_deterministic_for_a_seed(customers: pd.DataFrame):
    first = segment(customers, kmeans(k=4), seed=5).assignments
    second = segment(customers, kmeans(k=4), seed=5).assignments
    pd.testing.assert_frame_equal(first, second)


def test_minibatch_above_threshold(customers: pd.DataFrame):
    result = segment(customers, kmeans(k=3, minibatch_threshold=1000), seed=1)
    assert result.details["algorithm"] == "MiniBatchKMeans"
    assert segment(customers, kmeans(k=3), seed=1).details["algorithm"] == "KMeans"


def test_labels_reflect_centroids(customers: pd.DataFrame):
    result = segment(customers, kmeans(k=4), seed=1)
    overall = customers["last_engagement_days"].mean()
    for profile in result.profiles:
        if "Lapsed" in profile.name:
            assert profile.means["last_engagement_days"] > overall
        if "Recent" in profile.name:
            assert profile.means["last_engagement_days"] < overall


def test_unknown_feature_is_a_config_error(customers: pd.DataFrame):
    with pytest.raises(ConfigError, match="kmeans.features.*'?nope"):
        segment(customers, kmeans(k=3, features=["age", "nope"]))
