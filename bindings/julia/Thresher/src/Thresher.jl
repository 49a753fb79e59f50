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

export ThresherError, Loader, Batch, epoch, next!, feedback!, epoch_info, report,
       save_scores, save_state, padding, digest, has_data, end_epoch!, save_state_at,
       EpochPlan, epoch_plan, advance!

# ---- the library ---------------------------------------------------------------------------

# A bare name, resolved by the dynamic loader at the first call (not at precompile time), so
# the library can be chosen when the package is loaded: see __init__ and README.md.
const libthresher = "libthresher"

"""The C ABI version this binding mirrors (`THRESHER_ABI_VERSION` in thresher.h)."""
const ABI_VERSION = 2
"""The thresher.h version this binding mirrors (`THRESHER_VERSION`)."""
const HEADER_VERSION = v"0.1.0"

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

# ---- enums and plain structs (field for field as in thresher.h) ----------------------------

# C enums are `int` in the C ABI.
const thresher_status = Cint
const THRESHER_OK = Cint(0)
const THRESHER_END_OF_EPOCH = Cint(1)
const THRESHER_INVALID_ARGUMENT = Cint(2)
const THRESHER_IO = Cint(3)
const THRESHER_FORMAT = Cint(4)
const THRESHER_STATE = Cint(5)
const THRESHER_PANIC = Cint(6)

const THRESHER_U8 = Cint(0)
const THRESHER_F32 = Cint(1)

const THRESHER_FIELD_DATA = Int32(0)
const THRESHER_FIELD_LABELS = Int32(1)
const THRESHER_FIELD_IDS = Int32(2)
const THRESHER_FIELD_WEIGHTS = Int32(3)

"""`thresher_tensor`: a view of a batch's data (row-major, `ndim` dims in `shape`)."""
struct Tensor
    data::Ptr{Cvoid}
    dtype::Cint
    ndim::UInt32
    shape::NTuple{4,Int64}
end

"""`thresher_feedback`: per-sample feedback for one step (pointers read during the call)."""
struct CFeedback
    len::Csize_t
    ids::Ptr{UInt64}
    loss::Ptr{Cfloat}
    grad_norm::Ptr{Cfloat}
    el2n::Ptr{Cfloat}
    correct::Ptr{UInt8}
    embedding::Ptr{Cfloat}
    embedding_dim::Csize_t
end

"""`thresher_epoch_info`: the plan of the current (or, right after an epoch ended, next) epoch."""
struct EpochInfo
    epoch::UInt64
    batches::UInt64
    samples::UInt64
    dataset_len::UInt64
    prune_fraction::Float64
end

"""`thresher_digest`: digests of the global plan and the ScoreBook; equal on agreeing ranks."""
struct Digest
    epoch::UInt64
    plan::UInt64
    scores::UInt64
end

"""`thresher_epoch_report`: what the current or just-ended epoch kept and cost."""
struct EpochReport
    epoch::UInt64
    samples::UInt64
    dataset_len::UInt64
    prune_fraction::Float64
    saved_fraction::Float64
    mean_weight::Float64
    score_mean::Float64
    score_std::Float64
    batches::UInt64
    delivered::UInt64
    consumer_wait_s::Float64
    worker_busy_s::Float64
    skipped::UInt64
end

# DLPack 0.8 (dlpack.h), for thresher_batch_dlpack's result; thresher.h does not declare them.
struct DLDevice
    device_type::Int32
    device_id::Int32
end
struct DLDataType
    code::UInt8
    bits::UInt8
    lanes::UInt16
end
struct DLTensor
    data::Ptr{Cvoid}
    device::DLDevice
    ndim::Int32
    dtype::DLDataType
    shape::Ptr{Int64}
    strides::Ptr{Int64}
    byte_offset::UInt64
end
struct DLManagedTensor
    dl_tensor::DLTensor
    manager_ctx::Ptr{Cvoid}
    deleter::Ptr{Cvoid}
end

# ---- errors --------------------------------------------------------------------------------

"""
    ThresherError(status, message)

A failed thresher call: `status` is the C `thresher_status` (e.g. `THRESHER_IO`), `message`
the library's message, which names the config key, file path, sample id or array index.
"""
struct ThresherError <: Exception
    status::Cint
    message::String
