//! Criterion: one epoch of Fashion-MNIST (60,000 samples) as normalised f32 NCHW, batch 256,
//! with 1 and 2 workers; throughput in samples/s. Needs `make setup` (data/fashion-mnist).
//! `make bench` runs this and then puts the figure beside PyTorch's DataLoader.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use thresher_core::{Config, Loader};

fn loader(workers: usize) -> Loader {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist");
    let config = Config::from_json(&format!(
        r#"{{"source": {{"kind": "idx", "images": "{dir}/train-images-idx3-ubyte.gz",
                         "labels": "{dir}/train-labels-idx1-ubyte.gz"}},
            "batch_size": 256, "workers": {workers}, "prefetch": 8,
            "transform": {{"dtype": "f32", "normalize": {{"mean": [0.286], "std": [0.353]}}}}}}"#
    ))
    .expect("valid config");
    Loader::new(config).expect("Fashion-MNIST in data/ (run `make setup`)")
}

fn epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("fashion_mnist_epoch_f32_nchw_b256");
    group.sample_size(10);
    group.throughput(Throughput::Elements(60_000));
    for workers in [1, 2] {
        let l = loader(workers);
        group.bench_function(format!("workers_{workers}"), |b| {
            b.iter(|| {
                let mut n = 0;
                while let Some(batch) = l.next().unwrap() {
                    n += batch.len();
                }
                assert_eq!(n, 60_000);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, epoch);
criterion_main!(benches);
