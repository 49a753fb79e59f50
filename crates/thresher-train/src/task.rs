//! From the problem the first batch shows to a model, a loss, per-sample feedback and an
//! evaluation:
//!
//! | targets | loss | per-sample loss fed back | evaluation |
//! |---|---|---|---|
//! | class labels | cross-entropy | the sample's | loss, accuracy |
//! | float [K] | MSE (`--loss bce`: binary cross-entropy on logits) | mean over K | loss (BCE: element accuracy) |
//! | token block | next-token cross-entropy | mean over the valid (mask) positions | loss per token, perplexity, next-token accuracy |
//!
//! The last-layer gradient signals (EL2N, gradient norm, gradient embedding) generalise from
//! cross-entropy to MSE and BCE through the residual ∂ℓ/∂output; correctness is defined for
//! classes and BCE. For token blocks only the loss is fed back: a policy that needs more is
//! refused before training.

use tch::nn;
use tch::{Kind, Reduction, Tensor};
use thresher_core::ScoreFields;

use crate::cli::Common;
use crate::data::{Input, LossArg, Problem, Target, Task};
use crate::model::{self, ModelKind, Net};
use crate::signals::{self, Signals};
use crate::{mlp, transformer, Result};

/// The loss, resolved from `--loss` and the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    CrossEntropy,
    Mse,
    Bce,
    NextToken,
}

pub fn loss_for(arg: LossArg, task: Task) -> Result<Loss> {
    Ok(match (arg, task) {
        (LossArg::Auto | LossArg::Ce, Task::Classes) => Loss::CrossEntropy,
        (LossArg::Auto | LossArg::Ce, Task::Tokens) => Loss::NextToken,
        (LossArg::Auto | LossArg::Mse, Task::Values) => Loss::Mse,
        (LossArg::Bce, Task::Values) => Loss::Bce,
        (a, t) => return Err(format!("--loss {a:?} does not fit {t:?} targets").into()),
    })
}

/// The signals each loss can give beyond the loss itself.
pub fn check_needs(loss: Loss, needs: ScoreFields, policy: &str) -> Result<()> {
    let missing: &[(ScoreFields, &str)] = match loss {
        Loss::CrossEntropy | Loss::Bce => &[],
        Loss::Mse => &[(ScoreFields::CORRECT, "correctness")],
        Loss::NextToken => &[
            (ScoreFields::CORRECT, "correctness"),
            (ScoreFields::EL2N, "EL2N"),
            (ScoreFields::GRAD_NORM, "gradient norms"),
            (ScoreFields::EMBEDDING, "gradient embeddings"),
        ],
    };
    for &(field, name) in missing {
        if needs.contains(field) {
            return Err(format!(
                "policy {policy} needs {name}, which the trainer does not compute for a {loss:?} \
                 loss (token blocks feed back the loss only; MSE has no correctness)"
            )
            .into());
        }
    }
    Ok(())
}

/// The concrete model for a problem: `auto` picks the transformer for token blocks, the small
/// CNN for one-channel images, ResNet-18 for colour images and the MLP for feature vectors.
pub fn resolve(kind: ModelKind, p: &Problem) -> Result<ModelKind> {
    let k = match (kind, p.input) {
        (ModelKind::Auto, Input::Tokens) => ModelKind::Transformer,
        (ModelKind::Auto, Input::Image) if p.sample[0] == 1 => ModelKind::Cnn,
        (ModelKind::Auto, Input::Image) => ModelKind::Resnet18,
        (ModelKind::Auto, Input::Features) => ModelKind::Mlp,
        (ModelKind::Cnn | ModelKind::Resnet18, Input::Image) => kind,
        (ModelKind::Mlp, Input::Image | Input::Features) => kind,
        (ModelKind::Transformer, Input::Tokens) => kind,
        (k, i) => return Err(format!("--model {k:?} cannot read {i:?} samples").into()),
    };
    Ok(k)
}

/// Builds the model for `p` with `outputs` classes, targets or vocabulary entries.
pub fn build(
    kind: ModelKind,
    vs: &nn::Path,
    p: &Problem,
    outputs: i64,
    c: &Common,
) -> Result<Box<dyn Net>> {
    Ok(match kind {
        ModelKind::Cnn | ModelKind::Resnet18 => {
            let s = [p.sample[0], p.sample[1], p.sample[2]];
            model::build(kind, vs, s, outputs, c.width)
        }
        ModelKind::Mlp => Box::new(mlp::Mlp::new(
            vs,
            p.sample.iter().product::<usize>() as i64,
            outputs,
        )),
        ModelKind::Transformer => {
            let d = &c.data;
            if d.d_model % d.heads != 0 {
                return Err(format!(
                    "--d-model {} is not a multiple of --heads {}",
                    d.d_model, d.heads
                )
                .into());
            }
            Box::new(transformer::Transformer::new(
                vs,
                transformer::Config {
                    vocab: outputs,
                    block: p.sample[0] as i64,
                    d_model: d.d_model,
                    layers: d.layers,
                    heads: d.heads,
                },
            ))
        }
        ModelKind::Auto => unreachable!("resolved before"),
    })
}

