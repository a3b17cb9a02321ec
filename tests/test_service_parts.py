"""The daemon's parts (issue 18): typed messages dispatched by type, one sink for every way a report
travels, the event hub, and the worker process's listener that stops it when the daemon goes."""
import multiprocessing
import pickle
import queue

import pytest

from latentween.progress import Progress
from latentween.server.events import EventHub
from latentween.server.messages import (Await, Exit, Finished, Frames, Job, ModelError, Models, Progressed, Sink,
                                        deliver)


class FakeRecorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


class Loop:
    """An event loop that runs what it is handed at once."""

    def __init__(self, closed=False):
        self.closed = closed

    def call_soon_threadsafe(self, callback, *args):
        if self.closed:
            raise RuntimeError("Event loop is closed")
        callback(*args)


@pytest.mark.parametrize("message, call", [
    (Progressed(Progress(done=1, total=4, stage="denoising")),
     ("record_progress", "job", Progress(done=1, total=4, stage="denoising"))),
    (Frames([0, 8]), ("record_frames", "job", [0, 8])),
    (Await(4, 3), ("await_choice", "job", 4, 3)),
    (Models("m", ["m"]), ("set_models", "m", ["m"])),
    (ModelError("no such model"), ("set_model_error", "no such model")),
])
def test_a_report_reaches_the_recorder_method_of_its_type(message, call):
    recorder = FakeRecorder()
    deliver(recorder, "job", message)
    assert recorder.calls == [call]


def test_a_message_that_is_not_a_report_is_refused():
    with pytest.raises(TypeError):
        deliver(FakeRecorder(), "job", Finished("done"))


def test_messages_survive_pickling_as_the_pipe_sends_them():
    message = Frames([1, 2], {"output/frame_00001.png": b"png"})
    assert pickle.loads(pickle.dumps(message)) == message


def test_the_sink_sends_typed_progress_without_the_events_extra_keys():
    sent = []
    Sink(sent.append, control=None).progress({"done": 2, "total": 9, "stage": "denoising", "steps": "2/9"})
    assert sent == [Progressed(Progress(done=2, total=9, stage="denoising"))]
    assert sent[0].progress.event() == {"done": 2, "total": 9, "stage": "denoising"}


def test_the_sink_ships_files_only_when_the_folder_is_not_shared():
    local, remote = [], []
    Sink(local.append, control=None).frames([3])
    Sink(remote.append, control=None, ship=lambda rels: {rel: b"" for rel in rels}).frames([3])
    assert local == [Frames([3])]
    assert "output/frame_00003.png" in remote[0].files


def test_the_hub_delivers_an_event_to_the_jobs_subscribers_only():
    hub = EventHub()
    mine, other = hub.subscribe("a", Loop()), hub.subscribe("b", Loop())
    hub.publish("a", "frame", {"index": 1})
    assert list(mine.events) == [("frame", {"index": 1})] and not other.events


def test_the_hub_drops_a_subscriber_whose_loop_has_closed():
    hub = EventHub()
    hub.subscribe("a", Loop(closed=True))
    hub.publish("a", "frame", {"index": 1})
    assert not hub.watched("a")


def test_a_cached_poll_goes_stale_on_a_state_change_but_not_on_progress():
    hub = EventHub()
    hub.job_json("a", lambda: b"{}")
    hub.publish("a", "progress", {})
    assert hub.polled_json("a") == b"{}"
    hub.publish("a", "state", {})
    assert hub.polled_json("a") is None


def listening():
    from latentween.server.child import Listener

    daemon_end, worker_end = multiprocessing.Pipe()
    jobs = queue.Queue()
    listener = Listener(worker_end, jobs)
    listener.start()
    return daemon_end, jobs, listener


def test_the_worker_stops_its_job_and_returns_when_the_daemons_pipe_closes():
    daemon_end, jobs, listener = listening()
    daemon_end.send(Job({"id": "j"}))
    payload, control = jobs.get(timeout=5)
    daemon_end.close()
    assert jobs.get(timeout=5) is None  # the main thread's signal to return
    listener.join(5)
    assert control.should_stop() and not listener.is_alive()


def test_the_worker_returns_when_the_daemon_says_exit():
    daemon_end, jobs, listener = listening()
    daemon_end.send(Exit())
    assert jobs.get(timeout=5) is None
    listener.join(5)
    assert not listener.is_alive()


def test_a_frame_not_recorded_as_finished_is_not_served(tmp_path):
    from types import SimpleNamespace

    from latentween.server.errors import NotFound
    from latentween.server.jobfiles import JobFiles

    files = JobFiles(tmp_path, row=lambda job_id: SimpleNamespace(frame_count=3), has_frame=lambda job_id, i: i == 0)
    assert files.frame_file("j", 0) == tmp_path / "j" / "output" / "frame_00000.png"
    with pytest.raises(NotFound):
        files.frame_file("j", 1)
