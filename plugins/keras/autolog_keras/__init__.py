"""Keras autologging for autolog: Keras 3, ``tf.keras`` 2.x and ``tf_keras``.

Enabled with ``autolog.autolog(frameworks=["keras"])`` (or ``autolog.autolog()``); options go
under ``keras={...}``, see :class:`KerasOptions`. Importing this package imports no
framework.
"""

from autolog_keras.plugin import KerasOptions, KerasPlugin

__all__ = ["KerasOptions", "KerasPlugin"]
