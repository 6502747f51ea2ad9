"""k-means segmentation on standardized features (scikit-learn).

* ``k`` comes from config, or is chosen by the best silhouette score over
  ``k_range`` (computed on a seeded sample so it stays fast at millions of rows).
* Above ``minibatch_threshold`` rows, MiniBatchKMeans replaces KMeans.
* Labels are derived from the centroids: the two features whose centroid is
  furthest from the population mean (in standard deviations) name the segment,
  e.g. "High-Spend Frequent".
* ``confidence`` is ``1 - d1 / d2``: 0 when a customer sits halfway between its
  nearest and second-nearest centroids, 1 at its centroid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from cpo.errors import ConfigError, DataValidationError
from cpo.segmentation.base import ASSIGNMENT_COLUMNS
from cpo.segmentation.settings import KMeansSettings

#: Words for a centroid far above (first) or below (second) the mean of a feature.
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "avg_order_value": ("High-Spend", "Budget"),
    "purchase_frequency": ("Frequent", "Occasional"),
    "last_engagement_days": ("Lapsed", "Recent"),
    "historical_open_rate": ("Engaged", "Quiet"),
    "historical_click_rate": ("Clicker", "Browser"),
    "age": ("Older", "Younger"),
}
#: Behaviour traits implied by a feature being high (first) or low (second).
FEATURE_TRAITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "avg_order_value": (("premium", "vip", "exclusive"), ("value", "deals")),
    "purchase_frequency": (("loyalty", "rewards"), ("welcome", "first purchase")),
    "last_engagement_days": (("win-back", "re-engagement"), ("new arrivals", "seasonal")),
    "historical_open_rate": (("loyalty",), ("re-engagement",)),
    "historical_click_rate": (("new arrivals",), ("value",)),
    "age": ((), ()),
}


def assign_by_kmeans(
    frame: pd.DataFrame, settings: KMeansSettings, seed: int
) -> tuple[pd.DataFrame, dict[int, tuple[str, ...]], dict[str, object]]:
    """Cluster customers and label the clusters.

    Returns:
        (assignments with :data:`ASSIGNMENT_COLUMNS`, traits per segment_id, details).
    """
    features = _feature_matrix(frame, settings.features)
    scaled = StandardScaler().fit_transform(features)
    k, scores = _choose_k(scaled, settings, seed)
    model = _fit(scaled, k, settings, seed)
    order = np.argsort(-np.bincount(model.labels_, minlength=k), kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    centroids = model.cluster_centers_[order]
    labels = rank[model.labels_]
    names, traits = _label_centroids(centroids, settings.features)
    distances = model.transform(scaled)[:, order]
    confidence = _confidence(distances)
    reasons = _reasons(names, centroids, settings.features, labels)
    assignments = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "segment": np.asarray(names, dtype=object)[labels],
            "segment_id": labels,
            "confidence": np.round(confidence, 4),
            "reason": reasons,
        },
        columns=ASSIGNMENT_COLUMNS,
    )
    details = {
        "k": k,
        "silhouette_by_k": scores,
        "algorithm": type(model).__name__,
        "features": list(settings.features),
    }
    return assignments, traits, details


def _feature_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The numeric feature matrix, with clear errors for missing or text columns."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ConfigError(
            f"experiment_config.yaml: key 'segmentation.kmeans.features' names column(s) "
            f"{', '.join(missing)} that the customer data does not have",
            hint=f"use numeric columns among: {', '.join(map(str, frame.columns))}",
        )
    matrix = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if np.isnan(matrix).any():
        bad = [f for f, col in zip(features, matrix.T, strict=True) if np.isnan(col).any()]
        raise DataValidationError(
            f"k-means features must be numeric without gaps; column(s) {', '.join(bad)} "
            "hold missing or non-numeric values",
        )
    return matrix


def _choose_k(
    scaled: np.ndarray, settings: KMeansSettings, seed: int
) -> tuple[int, dict[int, float]]:
    """Return the configured k, or the k in range with the best silhouette."""
    rows = scaled.shape[0]
    if settings.k is not None:
        if settings.k > rows:
            raise DataValidationError(
                f"k-means with k={settings.k} needs at least {settings.k} customers"
            )
        return settings.k, {}
    low, high = settings.k_range
    high = min(high, rows - 1)
    if high < low:
        raise DataValidationError(
            f"k-means needs more customers than k; found {rows} for k in {settings.k_range}"
        )
    rng = np.random.default_rng(seed)
    sample = rng.choice(rows, size=min(rows, settings.silhouette_sample), replace=False)
    scores: dict[int, float] = {}
    for k in range(low, high + 1):
        labels = _fit(scaled, k, settings, seed).predict(scaled[sample])
        if len(np.unique(labels)) < 2:
            scores[k] = -1.0
            continue
        scores[k] = round(float(silhouette_score(scaled[sample], labels)), 6)
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores


def _fit(scaled: np.ndarray, k: int, settings: KMeansSettings, seed: int) -> KMeans:
    """Fit KMeans, or MiniBatchKMeans for large inputs, deterministically."""
    if scaled.shape[0] > settings.minibatch_threshold:
        model = MiniBatchKMeans(
            n_clusters=k, random_state=seed, n_init=settings.n_init, batch_size=4096
        )
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=settings.n_init)
    return model.fit(scaled)


def _label_centroids(
    centroids: np.ndarray, features: list[str]
) -> tuple[list[str], dict[int, tuple[str, ...]]]:
    """Name each cluster by its two most distinctive features; unique names."""
    names: list[str] = []
    traits: dict[int, tuple[str, ...]] = {}
    for cluster, centre in enumerate(centroids):
        ranked = np.argsort(-np.abs(centre), kind="stable")
        words: list[str] = []
        cluster_traits: list[str] = []
        for position in ranked[:2]:
            feature, high = features[position], centre[position] >= 0
            pair = FEATURE_WORDS.get(feature, (f"High {feature}", f"Low {feature}"))
            words.append(pair[0] if high else pair[1])
            implied = FEATURE_TRAITS.get(feature, ((), ()))
            cluster_traits.extend(implied[0] if high else implied[1])
        name = " ".join(words)
        if name in names:
            name = f"{name} {cluster + 1}"
        names.append(name)
        traits[cluster] = tuple(dict.fromkeys(cluster_traits))
    return names, traits


def _confidence(distances: np.ndarray) -> np.ndarray:
    """``1 - d1/d2`` from the distances to all centroids (one row per customer)."""
    if distances.shape[1] < 2:
        return np.ones(distances.shape[0])
    nearest_two = np.partition(distances, 1, axis=1)[:, :2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(nearest_two[:, 1] > 0, nearest_two[:, 0] / nearest_two[:, 1], 0.0)
    return np.clip(1 - ratio, 0, 1)


def _reasons(
    names: list[str], centroids: np.ndarray, features: list[str], labels: np.ndarray
) -> np.ndarray:
    """Per-cluster reason text, e.g. 'nearest centroid: High-Spend (avg_order_value +1.8 sd)'."""
    texts = []
    for name, centre in zip(names, centroids, strict=True):
        ranked = np.argsort(-np.abs(centre), kind="stable")[:2]
        parts = ", ".join(f"{features[i]} {centre[i]:+.1f} sd" for i in ranked)
        texts.append(f"{name}: nearest centroid ({parts})")
    return np.asarray(texts, dtype=object)[labels]
