"""QMask's own exceptions.

Every message is written for the person using the app: it says what went wrong and, where
there is one, what to do about it. The GUI shows ``str(error)`` as is; the CLI prints it and
exits non-zero. Code raises these instead of asserting.
"""

from __future__ import annotations


class QMaskError(Exception):
    """Base class. ``str(err)`` is a complete, user-facing sentence."""


class InputError(QMaskError, ValueError):
    """A request the engine cannot act on: empty question, alpha outside [0, 1], bad option."""


class ImageError(QMaskError):
    """An image that cannot be read: missing, corrupt, zero bytes, unsupported or too large."""


class ModelMissingError(QMaskError):
    """A model role has no weights on this machine; the message names the command that fetches them."""

    def __init__(self, message: str, role: str | None = None):
        super().__init__(message)
        self.role = role


class CheckpointError(QMaskError):
    """A checkpoint file exists but is wrong: truncated, not a checkpoint, or for another model."""


class PromptError(QMaskError, ValueError):
    """A segmentation prompt that cannot be used (no points and no box, bad label, ...)."""


class ResourceError(QMaskError):
    """Out of memory (CPU or GPU) or a device that is not available."""


class CancelledError(QMaskError):
    """The user cancelled a running request; whatever was done so far is kept by the caller."""


class ProjectError(QMaskError):
    """A project file that cannot be read, written or migrated."""


class ExportError(QMaskError):
    """A dataset that cannot be exported or imported."""


class DownloadError(QMaskError):
    """A download that failed (network, server, disk); running it again resumes it."""


def describe_error(err: BaseException) -> tuple[str, str, str | None]:
    """(kind, user message, model role) for an exception raised by the engine: the one wording
    the app's message area and the command line both show. Our own errors speak for themselves;
    running out of memory (Python's or torch's, CPU or GPU) says what to try; anything else is
    named as unexpected."""
    if isinstance(err, ModelMissingError):
        return "ModelMissingError", str(err), err.role
    if isinstance(err, QMaskError):
        return type(err).__name__, str(err), None
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        msg = ("Out of memory. Close other programs, choose a smaller preset (--preset base) or the CPU "
               "(--device cpu), and try again. Your points and masks are kept.")
        return ResourceError.__name__, msg, None
    return type(err).__name__, (f"Unexpected error ({type(err).__name__}: {err}). Your work is kept; "
                                "please report this with the log."), None
