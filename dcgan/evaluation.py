"""Scores generated images against real ones, each metric beside what real data scores."""

from __future__ import annotations

import logging

import numpy as np

from dcgan import metrics
from dcgan.errors import DataError
from dcgan.params import EvaluateParams

logger = logging.getLogger(__name__)

MIN_SAMPLES = 2

# key: (label in the report, which way is better, what it measures)
METRICS = {
    "swd_32": ("SWD 32x32 (x1e3)", "lower", "patch statistics of fine detail"),
    "swd_16": ("SWD 16x16 (x1e3)", "lower", "patch statistics of coarse structure"),
    "fid": ("FID", "lower", "Inception feature statistics"),
    "kid": ("KID (x1e3)", "lower", "Inception features, unbiased at small sample sizes"),
    "memorisation": ("nearest training image", "near the floor",
                     "RMS pixel distance to the closest training image; far below the floor "
                     "means copies"),
    "diversity": ("pairwise distance", "near the floor",
                  "mean RMS pixel distance between two images; low means mode collapse"),
}


def _distribution_scores(images: np.ndarray, reference: np.ndarray, params: EvaluateParams,
                         reference_features, inception_model) -> dict:
    # How far the distribution of `images` is from the reference set's.
    swd = metrics.sliced_wasserstein_distance(
        images, reference, patches_per_image=params.swd_patches_per_image,
        num_projections=params.swd_projections, seed=params.seed)
    scores = {"swd_32": swd[32], "swd_16": swd[16], "fid": None, "kid": None}
    if inception_model is not None:
        features = metrics.inception_features(images, inception_model,
                                              batch_size=params.inception_batch_size)
        scores["fid"] = metrics.fid_from_features(features, reference_features)
        kid, _ = metrics.kernel_inception_distance(features, reference_features,
                                                   seed=params.seed)
        scores["kid"] = 1e3 * kid
    return scores


def _mean_nearest_distance(images: np.ndarray, training_images: np.ndarray) -> float:
    distances, _ = metrics.nearest_neighbour_distances(images, training_images)
    return float(distances.mean())


def evaluate(samples: np.ndarray, training_images: np.ndarray, reference: np.ndarray,
             params: EvaluateParams, inception_model=None) -> dict:
    """Scores `samples` and, as the floor, the training images, both against `reference`.

    The floor is what real data scores on the same metric: as many training images as there
    are samples, against the held-out reference set, measured the same way. Memorisation of
    the floor is the distance from each reference image to its nearest training image;
    diversity of the floor is that of the reference images.

    Raises:
        DataError: fewer than MIN_SAMPLES samples or reference images.
    """
    for name, images in (("samples", samples), ("reference set", reference)):
        if len(images) < MIN_SAMPLES:
            raise DataError(f"evaluate: the {name} holds {len(images)} images; the metrics "
                            f"need at least {MIN_SAMPLES}")
    reference_features = None
    if inception_model is not None:
        reference_features = metrics.inception_features(
            reference, inception_model, batch_size=params.inception_batch_size)
    logger.info("scoring %d samples against %d reference images", len(samples), len(reference))
    generated = _distribution_scores(samples, reference, params, reference_features,
                                     inception_model)
    generated["memorisation"] = _mean_nearest_distance(samples, training_images)
    generated["diversity"] = metrics.mean_pairwise_distance(samples, seed=params.seed)
    # SWD, FID and KID are biased by the number of images scored, so the floor scores as many
    # training images as there are samples, drawn at random.
    count = min(len(training_images), len(samples))
    picks = np.random.default_rng(params.seed).permutation(len(training_images))[:count]
    subset = training_images[np.sort(picks)]
    logger.info("scoring %d training images, the floor", count)
    floor = _distribution_scores(subset, reference, params, reference_features, inception_model)
    floor["memorisation"] = _mean_nearest_distance(reference, training_images)
    floor["diversity"] = metrics.mean_pairwise_distance(reference, seed=params.seed)
    return {"generated": {key: generated[key] for key in METRICS},
            "floor": {key: floor[key] for key in METRICS}}
