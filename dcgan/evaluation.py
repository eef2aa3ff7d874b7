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
# The standard error of each metric that is a mean over draws, keyed "<metric>_error".
ERRORS = tuple(f"swd_{resolution}_error" for resolution in metrics.SWD_LEVELS)


def draws_of(count: int, draw_size: int) -> tuple[int, int]:
    """(number of draws, images per draw) for SWD over `count` samples."""
    size = min(draw_size, count)
    return count // size, size


def sample_draws(samples: np.ndarray, count: int, size: int) -> list[np.ndarray]:
    """The first `count` disjoint draws of `size` samples, in order."""
    return [samples[i * size:(i + 1) * size] for i in range(count)]


def floor_draws(training_images: np.ndarray, count: int, size: int, seed: int) -> list[np.ndarray]:
    """`count` random draws of `size` training images, each without repeats, in index order."""
    return [training_images[np.sort(np.random.default_rng([seed, i]).choice(
        len(training_images), size, replace=False))] for i in range(count)]


def _swd_scores(parts: list[list[np.ndarray]], reference: np.ndarray,
                params: EvaluateParams) -> list[dict]:
    """SWD's mean over the draws of each part (a list of draws) and its standard error.

    Draw i of every part is scored as draw i, on its patch positions and directions.
    """
    # The mean over the draws and its standard error: SWD 16 of a thousand images moves by
    # about a sixth of its value from one draw to the next (bench/swd_noise.py), so a single
    # draw cannot tell two runs apart. Each draw cuts its own patches and projects them on its
    # own directions, against every patch of the reference, so the error holds those choices.
    swds = metrics.sliced_wasserstein_distances(
        [draw for draws in parts for draw in draws], reference,
        patches_per_image=params.swd_patches_per_image, num_projections=params.swd_projections,
        seed=params.seed, draws=[index for draws in parts for index in range(len(draws))])
    results = []
    for draws in parts:
        part, swds = swds[:len(draws)], swds[len(draws):]
        scores = {}
        for resolution in metrics.SWD_LEVELS:
            values = np.array([swd[resolution] for swd in part])
            scores[f"swd_{resolution}"] = float(values.mean())
            scores[f"swd_{resolution}_error"] = (
                float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None)
        results.append(scores)
    return results


def _inception_scores(images: np.ndarray, reference_features, inception_model,
                      params: EvaluateParams) -> dict:
    if inception_model is None:
        return {"fid": None, "kid": None}
    features = metrics.inception_features(images, inception_model,
                                          batch_size=params.inception_batch_size)
    kid, _ = metrics.kernel_inception_distance(features, reference_features, seed=params.seed)
    return {"fid": metrics.fid_from_features(features, reference_features), "kid": 1e3 * kid}


def _mean_nearest_distance(images: np.ndarray, training_images: np.ndarray) -> float:
    distances, _ = metrics.nearest_neighbour_distances(images, training_images)
    return float(distances.mean())


def evaluate(samples: np.ndarray, training_images: np.ndarray, reference: np.ndarray,
             params: EvaluateParams, inception_model=None) -> dict:
    """Scores `samples` and, as the floor, the training images, both against `reference`.

    The floor is what real data scores on the same metric: training images against the
    held-out reference set, measured the same way. SWD is biased by the number of images
    scored, so it is the mean over disjoint draws of `params.swd_draw_size` samples, and the
    floor the mean over as many random draws of as many training images; each comes with
    the standard error of its mean (None from a single draw). FID and KID score every sample,
    and their floor as many training images. Memorisation of the floor is the distance from
    each reference image to its nearest training image; diversity of the floor is that of
    the reference images.

    Returns:
        {"generated": scores, "floor": scores, "swd_draws": n, "swd_draw_size": images},
        scores holding every key of METRICS and "<key>_error" for the SWD levels.

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
    count, size = draws_of(len(samples), min(params.swd_draw_size, len(training_images)))
    logger.info("scoring %d samples against %d reference images, SWD over %d draws of %d",
                len(samples), len(reference), count, size)
    # Samples and training images draw by draw, so each draw projects the reference once.
    generated_swd, floor_swd = _swd_scores(
        [sample_draws(samples, count, size),
         floor_draws(training_images, count, size, params.seed)], reference, params)
    generated = {
        **generated_swd,
        **_inception_scores(samples, reference_features, inception_model, params),
        "memorisation": _mean_nearest_distance(samples, training_images),
        "diversity": metrics.mean_pairwise_distance(samples, seed=params.seed),
    }
    logger.info("scoring training images, the floor")
    picks = np.random.default_rng(params.seed).permutation(len(training_images))[:len(samples)]
    floor = {
        **floor_swd,
        **_inception_scores(training_images[np.sort(picks)], reference_features,
                            inception_model, params),
        "memorisation": _mean_nearest_distance(reference, training_images),
        "diversity": metrics.mean_pairwise_distance(reference, seed=params.seed),
    }
    keys = [*METRICS, *ERRORS]
    return {"generated": {key: generated[key] for key in keys},
            "floor": {key: floor[key] for key in keys},
            "swd_draws": count, "swd_draw_size": size}
