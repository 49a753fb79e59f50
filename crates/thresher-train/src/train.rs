//! One training run: thresher feeds the batches, the model trains on mean(w · ℓ), and every step
//! sends its per-sample signals back to thresher before the optimizer step. The test (or
//! validation) loss and accuracy are measured after every epoch through a second loader (policy
//! full, no shuffle). The model, loss and feedback follow from the first batch (`task`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tch::{nn, nn::OptimizerConfig, Device, Kind};
use thresher_core::{Batch, Config, EpochReport, Feedback, Loader, ScoreFields};

use crate::cli::{Common, PolicySpec, Schedule};
use crate::data::{self, OptimizerArg, Problem, Task};
use crate::model::{ModelKind, Net};
use crate::noise::LabelNoise;
use crate::task::{self, Loss};
use crate::Result;

/// What a run needs besides the shared flags.
pub struct RunOptions<'a> {
    pub common: &'a Common,
    pub spec: &'a PolicySpec,
    pub seed: u64,
    pub log: PathBuf,
    pub save_scores: Option<PathBuf>,
    pub device: Device,
    /// Torch intra-op threads in effect (for the log).
    pub threads: usize,
}

/// One epoch's numbers, as logged (`"type": "epoch"`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub batches: u64,
    pub samples: u64,
    pub dataset_len: u64,
    /// Realised: 1 − samples / N.
    pub prune_fraction: f64,
    pub mean_weight: f64,
    /// Mean unweighted per-sample training loss and training accuracy over the epoch's samples.
    pub train_loss: f64,
    /// NaN where the task has no per-sample correctness (token blocks, MSE).
    pub train_acc: f64,
    /// Mean loss per test sample (per valid token for token blocks); accuracy in % (next-token
    /// accuracy for token blocks, element accuracy for BCE, NaN for MSE). NaN without an
    /// evaluation loader.
    pub test_loss: f64,
    pub test_acc: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Seconds of training this epoch (planning, loading, steps, feedback; not the evaluation).
    pub epoch_s: f64,
    /// Cumulative training seconds up to the end of this epoch.
    pub train_s: f64,
    /// CPU seconds of the whole process (every thread) during this epoch's training, and
    /// cumulative: on a shared machine, other jobs inflate wall time much more than this.
    pub epoch_cpu_s: f64,
    pub train_cpu_s: f64,
    pub eval_s: f64,
    pub samples_per_s: f64,
    /// Cumulative sample-visits (samples trained on) up to the end of this epoch.
    pub visits: u64,
    /// With `--label-noise`: this epoch's visits to samples whose label was flipped, and their
    /// share of the epoch's total loss weight (Σw over flipped visits / Σw over all visits):
    /// how much of the gradient a policy spends on mislabeled samples. Random pruning spends
    /// the noise rate on them in expectation. `None` without label noise.
    pub flipped: Option<Flipped>,
    /// thresher's own epoch report.
    pub report: EpochReport,
}

/// A whole run's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunResult {
    pub label: String,
    pub kind: String,
    pub seed: u64,
    pub dataset_len: u64,
    pub epochs: Vec<EpochRecord>,
    /// Training seconds (sum of `epoch_s`) and the run's wall time including evaluation.
    pub train_s: f64,
    pub total_s: f64,
    pub train_cpu_s: f64,
    pub visits: u64,
    pub final_test_acc: f64,
    pub final_test_loss: f64,
    /// What the run is judged by: accuracy for classes, the evaluation loss otherwise.
    pub metric: Metric,
    /// The model as built (the log's `"type": "model"` line).
    pub model: serde_json::Value,
    /// 1 − visits / (epochs · N).
    pub realised_prune: f64,
    /// With `--label-noise`: the whole run's visits to flipped samples and their weight share.
    pub flipped: Option<Flipped>,
}

/// Visits to samples whose label `--label-noise` flipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Flipped {
    pub visits: u64,
    /// Σw over the flipped samples' visits / Σw over all visits.
    pub weight_share: f64,
    /// The sums behind `weight_share` (so a run's share is summed, not averaged, over epochs).
    #[serde(skip)]
    weight: f64,
    #[serde(skip)]
    total_weight: f64,
}

impl Flipped {
    /// Adds one batch: `flipped[j]` says whether sample j's label was flipped.
    fn add(&mut self, flipped: impl Iterator<Item = bool>, weights: &[f32]) {
        for (f, &w) in flipped.zip(weights) {
            self.total_weight += w as f64;
            if f {
                self.visits += 1;
                self.weight += w as f64;
            }
        }
        self.weight_share = self.weight / self.total_weight;
    }