end

function status_name(s::Integer)
    names = ("THRESHER_OK", "THRESHER_END_OF_EPOCH", "THRESHER_INVALID_ARGUMENT", "THRESHER_IO",
             "THRESHER_FORMAT", "THRESHER_STATE", "THRESHER_PANIC")
    return 0 <= s < length(names) ? names[s+1] : "THRESHER_UNKNOWN($s)"
end

Base.showerror(io::Base.IO, e::ThresherError) =
    print(io, "ThresherError(", status_name(e.status), "): ", e.message)

"""This OS thread's last thresher error message (\"\" when none failed)."""
function last_error()
    n = @ccall libthresher.thresher_last_error(C_NULL::Ptr{UInt8}, 0::Csize_t)::Csize_t
    n == 0 && return ""
    buf = Vector{UInt8}(undef, n + 1)
    @ccall libthresher.thresher_last_error(buf::Ptr{UInt8}, length(buf)::Csize_t)::Csize_t
    return String(buf[1:n])
end

# The message is thread-local in C. A Julia task only moves to another OS thread at a yield
# point, and there is none between the failing @ccall and this one, so the message read here
# is that call's.
@inline function check(s::Cint)
    s == THRESHER_OK || throw(ThresherError(s, last_error()))
    return nothing
end

# ---- versions ------------------------------------------------------------------------------

"""The linked library's C ABI version."""
abi_version() = Int(@ccall libthresher.thresher_abi_version()::UInt32)

"""The linked library's version, e.g. v\"0.1.0\"."""
version() = VersionNumber(unsafe_string(@ccall libthresher.thresher_version()::Cstring))

# ---- Batch ---------------------------------------------------------------------------------

"""
    Batch

One minibatch lent by the loader (`thresher_batch`). `close(batch)` releases it; a finalizer
does so otherwise. The arrays from `ids`, `labels`, `weights` and `data` are zero-copy views
of the batch's memory, valid until the batch is closed: inside `for batch in epoch(loader)`
that is the loop body (the iteration closes each batch when it advances); with `next!`, keep
the batch referenced (`GC.@preserve batch`, or `close(batch)` after the last use) while you use
them, or `copy` them. A batch stays valid after its loader is closed.
"""
mutable struct Batch
    ptr::Ptr{Cvoid}
    function Batch(ptr::Ptr{Cvoid})
        b = new(ptr)
        # thresher_batch_release is thread-safe, so a finalizer on any thread may call it.
        finalizer(close, b)
        return b
    end
end

"""Releases the batch now; idempotent. Views taken from it are invalid afterwards."""
function Base.close(b::Batch)
    ptr = b.ptr
    b.ptr = C_NULL
    @ccall libthresher.thresher_batch_release(ptr::Ptr{Cvoid})::Cvoid
    return nothing
end

Base.isopen(b::Batch) = b.ptr != C_NULL

"""Samples in the batch (0 once closed)."""
Base.length(b::Batch) = Int(@ccall libthresher.thresher_batch_len(b.ptr::Ptr{Cvoid})::Csize_t)

function borrowed(::Type{T}, ptr::Ptr{T}, dims, what = "the batch") where {T}
    ptr == C_NULL && throw(ThresherError(THRESHER_INVALID_ARGUMENT, "$what is closed"))
    return unsafe_wrap(Array, ptr, dims; own = false)
end

"""Sample ids in plan order (`Vector{UInt64}` view): pass them back to `feedback!`."""
ids(b::Batch) = borrowed(UInt64, @ccall(libthresher.thresher_batch_ids(
    b.ptr::Ptr{Cvoid})::Ptr{UInt64}), length(b))

"""Labels from the dataset (`Vector{Int64}` view). Throws `ThresherError` (THRESHER_STATE) for
a batch without data (index mode: see `has_data`)."""
function labels(b::Batch)
    isopen(b) && !has_data(b) &&
        throw(ThresherError(THRESHER_STATE, "this batch has no labels: its loader runs in " *
                                            "index mode (source kind `index`)"))
    return borrowed(Int64, @ccall(libthresher.thresher_batch_labels(
        b.ptr::Ptr{Cvoid})::Ptr{Int64}), length(b))
