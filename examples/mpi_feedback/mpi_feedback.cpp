// mpi_feedback.cpp — thresher on several MPI ranks: one global plan, every rank's feedback to
// every rank with MPI_Allgatherv, equal batch counts, and a per-epoch check that the ranks
// agree. The pattern a C++ trainer on MPI (or NCCL bootstrapped by MPI) copies.
//
//     mpiexec -n 2 build/mpi_feedback data/fashion-mnist [epochs]
//
// Each rank opens the same config plus its own "rank" and the "world_size". thresher itself
// opens no sockets: the only communication is the two MPI collectives below. There is no model
// here (this example must build without libtorch): the "loss" of a sample is a deterministic
// function of its pixels and label, standing in for your forward pass.

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "thresher.hpp"

namespace {

// Every rank calls this once per batch, in the same order (it is a collective). The batch's
// padding rows (world_size > 1: the last batch of an epoch is filled up with weight-0 repeats)
// are left out; ranks may contribute different numbers of samples, hence Allgatherv.
// Returns the number of samples fed.
std::size_t all_gather_feedback(thresher::Loader &loader, const thresher::Batch &batch,
                                const std::vector<float> &loss, MPI_Comm comm) {
    int world = 0;
    MPI_Comm_size(comm, &world);
    const int n = static_cast<int>(batch.size() - batch.padding());
    std::vector<int> counts(world), displs(world);
    MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
    std::exclusive_scan(counts.begin(), counts.end(), displs.begin(), 0);
    const int total = displs.back() + counts.back();

    // Rank order: rank 0's samples first. The ScoreBook's result does not depend on the order
    // (each id appears once per step), but a fixed order keeps the calls identical everywhere.
    std::vector<std::uint64_t> ids(total);
    std::vector<float> losses(total);
    MPI_Allgatherv(batch.ids().data(), n, MPI_UINT64_T, ids.data(), counts.data(),
                   displs.data(), MPI_UINT64_T, comm);
    MPI_Allgatherv(loss.data(), n, MPI_FLOAT, losses.data(), counts.data(), displs.data(),
                   MPI_FLOAT, comm);
    // Add grad_norm / el2n / correct / embeddings the same way when the policy needs them.
    loader.feedback(ids, losses);
    return static_cast<std::size_t>(total);
}

// True on every rank when all ranks hold the same plan and ScoreBook (thresher_loader_digest).
bool ranks_agree(const thresher::Loader &loader, MPI_Comm comm) {
    const thresher::Digest d = loader.digest();
    const std::uint64_t mine[3] = {d.epoch, d.plan, d.scores};
    int world = 0;
    MPI_Comm_size(comm, &world);
    std::vector<std::uint64_t> all(3 * static_cast<std::size_t>(world));
    MPI_Allgather(mine, 3, MPI_UINT64_T, all.data(), 3, MPI_UINT64_T, comm);
    for (int r = 1; r < world; r++)
        for (int k = 0; k < 3; k++)
            if (all[3 * r + k] != all[k]) return false;
    return true;
}

// Stand-in for a model's per-sample loss.
std::vector<float> fake_loss(const thresher::Batch &batch) {
    const thresher::Tensor x = batch.data();
    const auto pixels = x.as<const float>();
    const std::size_t per = x.numel() / batch.size();
    std::vector<float> loss(batch.size());
    for (std::size_t i = 0; i < batch.size(); i++) {
        double mean = 0;
        for (std::size_t k = 0; k < per; k++) mean += pixels[i * per + k];
        mean /= static_cast<double>(per);
        loss[i] = static_cast<float>(std::fabs(mean - 0.1 * batch.labels()[i]));
    }
    return loss;
}

std::string json_path(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

} // namespace

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (argc < 2) {
        if (rank == 0) std::fprintf(stderr, "usage: mpiexec -n R %s FASHION_MNIST_DIR [epochs]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    const int epochs = argc > 2 ? std::atoi(argv[2]) : 3;
    const std::string dir = argv[1];
    const std::string config =
        "{\"source\": {\"kind\": \"idx\", \"images\": " +
        json_path(dir + "/train-images-idx3-ubyte.gz") +
        ", \"labels\": " + json_path(dir + "/train-labels-idx1-ubyte.gz") +
        ", \"limit\": 20000}, \"batch_size\": 128, \"seed\": 1, \"transform\": {\"dtype\": "
        "\"f32\"}, \"rank\": " + std::to_string(rank) + ", \"world_size\": " +
        std::to_string(world) +
        ", \"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, \"epochs\": " +
        std::to_string(epochs) + "}}";

    int failures = 0;
    try {
        thresher::Loader loader(config);
        for (int e = 0; e < epochs; e++) {
            const thresher::EpochInfo info = loader.epoch_info();
            std::size_t batches = 0, mine = 0, fed = 0, padding = 0;
            for (auto &batch : loader.epoch()) {
                const std::vector<float> loss = fake_loss(batch);
                // ... your forward/backward here, minimising mean(weights[i] * loss[i]) ...
                fed += all_gather_feedback(loader, batch, loss, MPI_COMM_WORLD);
                mine += batch.size() - batch.padding();
                padding += batch.padding();
                batches++;
            }
            // Every rank ran the same number of steps, fed every kept sample once, and holds
            // the same plan and ScoreBook.
            unsigned long long counts[2] = {batches, mine}, sums[2] = {0, 0};
            unsigned long long lo = batches, hi = batches;
            MPI_Allreduce(counts, sums, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
            MPI_Allreduce(&counts[0], &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
            MPI_Allreduce(&counts[0], &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
            const bool agree = ranks_agree(loader, MPI_COMM_WORLD);
            const bool ok = agree && lo == hi && batches == info.batches &&
                            sums[1] == info.samples && fed == info.samples;
            failures += !ok;
            std::printf("rank %d/%d epoch %d: %zu batches (all ranks %llu..%llu), %zu samples "
                        "+ %zu padding here, %llu of %llu kept over all ranks, digests %s%s\n",
                        rank, world, e, batches, lo, hi, mine, padding, sums[1],
                        static_cast<unsigned long long>(info.samples),
                        agree ? "agree" : "DIFFER", ok ? "" : "  <-- FAILED");
        }
    } catch (const thresher::Error &err) {
        std::fprintf(stderr, "rank %d: %s\n", rank, err.what());
        failures++;
    }
    int any = 0;
    MPI_Allreduce(&failures, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return any != 0;
}
