"""callmon: an event-driven call-status monitor."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("callmon")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