    /// The sum of two tallies (an epoch's into the run's).
    fn plus(self, o: Flipped) -> Flipped {
        let (weight, total_weight) = (self.weight + o.weight, self.total_weight + o.total_weight);
        Flipped {
            visits: self.visits + o.visits,
            weight_share: weight / total_weight,
            weight,
            total_weight,
        }
    }
}

/// The figure a comparison reports: test accuracy (classes, BCE) or test loss (token blocks,
/// where perplexity = exp(loss), and MSE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    Loss,
}

impl Metric {
    pub fn of(loss: Loss) -> Metric {
        match loss {
            Loss::CrossEntropy | Loss::Bce => Metric::Accuracy,
            Loss::Mse | Loss::NextToken => Metric::Loss,
        }
    }
}

/// The model of a run and what it was built for.
struct Model {
    net: Box<dyn Net>,
    opt: nn::Optimizer,
    problem: Problem,
    loss: Loss,
    clip: Option<f64>,
    outputs: i64,
}

/// The learning rate at `step` of `batches` in `epoch` of `epochs`. The position within the run
/// is measured in epochs, from the epoch length thresher reports before the epoch begins, so a
/// pruned epoch runs through the same part of the schedule as a full one in fewer steps.
pub fn learning_rate(
    schedule: Schedule,
    base: f64,
    epoch: u64,
    step: u64,
    batches: u64,
    epochs: u64,
) -> f64 {
    let t = (epoch as f64 + step as f64 / batches.max(1) as f64) / epochs.max(1) as f64;
    match schedule {
        Schedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()),
        Schedule::Step => {
            let e = epoch as f64 / epochs.max(1) as f64;
            base * if e >= 0.75 {
                0.01
            } else if e >= 0.5 {
                0.1
            } else {
                1.0
            }
        }
    }
}

/// CPU time of this process so far (user + system, all threads).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The 1-minute load average, to show in logs how busy the machine was.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Test loss and accuracy (%) over one epoch of the evaluation loader (see `EpochRecord`).
fn evaluate(m: &Model, test: &Loader, device: Device) -> Result<(f64, f64)> {
    let _guard = tch::no_grad_guard();
    let (mut loss, mut n, mut correct, mut m_n) = (0.0, 0.0, 0.0, 0.0);
    while let Some(batch) = test.next()? {
        let t = data::batch_tensors(&data::view(&batch), &m.problem, device)?;
        task::check_range(&t, m.outputs)?;
        let (_, out) = m.net.forward(&t.x, false);
        let (l, ln, c, cn) = task::eval_sums(m.loss, &out, &t.target);
        loss += l;
        n += ln;
        correct += c;
        m_n += cn;
    }
    if n == 0.0 {
        return Err("the test set is empty".into());
    }
    Ok((loss / n, 100.0 * correct / m_n))
}

/// Builds the model for the problem the first batch shows.
fn build_model(
    c: &Common,
    vs: &nn::VarStore,
    batch: &Batch,
    loader_json: &serde_json::Value,
    needs: ScoreFields,
    label: &str,
) -> Result<(Model, serde_json::Value)> {
    let p = data::problem(&data::view(batch), Some(loader_json))?;
    let kind = task::resolve(c.model, &p)?;
    let loss = task::loss_for(c.data.loss, p.task)?;
    task::check_needs(loss, needs, label)?;
    let outputs = match (p.task, c.data.classes, &c.data.config) {
        (Task::Values, _, _) => p.target_dim as i64,
        (_, Some(k), _) => k,
        (_, None, Some(_)) => data::default_classes(loader_json, p.task)?,
        // The built-in datasets: ten classes.
        (_, None, None) => 10,
    };
    let net = task::build(kind, &vs.root(), &p, outputs, c)?;
    let optimizer = match c.data.optimizer {
        OptimizerArg::Auto if kind == ModelKind::Transformer => OptimizerArg::Adamw,
        OptimizerArg::Auto => OptimizerArg::Sgd,
        o => o,
    };
    let opt = match optimizer {
        OptimizerArg::Adamw => nn::AdamW {
            wd: c.weight_decay,
            ..Default::default()
        }
        .build(vs, c.lr)?,
        _ => nn::Sgd {
            momentum: c.momentum,
            dampening: 0.0,
            wd: c.weight_decay,
            nesterov: c.momentum > 0.0,
        }
        .build(vs, c.lr)?,
    };
    let clip = match c.data.clip_grad {
        Some(v) if v > 0.0 => Some(v),
        Some(_) => None,
        None if kind == ModelKind::Transformer => Some(1.0),
        None => None,
    };
    let params: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let info = json!({
        "type": "model", "model": kind, "loss": loss, "optimizer": optimizer, "problem": p,
        "outputs": outputs, "parameters": params, "clip_grad": clip,
    });
    Ok((
        Model {
            net,
            opt,
            problem: p,
            loss,
            clip,
            outputs,
        },
        info,
    ))
}

