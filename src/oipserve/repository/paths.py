"""Paths that come from outside the server's control stay inside a model's folder.

Two sources of such paths: the file names of a repository ``load`` request's ``file:<path>``
parameters (written by :func:`write_uploaded_files`), and configuration fields naming a file
(``default_model_filename``, ``label_filename``; MLServer's ``uri`` when that reader lands), which
a ``config`` load parameter sets from the network. :func:`relative_inside` checks such a name
lexically: relative, POSIX separators, no ``..``, ``.`` or empty segment, no NUL or backslash, so
joining it to the folder never leaves it. Symbolic links that the repository itself holds are the
operator's choice (a repository is trusted: its model files are code); an uploaded folder holds
none, because :func:`write_uploaded_files` creates every file itself and never follows a link.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from oipserve.errors import InvalidArgument, PayloadTooLarge

MAX_UPLOAD_FILES: Final = 1000
"""Files one load request may carry."""
MAX_PATH_DEPTH: Final = 16
"""Folder levels an uploaded file may be nested in."""


def relative_inside(name: str, what: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside the folder it is joined to.

    ``what`` names the field for the error (``"default_model_filename"``, ``"file override path"``).
    """
    parts = PurePosixPath(name).parts if name else ()
    if (
        not parts
        or "\\" in name
        or "\x00" in name
        or name.startswith("/")
        or any(part in {"", ".", ".."} for part in name.split("/"))
        or len(parts) > MAX_PATH_DEPTH
    ):
        raise InvalidArgument(
            f"invalid {what} {name!r}: give a relative path inside the model folder (no '..', "
            "no absolute path), such as '1/model.onnx'"
        )
    return PurePosixPath(*parts)


def inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` once :func:`relative_inside` accepts ``name``."""
    return folder.joinpath(*relative_inside(name, what).parts)


def write_uploaded_files(folder: Path, files: Mapping[str, bytes], max_bytes: int) -> Path:
    """Write a load request's files (``"1/model.onnx"`` → bytes) into ``folder``, a new folder.

    Each path must pass :func:`relative_inside`; at most :data:`MAX_UPLOAD_FILES` files and
    ``max_bytes`` in total (413 beyond). Files are created exclusively and without following links
    (``O_EXCL | O_NOFOLLOW``), so two names for one file, or a file where a folder is needed, are
    refused rather than overwritten.
    """
    if len(files) > MAX_UPLOAD_FILES:
        raise PayloadTooLarge(
            f"the load request carries {len(files)} files; at most {MAX_UPLOAD_FILES} are accepted"
        )
    total = sum(len(content) for content in files.values())
    if total > max_bytes:
        raise PayloadTooLarge(
            f"the load request's files hold {total} bytes, over the limit of {max_bytes} bytes "
            "(raise it with --model-upload-max-mb)"
        )
    targets = [
        (relative_inside(relative, "file override path"), content)
        for relative, content in files.items()
    ]
    folder.mkdir(parents=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for relative, content in targets:
        target = folder.joinpath(*relative.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(target, flags, 0o600)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise InvalidArgument(
                f"invalid file override path '{relative}': another file of the request "
                "already uses this name or a folder of it"
            ) from None
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
    return folder


__all__ = ["MAX_UPLOAD_FILES", "inside", "relative_inside", "write_uploaded_files"]