fn to_vec_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        &t.detach()
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )
    .expect("a flat float tensor converts")
}

/// Per-sample losses [B] (on the graph) of a token block: the mean over valid positions.
fn token_losses(logits: &Tensor, y: &Tensor, mask: Option<&Tensor>) -> (Tensor, Tensor) {
    let (b, t, v) = logits.size3().expect("[B, T, V]");
    let per_token = logits
        .view([b * t, v])
        .cross_entropy_loss::<Tensor>(&y.view([b * t]), None, Reduction::None, -100, 0.0)
        .view([b, t]);
    let m = match mask {
        Some(m) => m.shallow_clone(),
        None => Tensor::ones([b, t], (Kind::Float, logits.device())),
    };
    let per_token = per_token * &m;
    (per_token, m)
}

/// The signals for one training batch; only the loss for token blocks.
pub fn signals(
    loss: Loss,
    h: &Tensor,
    out: &Tensor,
    target: &Target,
    needs: ScoreFields,
) -> Result<Signals> {
    match (loss, target) {
        (Loss::CrossEntropy, Target::Labels(y)) => Ok(signals::compute(h, out, y, needs)),
        (Loss::NextToken, Target::Tokens { y, mask }) => {
            let (per_token, m) = token_losses(out, y, mask.as_ref());
            // A block with no valid position contributes 0 (not NaN).
            let loss_t = per_token.sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                / m.sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                    .clamp_min(1.0);
            let loss_v = to_vec_f32(&loss_t);
            Ok(Signals {
                loss_t,
                loss: loss_v,
                correct: Vec::new(),
                el2n: None,
                grad_norm: None,
                embedding: None,
                embedding_dim: 0,
            })
        }
        (Loss::Mse | Loss::Bce, Target::Values(y)) => {
            let k = out.size()[1];
            let (per_elem, pred) = if loss == Loss::Mse {
                (out.mse_loss(y, Reduction::None), out.shallow_clone())
            } else {
                (
                    out.binary_cross_entropy_with_logits::<Tensor>(y, None, None, Reduction::None),
                    out.sigmoid(),
                )
            };
            let loss_t = per_elem.mean_dim([1i64].as_slice(), false, Kind::Float);
            let _guard = tch::no_grad_guard();
            // ∂ℓ/∂output of the per-sample mean loss: 2(p − y)/K for MSE, (σ(z) − y)/K for BCE.
            let scale = if loss == Loss::Mse { 2.0 } else { 1.0 } / k as f64;
            let diff = (pred.detach() - y) * scale;
            let correct = if loss == Loss::Bce {
                let ok = pred.ge(0.5).eq_tensor(&y.ge(0.5)).all_dim(1, false);
                Vec::<i64>::try_from(ok.to_kind(Kind::Int64).to_device(tch::Device::Cpu))
                    .expect("a flat int tensor converts")
                    .into_iter()
                    .map(|c| c as u8)
                    .collect()
            } else {
                Vec::new()
            };
            let mut s = signals::from_residual(h, &diff, needs);
            s.loss = to_vec_f32(&loss_t);
            s.loss_t = loss_t;
            s.correct = correct;
            Ok(s)
        }
        _ => Err("the batch's targets do not match the loss".into()),
    }
}

/// Refuses class ids or token ids outside [0, outputs) (torch would abort on them).
pub fn check_range(t: &crate::data::Tensors, outputs: i64) -> Result<()> {
    let bad = |v: &Tensor| {
        v.numel() > 0 && {
            let lo = v.min().int64_value(&[]);
            let hi = v.max().int64_value(&[]);
            lo < 0 || hi >= outputs
        }
    };
    let (what, out_of_range) = match &t.target {
        Target::Labels(y) => ("a class label", bad(y)),
        Target::Tokens { y, .. } => ("a token id", bad(&t.x) || bad(y)),
        Target::Values(_) => return Ok(()),
    };
    if out_of_range {
        return Err(format!(
            "{what} outside [0, {outputs}): pass --classes with the number of classes or the \
             vocabulary size"
        )
        .into());
    }
    Ok(())
}