fn progress_bar(len: u64, prefix: String) -> ProgressBar {
    // Draws to stdout only when it is a terminal; logs piped to a file stay clean.
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix);
    pb
}

/// Trains one model with one policy and seed; writes the JSON lines log as it goes.
pub fn run(o: &RunOptions<'_>) -> Result<RunResult> {
    let c = o.common;
    let label = o.spec.label();
    let started = Instant::now();
    let train_json = crate::cli::train_config(c, o.spec, o.seed)?;
    let train_cfg =
        Config::from_json(&train_json.to_string()).map_err(|e| format!("policy {label}: {e}"))?;
    // The config's (a `--config` file sets its own).
    let batch_size = train_cfg.batch_size;
    // The scoring epochs in effect (the noise guard lengthens them to `guard_window`).
    let scoring_epochs = train_cfg.policy.scoring_epochs();
    let loader = Loader::new(train_cfg)?;
    let test = match crate::cli::eval_config(c)? {
        Some(v) => Some(Loader::new(
            Config::from_json(&v.to_string()).map_err(|e| format!("evaluation config: {e}"))?,
        )?),
        None => None,
    };
    let n = loader.dataset_len() as u64;
    // The signals the policy's ScoreBook holds; nothing else is computed.
    let needs = loader.with_scores(|s| s.fields());
    // The static policies score during their first `score_epochs` epochs and then train on one
    // fixed subset: their extra signals are dead weight afterwards (for `influence` the
    // embeddings and their sketching would double the cost of every later step).
    let policy_json = o.spec.to_json(c);

    if let Some(dir) = o.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log =
        BufWriter::new(File::create(&o.log).map_err(|e| format!("{}: {e}", o.log.display()))?);
    writeln!(
        log,
        "{}",
        json!({
            "type": "run",
            "label": label,
            "policy": policy_json,
            "scoring_epochs": scoring_epochs,
            "seed": o.seed,
            "dataset": if c.data.config.is_some() { json!(null) } else { json!(c.dataset) },
            "config": c.data.config,
            "val_config": c.data.val_config,
            "dataset_len": n,
            "test_len": test.as_ref().map(|t| t.dataset_len()),
            "epochs": c.epochs,
            "batch_size": batch_size,
            "lr": c.lr,
            "momentum": c.momentum,
            "weight_decay": c.weight_decay,
            "schedule": c.schedule,
            "model": c.model,
            "width": c.width,
            "device": format!("{:?}", o.device),
            "torch_threads": o.threads,
            "omp_wait_policy": std::env::var("OMP_WAIT_POLICY").ok(),
            "workers": c.workers,
            "needs": {
                "grad_norm": needs.contains(ScoreFields::GRAD_NORM),
                "el2n": needs.contains(ScoreFields::EL2N),
                "correct": needs.contains(ScoreFields::CORRECT),
                "embedding": needs.contains(ScoreFields::EMBEDDING),
            },
            "loader_config": train_json,
            "label_noise": {
                "rate": c.noise.label_noise,
                "kind": c.noise.label_noise_kind,
                "seed": c.noise.label_noise_seed,
            },
            "load_average": load_average(),
        })
    )?;

    // Set once the model is built (the class count comes from the data).
    let mut noise: Option<LabelNoise> = None;
    tch::manual_seed(o.seed as i64);
    let vs = nn::VarStore::new(o.device);
    // Built on the first batch: the sample shape comes from the data.
    let mut model: Option<Model> = None;
    let mut model_info = serde_json::Value::Null;
    let mut records = Vec::with_capacity(c.epochs as usize);
    let (mut train_s, mut train_cpu_s, mut visits, mut global_step) = (0.0f64, 0.0f64, 0u64, 0u64);
    let mut run_flipped = Flipped::default();

    for epoch in 0..c.epochs {
        let t0 = Instant::now();
        let cpu0 = cpu_seconds();
        // Makes the epoch's plan from the ScoreBook as it stands: its length is known now.
        let info = loader.epoch_info();
        crate::noise::warn_if_unlearnable(&label, epoch, loader.report().unlearnable_fraction);
        let pb = progress_bar(
            info.batches,
            format!("{label} s{} {}/{}", o.seed, epoch + 1, c.epochs),
        );
        let needs = match scoring_epochs {
            // The loss is always sent.
            // Correctness stays: it is cheap, and the noise guard's streaks behind the
            // report's unlearnable fraction (and its warning) keep following the kept set.
            Some(k) if epoch >= k => needs.intersect(ScoreFields::STREAK),
            _ => needs,
        };
        let (mut loss_sum, mut correct, mut seen, mut lr) = (0.0f64, 0u64, 0u64, c.lr);
        // Samples with a correctness (none for token blocks and MSE).
        let mut judged = 0u64;
        let mut step = 0u64;
        let mut flipped = Flipped::default();
        while let Some(batch) = loader.next()? {
            if model.is_none() {
                let (m, info) = build_model(c, &vs, &batch, &train_json, needs, &label)?;
                writeln!(log, "{info}")?;
                model_info = info;
                // Training labels as a mislabeled dataset would hold them (class labels only;
                // the evaluation set stays clean).
                if m.problem.task == Task::Classes {
                    noise = LabelNoise::from_args(&c.noise, m.outputs);
                } else if c.noise.label_noise > 0.0 {
                    return Err(format!(
                        "--label-noise needs class labels; {label} trains on {:?} targets",
                        m.problem.task
                    )
                    .into());
                }
                model = Some(m);
            }
            let m = model.as_mut().expect("built above");
            let mut t = data::batch_tensors(&data::view(&batch), &m.problem, o.device)?;
            if let (Some(z), data::Target::Labels(_)) = (&noise, &t.target) {
                flipped.add(batch.ids().iter().map(|&id| z.flipped(id)), batch.weights());
                let noisy = z.apply(batch.ids(), batch.labels());
                t.target =
                    data::Target::Labels(tch::Tensor::from_slice(&noisy).to_device(o.device));
            }
            task::check_range(&t, m.outputs)?;
            lr = learning_rate(c.schedule, c.lr, epoch, step, info.batches, c.epochs);
            m.opt.set_lr(lr);

            let (h, out) = m.net.forward(&t.x, true);
            let s = task::signals(m.loss, &h, &out, &t.target, needs)?;
            loader.feedback(&Feedback {
                ids: batch.ids(),
                loss: &s.loss,
                grad_norm: s.grad_norm.as_deref(),
                el2n: s.el2n.as_deref(),
                // Correctness also feeds the noise guard's streaks.
                correct: (needs.contains(ScoreFields::CORRECT)
                    || needs.contains(ScoreFields::STREAK))
                .then_some(s.correct.as_slice()),
                embedding: s.embedding.as_deref(),
                embedding_dim: s.embedding_dim,
            })?;
            // InfoBatch's convention: mean(w · ℓ), not Σwℓ/Σw, so rescaled samples count more.
            let loss = (&s.loss_t * &t.w).mean(Kind::Float);
            match m.clip {
                Some(max) => m.opt.backward_step_clip_norm(&loss, max),
                None => m.opt.backward_step(&loss),
            }

            let b = batch.len() as u64;
            let bl: f64 = s.loss.iter().map(|&l| l as f64).sum();
            let wl: f64 = s
                .loss
                .iter()
                .zip(batch.weights())
                .map(|(&l, &w)| (l * w) as f64)
                .sum();
            let bc: u64 = s.correct.iter().map(|&v| v as u64).sum();
            let mean_w = batch.weights().iter().map(|&v| v as f64).sum::<f64>() / b as f64;
            drop(batch);
            loss_sum += bl;
            correct += bc;
            seen += b;
            judged += s.correct.len() as u64;
            let acc = |c: u64, n: u64| {
                if n == 0 {
                    f64::NAN
                } else {
                    100.0 * c as f64 / n as f64
                }
            };
            writeln!(
                log,
                "{}",
                json!({
                    "type": "step", "epoch": epoch, "step": step, "global_step": global_step,
                    "samples": b, "loss": bl / b as f64, "weighted_loss": wl / b as f64,
                    "acc": acc(bc, s.correct.len() as u64), "mean_weight": mean_w, "lr": lr,
                })
            )?;
            step += 1;
            global_step += 1;
            pb.inc(1);
            let elapsed = t0.elapsed().as_secs_f64();
            pb.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} samples/s",
                loss_sum / seen as f64,
                acc(correct, judged),
                seen as f64 / elapsed
            ));
        }
        let epoch_s = t0.elapsed().as_secs_f64();
        let epoch_cpu_s = cpu_seconds() - cpu0;
        pb.finish_and_clear();
        // The epoch has ended: this is its final report.
        let report = loader.report();
        train_s += epoch_s;
        train_cpu_s += epoch_cpu_s;
        visits += seen;
        let flipped = noise.is_some().then_some(flipped);
        if let Some(f) = flipped {
            run_flipped = run_flipped.plus(f);
        }

        let t1 = Instant::now();
        let m = model.as_ref().ok_or("the first epoch delivered no batch")?;
        let (test_loss, test_acc) = match &test {
            Some(test) => evaluate(m, test, o.device)?,
            None => (f64::NAN, f64::NAN),
        };
        let eval_s = t1.elapsed().as_secs_f64();
        let rec = EpochRecord {
            epoch,
            batches: info.batches,
            samples: seen,
            dataset_len: n,
            prune_fraction: report.prune_fraction,
            mean_weight: report.mean_weight,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: if judged == 0 {
                f64::NAN
            } else {
                100.0 * correct as f64 / judged as f64
            },
            test_loss,
            test_acc,
            lr,
            epoch_s,
            train_s,
            epoch_cpu_s,
            train_cpu_s,
            eval_s,
            samples_per_s: seen as f64 / epoch_s,
            visits,
            flipped,
            report,
        };
        let figures = match Metric::of(m.loss) {
            Metric::Accuracy => format!(
                "loss {:.4} train {:.2}% test {:.2}%",
                rec.train_loss, rec.train_acc, rec.test_acc
            ),
            Metric::Loss => format!(
                "loss {:.4} test loss {:.4} (perplexity {:.3})",
                rec.train_loss,
                rec.test_loss,
                rec.test_loss.exp()
            ),
        };
        println!(
            "{label} s{} epoch {}/{}: kept {}/{} ({:.1}% pruned, mean w {:.3}) {figures} \
             | {:.1}s ({:.1} CPU s), {:.0} samples/s, waited {:.2}s",
            o.seed,
            epoch + 1,
            c.epochs,
            seen,
            n,
            100.0 * rec.prune_fraction,
            rec.mean_weight,
            epoch_s,
            epoch_cpu_s,
            rec.samples_per_s,
            report.consumer_wait_s,
        );
        let mut line = serde_json::to_value(&rec)?;
        line["type"] = json!("epoch");
        writeln!(log, "{line}")?;
        log.flush()?;
        records.push(rec);
    }

    if let Some(path) = &o.save_scores {
        loader.save_scores(path)?;
    }
    let result = RunResult {
        label,
        kind: o.spec.kind.clone(),
        seed: o.seed,
        dataset_len: n,
        final_test_acc: records.last().map_or(f64::NAN, |r| r.test_acc),
        final_test_loss: records.last().map_or(f64::NAN, |r| r.test_loss),
        metric: model
            .as_ref()
            .map_or(Metric::Accuracy, |m| Metric::of(m.loss)),
        model: model_info,
        epochs: records,
        train_s,
        train_cpu_s,
        total_s: started.elapsed().as_secs_f64(),
        visits,
        realised_prune: 1.0 - visits as f64 / (c.epochs.max(1) * n) as f64,
        flipped: noise.is_some().then_some(run_flipped),
    };
    writeln!(
        log,
        "{}",
        json!({
            "type": "end", "train_s": result.train_s, "total_s": result.total_s,
            "train_cpu_s": result.train_cpu_s, "load_average": load_average(),
            "visits": result.visits, "realised_prune": result.realised_prune,
            "final_test_acc": result.final_test_acc,
            "final_test_loss": result.final_test_loss,
            "flipped": result.flipped,
        })
    )?;
    log.flush()?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_shares_are_summed_over_batches_and_epochs() {
        let mut a = Flipped::default();
        a.add([true, false, false].into_iter(), &[2.0, 1.0, 1.0]);
        assert_eq!((a.visits, a.weight_share), (1, 0.5));
        let mut b = Flipped::default();
        b.add([false; 4].into_iter(), &[1.0; 4]);
        // Summed, not averaged: 2 of 8 units of weight, not (0.5 + 0) / 2.
        let run = a.plus(b);
        assert_eq!((run.visits, run.weight_share), (1, 0.25));
    }

    #[test]
    fn cosine_runs_by_epoch_position() {
        let lr = |e, s, b| learning_rate(Schedule::Cosine, 1.0, e, s, b, 4);
        assert!((lr(0, 0, 10) - 1.0).abs() < 1e-12);
        // Halfway through the run, whatever the epoch's length.
        assert!((lr(2, 0, 10) - 0.5).abs() < 1e-12);
        assert!((lr(1, 5, 10) - lr(1, 3, 6)).abs() < 1e-12);
        assert!(lr(3, 9, 10) < 0.01);
        let st = |e| learning_rate(Schedule::Step, 1.0, e, 0, 10, 8);
        assert_eq!((st(3), st(4), st(6)), (1.0, 0.1, 0.01));
    }
}
