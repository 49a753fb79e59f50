"""
    Thresher

Julia bindings for thresher, a data loader with dynamic, feedback-driven data pruning, over its
C API (`include/thresher.h`). A thin mirror of the header in the style of SQLite.jl's
`src/capi.jl`: one `@ccall` wrapper per C function, handles as `mutable struct`s whose
finalizers free them, batch arrays as zero-copy `unsafe_wrap`s, and `ThresherError` carrying
the C status and the library's message.

UNTESTED: Julia is not available on the machine this binding was written on (see README.md);
`make test-julia` checks its syntax and every `@ccall`, struct and constant against thresher.h.

```julia
using Thresher
loader = Thresher.Loader(\"\"\"{"source": {"kind": "idx", "images": "train-images-idx3-ubyte.gz",
                                         "labels": "train-labels-idx1-ubyte.gz"},
                              "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 10}}\"\"\")
for epoch in 1:10, batch in Thresher.epoch(loader)
    x = Thresher.data(batch)        # 28×28×1×B Float32: row-major NCHW is column-major WHCN
    y = Thresher.labels(batch)      # Vector{Int64}, 0-based class labels
    w = Thresher.weights(batch)     # minimise mean(w .* loss)
    loss = ...                      # per-sample, Vector{Float32}
    Thresher.feedback!(loader, Thresher.ids(batch), loss)
end
close(loader)
```
"""
module Thresher

using Libdl

export ThresherError, Loader, Batch, epoch, next!, feedback!, epoch_info, total_batches, unlearnable_fraction,
       warn_if_unlearnable, report,
       save_scores, save_state, padding, digest, has_data, end_epoch!, save_state_at,
       EpochPlan, epoch_plan, advance!

# ---- the library ---------------------------------------------------------------------------

# A bare name, resolved by the dynamic loader at the first call (not at precompile time), so
# the library can be chosen when the package is loaded: see __init__ and README.md.
const libthresher = "libthresher"

"""The C ABI version this binding mirrors (`THRESHER_ABI_VERSION` in thresher.h)."""
const ABI_VERSION = 3
"""The thresher.h version this binding mirrors (`THRESHER_VERSION`)."""
const HEADER_VERSION = v"0.1.0"
"""The share of an epoch's kept samples that look unlearnable above which `epoch` iteration
warns (`THRESHER_UNLEARNABLE_WARNING` in thresher.h)."""
const UNLEARNABLE_WARNING = 0.15

function __init__()
    # THRESHER_LIB=/path/to/libthresher.so or THRESHER_LIB_DIR=/path/to/lib: searched before
    # the system's paths. Without either, LD_LIBRARY_PATH / ldconfig / rpath decide.
    if haskey(ENV, "THRESHER_LIB")
        pushfirst!(Libdl.DL_LOAD_PATH, dirname(abspath(ENV["THRESHER_LIB"])))
    elseif haskey(ENV, "THRESHER_LIB_DIR")
        pushfirst!(Libdl.DL_LOAD_PATH, abspath(ENV["THRESHER_LIB_DIR"]))
    end
    abi = try
        abi_version()
    catch err
        error("Thresher.jl cannot load libthresher ($err). Build it (`cargo build --release " *
              "--lib`) or install it (`make install`), then set THRESHER_LIB to the path of " *
              "libthresher.so or THRESHER_LIB_DIR to its directory, or add that directory " *
              "to LD_LIBRARY_PATH.")
    end
    # A header/library mismatch would corrupt memory silently; refuse it loudly instead.
    abi == ABI_VERSION ||
        error("Thresher.jl mirrors C ABI $ABI_VERSION but $(Libdl.dlpath(libthresher)) " *
              "has ABI $abi")
    return nothing
end

include("capi.jl")    # enums, structs, errors, versions: the header mirrored
include("batch.jl")   # Batch
include("loader.jl")  # Loader
include("plan.jl")    # EpochPlan

end # module
