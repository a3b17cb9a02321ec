"""The job settings an editor sets in the panel (saved with the scene) and the daemon's last known
state (runtime only, on the window manager).

Field names follow `latentween.settings.MorphSettings`, so `job_settings()` is the JSON the daemon
takes; defaults and ranges match it.
"""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

EASINGS = [
    ("linear", "Linear", "Frames evenly spaced in time"),
    ("ease", "Ease", "CSS 'ease': a quick start, a slow end"),
    ("ease-in", "Ease In", "Starts slowly"),
    ("ease-out", "Ease Out", "Ends slowly"),
    ("ease-in-out", "Ease In-Out", "Starts and ends slowly"),
]


def _noise_order(self, _context):
    # the daemon refuses min > max; keep the pair valid while the editor drags either slider
    if self.min_noise > self.max_noise:
        self.max_noise = self.min_noise


class LATENTWEEN_PG_settings(bpy.types.PropertyGroup):
    mode: EnumProperty(
        name="Mode",
        items=[("GAP", "Fill the Gap", "As many frames as the gap between the two strips, on the gap"),
               ("CUT", "Transition", "A number of frames over the cut, on a free channel above")],
        default="GAP")
    frames: IntProperty(name="Frames", description="Length of a transition, in frames", default=12, min=2, max=1025)
    prompt: StringProperty(name="Prompt", description="Text describing both keyframes")
    negative: StringProperty(name="Negative", description="What the frames should not show")
    candidates: IntProperty(
        name="Candidates", default=0, min=0, max=64,
        description="Candidates per new frame, ranked by CLIP (0: the daemon's default; 1 turns ranking off)")
    choose: BoolProperty(
        name="Choose", description="Pause at each new frame and show its candidates here, to keep one by hand "
                                   "(Candidates 2 or more)")
    seed: IntProperty(name="Seed", description="Fixes every frame; Re-roll picks a new one", default=0, min=0)
    pose: BoolProperty(name="Pose", description="Follow the people's poses with an OpenPose ControlNet")
    invert_steps: IntProperty(
        name="Inversion Steps", default=0, min=0, max=5000,
        description="Textual-inversion steps per keyframe (0 turns it off; 100-500 follow the paper)")
    steps: IntProperty(name="Steps", description="Sampler steps of the full schedule (a frame runs its noise level's share)",
                       default=40, min=1, max=1000)
    min_noise: FloatProperty(name="Min Noise", description="Noise for the closest parents, as a fraction of the schedule",
                             default=0.30, min=0.0, max=1.0, update=_noise_order)
    max_noise: FloatProperty(name="Max Noise", description="Noise for the first midpoint, as a fraction of the schedule",
                             default=0.55, min=0.0, max=1.0, update=_noise_order)
    ease: EnumProperty(name="Easing", description="Timing of the frames", items=EASINGS, default="linear")
    reroll_start: IntProperty(name="From", description="First timeline frame Re-roll Range makes again")
    reroll_end: IntProperty(name="To", description="Last timeline frame Re-roll Range makes again")
    output_dir: StringProperty(
        name="Output", subtype="DIR_PATH", default="//latentween/",
        description="Folder for the generated frames (// is the blend file's folder)")

    def job_settings(self, frames: int) -> dict:
        settings = {
            "frames": frames, "prompt": self.prompt, "negative": self.negative, "seed": self.seed,
            "steps": self.steps, "invert_steps": self.invert_steps, "pose": "auto" if self.pose else "none",
            "min_noise": round(self.min_noise, 4), "max_noise": round(self.max_noise, 4), "ease": self.ease,
        }
        if self.candidates:
            settings["candidates"] = self.candidates
        if self.choose:
            settings["choose"] = "manual"
        return settings


class LATENTWEEN_PG_daemon(bpy.types.PropertyGroup):
    """What the last health check found; drawn by the panel, never saved."""

    checked: BoolProperty()
    reachable: BoolProperty()
    message: StringProperty()
    device: StringProperty()
    model: StringProperty()
    queue: IntProperty()

    def update(self, health: dict = None, error: str = "") -> None:
        self.checked = True
        self.reachable = health is not None
        self.message = error
        if health is not None:
            self.device = f"{health.get('device', '?')} {health.get('dtype', '')}".strip()
            loaded = health.get("loaded") or []
            self.model = (loaded[-1] if loaded else
                          f"loading {health['loading']}" if health.get("loading") else
                          f"{health['default_model']} (not loaded yet)" if health.get("default_model") else "none loaded")
            self.queue = int(health.get("queue") or 0)
