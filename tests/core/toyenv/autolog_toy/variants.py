"""Plugins whose requirements are not met (a future toyfw)."""

from autolog import Patch, Plugin


class FuturePlugin(Plugin):
    name = "toy_future"
    requires = ("toyfw>=9",)
    patches = (Patch("toyfw.models:Model.fit"),)