end

"""
    has_data(batch) -> Bool

`thresher_batch_has_data`: whether the batch carries samples and labels. `false` for a batch of
a loader in index mode (config source `{"kind": "index", "len": N}`), which has ids, weights and
padding only (your own pipeline reads the samples), and for a closed batch.
"""
has_data(b::Batch) = (@ccall libthresher.thresher_batch_has_data(b.ptr::Ptr{Cvoid})::Int32) != 0

"""Loss weights from the policy (`Vector{Float32}` view): minimise mean(w .* loss)."""
weights(b::Batch) = borrowed(Float32, @ccall(libthresher.thresher_batch_weights(
    b.ptr::Ptr{Cvoid})::Ptr{Float32}), length(b))

"""Trailing samples that are padding (`world_size` > 1, weight 0): the first
`length(b) - padding(b)` are the real ones."""
padding(b::Batch) = Int(@ccall libthresher.thresher_batch_padding(b.ptr::Ptr{Cvoid})::Csize_t)

"""`thresher_batch_data`: the C description (pointer, dtype, shape) of the batch's data.
Throws `ThresherError` (THRESHER_STATE) for a batch without data (index mode)."""
function tensor(b::Batch)
    out = Ref{Tensor}()
    check(@ccall libthresher.thresher_batch_data(b.ptr::Ptr{Cvoid}, out::Ref{Tensor})::Cint)
    return out[]
end

"""
    data(batch) -> Array{Float32,4} or Array{UInt8,4}

The samples as a zero-copy view. thresher's row-major [B, C, H, W] ("nchw") is, read
column-major, a W×H×C×B array: Flux's WHCN convention, with no permutation. For "nhwc" it is
C×W×H×B.
"""
function data(b::Batch)
    t = tensor(b)
    dims = ntuple(i -> Int(t.shape[t.ndim-i+1]), Int(t.ndim))
    if t.dtype == THRESHER_F32
        return borrowed(Float32, Ptr{Float32}(t.data), dims)
    else
        return borrowed(UInt8, Ptr{UInt8}(t.data), dims)
    end
end

"""
    dlpack(batch, field) -> Ptr{DLManagedTensor}

`thresher_batch_dlpack`: exports `THRESHER_FIELD_DATA`, `_LABELS`, `_IDS` or `_WEIGHTS` as a
DLPack 0.8 tensor holding its own reference to the batch (valid after `close(batch)`). The
caller owns it and must call its deleter exactly once (`dlpack_free`), or hand it to a DLPack
consumer that does.
"""
function dlpack(b::Batch, field::Integer)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(@ccall libthresher.thresher_batch_dlpack(b.ptr::Ptr{Cvoid}, field::Int32,
                                                   out::Ref{Ptr{Cvoid}})::Cint)
    return Ptr{DLManagedTensor}(out[])
end

"""Calls a DLPack tensor's deleter (once)."""
function dlpack_free(m::Ptr{DLManagedTensor})
    m == C_NULL && return nothing
    deleter = unsafe_load(m).deleter
    deleter == C_NULL || ccall(deleter, Cvoid, (Ptr{DLManagedTensor},), m)
    return nothing
end

# ---- Loader --------------------------------------------------------------------------------

"""
    Loader(config_json::AbstractString)
    Loader(f, config_json)          # do-block form: closes the loader when f returns

A thresher loader (`thresher_loader`): worker threads, prefetched batches, the ScoreBook and
the pruning policy, configured by a JSON document (see the repository README). Throws
`ThresherError` (THRESHER_INVALID_ARGUMENT naming a bad key; THRESHER_IO / THRESHER_FORMAT
naming a file). `close(loader)` stops its threads; a finalizer does so otherwise.
"""
mutable struct Loader
    ptr::Ptr{Cvoid}
    function Loader(config_json::AbstractString)
        out = Ref{Ptr{Cvoid}}(C_NULL)
        check(@ccall libthresher.thresher_loader_new(config_json::Cstring,
                                                     out::Ref{Ptr{Cvoid}})::Cint)
        l = new(out[])
        # Unreachable means no other call can run on it, as thresher_loader_free requires.
        finalizer(close, l)
        return l
    end
