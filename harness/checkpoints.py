"""Trial checkpoints that can be loaded without running code from the file.

A checkpoint sits in the experiment folder, which a user may have copied from a colleague or shared
storage: ``torch.load(..., weights_only=False)`` would run whatever a planted file asks for. Checkpoints
are therefore loaded with ``weights_only=True``, which accepts only tensors, numbers, strings, ``None``
and the plain containers (dict, list, tuple). What the harness keeps in a checkpoint that is not one of
those is encoded on the way in and decoded on the way out:

- a NumPy array (NumPy's RNG state, method statistics) becomes ``{"__ndarray__": tensor, "dtype": str}``;
- a NumPy scalar becomes the Python number;
- a named tuple (a genotype) becomes a plain tuple — the code that reads it rebuilds its own types.

Anything else is refused when saving (``TypeError``): it would not load back.
"""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.core.errors import UserError
from harness.core.records import atomic_write
from harness.core.storage import Remote, location

_NDARRAY = "__ndarray__"


def encode(obj: Any) -> Any:
    """``obj`` with NumPy values and named tuples turned into what ``weights_only`` loading accepts."""
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.Tensor, torch.Size, torch.dtype)):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("an object array cannot be stored in a checkpoint")
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(obj)).clone(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {encode(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(encode(v) for v in obj)  # named tuples become plain tuples
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    raise TypeError(f"a {type(obj).__name__} cannot be stored in a checkpoint")


def decode(obj: Any) -> Any:
    """The inverse of ``encode`` (named tuples stay plain tuples)."""
    if isinstance(obj, dict):
        if _NDARRAY in obj:
            return obj[_NDARRAY].numpy().astype(np.dtype(obj["dtype"]), copy=True)
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(decode(v) for v in obj)
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def dumps(state: Any) -> bytes:
    """The checkpoint file's bytes for ``state``."""
    buffer = io.BytesIO()
    torch.save(encode(state), buffer)
    return buffer.getvalue()


def loads(data: bytes | io.BufferedIOBase, what: str = "checkpoint") -> Any:
    """A state from ``dumps``'s bytes (or an open binary file), loaded without running code; a file that
    is corrupt or asks to run code is one ``UserError`` line naming ``what``."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():  # a foreign file's pickle protocol warns: the error below says enough
            warnings.simplefilter("ignore")
            state = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names a refused global ("... unsupported GLOBAL posix.system ..."); anything else is damage
        reason = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line), None)
        if reason is None:
            raise UserError(f"{what} is corrupt (UnpicklingError); delete it to rerun the seed from scratch") from None
        raise UserError(f"{what} cannot be loaded safely ({reason[:160]}); it was not written by the harness — "
                        "delete it to rerun the seed from scratch") from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise UserError(f"{what} is corrupt ({err.__class__.__name__}); delete it to rerun the seed from "
                        "scratch") from None
    return decode(state)


def save_checkpoint(path: Path | Remote, state: Any) -> None:
    """Write ``state`` to ``path`` atomically (a killed trial leaves the previous checkpoint or none)."""
    data = dumps(state)
    atomic_write(path, lambda f: f.write(data), binary=True)


def load_checkpoint(path: Path | Remote) -> Any:
    """The state saved at ``path`` (``UserError`` if it cannot be read, is corrupt or unsafe)."""
    try:
        data = location(path).read_bytes()
    except OSError as err:
        raise UserError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    return loads(data, what=f"checkpoint {path}")
