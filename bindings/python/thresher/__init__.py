"""thresher: a data loader with dynamic, feedback-driven data pruning (Python binding of the C
ABI in include/thresher.h).

    import thresher
    with thresher.Loader("config.json") as loader:
        for epoch in range(3):
            for batch in loader:                      # one epoch
                loss = train_step(batch.data, batch.labels, batch.weights)
                loader.feedback(batch.ids, loss)

`thresher.torch.Loader` gives the batch fields as torch tensors (zero-copy, via DLPack);
`thresher.torch.Sampler` plans the batches of your own torch DataLoader (index mode).
"""

from __future__ import annotations

from . import _capi
from ._batch import Batch
from ._errors import (
    Error,
    FormatError,
    InvalidArgument,
    IoError,
    NoisyLabelsWarning,
    PanicError,
    StateError,
    Status,
    last_error,
)
from ._library import path as library_path
from ._loader import UNLEARNABLE_WARNING, Epoch, Loader, Source
from ._plan import EpochPlan

# Show the public names in reprs and tracebacks (thresher.Loader, not thresher._loader.Loader).
for _cls in (Batch, Epoch, EpochPlan, Error, FormatError, InvalidArgument, IoError, Loader,
             NoisyLabelsWarning, PanicError, Source, StateError, Status):
    _cls.__module__ = __name__
del _cls

__version__ = _capi.thresher_version().decode()
ABI_VERSION = _capi.THRESHER_ABI_VERSION

if _capi.thresher_abi_version() != _capi.THRESHER_ABI_VERSION:
    raise ImportError(
        f"thresher: {library_path} has C ABI version {_capi.thresher_abi_version()}, but this "
        f"package was generated for version {_capi.THRESHER_ABI_VERSION}; rebuild or reinstall"
    )

__all__ = [
    "Batch",
    "Epoch",
    "EpochPlan",
    "Error",
    "FormatError",
    "InvalidArgument",
    "IoError",
    "Loader",
    "NoisyLabelsWarning",
    "PanicError",
    "Source",
    "StateError",
    "Status",
    "UNLEARNABLE_WARNING",
    "last_error",
    "library_path",
]


def __getattr__(name: str):
    # `thresher.torch` without an explicit import, without importing torch for NumPy users.
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
