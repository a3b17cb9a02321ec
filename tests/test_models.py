"""Model loading through the real loaders: folders, single files, hub ids; one-line errors."""
import numpy as np
import pytest
import torch

from latentween.errors import ModelError
from latentween.models import ModelManager, resolve_model
from latentween.pipeline import InterpolationPipeline, InterpolationRequest


def test_a_diffusers_folder_resolves_as_a_folder(tiny_model):
    assert resolve_model(str(tiny_model)).kind == "folder"


def test_a_safetensors_file_resolves_as_a_single_file(tiny_model):
    assert resolve_model(str(tiny_model / "single_file.safetensors")).kind == "single-file"


def test_an_owner_slash_name_resolves_as_a_hub_id():
    assert resolve_model("stable-diffusion-v1-5/stable-diffusion-v1-5").kind == "hub"


@pytest.mark.parametrize("spec, words", [
    ("/no/such/folder/model.safetensors", "does not exist"),
    ("./missing-folder/", "does not exist"),
    ("not a model", "neither"),
])
def test_bad_model_names_give_one_clear_error(spec, words):
    with pytest.raises(ModelError, match=words):
        resolve_model(spec)


def test_a_folder_without_model_index_is_refused(tmp_path):
    with pytest.raises(ModelError, match="model_index.json"):
        resolve_model(str(tmp_path))


def test_a_hub_model_missing_offline_names_the_model_and_the_way_out():
    with pytest.raises(ModelError) as info:
        ModelManager().get("someone/not-downloaded-model")
    message = str(info.value)
    assert "someone/not-downloaded-model" in message and "HF_HUB_OFFLINE" in message and "\n" not in message


def test_a_corrupt_checkpoint_file_gives_one_clear_error(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="broken.safetensors"):
        ModelManager().get(str(bad))


def test_single_file_checkpoint_loads_the_same_weights_as_the_folder(manager, tiny_model, components):
    from latentween.settings import RuntimeSettings

    single = ModelManager(RuntimeSettings(checkpoint_config=str(tiny_model))).get(str(tiny_model / "single_file.safetensors"))
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(single, name).state_dict(), getattr(components, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_single_file_checkpoint_gives_the_same_frames(tiny_model, components, keyframe_arrays):
    from latentween.settings import RuntimeSettings

    single = ModelManager(RuntimeSettings(checkpoint_config=str(tiny_model))).get(str(tiny_model / "single_file.safetensors"))
    req = InterpolationRequest(fractions=[0, 0.5, 1], seed=1, steps=10)
    a = InterpolationPipeline.from_components(single)(keyframe_arrays, req)
    b = InterpolationPipeline.from_components(components)(keyframe_arrays, req)
    assert np.array_equal(a[0].image, b[0].image)


def test_single_file_without_configs_offline_says_how_to_fix_it(tiny_model):
    with pytest.raises(ModelError, match="--checkpoint-config"):
        ModelManager().get(str(tiny_model / "single_file.safetensors"))


def test_the_manager_keeps_a_loaded_model_and_evicts_the_least_recent(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    manager = ModelManager(max_loaded=1)
    first = manager.get(str(tiny_model))
    assert manager.get(str(tiny_model)) is first
    manager.get(str(copy))
    assert manager.loaded() == [str(copy)]


def test_auto_device_on_a_machine_without_gpu_is_cpu_float32():
    manager = ModelManager()
    if torch.cuda.is_available():
        assert manager.dtype == torch.float16
    else:
        assert (manager.device.type, manager.dtype) in {("cpu", torch.float32), ("mps", torch.float32)}


def test_asking_for_cuda_works_with_cuda_and_is_a_clear_error_without():
    from latentween.settings import RuntimeSettings

    if torch.cuda.is_available():
        assert ModelManager(RuntimeSettings(device="cuda")).device.type == "cuda"
    else:
        with pytest.raises(ModelError, match="CUDA is not available"):
            ModelManager(RuntimeSettings(device="cuda"))
