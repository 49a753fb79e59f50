# plan.jl — EpochPlan: this rank's whole epoch (thresher_loader_epoch_plan, thresher_epoch_plan_*)
# for a reader that schedules its own reads. Included by Thresher.jl.

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
