// The libtorch MNIST example: the structure of pytorch/examples' cpp/mnist (a Net of two
// convolutions with dropout and two linear layers, a train and a test function, SGD with
// momentum), written out here again. mnist_dataloader.cpp trains it with libtorch's own
// DataLoader, mnist.cpp through thresher; the two differ only where the training data comes
// from and in the loss line (README.md shows the diff). The test set is read by libtorch's
// DataLoader in both. Usage: PROGRAM [TRAIN_DATA [EPOCHS [TEST_SAMPLES]]], TRAIN_DATA being
// the MNIST directory (DataLoader) or thresher's JSON config (thresher).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using Mode = torch::data::datasets::MNIST::Mode;

const char *kTrainData = "data/mnist"; // the directory of MNIST's raw IDX files
const char *kTestData = "data/mnist";
const int64_t kTrainBatchSize = 64;
const int64_t kTestBatchSize = 1000;
const int64_t kEpochs = 10;
const int64_t kLogInterval = 100; // batches

struct Net : torch::nn::Module {
    Net()
        : conv1(torch::nn::Conv2dOptions(1, 10, /*kernel_size=*/5)),
          conv2(torch::nn::Conv2dOptions(10, 20, /*kernel_size=*/5)), fc1(320, 50), fc2(50, 10) {
        register_module("conv1", conv1);
        register_module("conv2", conv2);
        register_module("conv2_drop", conv2_drop);
        register_module("fc1", fc1);
        register_module("fc2", fc2);
    }

    // [B, 1, 28, 28] -> log-probabilities [B, 10].
    torch::Tensor forward(torch::Tensor x) {
        x = torch::relu(torch::max_pool2d(conv1->forward(x), 2));
        x = torch::relu(torch::max_pool2d(conv2_drop->forward(conv2->forward(x)), 2));
        x = x.view({-1, 320});
        x = torch::relu(fc1->forward(x));
        x = torch::dropout(x, /*p=*/0.5, /*train=*/is_training());
        return torch::log_softmax(fc2->forward(x), /*dim=*/1);
    }

    torch::nn::Conv2d conv1;
    torch::nn::Conv2d conv2;
    torch::nn::Dropout2d conv2_drop;
    torch::nn::Linear fc1;
    torch::nn::Linear fc2;
};

// MNIST's IDX files under `root`, normalised with MNIST's mean and std, stacked into batches.
auto mnist(const std::string &root, Mode mode) {
    return torch::data::datasets::MNIST(root, mode)
        .map(torch::data::transforms::Normalize<>(0.1307, 0.3081))
        .map(torch::data::transforms::Stack<>());
}

// One epoch of SGD over `loader`.
template <typename DataLoader>
void train(int64_t epoch, Net &model, torch::Device device, DataLoader &loader,
           torch::optim::Optimizer &optimizer) {
    model.train();
    int64_t batches = 0, samples = 0;
    double loss_sum = 0.0;
    for (auto &batch : loader) {
        auto data = batch.data.to(device), targets = batch.target.to(device);
        optimizer.zero_grad();
        auto output = model.forward(data);
        auto loss = torch::nll_loss(output, targets);
        AT_ASSERT(!std::isnan(loss.template item<float>()));
        loss.backward();
        optimizer.step();
        loss_sum += loss.template item<double>() * static_cast<double>(data.size(0));
        samples += data.size(0);
        if (batches++ % kLogInterval == 0)
            std::printf("train epoch %lld: %6lld samples, loss %.4f\n",
                        static_cast<long long>(epoch), static_cast<long long>(samples),
                        loss.template item<double>());
    }
    std::printf("train epoch %lld: %lld samples in %lld batches, mean loss %.4f\n",
                static_cast<long long>(epoch), static_cast<long long>(samples),
                static_cast<long long>(batches), samples ? loss_sum / samples : NAN);
}

// The average loss and the accuracy over `loader`; returns the accuracy.
template <typename DataLoader>
double test(Net &model, torch::Device device, DataLoader &loader) {
    torch::NoGradGuard no_grad;
    model.eval();
    double loss = 0.0;
    int64_t correct = 0, samples = 0;
    for (const auto &batch : loader) {
        auto data = batch.data.to(device), targets = batch.target.to(device);
        auto output = model.forward(data);
        loss += torch::nll_loss(output, targets, /*weight=*/{}, torch::Reduction::Sum)
                    .template item<double>();
        correct += output.argmax(1).eq(targets).sum().template item<int64_t>();
        samples += data.size(0);
    }
    const double accuracy = samples ? static_cast<double>(correct) / samples : 0.0;
    std::printf("test: average loss %.4f, accuracy %.4f (%lld samples)\n",
                samples ? loss / samples : NAN, accuracy, static_cast<long long>(samples));
    return accuracy;
}

int main(int argc, char **argv) {
    const std::string train_data = argc > 1 ? argv[1] : kTrainData;
    const int64_t epochs = argc > 2 ? std::atoll(argv[2]) : kEpochs;
    const size_t test_samples = std::min<size_t>(argc > 3 ? std::atoll(argv[3]) : 10000, 10000);

    torch::manual_seed(1);
    torch::Device device(torch::cuda::is_available() ? torch::kCUDA : torch::kCPU);
    std::printf("training on %s\n", device.is_cuda() ? "CUDA" : "the CPU");
    Net model;
    model.to(device);

    auto train_loader = torch::data::make_data_loader<torch::data::samplers::RandomSampler>(
        mnist(train_data, Mode::kTrain), kTrainBatchSize);
    auto test_loader = torch::data::make_data_loader(
        mnist(kTestData, Mode::kTest), torch::data::samplers::SequentialSampler(test_samples),
        kTestBatchSize);

    torch::optim::SGD optimizer(model.parameters(),
                                torch::optim::SGDOptions(0.01).momentum(0.5));
    double accuracy = 0.0;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
        train(epoch, model, device, *train_loader, optimizer);
        accuracy = test(model, device, *test_loader);
    }
    // Well above chance (0.1), or something is broken.
    return accuracy > 0.5 ? 0 : 1;
}
