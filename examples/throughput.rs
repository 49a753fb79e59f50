//! Samples/s delivered from Fashion-MNIST IDX as normalised f32 NCHW, batch 256: the figure
//! `make bench` puts beside PyTorch's DataLoader. Prints one JSON line per worker count.
//!
//!     cargo run --release --example throughput -- data/fashion-mnist 1,2 5

use std::time::Instant;

use thresher_core::{Config, Loader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("data/fashion-mnist", String::as_str);
    let workers = args.get(2).map_or("1,2", String::as_str);
    let epochs: u64 = args.get(3).map_or(Ok(5), |s| s.parse())?;
    for w in workers.split(',') {
        let w: usize = w.parse()?;
        let config = Config::from_json(&format!(
            r#"{{"source": {{"kind": "idx", "images": "{dir}/train-images-idx3-ubyte.gz",
                             "labels": "{dir}/train-labels-idx1-ubyte.gz"}},
                "batch_size": 256, "workers": {w}, "prefetch": 8,
                "transform": {{"dtype": "f32", "layout": "nchw",
                               "normalize": {{"mean": [0.286], "std": [0.353]}}}}}}"#
        ))?;
        let loader = Loader::new(config)?;
        // One warm-up epoch (page faults of fresh buffers), then the timed ones.
        while loader.next()?.is_some() {}
        let start = Instant::now();
        let mut samples = 0usize;
        let mut checksum = 0f32;
        for _ in 0..epochs {
            while let Some(b) = loader.next()? {
                samples += b.len();
                checksum += b.data_f32().map_or(0.0, |d| d[0]);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"loader\": \"thresher\", \"workers\": {w}, \"samples\": {samples}, \"seconds\": {secs:.4}, \"samples_per_s\": {:.0}, \"checksum\": {checksum}}}",
            samples as f64 / secs
        );
    }
    Ok(())
}