end

function Loader(f::Function, config_json::AbstractString)
    l = Loader(config_json)
    try
        return f(l)
    finally
        close(l)
    end
end

"""Stops and joins the worker threads and frees the loader; idempotent. Lent batches stay valid."""
function Base.close(l::Loader)
    ptr = l.ptr
    l.ptr = C_NULL
    @ccall libthresher.thresher_loader_free(ptr::Ptr{Cvoid})::Cvoid
    return nothing
end

Base.isopen(l::Loader) = l.ptr != C_NULL

"""
    next!(loader) -> Union{Batch, Nothing}

The next batch of the current epoch, or `nothing` at its end (the call after that starts the
next epoch). Throws `ThresherError` when a sample failed to load (that batch is skipped).
One task at a time.
"""
function next!(l::Loader)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    s = @ccall libthresher.thresher_loader_next(l.ptr::Ptr{Cvoid}, out::Ref{Ptr{Cvoid}})::Cint
    s == THRESHER_END_OF_EPOCH && return nothing
    check(s)
    return Batch(out[])
end

"""
    epoch(loader)

One epoch as an iterator: `for batch in epoch(loader)`. Each batch is closed when the
iteration advances, so its views are valid for the loop body. Leaving the loop early leaves the
loader mid-epoch: the next `epoch(loader)` continues it, unless `end_epoch!(loader)` abandons
the rest.
"""
struct Epoch
    loader::Loader
end
epoch(l::Loader) = Epoch(l)

Base.IteratorSize(::Type{Epoch}) = Base.SizeUnknown()
Base.eltype(::Type{Epoch}) = Batch

function Base.iterate(e::Epoch, previous::Union{Batch,Nothing} = nothing)
    # Release the previous batch before waiting for the next, so its memory returns to the
    # loader's pool now rather than whenever the GC runs.
    previous === nothing || close(previous)
    b = next!(e.loader)
    return b === nothing ? nothing : (b, b)
end

# A contiguous array of T, converting (one copy) only when the caller's is not one already.
dense(::Type{T}, x::DenseArray{T}) where {T} = x
dense(::Type{T}, x::AbstractArray) where {T} = convert(Array{T}, x)
dense(::Type{T}, ::Nothing) where {T} = nothing
ptr_or_null(::Type{T}, x) where {T} = x === nothing ? Ptr{T}(C_NULL) : pointer(x)

"""
    feedback!(loader, ids, loss; grad_norm=nothing, el2n=nothing, correct=nothing,
              embedding=nothing)

`thresher_loader_feedback`: one step's per-sample feedback. `ids` (UInt64) and `loss` (Float32,
finite) have one entry per sample; the optional `grad_norm`, `el2n` (Float32, ≥ 0) and `correct`
(Bool or UInt8 0/1) likewise; `embedding` is a dim×n matrix (column-major, so each column is one
sample's row of thresher's [n, dim]). Validated whole by the library: on error a `ThresherError`
names the offending index and nothing is applied. Thread-safe.
"""
function feedback!(l::Loader, ids::AbstractVector, loss::AbstractVector;
                   grad_norm = nothing, el2n = nothing, correct = nothing,
                   embedding::Union{Nothing,AbstractMatrix} = nothing)
    n = length(ids)
    for (name, x) in (("loss", loss), ("grad_norm", grad_norm), ("el2n", el2n),
                      ("correct", correct))
        x === nothing || length(x) == n ||
            throw(ThresherError(THRESHER_INVALID_ARGUMENT,
                                "feedback: $name has $(length(x)) elements, ids has $n"))
    end
    embedding === nothing || size(embedding, 2) == n ||
        throw(ThresherError(THRESHER_INVALID_ARGUMENT,
                            "feedback: embedding has $(size(embedding, 2)) columns, ids has $n"))
    i = dense(UInt64, ids)
    lo = dense(Float32, loss)
    g = dense(Float32, grad_norm)
    e = dense(Float32, el2n)
    c = dense(UInt8, correct)
    emb = dense(Float32, embedding)
    GC.@preserve i lo g e c emb begin
        fb = Ref(CFeedback(n, pointer(i), pointer(lo), ptr_or_null(Float32, g),
                           ptr_or_null(Float32, e), ptr_or_null(UInt8, c),
                           ptr_or_null(Float32, emb), emb === nothing ? 0 : size(emb, 1)))
        check(@ccall libthresher.thresher_loader_feedback(l.ptr::Ptr{Cvoid},
                                                          fb::Ref{CFeedback})::Cint)
    end
    return nothing
