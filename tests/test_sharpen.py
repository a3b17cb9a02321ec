"""latentween.toyworld.sharpen: the decoder fine-tune that keeps the encoder (so the UNet's latents) as they were."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from latentween.models import toy_model_dir
from latentween.toyworld import sharpen


def test_image_gradients_are_zero_on_flat_images_and_cross_an_edge():
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.count_nonzero(sharpen.image_gradients(flat)) == 0
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1.0  # dark left half, bright right half: a vertical edge
    gx, gy = sharpen.image_gradients(edge)[0]
    assert gx.abs().max() > 0.4 and torch.count_nonzero(gy) == 0
    assert gx[:, 3].abs().min() > 0 and torch.count_nonzero(gx[:, :2]) == 0  # only next to the edge


def test_the_loss_is_pixel_l1_plus_the_l1_of_the_edges_sobel_gradients():
    sharp = torch.zeros(1, 1, 16, 16)
    sharp[..., 8:] = 1.0
    blurred = sharp.clone()
    blurred[..., 7], blurred[..., 8] = 0.25, 0.75
    l1 = torch.nn.functional.l1_loss(blurred, sharp)
    assert l1 == pytest.approx(0.5 * 16 / 256)
    # the edge's slope moves by 0.25 in four columns (16 rows, x and y maps): as much again as the pixels
    assert sharpen.GRADIENT_WEIGHT == 1.0
    assert sharpen.sharpen_loss(blurred, sharp) == pytest.approx(2 * l1)
    assert sharpen.sharpen_loss(sharp, sharp) == 0


@pytest.fixture(scope="module")
def sharpened(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharp") / "model"
    shutil.copytree(toy_model_dir(), folder)
    assert sharpen.main(["--model", str(folder), "--steps", "51", "--seed", "3"]) == 0
    return folder


def test_sharpening_changes_the_decoder_and_not_one_encoder_weight(sharpened):
    before = load_file(toy_model_dir() / "vae" / "diffusion_pytorch_model.safetensors")
    after = load_file(sharpened / "vae" / "diffusion_pytorch_model.safetensors")
    assert before.keys() == after.keys()
    encoder = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    decoder = [k for k in before if k.startswith(("decoder.", "post_quant_conv."))]
    assert encoder and decoder and len(encoder) + len(decoder) == len(before)
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert sum(not torch.equal(before[k], after[k]) for k in decoder) > len(decoder) // 2


def test_sharpening_records_its_run_in_the_training_log(sharpened):
    record = json.loads((sharpened / "train_log.json").read_text())
    info = record["decoder_sharpen"]
    assert info["steps"] == 51 and info["seed"] == 3
    assert 0 <= info["on_manifold_reconstructions"] <= 1
    assert record["unet"]["steps"] == json.loads((toy_model_dir() / "train_log.json").read_text())["unet"]["steps"]


def test_a_sharpened_folder_loads_as_a_model(sharpened, manager):
    components = manager.get(str(sharpened))
    assert components.vae.config.scaling_factor == pytest.approx(1.1026339381979564)
    # the folder does not remember where the run loaded it from
    assert "_name_or_path" not in json.loads((sharpened / "vae" / "config.json").read_text())


def test_sharpening_refuses_a_folder_without_a_training_log(tmp_path):
    with pytest.raises(SystemExit, match="train_log.json"):
        sharpen.main(["--model", str(tmp_path), "--steps", "60"])
