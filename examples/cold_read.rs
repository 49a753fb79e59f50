//! Samples/s delivered from an image folder whose files are not in the page cache: the figure
//! `benches/cold_read.py` takes after dropping the cache. One JSON line.
//!
//!     cargo run --release --example cold_read -- ROOT WORKERS IO_DEPTH SAMPLES [BATCH]
//!
//! The pipeline is the Fashion-MNIST one of `image_throughput` (decode a gray PNG, f32 NCHW
//! normalised). The clock starts after the loader is created (the folder scan, which lists
//! directories without opening a file) and stops once SAMPLES samples have been delivered (or
//! the epoch has ended): a cold epoch's first SAMPLES samples, shuffled over the whole folder.
//! IO_DEPTH is the config key `io_depth` (0 = read-ahead off).

use std::time::Instant;

use thresher_core::{Config, Loader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: cold_read ROOT WORKERS IO_DEPTH SAMPLES [BATCH]".into());
    }
    let (root, workers, io_depth) = (
        &args[1],
        args[2].parse::<usize>()?,
        args[3].parse::<usize>()?,
    );
    let want: usize = args[4].parse()?;
    let batch: usize = args.get(5).map_or(Ok(128), |s| s.parse())?;
    let config = serde_json::json!({
        "source": {"kind": "image_folder", "root": root, "color": "gray"},
        "batch_size": batch, "workers": workers, "prefetch": 4, "seed": 0, "io_depth": io_depth,
        "transform": {"center_crop": 28, "dtype": "f32", "layout": "nchw",
                      "normalize": {"mean": [0.286], "std": [0.353]}},
    });
    let opened = Instant::now();
    let loader = Loader::new(Config::from_json(&config.to_string())?)?;
    let scan = opened.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut samples = 0usize;
    let mut checksum = 0f64;
    while samples < want {
        let Some(b) = loader.next()? else { break };
        samples += b.len();
        checksum += b.data_f32().map_or(0.0, |d| d[0] as f64);
    }
    let secs = start.elapsed().as_secs_f64();
    let report = loader.report();
    println!(
        "{{\"loader\": \"thresher\", \"workers\": {workers}, \"io_depth\": {io_depth}, \"samples\": {samples}, \"seconds\": {secs:.4}, \"samples_per_s\": {:.1}, \"scan_s\": {scan:.3}, \"worker_busy_s\": {:.3}, \"consumer_wait_s\": {:.3}, \"checksum\": {checksum:.3}}}",
        samples as f64 / secs,
        report.worker_busy_s,
        report.consumer_wait_s
    );
    Ok(())
}
