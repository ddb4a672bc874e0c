"""Errors raised for user mistakes.

Every error a user can cause subclasses `TransferkitError` and the builtin it resembles, so callers can
catch either. Messages say what was given, what was expected and how to fix it; the CLI prints the
message alone (no traceback) and exits with status 2.
"""

from __future__ import annotations


class TransferkitError(Exception):
    """Base class for every error transferkit raises on purpose."""


class ConfigError(TransferkitError, ValueError):
    """A configuration value or key is invalid."""


class DataError(TransferkitError, ValueError):
    """The training/evaluation data is missing, malformed or unusable."""


class DataFileError(DataError, OSError):
    """A data file does not exist, cannot be read or is not in a supported format."""


class BackboneError(TransferkitError, ValueError):
    """A backbone name or path cannot be resolved or loaded."""


class UnsafeLoadError(BackboneError):
    """Loading would run code the user did not opt into: a pickle that is not a plain state dict, or a model's
    own Python code without trust_remote_code."""


class ArtifactError(TransferkitError, OSError):
    """A run directory cannot be written or does not hold a valid transferkit artifact."""


class DiskWriteError(TransferkitError, OSError):
    """A file could not be written: the disk is full or read-only, or the path is not writable. The message names
    the path and the fix; `errno` and `filename` are those of the OSError behind it."""

    def __init__(self, number: int, message: str, path: str) -> None:
        super().__init__(number, message, path)
        self.message = message

    def __str__(self) -> str:
        return self.message


class RunLockedError(ArtifactError):
    """Another process is writing the same run directory (it holds the run's lock file)."""


class NotFittedError(TransferkitError, AttributeError):
    """A model was asked to predict before it was fitted or loaded."""


class TrainingError(TransferkitError, RuntimeError):
    """Training cannot continue (for example the loss became NaN)."""


class UnsupportedTaskError(TransferkitError, AttributeError):
    """A call the model's task does not have, e.g. class probabilities of a regression model."""


class ExportError(TransferkitError, RuntimeError):
    """An export cannot be written or failed its check against the trained model (e.g. ONNX parity)."""


class RequestError(TransferkitError, ValueError):
    """An HTTP request the model server refuses: `status` is the HTTP status, `code` a short machine-readable name."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
