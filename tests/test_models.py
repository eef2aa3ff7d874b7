"""The chollet recipe's networks, layer by layer, against the book's listings 8.29 and 8.30."""

from pathlib import Path

import keras
import pytest

from dcgan.models import build_discriminator, build_generator
from dcgan.params import ModelParams
from dcgan.recipes import load_recipe

REPO = Path(__file__).resolve().parents[1]

# Keras 2's defaults, which the listings rely on and Keras 3 keeps: a bias, Glorot-uniform
# kernels and zero biases, channels last, no dilation.
WEIGHTED = {"use_bias": True, "kernel_initializer": "GlorotUniform",
            "bias_initializer": "Zeros"}
CONV = {**WEIGHTED, "data_format": "channels_last", "dilation_rate": (1, 1)}


def conv(kind, filters, kernel, strides, padding, activation, shape, count):
    settings = {**CONV, "filters": filters, "kernel_size": (kernel, kernel),
                "strides": (strides, strides), "padding": padding, "activation": activation}
    return (kind, shape, count, settings)


def leaky(shape):
    # Keras 2's LeakyReLU(alpha=0.3) default, which the listings keep.
    return ("LeakyReLU", shape, 0, {"negative_slope": 0.3})


# One row per layer after the input: type, output shape, parameter count and the settings the
# listing writes or leaves at Keras 2's defaults. The shapes and counts are those the book's
# notebook printed with Keras 2.0.8 (fchollet/deep-learning-with-python-notebooks,
# 8.5-introduction-to-gans.ipynb).
GENERATOR = [
    ("Dense", (None, 32768), 1_081_344, {**WEIGHTED, "units": 32768, "activation": "linear"}),
    leaky((None, 32768)),
    ("Reshape", (None, 16, 16, 128), 0, {"target_shape": (16, 16, 128)}),
    conv("Conv2D", 256, 5, 1, "same", "linear", (None, 16, 16, 256), 819_456),
    leaky((None, 16, 16, 256)),
    conv("Conv2DTranspose", 256, 4, 2, "same", "linear", (None, 32, 32, 256), 1_048_832),
    leaky((None, 32, 32, 256)),
    conv("Conv2D", 256, 5, 1, "same", "linear", (None, 32, 32, 256), 1_638_656),
    leaky((None, 32, 32, 256)),
    conv("Conv2D", 256, 5, 1, "same", "linear", (None, 32, 32, 256), 1_638_656),
    leaky((None, 32, 32, 256)),
    conv("Conv2D", 3, 7, 1, "same", "tanh", (None, 32, 32, 3), 37_635),
]

# The book's last layer is Dense(1, activation='sigmoid'); here it outputs the logit and the
# sigmoid is part of the loss (dcgan.losses).
DISCRIMINATOR = [
    conv("Conv2D", 128, 3, 1, "valid", "linear", (None, 30, 30, 128), 3_584),
    leaky((None, 30, 30, 128)),
    conv("Conv2D", 128, 4, 2, "valid", "linear", (None, 14, 14, 128), 262_272),
    leaky((None, 14, 14, 128)),
    conv("Conv2D", 128, 4, 2, "valid", "linear", (None, 6, 6, 128), 262_272),
    leaky((None, 6, 6, 128)),
    conv("Conv2D", 128, 4, 2, "valid", "linear", (None, 2, 2, 128), 262_272),
    leaky((None, 2, 2, 128)),
    ("Flatten", (None, 512), 0, {"data_format": "channels_last"}),
    ("Dropout", (None, 512), 0, {"rate": 0.4, "noise_shape": None}),
    ("Dense", (None, 1), 513, {**WEIGHTED, "units": 1, "activation": "linear"}),
]


def book_params() -> ModelParams:
    # The networks recipes/chollet.yaml asks for: what `python -m dcgan.recipes chollet` runs.
    model, _ = load_recipe("chollet", REPO / "params.yaml")
    return model


def describe(layer):
    """The type, output shape, parameter count and config of `layer`, initialisers by name."""
    config = layer.get_config()
    for key in ("kernel_initializer", "bias_initializer"):
        if key in config:
            config[key] = config[key]["class_name"]
    return type(layer).__name__, tuple(layer.output.shape), layer.count_params(), config


@pytest.mark.parametrize("build, table", [(build_generator, GENERATOR),
                                          (build_discriminator, DISCRIMINATOR)],
                         ids=["generator", "discriminator"])
def test_layers_are_the_books(build, table):
    # Parameter counts alone would pass networks the book does not have: an upsampling and a
    # 4x4 convolution in place of the transposed one, with a sigmoid output, count the same.
    model = build(book_params())
    assert isinstance(model.layers[0], keras.layers.InputLayer)
    layers = model.layers[1:]
    assert [type(layer).__name__ for layer in layers] == [row[0] for row in table]
    for index, (layer, row) in enumerate(zip(layers, table)):
        kind, shape, count, config = describe(layer)
        expected_kind, expected_shape, expected_count, expected_settings = row
        found = {key: config.get(key, "<missing>") for key in expected_settings}
        assert (kind, shape, count, found) == (
            expected_kind, expected_shape, expected_count, expected_settings), (
            f"layer {index} ({layer.name})")
