"""The version of autolog-core, in a module of its own so any module can read it without
importing the package façade (``autolog/__init__``), which imports nearly everything."""

__version__ = "0.1.0"
