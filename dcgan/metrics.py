"""Sample-quality metrics: FID, KID, multi-scale SWD, pixel distances and Inception features."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from dcgan.artifacts import check_images
from dcgan.errors import DataError, one_line

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

INCEPTION_SIZE = 299
INCEPTION_FEATURES = 2048
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + INCEPTION_WEIGHTS_FILE
)
INCEPTION_WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"

# The 5-tap binomial filter approximates a Gaussian; Karras et al. use its 2-D outer product.
BINOMIAL_TAPS = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16.0
SWD_LEVELS = (32, 16)
# Patches hold pixels scaled to [0, 1]. Float32 round-off leaves the band of a flat region with
# patches whose standard deviation is up to 1e-7 rather than 0, while the faintest detail of an
# 8-bit image, the edge of a one-level step, gives 1e-5 or more, and one pixel one level off
# 3e-4. Patches under this bound are taken as flat and become zeros; every other patch is
# divided by its own standard deviation with nothing added, as TF-GAN does.
FLAT_PATCH_STD = 1e-6
PROJECTION_CHUNK = 64
# Chunks of projections in flight at once; each holds (PROJECTION_CHUNK, reference rows) floats.
MAX_SWD_THREADS = 4
# Patches are cut this many rows at a time, so that the copies made on the way stay small.
PATCH_CHUNK = 1 << 16
PAIR_CHUNK = 1024


def _check_features(features: np.ndarray, name: str, min_rows: int) -> np.ndarray:
    features = np.asarray(features)
    numeric = np.issubdtype(features.dtype, np.number)
    if not numeric or features.ndim != 2 or features.shape[0] < min_rows:
        raise DataError(
            f"{name}: expected a numeric 2-D feature array with at least {min_rows} rows, "
            f"found {features.dtype} {tuple(features.shape)}"
        )
    if not np.all(np.isfinite(features)):
        raise DataError(f"{name}: expected finite features, found NaN or infinite values")
    return features


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns the float64 mean vector and covariance matrix (rows are samples) of `features`."""
    features = _check_features(features, "gaussian_stats", min_rows=2).astype(np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance ||mu1 - mu2||^2 + Tr(s1 + s2 - 2 sqrt(s1 s2)) between two Gaussians.

    Tr sqrt(s1 s2) equals Tr sqrt(sqrt(s1) s2 sqrt(s1)), whose argument is symmetric positive
    semi-definite, so both roots come from symmetric eigendecompositions; tiny negative
    eigenvalues from round-off are clamped to 0 instead of producing complex numbers.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    dims = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu2.shape != (dims,) or sigma1.shape != (dims, dims) or sigma2.shape != (dims, dims):
        raise DataError(
            "frechet_distance: expected means of shape (d,) and covariances of shape (d, d), "
            f"found {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    eigenvalues, eigenvectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt_sigma1 = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet Inception Distance between two feature sets (rows are samples)."""
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))


def kernel_inception_distance(
    features1: np.ndarray, features2: np.ndarray, *,
    num_subsets: int = 100, subset_size: int = 1000, seed: int = 0,
) -> tuple[float, float]:
    """Mean and (population) standard deviation over random subsets of the unbiased MMD^2 (KID).

    Uses the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 of Binkowski et al. 2018; each
    subset draws `subset_size` rows without replacement from each set, clipped to the smaller.
    When that takes both whole sets, the estimate is computed once and its deviation is 0.
    """
    features1 = _check_features(features1, "kernel_inception_distance features1", min_rows=2)
    features2 = _check_features(features2, "kernel_inception_distance features2", min_rows=2)
    if features1.shape[1] != features2.shape[1]:
        raise DataError(
            "kernel_inception_distance: expected feature sets of equal width, "
            f"found {features1.shape[1]} and {features2.shape[1]}"
        )
    if num_subsets < 1 or subset_size < 2:
        raise DataError(
            "kernel_inception_distance: expected num_subsets >= 1 and subset_size >= 2, "
            f"found {num_subsets} and {subset_size}"
        )
    size = min(subset_size, len(features1), len(features2))
    if size == len(features1) == len(features2):
        # Every subset would hold both whole sets in some order, and the estimate does not
        # depend on order: every subset would give this value, at num_subsets times the work.
        return _unbiased_mmd(features1.astype(np.float64), features2.astype(np.float64)), 0.0
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for index in range(num_subsets):
        x = features1[rng.choice(len(features1), size, replace=False)].astype(np.float64)
        y = features2[rng.choice(len(features2), size, replace=False)].astype(np.float64)
        estimates[index] = _unbiased_mmd(x, y)
    return float(estimates.mean()), float(estimates.std())


