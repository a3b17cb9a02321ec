"""Where the daemon is: the add-on's preferences (Edit > Preferences > Add-ons > Latentween)."""
import bpy
from bpy.props import BoolProperty, StringProperty

DEFAULT_URL = "http://127.0.0.1:8642"


class LATENTWEEN_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    url: StringProperty(name="Daemon URL", default=DEFAULT_URL, description="Address of `latentween serve`")
    token: StringProperty(name="Token", subtype="PASSWORD",
                          description="Bearer token, if the daemon was started with --token")
    send_paths: BoolProperty(
        name="Send File Paths", default=False,
        description="Name keyframes by path (movie frames as path@frame) instead of uploading them; "
                    "the daemon must run on this machine with --allow-root covering the media")
    start_daemon: BoolProperty(
        name="Start a Local Daemon", default=False,
        description="When nothing answers at a local URL, run `latentween serve` on its port")
    serve_command: StringProperty(name="Command", default="latentween", subtype="FILE_PATH",
                                  description="The latentween executable to start")
    serve_model: StringProperty(name="Model", description="--model for the daemon started here (empty: its default)")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "url")
        layout.prop(self, "token")
        layout.prop(self, "send_paths")
        layout.prop(self, "start_daemon")
        col = layout.column()
        col.active = self.start_daemon
        col.prop(self, "serve_command")
        col.prop(self, "serve_model")


def get(context) -> LATENTWEEN_AP_preferences:
    return context.preferences.addons[__package__].preferences
