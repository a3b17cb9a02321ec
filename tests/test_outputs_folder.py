"""The output folder as one typed thing (issue 18): which frames are final, whose manifest it is, and
the manifest's bytes as the engine writes them."""
import json

from latentween.outputs import Manifest, OutputFolder


def folder_with(tmp_path, frames, on_disk, key="job-a"):
    """A folder whose manifest lists `frames` (index -> entry fields) and holds the files of `on_disk`."""
    folder = OutputFolder(tmp_path)
    folder.write_manifest({"job_key": key, "status": "running",
                           "frames": [{"index": i, "fraction": i / 4, "file": None, **entry} for i, entry in frames.items()]})
    for index in on_disk:
        folder.frame_path(index).write_bytes(b"png")
    return folder


def test_a_frame_listed_as_written_and_on_disk_is_finished(tmp_path):
    folder = folder_with(tmp_path, {0: {"file": "frame_00000.png"}}, on_disk=[0])
    assert folder.finished_frames() == [0]


def test_a_frame_listed_but_missing_on_disk_is_not_finished(tmp_path):
    folder = folder_with(tmp_path, {0: {"file": "frame_00000.png"}, 1: {"file": "frame_00001.png"}}, on_disk=[0])
    assert folder.finished_frames() == [0]


def test_a_frame_on_disk_but_not_listed_as_written_is_not_finished(tmp_path):
    folder = folder_with(tmp_path, {0: {"file": "frame_00000.png"}, 1: {}}, on_disk=[0, 1])
    assert folder.finished_frames() == [0]


def test_a_resumed_frame_whose_name_the_manifest_lacks_is_finished(tmp_path):
    folder = folder_with(tmp_path, {2: {"resumed": True}}, on_disk=[2])
    assert folder.finished_frames() == [2]


def test_a_manifest_of_another_job_is_not_read(tmp_path):
    folder = folder_with(tmp_path, {0: {"file": "frame_00000.png"}}, on_disk=[0], key="job-a")
    assert folder.manifest("job-b") is None
    assert folder.manifest("job-a").job_key == "job-a"


def test_no_manifest_means_no_finished_frames(tmp_path):
    folder = OutputFolder(tmp_path)
    folder.frame_path(0).write_bytes(b"png")
    assert folder.manifest() is None and folder.finished_frames() == []


def test_an_unreadable_manifest_is_none(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    assert OutputFolder(tmp_path).manifest() is None


def test_the_typed_manifest_keeps_the_fields_it_does_not_name(tmp_path):
    folder = folder_with(tmp_path, {0: {"file": "frame_00000.png", "seed": 7}}, on_disk=[])
    manifest = folder.manifest()
    assert isinstance(manifest, Manifest) and manifest.frames[0].model_extra == {"seed": 7}


def test_the_manifest_is_written_as_indented_json_in_the_given_key_order(tmp_path):
    manifest = {"status": "running", "job_key": "k", "frames": [{"index": 0, "file": None}]}
    OutputFolder(tmp_path).write_manifest(manifest)
    assert (tmp_path / "manifest.json").read_bytes() == json.dumps(manifest, indent=2).encode()


def test_morph_still_exports_the_output_folder():
    from latentween import morph, outputs

    assert morph.OutputFolder is outputs.OutputFolder and morph.FRAME_PATTERN == outputs.FRAME_PATTERN


def test_shipped_frame_files_are_the_folders_own_names():
    from latentween.farm.files import frame_files

    assert frame_files([3], "output/") == ["output/frame_00003.png", "output/.latentween/latent_00003.safetensors",
                                           "output/manifest.json"]


def test_the_ordered_sink_takes_no_frames_from_another_jobs_manifest(tmp_path):
    from latentween.media.ordered import OrderedSink

    folder = folder_with(tmp_path, {0: {"file": "frame_00000.png"}}, on_disk=[0], key="old")
    sink = OrderedSink([folder.frame_path(0)], writer=None)  # a frame it took would fail on the missing writer
    sink.watch(tmp_path, 1, key="new").progress({"stage": "inversion"})
    assert sink.position == 0
