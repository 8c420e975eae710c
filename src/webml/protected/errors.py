"""The errors of protected packages: each one a clear message, raised before any weight is decrypted
for the backend (the CLI prints the message as one line)."""

from __future__ import annotations

__all__ = ["KeyFileError", "PackageError", "PackageRefusedError", "ProtectedError"]


class ProtectedError(ValueError):
    """Base of the errors of :mod:`webml.protected`."""


class PackageError(ProtectedError):
    """The file is not an intact package: not one at all, truncated, or altered (a signature or an
    authentication tag does not verify)."""


class PackageRefusedError(PackageError):
    """An intact package that may not be opened here: signed by a publisher that is not trusted, not
    wrapped for the key given, expired, or bound to other backends."""


class KeyFileError(ProtectedError):
    """A key file that cannot be used: missing, not a webml key, or a private key others can read."""