end

"""`thresher_loader_epoch_info`: the current epoch's plan (right after an epoch ended: the
next's)."""
function epoch_info(l::Loader)
    out = Ref{EpochInfo}()
    check(@ccall libthresher.thresher_loader_epoch_info(l.ptr::Ptr{Cvoid},
                                                        out::Ref{EpochInfo})::Cint)
    return out[]
end

"""`thresher_loader_report`: the current epoch so far, or the epoch that just ended."""
function report(l::Loader)
    out = Ref{EpochReport}()
    check(@ccall libthresher.thresher_loader_report(l.ptr::Ptr{Cvoid},
                                                    out::Ref{EpochReport})::Cint)
    return out[]
end

"""`thresher_loader_digest`: digests of the current (or last) epoch's global plan and of the
ScoreBook; compare them across ranks once an epoch (e.g. with MPI.jl's Allgather)."""
function digest(l::Loader)
    out = Ref{Digest}()
    check(@ccall libthresher.thresher_loader_digest(l.ptr::Ptr{Cvoid}, out::Ref{Digest})::Cint)
    return out[]
end

"""`thresher_loader_save_scores`: writes the per-sample scores to `path` (atomically)."""
function save_scores(l::Loader, path::AbstractString)
    check(@ccall libthresher.thresher_loader_save_scores(l.ptr::Ptr{Cvoid}, path::Cstring)::Cint)
    return nothing
end

"""
`thresher_loader_save_state`: writes a checkpoint to `path` (atomically); a loader made with the
same config plus `"resume_from": path` continues exactly where this one is.
"""
function save_state(l::Loader, path::AbstractString)
    check(@ccall libthresher.thresher_loader_save_state(l.ptr::Ptr{Cvoid}, path::Cstring)::Cint)
    return nothing
end

"""
`thresher_loader_save_state_at`: writes a checkpoint to `path` (atomically) as if only the
first `batches` batches of this rank's latest epoch (the one under way or, between epochs, the
one that just ended) had been handed out: for a reader that fetches ahead of the trainer.
Resuming from it yields batch `batches` (0-based) of that epoch next. Throws `ThresherError`:
THRESHER_INVALID_ARGUMENT when `batches` exceeds what was handed out (or is negative), THRESHER_IO
naming the path. Nothing is written on failure.
"""
function save_state_at(l::Loader, path::AbstractString, batches::Integer)
    batches >= 0 || throw(ThresherError(THRESHER_INVALID_ARGUMENT,
                                        "save_state_at: batches = $batches is negative"))
    check(@ccall libthresher.thresher_loader_save_state_at(l.ptr::Ptr{Cvoid}, path::Cstring,
                                                           UInt64(batches)::UInt64)::Cint)
    return nothing
end

"""
    end_epoch!(loader)

`thresher_loader_end_epoch`: ends the epoch under way now, as if `next!` had reached its end.
The batches not handed out yet are abandoned (not visited; no feedback is expected for them),
feedback already given stays, the epoch's report is written, and the next `next!` begins the
next epoch. For leaving `for batch in epoch(loader)` early, or after reading a whole epoch
through `epoch_plan`. A no-op between epochs.
"""
function end_epoch!(l::Loader)
    check(@ccall libthresher.thresher_loader_end_epoch(l.ptr::Ptr{Cvoid})::Cint)
    return nothing
end