def _unbiased_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate between two float64 sets of equal size, cubic polynomial kernel."""
    size, dims = x.shape
    within = (x @ x.T / dims + 1) ** 3 + (y @ y.T / dims + 1) ** 3
    across = (y @ x.T / dims + 1) ** 3
    # Leaving the diagonal k(x_i, x_i) out of the within-set sums makes the estimate unbiased.
    within_mean = (within.sum() - np.trace(within)) / (size * (size - 1))
    return float(within_mean - 2 * across.mean())


def _blur(images: np.ndarray, axis: int) -> np.ndarray:
    """Convolves float32 images (N, H, W, C) with the binomial filter along axis 1 or 2."""
    padding = [(0, 0)] * images.ndim
    padding[axis] = (2, 2)
    padded = np.pad(images, padding, mode="reflect")
    window = [slice(None)] * images.ndim
    blurred = np.zeros(images.shape, np.float32)
    for shift, tap in enumerate(BINOMIAL_TAPS):
        window[axis] = slice(shift, shift + images.shape[axis])
        blurred += tap * padded[tuple(window)]
    return blurred


def _downsample(images: np.ndarray) -> np.ndarray:
    return _blur(_blur(images, 1), 2)[:, ::2, ::2]


def _upsample(images: np.ndarray) -> np.ndarray:
    count, height, width, channels = images.shape
    upsampled = np.zeros((count, 2 * height, 2 * width, channels), np.float32)
    upsampled[:, ::2, ::2] = images
    # Zero insertion keeps a quarter of the samples, so the blur is scaled by 4 to keep brightness.
    return 4 * _blur(_blur(upsampled, 1), 2)


def laplacian_pyramid(images: np.ndarray, num_levels: int = len(SWD_LEVELS)) -> list[np.ndarray]:
    """Float32 Laplacian pyramid, finest band first; the last level is the downsampled image."""
    pyramid = [np.asarray(images, np.float32)]
    for _ in range(num_levels - 1):
        coarse = _downsample(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _upsample(coarse)
        pyramid.append(coarse)
    return pyramid


def reconstruct_laplacian_pyramid(pyramid: list[np.ndarray]) -> np.ndarray:
    """Inverts `laplacian_pyramid`: upsamples the coarsest level and adds back each band."""
    images = pyramid[-1]
    for band in pyramid[-2::-1]:
        images = _upsample(images) + band
    return images


def _patch_descriptors(
    images: np.ndarray, level: int, patch_size: int, count: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Patches of one pyramid level, each normalised on its own, as float32 rows.

    `count` patches per image at positions drawn from `rng`, or every patch of every image when
    `count` is None.
    """
    span = (images.shape[1] >> level) - patch_size + 1
    per_image = span * span if count is None else count
    corners = None if count is None else rng.integers(0, span, size=(len(images), count, 2))
    descriptors = np.empty((len(images) * per_image, patch_size * patch_size * 3), np.float32)
    step = max(1, PATCH_CHUNK // per_image)
    for start in range(0, len(images), step):
        chunk = laplacian_pyramid(images[start:start + step] / np.float32(255))[level]
        # A window view (N, span, span, C, size, size); by corner, (N, count, C, size, size).
        windows = np.lib.stride_tricks.sliding_window_view(chunk, (patch_size, patch_size), (1, 2))
        if corners is not None:
            rows, columns = corners[start:start + step].transpose(2, 0, 1)
            windows = windows[np.arange(len(chunk))[:, None], rows, columns]
        descriptors[start * per_image:(start + len(chunk)) * per_image] = _normalize_patches(
            windows.reshape(len(chunk) * per_image, -1))
    return descriptors


def _normalize_patches(patches: np.ndarray) -> np.ndarray:
    """Shifts and scales each row of float32 `patches` to mean 0 and standard deviation 1.

    This is TF-GAN's _normalize_patches, except that flat rows (see FLAT_PATCH_STD) become
    zeros where TF-GAN divides 0 by 0.
    """
    patches = patches - patches.mean(axis=1, keepdims=True)
    deviations = patches.std(axis=1, keepdims=True)
    # Dividing by infinity turns the flat rows into zeros, and leaves no 0 to divide by.
    patches /= np.where(deviations < FLAT_PATCH_STD, np.inf, deviations)
    return patches


def _resample_sorted(values: np.ndarray, length: int) -> np.ndarray:
    """Interpolates sorted rows (P, n) linearly at the `length` quantiles (j + 0.5) / length."""
    size = values.shape[1]
    if size == length:
        return values
    position = np.clip((np.arange(length) + 0.5) * size / length - 0.5, 0, size - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, size - 1)
    weight = (position - lower).astype(np.float32)
    return values[:, lower] * (1 - weight) + values[:, upper] * weight


def _directions(num_projections: int, size: int, rng: np.random.Generator) -> np.ndarray:
    directions = rng.standard_normal((num_projections, size))
    return (directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(np.float32)


def _sorted_projections(descriptors: np.ndarray, directions: np.ndarray) -> np.ndarray:
    projected = directions @ descriptors.T
    projected.sort(axis=1)
    return projected


def _chunk_gaps(sets: list[np.ndarray], reference: np.ndarray, directions: np.ndarray,
                lengths: list[int]) -> list[float]:
    """The summed gaps of each set's sorted projections on `directions` to the reference's."""
    sorted_reference = _sorted_projections(reference, directions)
    # The reference's quantiles, resampled once for each length the sets need.
    quantiles = {length: _resample_sorted(sorted_reference, length) for length in lengths}
    del sorted_reference
    sums = []
    for descriptors, length in zip(sets, lengths):
        gaps = _resample_sorted(_sorted_projections(descriptors, directions), length)
        gaps -= quantiles[length]
        sums.append(float(np.abs(gaps, dtype=np.float64).sum()))
    return sums


def _sliced_wasserstein(sets: list[np.ndarray], reference: np.ndarray,
                        directions: np.ndarray) -> list[float]:
    """The mean gap between the sorted projections of each of `sets` (descriptor rows) and
    those of `reference` on `directions`; the reference is projected once for all of them."""
    lengths = [min(len(descriptors), len(reference)) for descriptors in sets]
    # Chunks of directions bound the working memory to (chunk, rows) floats at a time. NumPy
    # sorts and resamples without the GIL, so chunks run side by side, one a core.
    chunks = [directions[start:start + PROJECTION_CHUNK]
              for start in range(0, len(directions), PROJECTION_CHUNK)]
    workers = max(1, min(len(chunks), os.cpu_count() or 1, MAX_SWD_THREADS))
    with ThreadPoolExecutor(workers) as pool:
        chunk_sums = list(pool.map(lambda chunk: _chunk_gaps(sets, reference, chunk, lengths),
                                   chunks))
    totals = [0.0] * len(sets)
    for sums in chunk_sums:  # in the chunks' order, so the totals do not depend on the threads
        totals = [total + value for total, value in zip(totals, sums)]
    return [total / (length * len(directions)) for total, length in zip(totals, lengths)]


def _check_swd_args(patches_per_image: int, num_projections: int, patch_size: int,
                    seed: int) -> None:
    largest_patch = min(SWD_LEVELS)
    if (patches_per_image < 1 or num_projections < 1 or seed < 0
            or not 1 <= patch_size <= largest_patch):
        raise DataError(
            "sliced_wasserstein_distance: expected patches_per_image >= 1, num_projections >= 1, "
            f"1 <= patch_size <= {largest_patch} and seed >= 0, found {patches_per_image}, "
            f"{num_projections}, {patch_size} and {seed}"
        )


def sliced_wasserstein_distances(
    image_sets: list[np.ndarray], reference: np.ndarray, *, patches_per_image: int = 64,
    num_projections: int = 512, patch_size: int = 7, seed: int = 0,
    draws: list[int] | None = None,
) -> list[dict[int, float]]:
    """sliced_wasserstein_distance of each of `image_sets` against the same `reference`.

    The reference gives every patch it has. Each draw cuts its sets' patches and takes its
    projection directions from its own random stream (`seed`, the level and the draw's number),
    so draws are independent estimates and the spread of their values holds what those choices
    add. `draws` numbers each set's draw, by default its index in the list. Sets of one draw
    and one size are cut at the same positions and projected on the same directions, against
    a single projection of the reference: scoring samples and training images draw by draw
    projects the reference once per draw.
    """
    _check_swd_args(patches_per_image, num_projections, patch_size, seed)
    for index, images in enumerate(image_sets):
        check_images(images, f"sliced_wasserstein_distance image set {index}")
    check_images(reference, "sliced_wasserstein_distance reference")
    if len(reference) == 0 or not image_sets or any(len(images) == 0 for images in image_sets):
        raise DataError(
            "sliced_wasserstein_distance: expected at least 1 image per set, found "
            f"{[len(images) for images in image_sets]} and {len(reference)}"
        )
    draws = list(range(len(image_sets))) if draws is None else list(draws)
    if len(draws) != len(image_sets) or any(draw < 0 for draw in draws):
        raise DataError(f"sliced_wasserstein_distance: expected a draw >= 0 for each of "
                        f"{len(image_sets)} image sets, found {draws}")
    distances = [{} for _ in image_sets]
    for level, resolution in enumerate(SWD_LEVELS):
        reference_descriptors = _patch_descriptors(reference, level, patch_size)
        for draw in dict.fromkeys(draws):
            members = [index for index, of in enumerate(draws) if of == draw]
            streams = [np.random.default_rng([seed, level, draw]) for _ in members]
            descriptors = [_patch_descriptors(image_sets[index], level, patch_size,
                                              patches_per_image, stream)
                           for index, stream in zip(members, streams)]
            directions = _directions(num_projections, descriptors[0].shape[1], streams[0])
            values = _sliced_wasserstein(descriptors, reference_descriptors, directions)
            for index, value in zip(members, values):
                distances[index][resolution] = 1e3 * value
                logger.debug("SWD at %d of set %d: %.3f", resolution, index, 1e3 * value)
    return distances


def sliced_wasserstein_distance(
    images_a: np.ndarray, images_b: np.ndarray, *, patches_per_image: int = 64,
    num_projections: int = 512, patch_size: int = 7, seed: int = 0,
) -> dict[int, float]:
    """Multi-scale sliced Wasserstein distance (Karras et al. 2018), times 1e3, per pyramid level.

    Takes `patches_per_image` random patch_size x patch_size x 3 patches per image of
    `images_a`, and every such patch of `images_b`, from the 32 band and the 16 low-pass level
    of a Laplacian pyramid (pixels in [0, 1]); normalises each patch by its own mean and std as
    TF-GAN's sliced_wasserstein_distance does, projects both sets on the same random unit
    directions and averages the gaps between sorted projections (matched quantiles, as the sets
    differ in size). `images_b` is the reference: cut at every position, its patches carry no
    chance of their own, so that only the draw of `images_a`'s patches and of the directions,
    fixed by `seed`, moves the value. Karras et al.'s code normalises each colour channel over
    the whole set of patches instead, so values compare with TF-GAN's, not theirs, though they
    are multiplied by 1e3, the scale Karras et al. report. Returns {32: swd, 16: swd}.
    """
    check_images(images_a, "sliced_wasserstein_distance images_a")
    check_images(images_b, "sliced_wasserstein_distance images_b")
    if len(images_a) == 0 or len(images_b) == 0:
        raise DataError(
            "sliced_wasserstein_distance: expected at least 1 image per set, "
            f"found {len(images_a)} and {len(images_b)}"
        )
    (distances,) = sliced_wasserstein_distances(
        [images_a], images_b, patches_per_image=patches_per_image,
        num_projections=num_projections, patch_size=patch_size, seed=seed)
    return distances


def _flatten_pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)


def _rms(gaps: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.square(gaps, dtype=np.float64), axis=1))


