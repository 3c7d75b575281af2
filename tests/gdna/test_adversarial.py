"""The patch discriminator and its losses; the adversarial loss wired into train-gen (tiny corpus): the discriminator
learns, only the detail network and codes feel it, W = 0 keeps the run as it was, resume restores the
discriminator."""

import math
import shutil

import numpy as np
import pytest
import torch

from neuralbody.gdna.discriminator import (DiscriminatorOptions, PatchDiscriminator, cell_weights, discriminator_input,
                                           discriminator_loss, generator_loss, high_pass)

TINY_D = DiscriminatorOptions(channels=8, layers=2)


def _maps(batch, size, z, generator):
    normals = torch.nn.functional.normalize(torch.randn(batch, size, size, 3, generator=generator) * 0.1
                                            + torch.tensor([0.0, 0.0, z]), dim=-1)
    mask = torch.zeros(batch, size, size, dtype=torch.bool)
    mask[:, 2:-2, 4:-4] = True
    return discriminator_input(normals, mask)


def test_discriminator_shapes_inputs_and_guards():
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(TINY_D)
    maps = _maps(3, 16, 1.0, torch.Generator().manual_seed(0))
    assert maps.shape == (3, 4, 16, 16) and bool((maps[:, :3, :2] == 0).all()) and bool((maps[:, 3, 2:-2, 4:-4] == 1).all())
    assert discriminator(maps).shape == (3, 1, 4, 4) and discriminator.stride == 4
    weights = cell_weights(maps, 4)
    assert weights.shape == (3, 1, 4, 4) and float(weights[0, 0, 1, 1]) == 1.0 and float(weights[0, 0, 0, 1]) == 0.5 \
        and float(weights[0, 0, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="multiples of 4"):
        discriminator(maps[:, :, :14, :14])
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        discriminator(maps[:, :3])
    with pytest.raises(ValueError):
        discriminator_input(torch.zeros(2, 8, 8, 3), torch.zeros(2, 8, 7, dtype=torch.bool))
    with pytest.raises(ValueError):
        DiscriminatorOptions(channels=0)
    with pytest.raises(ValueError):
        discriminator_loss(discriminator, maps, maps[:2], 1.0)


def test_losses_known_values_and_a_discriminator_that_learns_to_separate():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    discriminator = PatchDiscriminator(TINY_D)
    for p in discriminator.parameters():
        torch.nn.init.zeros_(p)  # logits 0 everywhere: L_G = ln 2, L_D = 2 ln 2, no R1 gradient
    real, fake = _maps(4, 16, 1.0, generator), _maps(4, 16, -1.0, generator)
    assert generator_loss(discriminator, fake).item() == pytest.approx(math.log(2.0))
    assert discriminator_loss(discriminator, real, fake, 10.0).item() == pytest.approx(2.0 * math.log(2.0))
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(TINY_D)
    assert discriminator_loss(discriminator, real, fake, 1.0).item() > discriminator_loss(discriminator, real, fake,
                                                                                           0.0).item()
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.0, 0.99))
    for _ in range(40):
        loss = discriminator_loss(discriminator, real, fake, 0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert discriminator_loss(discriminator, real, fake, 0.0).item() < 0.5 * 2.0 * math.log(2.0)
    assert generator_loss(discriminator, fake).item() > math.log(2.0)  # the fakes now look fake


def test_high_pass_drops_what_is_constant_on_the_mask_and_keeps_detail():
    generator = torch.Generator().manual_seed(2)
    normals = torch.nn.functional.normalize(torch.randn(2, 12, 12, 3, generator=generator), dim=-1)
    mask = torch.rand(2, 12, 12, generator=generator) > 0.3
    assert torch.equal(high_pass(normals, mask, 0.0), normals * mask[..., None])
    flat = torch.tensor([0.0, 0.6, 0.8]).expand(2, 12, 12, 3)
    assert torch.allclose(high_pass(flat, mask, 2.0), torch.zeros(2, 12, 12, 3), atol=1e-6)  # blurred over the mask only
    shifted = high_pass(normals + torch.tensor([0.1, -0.2, 0.3]), mask, 2.0)
    assert torch.allclose(shifted, high_pass(normals, mask, 2.0), atol=1e-6)  # no low-frequency part gets through
    detail = high_pass(normals, mask, 2.0)
    assert bool((detail[~mask] == 0).all()) and float(detail[mask].norm(dim=-1).mean()) > 0.3
    with pytest.raises(ValueError):
        high_pass(normals, mask, -1.0)


SIZES = dict(occupancy=1024, surface=256)


def _train(corpus, out, weight, steps=40, resume=False):
    from neuralbody.gdna.normal_views import ViewOptions
    from neuralbody.gdna.run_files import train_run
    from neuralbody.gdna.training import TrainSettings
    from neuralbody.gdna.training_data import TargetSizes

    settings = TrainSettings(steps=steps, detail_fraction=(steps - 20) / steps,  # 20 coarse steps
                             scans_per_step=2, points_per_scan=128, lr=5e-3,
                             adversarial_weight=weight, adversarial_crop=16)
    return train_run(corpus, out, settings, sizes=TargetSizes(**SIZES), resume=resume, progress=False,
                     views=ViewOptions(views=2, size=32), discriminator=TINY_D)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_corpus):
    root = tmp_path_factory.mktemp("gdna_adv")
    _train(tiny_corpus, root / "plain", 0.0)
    _train(tiny_corpus, root / "adv", 1.0)
    return root


