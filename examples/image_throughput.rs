//! Images/s delivered from an image folder through the image pipeline: the figure
//! `make bench-images` puts beside torchvision's DataLoader (benches/compare_images.py).
//! Prints one JSON line per worker count.
//!
//!     cargo run --release --example image_throughput -- ROOT PIPELINE WORKERS EPOCHS [BATCH]
//!
//! PIPELINE is `imagenet` (RandomResizedCrop 224, horizontal flip p = 0.5, f32 NCHW normalised
//! with ImageNet's mean and std: torchvision's training recipe) or `fmnist` (decode a gray PNG,
//! f32 NCHW normalised with Fashion-MNIST's mean and std).

use std::time::Instant;

use thresher_core::{Config, Loader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let root = args.get(1).map_or("data/bench-jpeg", String::as_str);
    let pipeline = args.get(2).map_or("imagenet", String::as_str);
    let workers = args.get(3).map_or("2", String::as_str);
    let epochs: u64 = args.get(4).map_or(Ok(2), |s| s.parse())?;
    let batch: usize = args.get(5).map_or(Ok(128), |s| s.parse())?;
    let (color, transform) = match pipeline {
        "imagenet" => (
            "rgb",
            serde_json::json!({"random_resized_crop": {"size": 224}, "hflip": 0.5,
                               "dtype": "f32", "layout": "nchw",
                               "normalize": {"mean": [0.485, 0.456, 0.406],
                                             "std": [0.229, 0.224, 0.225]}}),
        ),
        // A folder is a variable-size source, so the transform must fix the size: a center
        // crop of the images' own 28×28 does that at no cost.
        "fmnist" => (
            "gray",
            serde_json::json!({"center_crop": 28, "dtype": "f32", "layout": "nchw",
                               "normalize": {"mean": [0.286], "std": [0.353]}}),
        ),
        other => return Err(format!("unknown pipeline {other}").into()),
    };
    for w in workers.split(',') {
        let w: usize = w.parse()?;
        let config = serde_json::json!({
            "source": {"kind": "image_folder", "root": root, "color": color},
            "batch_size": batch, "workers": w, "prefetch": 4, "seed": 0,
            "transform": transform,
        });
        let loader = Loader::new(Config::from_json(&config.to_string())?)?;
        // One warm-up epoch (page cache, buffers), then the timed ones.
        while loader.next()?.is_some() {}
        let start = Instant::now();
        let mut samples = 0usize;
        let mut checksum = 0f64;
        for _ in 0..epochs {
            while let Some(b) = loader.next()? {
                samples += b.len();
                checksum += b.data_f32().map_or(0.0, |d| d[0] as f64);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let report = loader.report();
        println!(
            "{{\"loader\": \"thresher\", \"pipeline\": \"{pipeline}\", \"workers\": {w}, \"samples\": {samples}, \"seconds\": {secs:.4}, \"samples_per_s\": {:.1}, \"worker_busy_s\": {:.3}, \"consumer_wait_s\": {:.3}, \"checksum\": {checksum:.3}}}",
            samples as f64 / secs,
            report.worker_busy_s,
            report.consumer_wait_s
        );
    }
    Ok(())
}