def nearest_neighbour_distances(
    queries: np.ndarray, references: np.ndarray, *, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel RMS distance (pixels in [0, 1]) from each query to its nearest reference.

    Returns the float64 distances and the int64 indices of those nearest references.
    """
    check_images(queries, "nearest_neighbour_distances queries")
    check_images(references, "nearest_neighbour_distances references")
    if len(references) == 0 or batch_size < 1:
        raise DataError(
            "nearest_neighbour_distances: expected at least 1 reference and batch_size >= 1, "
            f"found {len(references)} and {batch_size}"
        )
    flat_references = _flatten_pixels(references)
    reference_norms = np.einsum("ij,ij->i", flat_references, flat_references)
    distances = np.empty(len(queries), np.float64)
    indices = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), batch_size):
        batch = _flatten_pixels(queries[start:start + batch_size])
        # A query's own norm is the same for every reference, so the argmin can leave it out.
        nearest = np.argmin(reference_norms[None, :] - 2 * batch @ flat_references.T, axis=1)
        # The expanded form loses precision in float32, so the chosen distance is recomputed.
        distances[start:start + len(batch)] = _rms(batch - flat_references[nearest])
        indices[start:start + len(batch)] = nearest
    return distances, indices


def mean_pairwise_distance(images: np.ndarray, *, max_pairs: int = 20000, seed: int = 0) -> float:
    """Mean per-pixel RMS distance (pixels in [0, 1]) between distinct images.

    Uses every pair when there are at most `max_pairs`, otherwise `max_pairs` random pairs.
    """
    check_images(images, "mean_pairwise_distance")
    if len(images) < 2 or max_pairs < 1:
        raise DataError(
            "mean_pairwise_distance: expected at least 2 images and max_pairs >= 1, "
            f"found {len(images)} and {max_pairs}"
        )
    count = len(images)
    if count * (count - 1) // 2 <= max_pairs:
        first, second = np.triu_indices(count, k=1)
    else:
        rng = np.random.default_rng(seed)
        first = rng.integers(0, count, max_pairs)
        # An offset in [1, count) picks a different second image, uniformly over the others.
        second = (first + rng.integers(1, count, max_pairs)) % count
    total = 0.0
    for start in range(0, len(first), PAIR_CHUNK):
        pairs = slice(start, start + PAIR_CHUNK)
        gaps = _flatten_pixels(images[first[pairs]]) - _flatten_pixels(images[second[pairs]])
        total += float(_rms(gaps).sum())
    return total / len(first)


def load_inception(weights: str | None) -> keras.Model:
    """InceptionV3 without its classifier, average-pooled to 2048 features, for 299x299 input.

    Args:
        weights: the path of inception_weights()'s file, or None for random weights.
    """
    import keras

    return keras.applications.InceptionV3(
        include_top=False, pooling="avg", weights=weights,
        input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
    )


def inception_features(
    images: np.ndarray, model: keras.Model, *, batch_size: int = 50
) -> np.ndarray:
    """Float64 (N, 2048) Inception pool features of uint8 images resized bilinearly to 299."""
    import keras
    import tensorflow as tf

    check_images(images, "inception_features")
    if batch_size < 1:
        raise DataError(f"inception_features: expected batch_size >= 1, found {batch_size}")
    features = np.empty((len(images), INCEPTION_FEATURES), np.float64)
    for start in range(0, len(images), batch_size):
        batch = tf.cast(images[start:start + batch_size], tf.float32)
        batch = tf.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
        batch = keras.applications.inception_v3.preprocess_input(batch)
        output = np.asarray(model(batch, training=False))
        if output.shape != (len(batch), INCEPTION_FEATURES):
            raise DataError(
                f"inception_features: expected model output of shape ({len(batch)}, "
                f"{INCEPTION_FEATURES}), found {output.shape}"
            )
        features[start:start + len(batch)] = output
    return features


def inception_weights() -> tuple[str | None, str]:
    """The ImageNet InceptionV3 weights file, fetched into the Keras cache if need be.

    Returns (path, reason), path None when the weights cannot be had; the reason is one line.
    The cache is $KERAS_HOME/models, else ~/.keras/models, read when called: Keras reads
    KERAS_HOME only once, when it is imported.
    """
    import keras

    cache_dir = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    try:
        path = keras.utils.get_file(
            INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, cache_subdir="models",
            file_hash=INCEPTION_WEIGHTS_MD5, hash_algorithm="md5",
            cache_dir=os.path.expanduser(cache_dir),
        )
    except Exception as error:  # Offline fetches fail many ways (DNS, proxy, HTTP): all mean no.
        message = one_line(error)[:200]
        reason = f"{type(error).__name__}: {message}"
        return None, f"InceptionV3 ImageNet weights unavailable ({reason})"
    return path, f"InceptionV3 ImageNet weights cached at {path}"
