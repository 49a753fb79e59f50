# loader.jl — Loader (thresher_loader_*): creation, iteration, feedback, reports, checkpoints,
# ending and advancing an epoch. Included by Thresher.jl.

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
    # The last epoch `warn_if_unlearnable` warned about (typemax: none yet).
    warned_epoch::UInt64
    function Loader(config_json::AbstractString)
        out = Ref{Ptr{Cvoid}}(C_NULL)
        check(@ccall libthresher.thresher_loader_new(config_json::Cstring,
                                                     out::Ref{Ptr{Cvoid}})::Cint)
        l = new(out[], typemax(UInt64))
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

"""Stops the worker threads (within a second; one stuck in a read is detached) and frees the
loader; idempotent. Lent batches stay valid."""
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
iteration advances, so its views are valid for the loop body. Once it has the epoch's first
batch it calls `warn_if_unlearnable(loader)`. Leaving the loop early leaves the
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
    b === nothing && return nothing
    previous === nothing && warn_if_unlearnable(e.loader)
    return (b, b)
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

"""`thresher_loader_total_batches`: the run's total batches on this rank, known before
training (exact under the policy key `budget`; `full` and `random` need only `epochs`)."""
function total_batches(l::Loader)
    out = Ref{UInt64}(0)
    check(@ccall libthresher.thresher_loader_total_batches(l.ptr::Ptr{Cvoid},
                                                           out::Ref{UInt64})::Cint)
    return out[]
end

"""`thresher_loader_unlearnable_fraction`: the fraction of the current (or last) epoch's kept
samples that look unlearnable (wrong at each of their last `guard_window` correctness reports);
NaN when not tracked. A high value warns that labels may be noisy."""
function unlearnable_fraction(l::Loader)
    out = Ref{Cdouble}(0)
    check(@ccall libthresher.thresher_loader_unlearnable_fraction(l.ptr::Ptr{Cvoid},
                                                                  out::Ref{Cdouble})::Cint)
    return out[]
end

"""
    warn_if_unlearnable(loader, threshold = UNLEARNABLE_WARNING)

Logs a warning (`@warn`, once per epoch) when the current epoch's plan keeps more than
`threshold` of samples that look unlearnable: the labels may be noisy. `epoch` iteration calls
it; filter it with Julia's logging (a logger with a higher minimum level) to silence it.
"""
function warn_if_unlearnable(l::Loader, threshold::Real = UNLEARNABLE_WARNING)
    f = unlearnable_fraction(l)
    f > threshold || return nothing  # NaN (not tracked) never warns
    e = report(l).epoch
    l.warned_epoch == e && return nothing
    l.warned_epoch = e
    pct = round(100 * f; digits = 1)
    @warn "thresher: $pct% of epoch $e's kept samples look unlearnable (misclassified at " *
          "each of their last reports): the labels may be noisy, and a policy that keeps " *
          "hard samples may be fitting them (keep `noise_guard` on)"
    return nothing
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
