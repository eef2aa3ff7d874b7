"""Training on several devices: the host's CPU split in two stands in for two GPUs."""

import pytest

from two_devices import run_on_two_devices

# Every discriminator regulariser at once, ADA, the average's standing statistics, the minibatch
# spread and the generator's noise inputs: the regularisers divide by the global batch, LeCam's
# anchors average over both devices, ADA sums the signs of the outputs on reals over both
# devices, the spread's groups must stay within each device's share of the batch, and the noise
# inputs' slices and scales must work inside each replica. Six steps end mid-way through ADA's
# second interval, with the chance moved once and two steps' signs counted.
LEVERS = {"train__r1_gamma": 10.0, "train__r1_every": 1, "train__lecam_weight": 10.0,
          "train__consistency_weight": 10.0, "train__ema_bn_batches": 2,
          "model__minibatch_std_group": 2, "model__noise_inputs": True,
          "train__augment_probability": 0.5, "train__augment_target": 0.6,
          "train__augment_ramp": 128, "train__iterations": 6}
# The compact recipe as it is, but for a lazy R1 strong enough to show and growing over the run:
# both compiled steps, a weight that each replica reads from the step counter, and the
# penalty's two parts weighed apart on each replica's gradients.
LAZY_R1 = {"train__r1_gamma": 10.0, "train__r1_every": 2, "train__r1_gamma_growth": 3.0,
           "train__r1_coarse_weight": 0.5, "train__r1_fine_weight": 2.0}
# The local head's scores judged one by one, with the regularisers that read them: each
# replica's patch losses divide by the global batch as the head's do. And a clipped output,
# a self-modulated generator, and top-k, whose fakes are ranked over both devices' shares.
PATCHES = {"model__d_local_head": True, "model__d_local_loss": "patches",
           "model__g_output": "hard_tanh", "model__g_self_modulation": 4,
           "train__r1_gamma": 10.0, "train__r1_every": 1, "train__lecam_weight": 10.0,
           "train__consistency_weight": 10.0, "train__g_top_k": 0.5}
# Every compact case ends on the recipe's late batch, four times the batch: each replica's share
# grows, and the losses, accuracies and LeCam's anchors divide by the larger global batch.
CASES = {"chollet": ("chollet", {}), "levers": ("compact", LEVERS),
         "lazy-r1": ("compact", LAZY_R1), "patches": ("compact", PATCHES)}

# Each tiny recipe trains on one device and on two; the losses must agree.
CODE = """
from tiny import random_images, recipe
from dcgan import training
from dcgan.engine import Engine
images = random_images(64)
results = {{}}
for case, (name, overrides) in {cases!r}.items():
    model, train = recipe(name, late=True, **{{"model__dropout": 0.0, "train__iterations": 4,
                                               "train__deterministic": False, **overrides}})
    for devices, strategy in ((1, tf.distribute.get_strategy()), (2, mirrored)):
        result = training.fit(images, model, train, {folder!r} + f"/{{case}}-{{devices}}", "d",
                              engine=Engine(strategy, jit_compile=False, precision="float32"))
        results[f"{{case}} {{devices}}"] = {{
            "devices": result.gan.engine.replicas,
            "losses": [[r["d_loss"], r["g_loss"]] for r in result.log_rows],
            "anchors": result.gan.lecam_anchors.numpy().tolist(),
            "augment": (None if result.gan.augment_state is None
                        else result.gan.augment_state.numpy().tolist())}}
"""

# Float sums split over two devices add up in another order; nothing else differs.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return run_on_two_devices(CODE.format(cases=CASES,
                                          folder=str(tmp_path_factory.mktemp("checkpoints"))))


@pytest.mark.parametrize("case", list(CASES))
def test_two_devices_match_one_device(runs, case):
    one, two = runs[f"{case} 1"], runs[f"{case} 2"]
    assert one["devices"] == 1 and two["devices"] == 2
    assert len(one["losses"]) == len(two["losses"]) == CASES[case][1].get("train__iterations", 4)
    for first, second in zip(one["losses"], two["losses"]):
        assert first == pytest.approx(second, rel=TOLERANCE, abs=TOLERANCE)
    # The anchors are a hundredth of mean logits near zero, so their error is an absolute one.
    assert one["anchors"] == pytest.approx(two["anchors"], abs=1e-6)
    # ADA's chance, its sum of signs and its count of reals are whole numbers of steps' reals.
    assert one["augment"] == two["augment"]
