//! Soak: many epochs over Fashion-MNIST with feedback after every batch (InfoBatch, so plans
//! change with the scores). Checks that resident memory stays within 5% of its value after
//! epoch 5, that the thread count stays constant, and that dropping the loader under full
//! load returns within 1 s. `make soak` runs 200 epochs.
//!
//!     cargo run --release --example soak -- data/fashion-mnist 200

use std::time::Instant;

use thresher_core::{Config, Feedback, Loader};

fn proc_status(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("data/fashion-mnist", String::as_str);
    let epochs: u64 = args.get(2).map_or(Ok(200), |s| s.parse())?;
    let config = Config::from_json(&format!(
        r#"{{"source": {{"kind": "idx", "images": "{dir}/train-images-idx3-ubyte.gz",
                         "labels": "{dir}/train-labels-idx1-ubyte.gz"}},
            "batch_size": 256, "workers": 2, "prefetch": 8,
            "transform": {{"dtype": "f32", "normalize": {{"mean": [0.286], "std": [0.353]}}}},
            "policy": {{"kind": "infobatch", "prune": 0.5, "epochs": {epochs}}}}}"#
    ))?;
    let loader = Loader::new(config)?;
    let mut loss = Vec::with_capacity(256);
    let (mut rss_base, mut threads_base) = (0u64, 0u64);
    let mut worst = 0f64;
    let start = Instant::now();
    for epoch in 0..epochs {
        while let Some(b) = loader.next()? {
            loss.clear();
            loss.extend(
                b.ids()
                    .iter()
                    .map(|&i| ((i * 2654435761 + epoch) % 1000) as f32 / 500.0),
            );
            loader.feedback(&Feedback {
                ids: b.ids(),
                loss: &loss,
                ..Default::default()
            })?;
        }
        let (rss, threads) = (proc_status("VmRSS:"), proc_status("Threads:"));
        if epoch == 5 {
            (rss_base, threads_base) = (rss, threads);
        }
        if epoch > 5 {
            let growth = (rss as f64 - rss_base as f64) / rss_base as f64;
            worst = worst.max(growth);
            if threads != threads_base {
                return Err(
                    format!("epoch {epoch}: {threads} threads, {threads_base} at epoch 5").into(),
                );
            }
        }
        if epoch % 20 == 0 || epoch + 1 == epochs {
            let r = loader.report();
            println!(
                "epoch {epoch:3}: {} samples (pruned {:.1}%), RSS {} kB, {threads} threads",
                r.samples,
                100.0 * r.prune_fraction,
                rss
            );
        }
    }
    // Drop under full load: workers busy filling the next epoch's prefetch window.
    let _ = loader.next()?;
    let t = Instant::now();
    drop(loader);
    let free_s = t.elapsed().as_secs_f64();
    println!(
        "{epochs} epochs in {:.1} s; RSS growth after epoch 5: {:+.2}% (limit 5%); threads constant at {threads_base}; free under load: {:.1} ms",
        start.elapsed().as_secs_f64(),
        100.0 * worst,
        free_s * 1e3
    );
    if worst > 0.05 || free_s > 1.0 {
        return Err("soak limits exceeded".into());
    }
    Ok(())
}
