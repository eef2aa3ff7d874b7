"""Tests for dcgan.metrics on tiny synthetic features and images built here."""

from __future__ import annotations

import numpy as np
import pytest

from dcgan import metrics
from dcgan.errors import DataError


def structured_images(count: int, seed: int) -> np.ndarray:
    """Smooth random colour gradients with one random disc each, as uint8 (count, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    slope_x, slope_y = rng.uniform(-2, 2, (2, count, 1, 1, 3))
    images = rng.uniform(60, 190, (count, 1, 1, 3)) + slope_x * x[..., None]
    images = images + slope_y * y[..., None]
    centre_x, centre_y = rng.uniform(6, 26, (2, count, 1, 1))
    radius = rng.uniform(3, 9, (count, 1, 1))
    disc = (x - centre_x) ** 2 + (y - centre_y) ** 2 < radius**2
    images = np.where(disc[..., None], rng.uniform(0, 255, (count, 1, 1, 3)), images)
    return np.clip(images, 0, 255).astype(np.uint8)


def add_noise(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(np.rint(images + noise), 0, 255).astype(np.uint8)


def random_spd(dims: int, rng: np.random.Generator) -> np.ndarray:
    factor = rng.normal(size=(dims, dims))
    return factor @ factor.T / dims + 0.1 * np.eye(dims)


def constant_images(*values: int) -> np.ndarray:
    return np.stack([np.full((32, 32, 3), value, np.uint8) for value in values])


# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_matches_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=(2, 8))
    variances1, variances2 = rng.uniform(0.1, 3, (2, 8))
    root_products = np.sqrt(variances1 * variances2)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(variances1 + variances2 - 2 * root_products)
    found = metrics.frechet_distance(mu1, np.diag(variances1), mu2, np.diag(variances2))
    assert found == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_one_dimensional_formula():
    # In 1-D the distance is (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s1 and s2.
    found = metrics.frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])
    )
    assert found == pytest.approx(9.0 + 1.0, rel=1e-12)


def test_frechet_distance_matches_independent_computation_for_random_covariances():
    rng = np.random.default_rng(1)
    sigma1, sigma2 = random_spd(12, rng), random_spd(12, rng)
    mu1, mu2 = rng.normal(size=(2, 12))
    # The eigenvalues of s1 s2 are real and positive, and Tr sqrt(s1 s2) is the sum of their roots.
    trace_sqrt = np.sum(np.sqrt(np.linalg.eigvals(sigma1 @ sigma2).real))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_identical_statistics_is_zero():
    rng = np.random.default_rng(2)
    sigma = random_spd(64, rng)
    mu = rng.normal(size=64)
    assert abs(metrics.frechet_distance(mu, sigma, mu, sigma)) < 1e-8 * np.trace(sigma)


def test_fid_from_features_is_zero_for_same_features_and_positive_for_shifted_ones():
    features = np.random.default_rng(3).normal(size=(200, 6))
    mu, sigma = metrics.gaussian_stats(features)
    assert mu.dtype == np.float64 and mu.shape == (6,) and sigma.shape == (6, 6)
    np.testing.assert_allclose(sigma, np.cov(features.T))
    assert abs(metrics.fid_from_features(features, features)) < 1e-9
    # A shift of 2 in every one of 6 dimensions adds 6 * 2^2 = 24 to the mean term only.
    assert metrics.fid_from_features(features, features + 2) == pytest.approx(24.0, rel=1e-9)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(DataError, match="expected means of shape"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ----------------------------------------------------------------------------- kernel distance


def naive_unbiased_mmd(x: np.ndarray, y: np.ndarray) -> float:
    kernel = lambda a, b: (a @ b / len(a) + 1) ** 3  # noqa: E731
    count = len(x)
    within_x = sum(kernel(x[i], x[j]) for i in range(count) for j in range(count) if i != j)
    within_y = sum(kernel(y[i], y[j]) for i in range(count) for j in range(count) if i != j)
    across = sum(kernel(x[i], y[j]) for i in range(count) for j in range(count))
    return (within_x + within_y) / (count * (count - 1)) - 2 * across / count**2


def count_estimates(monkeypatch) -> list[int]:
    """Counts the subset estimates KID computes; returns the list of their subset sizes."""
    sizes = []
    estimate = metrics._unbiased_mmd

    def counted(x, y):
        sizes.append(len(x))
        return estimate(x, y)

    monkeypatch.setattr(metrics, "_unbiased_mmd", counted)
    return sizes


def test_kernel_inception_distance_on_whole_sets_is_computed_once(monkeypatch):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1, size=(12, 5))
    sizes = count_estimates(monkeypatch)
    # A subset_size of at least both set sizes makes every subset a reordering of the whole
    # sets, which gives the same estimate, so there is one to compute and no spread.
    mean, std = metrics.kernel_inception_distance(x, y, num_subsets=100, subset_size=50)
    assert mean == pytest.approx(naive_unbiased_mmd(x, y), rel=1e-10)
    assert std == 0.0
    assert sizes == [12]
    # Subsets of a larger set differ from one another, so each is computed.
    sizes.clear()
    metrics.kernel_inception_distance(x, np.vstack([y, y + 1]), num_subsets=5, subset_size=50)
    assert sizes == [12] * 5


def test_kernel_inception_distance_is_near_zero_for_same_distribution_and_positive_when_shifted():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 400, 16))
    same_mean, same_std = metrics.kernel_inception_distance(x, y, num_subsets=20, subset_size=200)
    shifted_mean, _ = metrics.kernel_inception_distance(x, y + 0.5, num_subsets=20, subset_size=200)
    assert shifted_mean > 0.05
    assert abs(same_mean) < 0.05 * shifted_mean
    # An unbiased estimate of a zero MMD can be negative, unlike the biased V-statistic.
    estimates = [
        metrics.kernel_inception_distance(x, y, num_subsets=1, subset_size=100, seed=seed)[0]
        for seed in range(20)
    ]
    assert min(estimates) < 0 < max(estimates)
    assert same_std > 0


def test_kernel_inception_distance_rejects_too_few_rows_and_mismatched_widths():
    with pytest.raises(DataError, match="at least 2 rows"):
        metrics.kernel_inception_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(DataError, match="equal width"):
        metrics.kernel_inception_distance(np.zeros((5, 4)), np.zeros((5, 3)))


# ----------------------------------------------------------------------------- sliced Wasserstein


def test_laplacian_pyramid_levels_reconstruct_the_images():
    images = structured_images(5, seed=6)
    pyramid = metrics.laplacian_pyramid(images)
    assert [level.shape for level in pyramid] == [(5, 32, 32, 3), (5, 16, 16, 3)]
    assert all(level.dtype == np.float32 for level in pyramid)
    np.testing.assert_allclose(metrics.reconstruct_laplacian_pyramid(pyramid), images, atol=1e-3)
    # A constant image has no detail: its band is zero and its coarse level keeps the value.
    band, coarse = metrics.laplacian_pyramid(constant_images(100))
    np.testing.assert_allclose(band, 0, atol=1e-4)
    np.testing.assert_allclose(coarse, 100, atol=1e-4)


SWD_SMALL = dict(patches_per_image=16, num_projections=128)


def test_sliced_wasserstein_distance_grows_with_noise_and_is_deterministic():
    # A set against itself is near zero: its random patches are a sample of its every patch.
    reference = structured_images(200, seed=8)
    noisy_sets = [add_noise(reference, sigma, seed=9) for sigma in (0, 10, 40)]
    distances = [
        metrics.sliced_wasserstein_distance(noisy, reference, **SWD_SMALL) for noisy in noisy_sets
    ]
    for resolution in (32, 16):
        values = [distance[resolution] for distance in distances]
        assert 0 < values[0] < values[1] < values[2], (resolution, values)
    noisy = add_noise(reference, 10, seed=9)
    assert metrics.sliced_wasserstein_distance(noisy, reference, **SWD_SMALL) == distances[1]
    other_seed = metrics.sliced_wasserstein_distance(noisy, reference, **SWD_SMALL, seed=1)
    assert other_seed != distances[1]


def test_the_reference_is_cut_at_every_position():
    images = structured_images(3, seed=19)
    descriptors = metrics._patch_descriptors(images, 0, 7)
    # 26 x 26 positions of a 7 x 7 patch in the 32 x 32 band, image by image, row by row.
    assert descriptors.shape == (3 * 26 * 26, 7 * 7 * 3)
    band = metrics.laplacian_pyramid(images / np.float32(255))[0]
    patch = band[2, 5:12, 9:16].transpose(2, 0, 1).reshape(1, -1)
    np.testing.assert_array_equal(descriptors[2 * 26 * 26 + 5 * 26 + 9],
                                  metrics._normalize_patches(patch)[0])
    # So the reference's order and its own patches leave no chance in the distance.
    images = structured_images(40, seed=20)
    reference = structured_images(30, seed=21)
    shuffled = reference[np.random.default_rng(22).permutation(len(reference))]
    distance = metrics.sliced_wasserstein_distance(images, reference, **SWD_SMALL)
    assert metrics.sliced_wasserstein_distance(images, shuffled, **SWD_SMALL) == pytest.approx(
        distance, rel=1e-5)


def test_sliced_wasserstein_distance_ignores_brightness_after_per_patch_normalisation():
    darker = structured_images(100, seed=10) // 2
    brighter = darker + np.uint8(80)
    # Against a brighter copy of itself a set scores what it scores against itself.
    itself = metrics.sliced_wasserstein_distance(darker, darker, **SWD_SMALL)
    brightened = metrics.sliced_wasserstein_distance(darker, brighter, **SWD_SMALL)
    assert all(abs(brightened[resolution] - itself[resolution]) < 0.1
               for resolution in (32, 16)), (brightened, itself)


def test_sliced_wasserstein_distance_compares_sets_of_different_sizes():
    # Sets of 400 and 100 images are compared through the quantiles of their sorted projections.
    reference = structured_images(400, seed=11)
    similar_images = structured_images(100, seed=12)
    similar = metrics.sliced_wasserstein_distance(reference, similar_images, **SWD_SMALL)
    # Flat images have all-zero normalised patches, far from the unit-variance patches of structure.
    flat = constant_images(*np.random.default_rng(13).integers(0, 256, 100))
    different = metrics.sliced_wasserstein_distance(reference, flat, **SWD_SMALL)
    assert set(similar) == set(different) == {32, 16}
    assert all(0 < similar[resolution] < 0.5 * different[resolution] for resolution in (32, 16))


def test_patches_are_normalised_by_their_own_deviation_and_flat_ones_become_zeros():
    rng = np.random.default_rng(18)
    # Most patches of a Laplacian band are of low contrast: on [0, 1] pixels they lie around 0
    # with a standard deviation near 0.003, and one pixel one level (1/255) off gives 3e-4.
    low_contrast = rng.normal(0, 0.003, (20, 147))
    one_level = np.zeros((1, 147))
    one_level[0, 70] = 1 / 255
    patches = np.vstack([low_contrast, one_level]).astype(np.float32)
    expected = patches.astype(np.float64) - patches.mean(axis=1, keepdims=True, dtype=np.float64)
    expected /= expected.std(axis=1, keepdims=True)
    # Values are of order 1, so an absolute tolerance of 1e-5 is a relative one too.
    np.testing.assert_allclose(metrics._normalize_patches(patches), expected, rtol=1e-5, atol=1e-5)

    # A flat patch, and one whose only variation is float32 round-off (as the band of a flat
    # region has), carry no pattern: they become zeros, not NaN or amplified round-off.
    flat = np.full((2, 147), 0.4, np.float32)
    flat[1] += rng.normal(0, 1e-7, 147).astype(np.float32)
    np.testing.assert_array_equal(metrics._normalize_patches(flat), 0)


def test_patches_cut_in_chunks_equal_patches_cut_at_once(monkeypatch):
    images = structured_images(5, seed=23)
    whole = [metrics._patch_descriptors(images, 0, 7),
             metrics._patch_descriptors(images, 1, 7, 300, np.random.default_rng(24))]
    # One image (676 patches) per chunk at 32, two (300 patches each) at 16.
    monkeypatch.setattr(metrics, "PATCH_CHUNK", 700)
    chunked = [metrics._patch_descriptors(images, 0, 7),
               metrics._patch_descriptors(images, 1, 7, 300, np.random.default_rng(24))]
    for expected, found in zip(whole, chunked):
        np.testing.assert_array_equal(found, expected)


def test_swd_does_not_depend_on_how_many_threads_project(monkeypatch):
    reference, images = structured_images(30, seed=25), structured_images(12, seed=26)
    # Four chunks of 32 directions, in four threads and in one.
    monkeypatch.setattr(metrics, "PROJECTION_CHUNK", 32)
    threaded = metrics.sliced_wasserstein_distance(images, reference, **SWD_SMALL)
    monkeypatch.setattr(metrics, "MAX_SWD_THREADS", 1)
    assert metrics.sliced_wasserstein_distance(images, reference, **SWD_SMALL) == threaded


def test_each_draw_takes_its_own_patches_and_directions():
    reference = structured_images(30, seed=15)
    images, other = structured_images(12, seed=16), structured_images(20, seed=17)
    first, second = metrics.sliced_wasserstein_distances([images, images], reference, **SWD_SMALL)
    # The same images at two places in the list are two draws, so their spread is measured.
    assert first != second
    assert first == metrics.sliced_wasserstein_distance(images, reference, **SWD_SMALL)
    # A set's value depends only on its images and its draw, not on the other sets.
    assert metrics.sliced_wasserstein_distances([other, images], reference,
                                                **SWD_SMALL)[1] == second
    assert metrics.sliced_wasserstein_distances(
        [other, images, images], reference, **SWD_SMALL, draws=[0, 3, 1])[1:] == [
        metrics.sliced_wasserstein_distances([images] * 4, reference, **SWD_SMALL)[3], second]
    # Sets of one draw share it: the same images score the same.
    together = metrics.sliced_wasserstein_distances([images, other, images], reference,
                                                    **SWD_SMALL, draws=[1, 1, 1])
    assert together[0] == together[2] == second
    with pytest.raises(DataError, match="a draw >= 0 for each of 2 image sets"):
        metrics.sliced_wasserstein_distances([images, other], reference, draws=[0])


def test_sliced_wasserstein_distance_rejects_bad_images():
    images = structured_images(4, seed=14)
    with pytest.raises(DataError, match="uint8 images of shape"):
        metrics.sliced_wasserstein_distance(images.astype(np.float32), images)
    with pytest.raises(DataError, match="uint8 images of shape"):
        metrics.sliced_wasserstein_distance(images, images[:, :28, :28])
    with pytest.raises(DataError, match="at least 1 image"):
        metrics.sliced_wasserstein_distance(images, images[:0])


# ----------------------------------------------------------------------------- pixel distances


def test_nearest_neighbour_finds_exact_copies_and_known_distances():
    references = structured_images(20, seed=15)
    queries = references[[3, 17, 3]]
    distances, indices = metrics.nearest_neighbour_distances(queries, references, batch_size=2)
    np.testing.assert_array_equal(indices, [3, 17, 3])
    np.testing.assert_array_equal(distances, 0.0)
    distances, indices = metrics.nearest_neighbour_distances(
        constant_images(0, 200), constant_images(255, 51)
    )
    np.testing.assert_allclose(distances, [0.2, 55 / 255], rtol=1e-6)
    np.testing.assert_array_equal(indices, [1, 0])
    distances, _ = metrics.nearest_neighbour_distances(constant_images(0), constant_images(255))
    assert distances[0] == pytest.approx(1.0)


def test_mean_pairwise_distance_on_known_images():
    assert metrics.mean_pairwise_distance(constant_images(7, 7, 7)) == 0.0
    assert metrics.mean_pairwise_distance(constant_images(0, 255)) == pytest.approx(1.0)
    # Pairs (0, 0), (0, 255), (0, 255): the mean of 0, 1 and 1.
    assert metrics.mean_pairwise_distance(constant_images(0, 0, 255)) == pytest.approx(2 / 3)


def test_mean_pairwise_distance_sampling_agrees_with_all_pairs():
    images = structured_images(100, seed=16)
    exact = metrics.mean_pairwise_distance(images, max_pairs=10_000)
    sampled = metrics.mean_pairwise_distance(images, max_pairs=2_000, seed=1)
    assert sampled == pytest.approx(exact, rel=0.03)
    assert sampled == metrics.mean_pairwise_distance(images, max_pairs=2_000, seed=1)


def test_mean_pairwise_distance_needs_two_images():
    with pytest.raises(DataError, match="at least 2 images"):
        metrics.mean_pairwise_distance(constant_images(0))


# ----------------------------------------------------------------------------- Inception features


def test_inception_features_shapes_with_untrained_network():
    # Random weights suffice to check resizing, preprocessing, batching and the output layout.
    model = metrics.load_inception(weights=None)
    features = metrics.inception_features(structured_images(4, seed=17), model, batch_size=3)
    assert features.shape == (4, 2048) and features.dtype == np.float64
    assert np.all(np.isfinite(features))
    assert not np.allclose(features[0], features[1])


def test_inception_weights_are_fetched_into_the_keras_home_of_the_call(monkeypatch, keras_home):
    import keras

    calls = []

    def fetched(fname, origin, **kwargs):
        calls.append(kwargs)
        return str(keras_home / "models" / fname)

    # Never a real download: on a networked machine that would be 87 MB.
    monkeypatch.setattr(keras.utils, "get_file", fetched)
    path, reason = metrics.inception_weights()
    assert path == str(keras_home / "models" / metrics.INCEPTION_WEIGHTS_FILE)
    assert calls[0]["cache_dir"] == str(keras_home) and calls[0]["cache_subdir"] == "models"
    assert calls[0]["file_hash"] == metrics.INCEPTION_WEIGHTS_MD5
    assert reason.startswith("InceptionV3 ImageNet weights cached at") and "\n" not in reason


def test_inception_weights_report_a_download_failure_on_one_line(monkeypatch, keras_home):
    import keras

    def fail(*args, **kwargs):
        raise OSError("URL fetch failure\n[Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", fail)
    path, reason = metrics.inception_weights()
    assert path is None
    assert "unavailable" in reason and "Name or service not known" in reason and "\n" not in reason
