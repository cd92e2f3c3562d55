"""Errors a user can fix, told apart from bugs.

The binaries end a `UserError` with its message on one line and a non-zero
status; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
  """A mistake the user can fix (a setting, a missing file, a busy run):
  its message is the whole story, in one line."""


class ConfigError(UserError, ValueError):
  """A setting that cannot be used, named with what is wrong."""


class MissingError(UserError, FileNotFoundError):
  """A file or folder the command needs is not there."""


class DataError(UserError, ValueError):
  """Data that cannot be used as it is (no class folders, no usable image, too
  few sources for the split), named with what is wrong."""
