# Tests for Thresher.jl on Fashion-MNIST. UNTESTED on the machine they were written on (no
# Julia there); run with THRESHER_LIB=/path/to/libthresher.so and
# THRESHER_DATA=/path/to/fashion-mnist:  julia --project=. -e 'using Pkg; Pkg.test()'
using Test
using Thresher

const DATA = get(ENV, "THRESHER_DATA", joinpath(@__DIR__, "..", "..", "..", "..", "data",
                                                "fashion-mnist"))

config(extra = "") = """{"source": {"kind": "idx",
    "images": "$(joinpath(DATA, "t10k-images-idx3-ubyte.gz"))",
    "labels": "$(joinpath(DATA, "t10k-labels-idx1-ubyte.gz"))"}$(isempty(extra) ? "" : ", " * extra)}"""

@testset "Thresher.jl" begin
    @test Thresher.abi_version() == Thresher.ABI_VERSION
    @test Thresher.version() == Thresher.HEADER_VERSION

    @testset "errors carry status and message" begin
        err = try
            Loader(config("\"batch_sise\": 3")); nothing
        catch e
            e
        end
        @test err isa ThresherError
        @test err.status == Thresher.THRESHER_INVALID_ARGUMENT
        @test occursin("batch_sise", err.message)
        missing_file = joinpath(DATA, "nope-images-idx3-ubyte.gz")
        err = try
            Loader("""{"source": {"kind": "idx", "images": "$missing_file",
                       "labels": "$(joinpath(DATA, "t10k-labels-idx1-ubyte.gz"))"}}"""); nothing
        catch e
            e
        end
        @test err isa ThresherError && err.status == Thresher.THRESHER_IO
        @test occursin(missing_file, err.message)
    end

    @testset "one epoch, every sample once" begin
        Loader(config("\"batch_size\": 256, \"policy\": {\"kind\": \"random\", \"prune\": 0.3}")) do l
            info = epoch_info(l)
            @test info.samples == 7000
            seen = zeros(Int, 10000)
            n = 0
            for b in epoch(l)
                x = Thresher.data(b)
                @test size(x) == (28, 28, 1, length(b)) && eltype(x) == Float32
                @test length(Thresher.labels(b)) == length(b)
                seen[Thresher.ids(b) .+ 1] .+= 1
                loss = fill(0.5f0, length(b))
                feedback!(l, Thresher.ids(b), loss; correct = trues(length(b)))
                n += length(b)
            end
            @test n == 7000 && count(==(1), seen) == 7000 && count(>(1), seen) == 0
            r = report(l)
            @test r.samples == 7000 && isapprox(r.prune_fraction, 0.3)
        end
    end

    @testset "a batch outlives its loader; DLPack" begin
        l = Loader(config("\"batch_size\": 100, \"transform\": {\"dtype\": \"u8\"}"))
        b = next!(l)
        ids_copy = copy(Thresher.ids(b))
        m = Thresher.dlpack(b, Thresher.THRESHER_FIELD_IDS)
        close(l)
        @test Thresher.ids(b) == ids_copy
        @test eltype(Thresher.data(b)) == UInt8
        close(b)
        t = unsafe_load(m).dl_tensor
        @test unsafe_wrap(Array, Ptr{UInt64}(t.data), 100) == ids_copy
        Thresher.dlpack_free(m)
        @test_throws ThresherError Thresher.data(b)   # closed
        @test_throws ThresherError next!(l)           # closed: NULL loader
    end

    @testset "save_scores / save_state" begin
        dir = mktempdir()
        Loader(config()) do l
            save_scores(l, joinpath(dir, "scores"))
            @test isfile(joinpath(dir, "scores"))
            bad = joinpath(dir, "no-such-dir", "x")
            err = try save_state(l, bad); nothing catch e; e end
            @test err isa ThresherError && err.status == Thresher.THRESHER_IO
            @test occursin(bad, err.message)
        end
    end

    @testset "index mode: ids and weights, no data" begin
        cfg = """{"source": {"kind": "index", "len": 1000}, "batch_size": 100, "seed": 3,
                  "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 4}}"""
        Loader(cfg) do l
            # The epoch's plan equals what next! hands out, batch by batch.
            plan = epoch_plan(l)
            @test length(plan) == 1000 && Thresher.nbatches(plan) == 10
            @test Thresher.plan_epoch(plan) == 0 && padding(plan) == 0
            planned = copy(Thresher.ids(plan))
            @test sort(planned) == collect(UInt64, 0:999)
            @test all(==(1f0), Thresher.weights(plan))
            close(plan)
            @test !isopen(plan) && length(plan) == 0
            @test_throws ThresherError Thresher.ids(plan)
            handed = UInt64[]
            for b in epoch(l)
                @test !has_data(b)
                err = try Thresher.data(b); nothing catch e; e end
                @test err isa ThresherError && err.status == Thresher.THRESHER_STATE
                @test_throws ThresherError Thresher.labels(b)
                append!(handed, Thresher.ids(b))
                # Below-mean losses for even ids: InfoBatch prunes half of them next epoch.
                loss = Float32[iseven(i) ? 0.1f0 : 1.0f0 for i in Thresher.ids(b)]
                feedback!(l, Thresher.ids(b), loss)
            end
            @test handed == planned
            info = epoch_info(l)
            @test info.epoch == 1 && info.samples == 750    # 500 below the mean, 250 dropped
            plan = epoch_plan(l)
            @test length(plan) == 750
            w = Thresher.weights(plan)
            @test count(==(2f0), w) == 250 && count(==(1f0), w) == 500
            close(plan)
            # Two batches, a checkpoint at one, then the rest of the epoch abandoned.
            b1 = next!(l); b2 = next!(l)
            second = copy(Thresher.ids(b2))
            close(b1); close(b2)
            dir = mktempdir()
            save_state_at(l, joinpath(dir, "ckpt"), 1)
            err = try save_state_at(l, joinpath(dir, "x"), 3); nothing catch e; e end
            @test err isa ThresherError && err.status == Thresher.THRESHER_INVALID_ARGUMENT
            @test !isfile(joinpath(dir, "x"))
            end_epoch!(l)
            @test report(l).delivered == 2
            @test epoch_info(l).epoch == 2
            # A plan reader tells the loader how far it read: advance! moves the position
            # without building batches; next! continues after it.
            plan = epoch_plan(l)
            nb = Thresher.nbatches(plan)
            last_ids = copy(Thresher.ids(plan)[(nb-1)*100+1:end])
            close(plan)
            advance!(l, nb - 1)
            @test report(l).epoch == 2 && report(l).delivered == nb - 1
            err = try advance!(l, 2); nothing catch e; e end
            @test err isa ThresherError && err.status == Thresher.THRESHER_INVALID_ARGUMENT
            @test report(l).delivered == nb - 1                 # refused: nothing changed
            b = next!(l)
            @test Thresher.ids(b) == last_ids
            close(b)
            @test next!(l) === nothing
            @test_throws ThresherError advance!(l, -1)
            Loader(cfg[1:end-1] * """, "resume_from": "$(joinpath(dir, "ckpt"))"}""") do r
                b = next!(r)
                @test Thresher.ids(b) == second
                close(b)
            end
        end
    end

    @testset "token blocks: x is data, y targets, typed" begin
        dir = mktempdir()
        path = joinpath(dir, "t.bin")
        write(path, UInt16.(1000:1032))                    # 33 tokens, little-endian
        Loader("""{"source": {"kind": "tokens", "path": "$path", "dtype": "u16",
                   "block": 8}, "batch_size": 4, "shuffle": false}""") do l
            b = next!(l)
            x, y = Thresher.data(b), Thresher.targets(b)    # block×B, column-major
            @test eltype(x) == UInt16 && size(x) == (8, 4)
            @test x[:, 2] == UInt16.(1008:1015) && y[:, 2] == UInt16.(1009:1016)
            @test_throws ThresherError Thresher.labels(b)
            @test_throws ThresherError Thresher.mask(b)
            close(b)
        end
    end

    @testset "advance! is for index mode only" begin
        Loader(config("\"batch_size\": 500")) do l
            err = try advance!(l, 1); nothing catch e; e end
            @test err isa ThresherError && err.status == Thresher.THRESHER_STATE
            @test occursin("index mode", err.message)
        end
    end

    @testset "noisy labels warn once per epoch" begin
        # Every sample reported wrong: from epoch 2 on UCB's plan keeps only samples that look
        # unlearnable, and the first batch of each such epoch logs one warning.
        cfg = """{"source": {"kind": "index", "len": 400}, "batch_size": 50, "seed": 3,
                  "policy": {"kind": "ucb", "prune": 0.5}}"""
        Loader(cfg) do l
            run_epoch() = for b in epoch(l)
                n = length(b)
                feedback!(l, Thresher.ids(b), fill(1.0f0, n); correct = falses(n))
            end
            @test_logs run_epoch()
            @test_logs run_epoch()
            @test_logs (:warn, r"epoch 2's kept samples look unlearnable") run_epoch()
            @test unlearnable_fraction(l) > Thresher.UNLEARNABLE_WARNING
            @test_logs warn_if_unlearnable(l)    # the same epoch: not again
        end
    end
end
