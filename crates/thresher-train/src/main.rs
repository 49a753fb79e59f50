//! `thresher-train`: the reference libtorch trainer. It drives thresher through the Rust API —
//! the same calls the C ABI translates — and shows what pruning buys: `train` runs one policy,
//! `compare` runs several on the same data and writes a table and a plot.

mod cli;
mod compare;
mod model;
mod noise;
mod signals;
mod train;

use std::process::ExitCode;

use clap::Parser;
use tch::Device;

use cli::{Cli, Cmd, Common, DeviceArg};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Sets torch's intra-op threads and picks the device; returns both.
fn setup(c: &Common) -> Result<(Device, usize)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // thresher's worker only maps bytes through a lookup table (~1 µs a sample: 0.02 s of
    // worker time per 20,000 Fashion-MNIST samples), so every core goes to torch by default.
    // On the 2-core machine 2 torch threads train ~1.8× faster than 1 when it is otherwise idle.
    let threads = c.threads.unwrap_or(cores).max(1);
    tch::set_num_threads(threads as i32);
    let device = match c.device {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Auto => Device::cuda_if_available(),
        DeviceArg::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
        DeviceArg::Cuda => return Err("--device cuda: torch sees no CUDA device".into()),
    };
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    Ok((device, threads))
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Train(a) => {
            let (device, threads) = setup(&a.common)?;
            let log = a.log.clone().unwrap_or_else(|| {
                a.common.out.join("runs").join(format!(
                    "{}-s{}.jsonl",
                    a.policy.label().replace([':', '=', '/'], "_"),
                    a.seed
                ))
            });
            let r = train::run(&train::RunOptions {
                common: &a.common,
                spec: &a.policy,
                seed: a.seed,
                log: log.clone(),
                save_scores: a.save_scores.clone(),
                device,
                threads,
            })?;
            println!(
                "{}: final test accuracy {:.2}%, {:.1}s training ({:.1}s in all), {} sample-visits, \
                 realised prune {:.1}%; log {}",
                r.label,
                r.final_test_acc,
                r.train_s,
                r.total_s,
                r.visits,
                100.0 * r.realised_prune,
                log.display()
            );
        }
        Cmd::Compare(a) => {
            let (device, threads) = setup(&a.common)?;
            compare::run(a, device, threads)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thresher-train: {e}");
            ExitCode::FAILURE
        }
    }
}
