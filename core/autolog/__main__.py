"""``python -m autolog`` is the ``autolog`` command."""

from autolog.cli import main

if __name__ == "__main__":
    main(prog_name="autolog")
