# capi.jl — what Thresher.jl mirrors from thresher.h by hand (enums, plain structs, the
# DLPack structs), ThresherError with the status check every wrapper uses, and the versions.
# Included by Thresher.jl.

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
const THRESHER_I8 = Cint(2)
const THRESHER_U16 = Cint(3)
const THRESHER_I16 = Cint(4)
const THRESHER_U32 = Cint(5)
const THRESHER_I32 = Cint(6)
const THRESHER_I64 = Cint(7)
const THRESHER_F16 = Cint(8)
const THRESHER_BF16 = Cint(9)
const THRESHER_F64 = Cint(10)

const THRESHER_MAX_NDIM = 8

const THRESHER_FIELD_DATA = Int32(0)
const THRESHER_FIELD_LABELS = Int32(1)
const THRESHER_FIELD_IDS = Int32(2)
const THRESHER_FIELD_WEIGHTS = Int32(3)
const THRESHER_FIELD_TARGETS = Int32(4)
const THRESHER_FIELD_MASK = Int32(5)

"""`thresher_tensor`: a view of a batch's data, targets or mask (row-major, `ndim` dims in
`shape`, unused entries 0)."""
struct Tensor
    data::Ptr{Cvoid}
    dtype::Cint
    ndim::UInt32
    shape::NTuple{8,Int64}
end

"""The Julia element type of a thresher dtype. Julia's Base has no bfloat16: bf16 tensors are
their raw bits as `UInt16` (`reinterpret(BFloat16, a)` with BFloat16s.jl gives the values)."""
function eltype_of(dtype::Cint)
    dtype == THRESHER_U8 && return UInt8
    dtype == THRESHER_I8 && return Int8
    dtype == THRESHER_U16 && return UInt16
    dtype == THRESHER_I16 && return Int16
    dtype == THRESHER_U32 && return UInt32
    dtype == THRESHER_I32 && return Int32
    dtype == THRESHER_I64 && return Int64
    dtype == THRESHER_F16 && return Float16
    dtype == THRESHER_BF16 && return UInt16
    dtype == THRESHER_F32 && return Float32
    dtype == THRESHER_F64 && return Float64
    throw(ThresherError(THRESHER_INVALID_ARGUMENT, "unknown thresher_dtype $dtype"))
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
