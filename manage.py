#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import importlib.abc
import importlib.util
import os
import sys


def verbosity(argv: list[str]) -> int:
    """The ``--verbosity`` / ``-v`` a command was given (Django's default: 1)."""
    for i, arg in enumerate(argv):
        for flag in ("--verbosity", "-v"):
            if arg == flag and i + 1 < len(argv) and argv[i + 1].isdigit():
                return int(argv[i + 1])
            for joined in (f"{flag}=", flag):
                rest = arg.removeprefix(joined)
                if rest != arg and rest.isdigit():
                    return int(rest)
    return 1


def quiet_tensorflow(argv: list[str]) -> None:
    """TensorFlow's C++ start-up lines (oneDNN notices, absl warnings, the CUDA
    probe's error on a machine without a GPU) say nothing to someone who runs
    ``train``, ``evaluate`` or ``--help``: shown only with ``--verbosity 2`` or
    more, or when ``TF_CPP_MIN_LOG_LEVEL`` is set by hand."""
    loud = verbosity(argv) >= 2
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return  # set by hand: theirs to decide
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if loud else "3"
    if not loud:
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports ``tensorflow`` (if a command imports it at all) with file descriptor 2
    sent to /dev/null: its native libraries print their start-up lines before
    logging is set up, past ``TF_CPP_MIN_LOG_LEVEL``. An import error is still
    raised, and everything after the import reaches stderr as usual."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            sys.stderr.flush()
            saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            try:
                execute(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)

        spec.loader.exec_module = exec_module
        return spec


def main() -> None:
    quiet_tensorflow(sys.argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: stopped, quietly
    except Exception as exc:
        # Staff read one line saying what went wrong, not a traceback (a damaged
        # zip, a database not made yet); ``--traceback`` shows it all.
        if "--traceback" in sys.argv:
            raise
        message = " ".join(str(exc).split()) or "(no message)"
        sys.stderr.write(f"Error: {type(exc).__name__}: {message}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
