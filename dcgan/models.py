"""The generator and discriminator networks, one builder per `model.architecture`."""

from __future__ import annotations

import keras
from keras import layers, ops

from dcgan.params import ModelParams
from dcgan.pixels import CHANNELS, IMAGE_SHAPE


class _SaveAllVariables:
    # Conv and Dense save only their kernel and bias; the power-iteration vector must travel
    # with them, so these layers use the generic Layer behaviour that saves every variable.

    def save_own_variables(self, store):
        layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        layers.Layer.load_own_variables(self, store)


@keras.saving.register_keras_serializable(package="dcgan")
class SpectralConv2D(_SaveAllVariables, layers.Conv2D):
    """Conv2D whose kernel is divided by its largest singular value (Miyato et al. 2018).

    Unlike keras.layers.SpectralNormalization, which overwrites the kernel with its normalised
    value, the division stays inside the graph, so gradients flow through the normalisation as
    in the paper. One power iteration per training call refines the singular vector estimate.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.vector_u = self.add_weight(
            shape=(1, self.filters), initializer=keras.initializers.RandomNormal(),
            trainable=False, name="vector_u")

    def normalized_kernel(self, training):
        return _spectral_normalize(self.kernel, self.vector_u, training)

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="dcgan")
class SpectralDense(_SaveAllVariables, layers.Dense):
    """Dense layer with a spectrally normalised kernel; see SpectralConv2D."""

    def build(self, input_shape):
        super().build(input_shape)
        self.vector_u = self.add_weight(
            shape=(1, self.units), initializer=keras.initializers.RandomNormal(),
            trainable=False, name="vector_u")

    def call(self, inputs, training=False):
        outputs = ops.matmul(inputs, _spectral_normalize(self.kernel, self.vector_u, training))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


def _spectral_normalize(kernel, vector_u, training):
    matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
    u = ops.stop_gradient(ops.convert_to_tensor(vector_u))
    v = _l2_normalize(ops.matmul(u, ops.transpose(ops.stop_gradient(matrix))))
    u = _l2_normalize(ops.matmul(v, ops.stop_gradient(matrix)))
    if training:
        vector_u.assign(u)
    sigma = ops.sum(ops.matmul(v, matrix) * u)
    return kernel / sigma


def _l2_normalize(x):
    return x / ops.sqrt(ops.sum(ops.square(x)) + 1e-12)


@keras.saving.register_keras_serializable(package="dcgan")
class MinibatchStddev(layers.Layer):
    """Appends one channel: how much the images of each group differ (Karras et al. 2018).

    The batch is cut into groups of `group_size` consecutive images; each image gets its
    group's standard deviation, taken over the group for every feature and then averaged, as
    a constant feature map. A generator that collapses gives groups with a small spread,
    which the discriminator can see. Groups are consecutive so that a batch of fakes followed
    by as many reals, as the discriminator step builds, never mixes the two in one group.
    """

    def __init__(self, group_size: int, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, inputs):
        batch, height, width, channels = inputs.shape
        if batch is not None and batch % self.group_size:
            raise ValueError(f"a batch of {batch} images does not split into groups of "
                             f"{self.group_size} (model.minibatch_std_group)")
        groups = ops.reshape(ops.cast(inputs, "float32"),
                             (-1, self.group_size, height, width, channels))
        spread = ops.mean(ops.sqrt(ops.var(groups, axis=1) + 1e-8), axis=(1, 2, 3))
        per_image = ops.repeat(spread, self.group_size, axis=0)
        feature = ops.ones_like(inputs[..., :1]) * ops.cast(
            ops.reshape(per_image, (-1, 1, 1, 1)), inputs.dtype)
        return ops.concatenate([inputs, feature], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


@keras.saving.register_keras_serializable(package="dcgan")
class Blur(layers.Layer):
    """Low-pass filters each channel with [1, 2, 1] x [1, 2, 1] / 16, zeros beyond the edges.

    Before a strided convolution it keeps the detail the stride cannot represent from aliasing
    into the coarser side (Zhang 2019; StyleGAN2 blurs before each downsampling), so the
    discriminator's gradients carry no checkerboard for the generator to copy. It has no
    weights.
    """

    def call(self, inputs):
        taps = ops.convert_to_tensor([1.0, 2.0, 1.0], dtype=inputs.dtype) / 4
        kernel = ops.tile(ops.reshape(ops.outer(taps, taps), (3, 3, 1, 1)),
                          (1, 1, inputs.shape[-1], 1))
        return ops.depthwise_conv(inputs, kernel, padding="same")


@keras.saving.register_keras_serializable(package="dcgan")
class NoiseInput(layers.Layer):
    """Adds a one-channel noise map to its feature maps, scaled per channel (Karras et al. 2019).

    StyleGAN's noise inputs: the scales start at zero and are learned, so the generator takes
    as much per-pixel randomness as helps it draw stochastic detail. The noise comes in as an
    input rather than from a random op, so that a generator stays a pure function of its
    input vector.
    """

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[0][-1],), initializer="zeros",
                                     name="scale")

    def call(self, inputs):
        features, noise = inputs
        return features + ops.cast(noise, features.dtype) * ops.cast(self.scale, features.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="dcgan")
class PixelShuffle(layers.Layer):
    """Moves each position's channels, four groups of them, into a 2x2 block (Shi et al. 2016).

    The sub-pixel convolution's rearrangement, as tf.nn.depth_to_space with block 2: the
    channels at a position are the four pixels of its block, row by row, each a whole group
    of a quarter of the channels. A convolution before it gives each of the four pixels its
    own kernel, where nearest-neighbour upsampling and a convolution after it share one.
    """

    def call(self, inputs):
        _, height, width, channels = inputs.shape
        blocks = ops.reshape(inputs, (-1, height, width, 2, 2, channels // 4))
        rows = ops.transpose(blocks, (0, 1, 3, 2, 4, 5))
        return ops.reshape(rows, (-1, 2 * height, 2 * width, channels // 4))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, 2 * height, 2 * width, channels // 4)


@keras.saving.register_keras_serializable(package="dcgan")
class SubpixelInitializer(keras.initializers.Initializer):
    """Glorot-uniform kernels for a quarter of the channels, repeated for each of the four.

    ICNR (Aitken et al. 2017): before a PixelShuffle, the four pixels of every block start
    with the same kernel, so the sub-pixel convolution starts as nearest-neighbour upsampling
    of a convolution, free of the checkerboard that four unrelated kernels would paint.
    """

    def __init__(self, seed=None):
        self.base = keras.initializers.GlorotUniform(seed)

    def __call__(self, shape, dtype=None):
        *kernel, channels = shape
        return ops.tile(self.base((*kernel, channels // 4), dtype), (1,) * len(kernel) + (4,))

    def get_config(self):
        return {"seed": self.base.seed}


# The sides of the compact generator's upsampled stages, each of which gets a noise map.
_NOISE_SIDES = (8, 16, 32)


def generator_input_size(params: ModelParams) -> int:
    """The length of the generator's input vector: the latent, then any noise maps, flattened."""
    return params.latent_dim + _noise_size(params.noise_inputs)


