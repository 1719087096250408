"""tinyfw: the stand-in framework of the plugin-author guide (docs/writing-a-plugin.md)."""

from tinyfw.training import TrainingCallback, train

__all__ = ["TrainingCallback", "train"]