def test_the_adversarial_term_trains_the_discriminator_and_only_the_detail_side(runs):
    from neuralbody.gdna.adversarial import make_adversary
    from neuralbody.training.checkpoint import load_checkpoint

    plain = load_checkpoint(runs / "plain" / "checkpoint.pt", "cpu")
    adv = load_checkpoint(runs / "adv" / "checkpoint.pt", "cpu")
    assert "adversarial" not in plain and plain["settings"]["adversarial_weight"] == 0.0
    start = make_adversary(TINY_D, 2e-3, 0).discriminator.state_dict()
    trained = adv["adversarial"]["discriminator"]
    assert trained.keys() == start.keys() and not all(torch.equal(trained[k], start[k]) for k in start)
    assert adv["adversarial"]["optimizer"]["state"]  # Adam moments exist: it stepped
    for name, value in plain["model"].items():
        same = torch.equal(value, adv["model"][name])
        assert same == (not name.startswith("detail.")), name  # coarse and colour untouched, detail moved
    assert torch.equal(plain["codes"]["shape"], adv["codes"]["shape"])
    assert torch.equal(plain["codes"]["colour"], adv["codes"]["colour"])
    assert not torch.equal(plain["codes"]["detail"], adv["codes"]["detail"])


def test_resume_restores_the_discriminator_exactly(runs, tiny_corpus, tmp_path):
    from neuralbody.training.checkpoint import load_checkpoint

    copy = tmp_path / "adv"
    shutil.copytree(runs / "adv", copy)
    result = _train(tiny_corpus, copy, 1.0, steps=44, resume=True)
    straight = _train(tiny_corpus, tmp_path / "straight", 1.0, steps=44)
    assert result.new_steps == 4 and straight.state.step == 44
    resumed = load_checkpoint(copy / "checkpoint.pt", "cpu")
    direct = load_checkpoint(tmp_path / "straight" / "checkpoint.pt", "cpu")
    for name, value in direct["adversarial"]["discriminator"].items():
        assert torch.allclose(resumed["adversarial"]["discriminator"][name], value, atol=1e-6), name
    for name, value in direct["model"].items():
        assert torch.allclose(resumed["model"][name], value, atol=1e-6), name
    assert np.isfinite(resumed["last_loss"])


def test_guards(tiny_corpus, tmp_path):
    from neuralbody.gdna.run_files import train_run
    from neuralbody.gdna.training import TrainSettings

    with pytest.raises(ValueError, match="adversarial_weight"):
        TrainSettings(adversarial_weight=-1.0)
    with pytest.raises(ValueError, match="fixed skinning"):
        train_run(tiny_corpus, tmp_path / "r", TrainSettings(steps=2, adversarial_weight=1.0), skinning="learned",
                  progress=False)