def _noise_size(noise_inputs: bool) -> int:
    return sum(side * side for side in _NOISE_SIDES) if noise_inputs else 0


def build_generator(params: ModelParams) -> keras.Model:
    """Builds the generator for `params.architecture`: input vectors (the latent, then any
    noise maps; see generator_input_size) in, images out: in [-1, 1] but for model.g_output
    linear's."""
    if params.architecture == "chollet":
        return _chollet_generator(params.latent_dim, params.width)
    if params.architecture == "resnet":
        return _resnet_generator(params.latent_dim, params.width, params.upsample,
                                 params.g_self_modulation)
    return _compact_generator(params.latent_dim, params.width, params.g_top_multiplier,
                              params.upsample, params.noise_inputs, params.g_top_convs,
                              params.g_skip, params.g_output, params.g_self_modulation)


def build_discriminator(params: ModelParams) -> keras.Model:
    """Builds the discriminator for `params.architecture`: images in, one logit per image out,
    followed by one per 16x16 location where model.d_local_loss is patches."""
    if params.architecture == "chollet":
        return _chollet_discriminator(params.width, params.dropout)
    if params.architecture == "resnet":
        return _resnet_discriminator(params.width, params.dropout, params.spectral_norm,
                                     params.minibatch_std_group)
    return _compact_discriminator(params.width, params.dropout, params.spectral_norm,
                                  params.minibatch_std_group, params.d_top_convs, params.d_blur,
                                  params.d_local_head, params.d_local_loss)


