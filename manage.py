#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if loud else "3")
    if not loud:
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def main() -> None:
    quiet_tensorflow(sys.argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