"""
    advance!(loader, batches)

`thresher_loader_advance` (index mode only): counts `batches` more batches of the epoch under
way as handed out, without building them: for a reader that consumed them from `epoch_plan`, so that
`report` (`delivered`, `saved_fraction`) and checkpoints see its real position. Begins the next
epoch first when the last one has ended; `next!` then continues after them (`nothing` once none
is left). Throws `ThresherError`: THRESHER_INVALID_ARGUMENT when fewer than `batches` are left
(or it is negative; nothing changes), THRESHER_STATE for a loader with data. Thread-safe.
"""
function advance!(l::Loader, batches::Integer)
    batches >= 0 || throw(ThresherError(THRESHER_INVALID_ARGUMENT,
                                        "advance: batches = $batches is negative"))
    check(@ccall libthresher.thresher_loader_advance(l.ptr::Ptr{Cvoid},
                                                     UInt64(batches)::UInt64)::Cint)
    return nothing
end

# ---- EpochPlan -----------------------------------------------------------------------------

"""
    EpochPlan

This rank's whole epoch (`thresher_epoch_plan`) from `epoch_plan(loader)`: the ids and loss
weights of its batches in delivery order, padding last; consecutive runs of the config's
`batch_size` entries are the batches `next!` hands out (the last may be shorter), e.g.
`Iterators.partition(1:length(plan), batch_size)`. Immutable; `close(plan)` frees it and a
finalizer does so otherwise. `ids(plan)` and `weights(plan)` are zero-copy views valid until the
plan is closed (keep the plan referenced while using them, or `copy` them); the plan stays valid
after its loader is closed.
"""
mutable struct EpochPlan
    ptr::Ptr{Cvoid}
    function EpochPlan(ptr::Ptr{Cvoid})
        p = new(ptr)
        # Immutable and owned by us alone: freeing it from a finalizer on any thread is fine.
        finalizer(close, p)
        return p
    end
end

"""
    epoch_plan(loader) -> EpochPlan

`thresher_loader_epoch_plan`: this rank's whole epoch under way, from its batch 0 (right after
`next!` returned `nothing`: the next epoch's, made now). It does not move the loader's
position: in index mode, call `advance!(loader, k)` as batches are consumed (or `next!` per
batch) so that reports and checkpoints see the reader's position, and `end_epoch!(loader)` to
leave the epoch early. For a reader that schedules its own reads.
"""
function epoch_plan(l::Loader)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(@ccall libthresher.thresher_loader_epoch_plan(l.ptr::Ptr{Cvoid},
                                                        out::Ref{Ptr{Cvoid}})::Cint)
    return EpochPlan(out[])
end

"""Frees the plan now; idempotent. Views taken from it are invalid afterwards."""
function Base.close(p::EpochPlan)
    ptr = p.ptr
    p.ptr = C_NULL
    @ccall libthresher.thresher_epoch_plan_free(ptr::Ptr{Cvoid})::Cvoid
    return nothing
end

Base.isopen(p::EpochPlan) = p.ptr != C_NULL

"""Entries in the plan, padding included (0 once closed)."""
Base.length(p::EpochPlan) =
    Int(@ccall libthresher.thresher_epoch_plan_len(p.ptr::Ptr{Cvoid})::Csize_t)

"""The plan's 0-based epoch number."""
plan_epoch(p::EpochPlan) =
    Int(@ccall libthresher.thresher_epoch_plan_epoch(p.ptr::Ptr{Cvoid})::UInt64)

"""Batches in the plan on this rank (the same on every rank)."""
nbatches(p::EpochPlan) =
    Int(@ccall libthresher.thresher_epoch_plan_batches(p.ptr::Ptr{Cvoid})::Csize_t)

"""Trailing entries that are padding (`world_size` > 1 without `drop_last`, weight 0)."""
padding(p::EpochPlan) =
    Int(@ccall libthresher.thresher_epoch_plan_padding(p.ptr::Ptr{Cvoid})::Csize_t)

"""The plan's sample ids in delivery order (`Vector{UInt64}` view, valid until `close(plan)`)."""
ids(p::EpochPlan) = borrowed(UInt64, @ccall(libthresher.thresher_epoch_plan_ids(
    p.ptr::Ptr{Cvoid})::Ptr{UInt64}), length(p), "the plan")

"""The plan's loss weights, one per id (`Vector{Float32}` view, valid until `close(plan)`)."""
weights(p::EpochPlan) = borrowed(Float32, @ccall(libthresher.thresher_epoch_plan_weights(
    p.ptr::Ptr{Cvoid})::Ptr{Float32}), length(p), "the plan")

end # module