def _chollet_generator(latent_dim: int, width: int) -> keras.Model:
    # Deep Learning with Python, listing 8.29, with width 128. LeakyReLU keeps Keras's default
    # slope of 0.3, as in the book.
    latent = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Dense(width * 16 * 16)(latent)
    x = layers.LeakyReLU()(x)
    x = layers.Reshape((16, 16, width))(x)
    x = layers.Conv2D(2 * width, 5, padding="same")(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2DTranspose(2 * width, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2D(2 * width, 5, padding="same")(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2D(2 * width, 5, padding="same")(x)
    x = layers.LeakyReLU()(x)
    image = layers.Conv2D(CHANNELS, 7, padding="same", activation="tanh", dtype="float32")(x)
    return keras.Model(latent, image, name="generator")


def _chollet_discriminator(width: int, dropout: float) -> keras.Model:
    # Listing 8.30. The book ends in a sigmoid; here the sigmoid lives in the loss, whose
    # `book` variant also clips the probabilities as Keras 2's binary_crossentropy did.
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(width, 3)(image)
    x = layers.LeakyReLU()(x)
    for _ in range(3):
        x = layers.Conv2D(width, 4, strides=2)(x)
        x = layers.LeakyReLU()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    logit = layers.Dense(1, dtype="float32")(x)
    return keras.Model(image, logit, name="discriminator")


def _compact_generator(latent_dim: int, width: int, top_multiplier: int, upsample: str,
                       noise_inputs: bool, top_convs: int, skip: bool, output: str,
                       self_modulation: int) -> keras.Model:
    # The DCGAN generator of Radford et al. 2016 at 32x32: 4x4 -> 8x8 -> 16x16 -> 32x32, each
    # upsampling halving the channels, batch normalisation and ReLU between. Upsampling
    # (nearest-neighbour or bilinear) followed by a 3x3 convolution replaces the transposed
    # convolution, whose uneven overlap paints checkerboard patterns (Odena et al. 2016); on frogs
    # it did. `upsample` subpixel makes them a sub-pixel convolution instead (see
    # _upsampling_convolution). `top_multiplier` widens the 32x32 stage alone, where the fine detail
    # is drawn, and `top_convs` adds 3x3 convolutions there, each with its batch normalisation and
    # ReLU. With `noise_inputs`, the input vector carries a noise map for each upsampled stage after
    # the latent, added after its batch normalisation. With `skip`, StyleGAN2's skip generator
    # (Karras et al. 2020): every stage from 4x4 up paints an RGB image of its own side (a 1x1
    # convolution; the last stage's 3x3 one), and the images, each upsampled bilinearly to the next
    # side, add up before the tanh, so that the coarse stages paint the coarse image and the finer
    # ones the detail on it. A tanh reaches the ends of the pixel range, where real images clip to
    # black and white, only as its input grows without bound: `output` hard_tanh clips to the range
    # instead, as a camera does, and linear drops the activation, as StyleGAN's generators do, its
    # images clipped to the range only when they are saved (pixels.to_uint8). With `self_modulation`
    # a side, the scale and shift of each batch normalisation at that side and every finer one are
    # functions of the latent (see _batch_norm): 32, those of the 32x32 stage alone, whose features
    # the last convolution paints the fine detail from; 4, every one; 0, none.
    latent = keras.Input(shape=(latent_dim + _noise_size(noise_inputs),), name="latent")
    z = latent[:, :latent_dim] if noise_inputs else latent
    x = layers.Dense(4 * 4 * 8 * width, use_bias=False)(z)
    x = layers.Reshape((4, 4, 8 * width))(x)
    x = _batch_norm(x, _modulation(z, self_modulation, 4))
    x = layers.ReLU()(x)
    rgb = _skip_rgb(None, x) if skip else None
    offset = latent_dim
    for multiplier, side in zip((4, 2, top_multiplier), _NOISE_SIDES):
        x = _upsampling_convolution(x, multiplier * width, upsample, side)
        x = _batch_norm(x, _modulation(z, self_modulation, side))
        if noise_inputs:
            noise = layers.Reshape((side, side, 1))(latent[:, offset:offset + side * side])
            x = NoiseInput()([x, noise])
            offset += side * side
        x = layers.ReLU()(x)
        if skip and side < 32:
            rgb = _skip_rgb(rgb, x)
    for _ in range(top_convs):
        x = layers.Conv2D(top_multiplier * width, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(_batch_norm(x, _modulation(z, self_modulation, 32)))
    if not skip:
        image = layers.Conv2D(CHANNELS, 3, padding="same", activation=output,
                              dtype="float32")(x)
        return keras.Model(latent, image, name="generator")
    top = layers.Conv2D(CHANNELS, 3, padding="same", dtype="float32")(x)
    coarse = layers.UpSampling2D(2, interpolation="bilinear", dtype="float32")(rgb)
    image = layers.Activation(output, dtype="float32")(
        layers.Add(dtype="float32")([coarse, top]))
    return keras.Model(latent, image, name="generator")


def _upsampling_convolution(x, channels: int, upsample: str, side: int):
    # The compact generator's upsampling to `side` and the 3x3 convolution that follows it.
    # subpixel and subpixel_top (32x32 alone) make them one sub-pixel convolution: a 3x3
    # convolution at the side before, to four times the channels, then a PixelShuffle. It
    # costs what they cost, and each pixel of a 2x2 block has its own kernel, so the detail
    # at the finest period is drawn by the convolution, not left to the 2x2 blocks.
    if upsample == "subpixel" or (upsample == "subpixel_top" and side == 32):
        x = layers.Conv2D(4 * channels, 3, padding="same", use_bias=False,
                          kernel_initializer=SubpixelInitializer())(x)
        return PixelShuffle()(x)
    x = layers.UpSampling2D(2, interpolation=_interpolation(upsample, side))(x)
    return layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)


def _interpolation(upsample: str, side: int) -> str:
    # model.upsample for the upsampling to `side`: bilinear_top upsamples bilinearly to 32x32
    # alone, where nearest-neighbour upsampling leaves its 2x2 blocks in the finest detail.
    if upsample == "bilinear_top":
        return "bilinear" if side == 32 else "nearest"
    return "nearest" if upsample == "subpixel_top" else upsample


def _modulation(z, coarsest: int, side: int):
    """The latent that modulates a generator batch normalisation at `side` where
    model.g_self_modulation is `coarsest`, or None where it is plain."""
    return z if coarsest and side >= coarsest else None


def _batch_norm(x, modulation):
    # Batch normalisation; given the latent as `modulation`, that of self-modulated GANs (Chen
    # et al. 2019): its scale and shift are each image's own, a linear map of a 32-unit ReLU
    # layer of the latent, made for this normalisation alone, the scale's bias starting at 1
    # as compare_gan's does. A latent can then turn a feature map up or down image by image.
    if modulation is None:
        return layers.BatchNormalization(synchronized=True)(x)
    channels = x.shape[-1]
    x = layers.BatchNormalization(synchronized=True, center=False, scale=False)(x)
    hidden = layers.Dense(32, activation="relu")(modulation)
    scale = layers.Dense(channels, bias_initializer="ones")(hidden)
    shift = layers.Dense(channels)(hidden)
    per_image = layers.Reshape((1, 1, channels))
    return layers.Add()([layers.Multiply()([x, per_image(scale)]), per_image(shift)])


def _skip_rgb(rgb, x):
    # The skip generator's running image: this stage's RGB, plus the one before upsampled.
    own = layers.Conv2D(CHANNELS, 1, dtype="float32")(x)
    if rgb is None:
        return own
    return layers.Add(dtype="float32")(
        [layers.UpSampling2D(2, interpolation="bilinear", dtype="float32")(rgb), own])


def _compact_discriminator(width: int, dropout: float, spectral_norm: bool,
                           minibatch_std_group: int, top_convs: int, blur: bool,
                           local_head: bool, local_loss: str) -> keras.Model:
    # DCGAN's discriminator: a 3x3 convolution at 32x32, then strided 4x4 convolutions down to
    # 4x4, each doubling the channels. `top_convs` adds 3x3 convolutions at 32x32 (SNGAN's
    # standard CNN has two convolutions at every side), so that the discriminator looks longer
    # at the fine detail before its first stride. `blur` low-passes the features before each
    # strided convolution (see Blur). `local_head` scores every location of the 16x16
    # features, each of which sees a 6x6 patch of the image, with a small 1x1 network, so the
    # generator is judged on its fine detail everywhere, not only through the features that
    # reach 4x4. With `local_loss` mean the scores' mean joins the logit; with patches they
    # follow it as outputs of their own, each judged by the loss as PatchGAN's (Isola et al.
    # 2017) are, beside the global head.
    conv = SpectralConv2D if spectral_norm else layers.Conv2D
    dense = SpectralDense if spectral_norm else layers.Dense
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = image
    for _ in range(1 + top_convs):
        x = conv(width, 3, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    local = None
    for multiplier in (2, 4, 8):
        if blur:
            x = Blur()(x)
        x = conv(multiplier * width, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
        if local_head and multiplier == 2:  # the 16x16 features, after the first stride
            # Layers made in this order, as before `local_loss`, since each draws its initial
            # weights' seed when it is made.
            scores = layers.LeakyReLU(0.2)(conv(multiplier * width, 1)(x))
            gather = (layers.GlobalAveragePooling2D if local_loss == "mean"
                      else layers.Flatten)(dtype="float32")
            local = gather(conv(1, 1, dtype="float32")(scores))
    if minibatch_std_group > 0:
        x = MinibatchStddev(minibatch_std_group)(x)
    x = layers.Flatten()(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    logit = dense(1, dtype="float32")(x)
    if local is not None:
        join = layers.Add if local_loss == "mean" else layers.Concatenate
        logit = join(dtype="float32")([logit, local])
    return keras.Model(image, logit, name="discriminator")


# The residual networks of Miyato et al. 2018 (SNGAN) for CIFAR-10, at `width` channels
# throughout (SNGAN uses 256 in the generator and 128 in the discriminator).

def _residual_up(x, width: int, interpolation: str, modulation, upsampled_modulation):
    # SNGAN's up block; its batch normalisations self-modulated by the latent given for each
    # side (see _batch_norm), the block's input side and the side it upsamples to.
    shortcut = layers.Conv2D(width, 1)(layers.UpSampling2D(2, interpolation=interpolation)(x))
    x = layers.ReLU()(_batch_norm(x, modulation))
    x = layers.Conv2D(width, 3, padding="same")(
        layers.UpSampling2D(2, interpolation=interpolation)(x))
    x = layers.ReLU()(_batch_norm(x, upsampled_modulation))
    x = layers.Conv2D(width, 3, padding="same")(x)
    return layers.Add()([x, shortcut])


def _resnet_generator(latent_dim: int, width: int, upsample: str,
                      self_modulation: int) -> keras.Model:
    # `self_modulation` as the compact generator's, each block's first normalisation at its
    # input's side and its second at the side it upsamples to: 32, the last block's second
    # and the one before the output convolution.
    latent = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Reshape((4, 4, width))(layers.Dense(4 * 4 * width)(latent))
    for side in (4, 8, 16):
        x = _residual_up(x, width, _interpolation(upsample, 2 * side),
                         _modulation(latent, self_modulation, side),
                         _modulation(latent, self_modulation, 2 * side))
    x = layers.ReLU()(_batch_norm(x, _modulation(latent, self_modulation, 32)))
    image = layers.Conv2D(CHANNELS, 3, padding="same", activation="tanh", dtype="float32")(x)
    return keras.Model(latent, image, name="generator")


def _residual_down(x, width: int, conv, downsample: bool, first: bool):
    # The first block sees the image itself, so it starts with a convolution, not a ReLU, and
    # pools its shortcut before the 1x1 convolution (SNGAN's "optimized" block).
    shortcut = x
    if first:
        shortcut = conv(width, 1)(layers.AveragePooling2D(2)(shortcut))
    elif downsample or x.shape[-1] != width:
        shortcut = conv(width, 1)(shortcut)
        if downsample:
            shortcut = layers.AveragePooling2D(2)(shortcut)
    if not first:
        x = layers.ReLU()(x)
    x = conv(width, 3, padding="same")(x)
    x = conv(width, 3, padding="same")(layers.ReLU()(x))
    if downsample:
        x = layers.AveragePooling2D(2)(x)
    return layers.Add()([x, shortcut])


def _resnet_discriminator(width: int, dropout: float, spectral_norm: bool,
                          minibatch_std_group: int) -> keras.Model:
    conv = SpectralConv2D if spectral_norm else layers.Conv2D
    dense = SpectralDense if spectral_norm else layers.Dense
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = _residual_down(image, width, conv, downsample=True, first=True)
    x = _residual_down(x, width, conv, downsample=True, first=False)
    if minibatch_std_group > 0:
        # At 8x8, so that the last two blocks can use the spread, not only the last layer.
        x = MinibatchStddev(minibatch_std_group)(x)
    for _ in range(2):
        x = _residual_down(x, width, conv, downsample=False, first=False)
    # Summed, not averaged, over the 8x8 positions, as SNGAN does.
    x = layers.GlobalAveragePooling2D()(layers.ReLU()(x)) * 64.0
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    logit = dense(1, dtype="float32")(x)
    return keras.Model(image, logit, name="discriminator")
