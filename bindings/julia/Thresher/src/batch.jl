# batch.jl — Batch: one minibatch lent by the loader (thresher_batch_*), its zero-copy views
# and DLPack export. Included by Thresher.jl.

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

"""Int64 class labels from the dataset (`Vector{Int64}` view). Throws `ThresherError`
(THRESHER_STATE) for a batch without data (index mode: see `has_data`) and for a source without
class labels (token blocks, npy without `y` or with a float or multi-dimensional `y`: see
`targets`)."""
function labels(b::Batch)
    isopen(b) && !has_data(b) &&
        throw(ThresherError(THRESHER_STATE, "this batch has no labels: its loader runs in " *
                                            "index mode (source kind `index`)"))
    ptr = @ccall(libthresher.thresher_batch_labels(b.ptr::Ptr{Cvoid})::Ptr{Int64})
    isopen(b) && ptr == C_NULL && length(b) > 0 &&
        throw(ThresherError(THRESHER_STATE, "this batch has no labels: its source has no " *
                                            "class labels; use `targets`"))
    return borrowed(Int64, ptr, length(b))
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

"""`thresher_batch_targets`: the C description of the batch's typed targets. Throws
`ThresherError` (THRESHER_STATE) when the batch has none."""
function targets_tensor(b::Batch)
    out = Ref{Tensor}()
    check(@ccall libthresher.thresher_batch_targets(b.ptr::Ptr{Cvoid}, out::Ref{Tensor})::Cint)
    return out[]
end

"""`thresher_batch_mask`: the C description of the batch's mask (ragged token documents only).
Throws `ThresherError` (THRESHER_STATE) when the batch has none."""
function mask_tensor(b::Batch)
    out = Ref{Tensor}()
    check(@ccall libthresher.thresher_batch_mask(b.ptr::Ptr{Cvoid}, out::Ref{Tensor})::Cint)
    return out[]
end

"""A zero-copy Julia array over a C tensor: row-major dims reversed (column-major)."""
function view_of(t::Tensor)
    T = eltype_of(t.dtype)
    dims = ntuple(i -> Int(t.shape[t.ndim-i+1]), Int(t.ndim))
    return borrowed(T, Ptr{T}(t.data), dims)
end

"""
    data(batch) -> Array

The samples as a zero-copy view, in their own element type (Float32 or UInt8 for images; the
file's type for npy and tokens sources; bf16 as its `UInt16` bits). thresher's row-major
[B, C, H, W] ("nchw") is, read column-major, a W×H×C×B array: Flux's WHCN convention, with no
permutation. For "nhwc" it is C×W×H×B; a token block [B, block] is block×B.
"""
data(b::Batch) = view_of(tensor(b))

"""
    targets(batch) -> Array

The typed targets as a zero-copy view (an npy source's `y`; for a token block the next tokens
y, while x is `data`), dims reversed as in `data`. Throws `ThresherError` (THRESHER_STATE) when
the batch has none.
"""
targets(b::Batch) = view_of(targets_tensor(b))

"""
    mask(batch) -> Matrix{UInt8}

block×B, 1 where the target is a real next token: ragged token documents (a tokens source with
`offsets`) only; throws `ThresherError` (THRESHER_STATE) otherwise.
"""
mask(b::Batch) = view_of(mask_tensor(b))

"""
    dlpack(batch, field) -> Ptr{DLManagedTensor}

`thresher_batch_dlpack`: exports `THRESHER_FIELD_DATA`, `_LABELS`, `_IDS`, `_WEIGHTS`,
`_TARGETS` or `_MASK` as a
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
