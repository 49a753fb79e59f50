//! `thresher-train`: the reference libtorch trainer. It drives thresher through the Rust API —
//! the same calls the C ABI translates — and shows what pruning buys: `train` runs one policy,
//! `compare` runs several on the same data and writes a table and a plot.

mod cli;
mod compare;
mod data;
mod mlp;
mod model;
mod noise;
mod signals;
mod task;
mod train;
mod transformer;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
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

/// With `--config`, the file's policy unless `--policy` / `--policies` is on the command line.
fn apply_config_policy(cli: &mut Cli, matches: &clap::ArgMatches) -> Result<()> {
    let sub = matches.subcommand().map(|(_, m)| m);
    let given = |id: &str| sub.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine);
    let common = match &cli.cmd {
        Cmd::Train(a) => &a.common,
        Cmd::Compare(a) => &a.common,
    };
    if common.data.val_config.is_some() && common.data.config.is_none() {
        return Err("--val-config goes with --config".into());
    }
    let Some(path) = &common.data.config else {
        return Ok(());
    };
    let spec = data::policy_of(&data::read_json(path)?)?;
    match &mut cli.cmd {
        Cmd::Train(a) if !given("policy") => a.policy = spec,
        Cmd::Compare(a) if !given("policies") => a.policies = vec![spec],
        _ => {}
    }
    Ok(())
}

fn real_main() -> Result<()> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches)?;
    apply_config_policy(&mut cli, &matches)?;
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
            let figure = match r.metric {
                _ if r.final_test_loss.is_nan() => "no evaluation (no --val-config)".to_string(),
                train::Metric::Accuracy => format!("final test accuracy {:.2}%", r.final_test_acc),
                train::Metric::Loss => format!(
                    "final test loss {:.4} (perplexity {:.3})",
                    r.final_test_loss,
                    r.final_test_loss.exp()
                ),
            };
            let flipped = r.flipped.map_or(String::new(), |f| {
                format!(
                    " ({} on flipped labels, {:.1}% of the loss weight)",
                    f.visits,
                    100.0 * f.weight_share
                )
            });
            println!(
                "{}: {figure}, {:.1}s training ({:.1}s in all), {} sample-visits{flipped}, \
                 realised prune {:.1}%; log {}",
                r.label,
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