/// Evaluation sums over one batch: (loss sum, loss count, correct, correct count). The loss is
/// per sample (per token for token blocks); "correct" counts samples (tokens; elements for BCE).
pub fn eval_sums(loss: Loss, out: &Tensor, target: &Target) -> (f64, f64, f64, f64) {
    let sum = |t: Tensor| t.sum(Kind::Double).double_value(&[]);
    match (loss, target) {
        (Loss::CrossEntropy, Target::Labels(y)) => {
            let l = sum(out.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0));
            let c = sum(out.argmax(-1, false).eq_tensor(y));
            let n = y.size()[0] as f64;
            (l, n, c, n)
        }
        (Loss::NextToken, Target::Tokens { y, mask }) => {
            let (per_token, m) = token_losses(out, y, mask.as_ref());
            let hits = out.argmax(-1, false).eq_tensor(y).to_kind(Kind::Float) * &m;
            let n = sum(m);
            (sum(per_token), n, sum(hits), n)
        }
        (Loss::Mse, Target::Values(y)) => {
            let l =
                out.mse_loss(y, Reduction::None)
                    .mean_dim([1i64].as_slice(), false, Kind::Float);
            (sum(l), y.size()[0] as f64, f64::NAN, f64::NAN)
        }
        (Loss::Bce, Target::Values(y)) => {
            let l = out
                .binary_cross_entropy_with_logits::<Tensor>(y, None, None, Reduction::None)
                .mean_dim([1i64].as_slice(), false, Kind::Float);
            let c = sum(out.sigmoid().ge(0.5).eq_tensor(&y.ge(0.5)));
            (sum(l), y.size()[0] as f64, c, y.numel() as f64)
        }
        _ => (f64::NAN, 0.0, f64::NAN, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn masked_token_loss_is_the_mean_over_valid_positions() {
        let logits = Tensor::randn([2, 3, 5], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[1i64, 2, 3, 4, 0, 1]).view([2, 3]);
        let mask = Tensor::from_slice(&[1f32, 1., 1., 1., 0., 0.]).view([2, 3]);
        let h = Tensor::zeros([2, 3, 4], (Kind::Float, Device::Cpu));
        let t = Target::Tokens {
            y: y.shallow_clone(),
            mask: Some(mask),
        };
        let s = signals(Loss::NextToken, &h, &logits, &t, ScoreFields::LOSS_LAST).unwrap();
        let per = logits.view([6, 5]).cross_entropy_loss::<Tensor>(
            &y.view([6]),
            None,
            Reduction::None,
            -100,
            0.0,
        );
        let per = to_vec_f32(&per);
        assert!((s.loss[0] - (per[0] + per[1] + per[2]) / 3.0).abs() < 1e-5);
        assert!((s.loss[1] - per[3]).abs() < 1e-5);
        let (l, n, _, _) = eval_sums(Loss::NextToken, &logits, &t);
        assert_eq!(n, 4.0);
        assert!((l as f32 - (per[0] + per[1] + per[2] + per[3])).abs() < 1e-4);
    }

    #[test]
    fn needs_beyond_the_loss_are_refused_for_tokens() {
        assert!(check_needs(Loss::NextToken, ScoreFields::LOSS_LAST, "infobatch").is_ok());
        assert!(check_needs(Loss::NextToken, ScoreFields::EL2N, "el2n").is_err());
        assert!(check_needs(Loss::Mse, ScoreFields::CORRECT, "forgetting").is_err());
        assert!(check_needs(Loss::Mse, ScoreFields::EMBEDDING, "influence").is_ok());
        assert!(loss_for(LossArg::Bce, Task::Classes).is_err());
    }

    #[test]
    fn mse_signals_and_gradient_embedding() {
        let h = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
        let out = Tensor::randn([4, 2], (Kind::Float, Device::Cpu));
        let y = Tensor::randn([4, 2], (Kind::Float, Device::Cpu));
        let s = signals(
            Loss::Mse,
            &h,
            &out,
            &Target::Values(y.shallow_clone()),
            ScoreFields::ALL,
        )
        .unwrap();
        let want = to_vec_f32(&(&out - &y).square().mean_dim(
            [1i64].as_slice(),
            false,
            Kind::Float,
        ));
        for (a, b) in s.loss.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
        assert_eq!(s.embedding_dim, 2 * 4);
        assert!(s.correct.is_empty() && s.el2n.is_some() && s.grad_norm.is_some());
    }
}
