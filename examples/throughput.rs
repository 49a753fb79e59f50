//! Samples/s delivered from Fashion-MNIST IDX as normalised f32 NCHW, batch 256: the figure
//! `make bench` puts beside PyTorch's DataLoader. Prints one JSON line per worker count.
//!
//!     cargo run --release --example throughput -- data/fashion-mnist 1,2 5 [--memcpy ROUNDS]
//!
//! With `--memcpy ROUNDS` each worker count runs ROUNDS rounds, and every round times the
//! loader over the given epochs and then, right after it, the memory-bandwidth reference for the
//! same bytes: a memcpy, on as many threads as there are workers, of as many bytes as the loader
//! delivered (samples × the 3,136 bytes of one f32 28×28 sample), from a source array holding
//! the whole dataset as f32 (60,000 × 3,136 bytes, as a tensor normalised up front holds it)
//! into batch buffers. It copies batch by batch in the loader's batch sizes (256 samples, the
//! last batch of an epoch shorter), batch k of an epoch from samples [256k, 256k + len) of the
//! source (contiguous: the memcpy does not gather), thread t taking batches t, t + threads, ...
//! as workers claim them, each thread writing into its own ring of reused destination buffers,
//! as many buffers in all as the loader keeps in flight (prefetch + workers), touched before the
//! timing starts. The JSON line then has the medians over the rounds and each round's figures;
//! `fraction_of_memcpy` is the median of the rounds' (loader bytes/s ÷ memcpy bytes/s).

use std::time::Instant;

use thresher_core::{Config, Loader};

const BATCH: usize = 256;
const PREFETCH: usize = 8;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The memcpy reference: copies `epochs` epochs of `n` samples of `sample_bytes` each, in
/// batches of `BATCH`, from `src` into `dst` (one ring of buffers per thread) on `dst.len()`
/// threads. Returns the seconds it took.
fn memcpy_epochs(
    src: &[u8],
    n: usize,
    sample_bytes: usize,
    epochs: usize,
    dst: &mut [Vec<Vec<u8>>],
) -> f64 {
    let threads = dst.len();
    let batches = n.div_ceil(BATCH);
    let start = Instant::now();
    std::thread::scope(|s| {
        for (t, ring) in dst.iter_mut().enumerate() {
            s.spawn(move || {
                let mut next = 0;
                for _ in 0..epochs {
                    for k in (t..batches).step_by(threads) {
                        let len = BATCH.min(n - k * BATCH) * sample_bytes;
                        let from = k * BATCH * sample_bytes;
                        let d = &mut ring[next];
                        d[..len].copy_from_slice(&src[from..from + len]);
                        std::hint::black_box(&mut d[..]);
                        next = (next + 1) % ring.len();
                    }
                }
            });
        }
    });
    start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().collect();
    let mut rounds = 0usize;
    if let Some(at) = args.iter().position(|a| a == "--memcpy") {
        rounds = args.get(at + 1).ok_or("--memcpy ROUNDS")?.parse()?;
        args.drain(at..at + 2);
    }
    let dir = args.get(1).map_or("data/fashion-mnist", String::as_str);
    let workers = args.get(2).map_or("1,2", String::as_str);
    let epochs: u64 = args.get(3).map_or(Ok(5), |s| s.parse())?;
    for w in workers.split(',') {
        let w: usize = w.parse()?;
        let config = Config::from_json(&format!(
            r#"{{"source": {{"kind": "idx", "images": "{dir}/train-images-idx3-ubyte.gz",
                             "labels": "{dir}/train-labels-idx1-ubyte.gz"}},
                "batch_size": {BATCH}, "workers": {w}, "prefetch": {PREFETCH},
                "transform": {{"dtype": "f32", "layout": "nchw",
                               "normalize": {{"mean": [0.286], "std": [0.353]}}}}}}"#
        ))?;
        let loader = Loader::new(config)?;
        // One warm-up epoch (page faults of fresh buffers), then the timed ones. Like a trainer,
        // the consumer only takes each batch (reading one value of it) and releases it.
        let mut n = 0usize;
        let mut sample_bytes = 0usize;
        while let Some(b) = loader.next()? {
            n += b.len();
            sample_bytes = b.data_bytes().len() / b.len();
        }
        let run_loader = || -> Result<(usize, f64, f32), Box<dyn std::error::Error>> {
            let start = Instant::now();
            let mut samples = 0usize;
            let mut checksum = 0f32;
            for _ in 0..epochs {
                while let Some(b) = loader.next()? {
                    samples += b.len();
                    checksum += b.data_f32().map_or(0.0, |d| d[0]);
                }
            }
            Ok((samples, start.elapsed().as_secs_f64(), checksum))
        };
        if rounds == 0 {
            let (samples, secs, checksum) = run_loader()?;
            println!(
                "{{\"loader\": \"thresher\", \"workers\": {w}, \"samples\": {samples}, \"seconds\": {secs:.4}, \"samples_per_s\": {:.0}, \"checksum\": {checksum}}}",
                samples as f64 / secs
            );
            continue;
        }
        // The reference's source: the whole dataset as f32, written (not left as zero pages).
        let src: Vec<u8> = (0..n * sample_bytes).map(|i| (i % 251) as u8).collect();
        let per_thread = (PREFETCH + w).div_ceil(w);
        let mut dst: Vec<Vec<Vec<u8>>> = (0..w)
            .map(|_| {
                (0..per_thread)
                    .map(|_| vec![1u8; BATCH * sample_bytes])
                    .collect()
            })
            .collect();
        let (mut sps, mut mbs, mut fr, mut per_round) = (vec![], vec![], vec![], vec![]);
        let (mut total, mut total_s, mut checksum) = (0usize, 0f64, 0f32);
        for _ in 0..rounds {
            let (samples, secs, c) = run_loader()?;
            let loader_sps = samples as f64 / secs;
            let copy_s = memcpy_epochs(&src, n, sample_bytes, epochs as usize, &mut dst);
            let copy_bps = (epochs as usize * n * sample_bytes) as f64 / copy_s;
            let ratio = loader_sps * sample_bytes as f64 / copy_bps;
            per_round.push(format!(
                "{{\"samples_per_s\": {loader_sps:.0}, \"memcpy_bytes_per_s\": {copy_bps:.0}, \"fraction_of_memcpy\": {ratio:.4}}}"
            ));
            sps.push(loader_sps);
            mbs.push(copy_bps);
            fr.push(ratio);
            total += samples;
            total_s += secs;
            checksum += c;
        }
        println!(
            "{{\"loader\": \"thresher\", \"workers\": {w}, \"samples\": {total}, \"seconds\": {total_s:.4}, \"samples_per_s\": {:.0}, \"sample_bytes\": {sample_bytes}, \"memcpy_threads\": {w}, \"memcpy_dest_buffers\": {}, \"memcpy_bytes_per_s\": {:.0}, \"fraction_of_memcpy\": {:.4}, \"rounds\": [{}], \"checksum\": {checksum}}}",
            median(&sps),
            per_thread * w,
            median(&mbs),
            median(&fr),
            per_round.join(", ")
        );
    }
    Ok(())
}
