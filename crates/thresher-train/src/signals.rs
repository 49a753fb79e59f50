//! Per-sample feedback signals, computed from one forward pass and only when the active policy's
//! ScoreBook holds them (`ScoreFields`): the loss always; EL2N, correctness, gradient norm and
//! the last-layer gradient embedding on demand.
//!
//! Gradient norm: the exact per-sample gradient norm over all parameters needs one backward
//! pass per sample. We use the norm of the per-sample gradient of the last layer (weights and
//! bias), which is exact for that layer and free given the forward pass: for cross-entropy,
//! ∂ℓ/∂W = (p − y) hᵀ and ∂ℓ/∂b = p − y, so ‖[∂W, ∂b]‖ = ‖p − y‖ · ‖[h, 1]‖. It is the standard
//! cheap proxy for GraNd (Katharopoulos & Fleuret 2018 bound the full norm by the gradient at
//! the logits; Paul et al. note EL2N = ‖p − y‖ approximates GraNd), and it ranks samples the same
//! way up to the ‖[h, 1]‖ factor. The embedding for `influence` is the same gradient unflattened:
//! (p − y) ⊗ [h, 1], K·(F+1) values per sample, row-major by class.

use tch::{Kind, Reduction, Tensor};
use thresher_core::ScoreFields;

/// One batch's signals on the CPU, ready for `Feedback`.
pub struct Signals {
    /// Per-sample loss, still on the autograd graph (reduction none).
    pub loss_t: Tensor,
    pub loss: Vec<f32>,
    /// Always computed: the trainer reports accuracy from it. Sent as feedback only on demand.
    pub correct: Vec<u8>,
    pub el2n: Option<Vec<f32>>,
    pub grad_norm: Option<Vec<f32>>,
    pub embedding: Option<Vec<f32>>,
    pub embedding_dim: usize,
}

fn to_vec_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        &t.to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )
    .expect("a flat float tensor converts")
}

/// Signals for a batch with features `h` [B, F], `logits` [B, K] and `labels` [B] (i64), computing
/// the optional ones only when `needs` contains them.
pub fn compute(h: &Tensor, logits: &Tensor, labels: &Tensor, needs: ScoreFields) -> Signals {
    let loss_t = logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0);
    let _guard = tch::no_grad_guard();
    let loss = to_vec_f32(&loss_t.detach());
    let pred = logits.argmax(-1, false);
    let correct: Vec<u8> = Vec::<i64>::try_from(
        &pred
            .eq_tensor(labels)
            .to_kind(Kind::Int64)
            .to_device(tch::Device::Cpu),
    )
    .expect("a flat int tensor converts")
    .into_iter()
    .map(|c| c as u8)
    .collect();

    let mut s = if needs.contains(ScoreFields::EL2N)
        || needs.contains(ScoreFields::GRAD_NORM)
        || needs.contains(ScoreFields::EMBEDDING)
    {
        let k = logits.size()[1];
        let diff =
            logits.detach().softmax(-1, Kind::Float) - labels.one_hot(k).to_kind(Kind::Float);
        from_residual(h, &diff, needs)
    } else {
        from_residual(h, &Tensor::new(), ScoreFields::NONE)
    };
    s.loss_t = loss_t;
    s.loss = loss;
    s.correct = correct;
    s
}

/// The optional last-layer signals from the residual `diff` = ∂ℓ/∂output [B, K] and the
/// features `h` [B, F] (the loss and correctness are left empty for the caller): EL2N = ‖diff‖,
/// gradient norm = ‖diff‖ · ‖[h, 1]‖, embedding = diff ⊗ [h, 1].
pub fn from_residual(h: &Tensor, diff: &Tensor, needs: ScoreFields) -> Signals {
    let want_el2n = needs.contains(ScoreFields::EL2N);
    let want_gn = needs.contains(ScoreFields::GRAD_NORM);
    let want_emb = needs.contains(ScoreFields::EMBEDDING);
    let (mut el2n, mut grad_norm, mut embedding, mut embedding_dim) = (None, None, None, 0);
    if want_el2n || want_gn || want_emb {
        let _guard = tch::no_grad_guard();
        let k = diff.size()[1];
        let err = diff
            .square()
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .sqrt();
        if want_gn {
            let h_norm =
                (h.detach()
                    .square()
                    .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                    + 1.0)
                    .sqrt();
            grad_norm = Some(to_vec_f32(&(&err * h_norm)));
        }
        if want_el2n {
            el2n = Some(to_vec_f32(&err));
        }
        if want_emb {
            let b = h.size()[0];
            let h1 = Tensor::cat(
                &[h.detach(), Tensor::ones([b, 1], (Kind::Float, h.device()))],
                1,
            );
            let emb = diff.unsqueeze(2) * h1.unsqueeze(1);
            embedding_dim = (k * h1.size()[1]) as usize;
            embedding = Some(to_vec_f32(&emb));
        }
    }
    Signals {
        loss_t: Tensor::new(),
        loss: Vec::new(),
        correct: Vec::new(),
        el2n,
        grad_norm,
        embedding,
        embedding_dim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};
    use tch::Device;

    /// The closed forms against autograd: per-sample gradients of a linear head.
    #[test]
    fn last_layer_gradient_matches_autograd() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let head = nn::linear(vs.root() / "head", 6, 4, Default::default());
        let h = Tensor::randn([5, 6], (Kind::Float, Device::Cpu)).relu();
        let labels = Tensor::from_slice(&[0i64, 3, 2, 2, 1]);
        let logits = head.forward(&h);
        let s = compute(&h, &logits, &labels, ScoreFields::ALL);
        let gn = s.grad_norm.as_ref().unwrap();
        let emb = s.embedding.as_ref().unwrap();
        assert_eq!(s.embedding_dim, 4 * 7);
        for i in 0..5 {
            let opt_zero = |t: &Tensor| {
                let mut g = t.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            };
            opt_zero(&head.ws);
            opt_zero(head.bs.as_ref().unwrap());
            let li = head
                .forward(&h.narrow(0, i, 1))
                .cross_entropy_for_logits(&labels.narrow(0, i, 1));
            li.backward();
            let gw = head.ws.grad();
            let gb = head.bs.as_ref().unwrap().grad();
            let full = Tensor::cat(&[gw, gb.unsqueeze(1)], 1).flatten(0, -1);
            let want = to_vec_f32(&full);
            let got = &emb[i as usize * 28..(i as usize + 1) * 28];
            for (a, b) in want.iter().zip(got) {
                assert!((a - b).abs() < 1e-5, "embedding {a} vs {b}");
            }
            let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(
                (norm - gn[i as usize]).abs() < 1e-4,
                "{norm} vs {}",
                gn[i as usize]
            );
            assert!((li.double_value(&[]) as f32 - s.loss[i as usize]).abs() < 1e-5);
        }
        // EL2N is ‖p − y‖ ≤ √2; correctness matches argmax.
        for (i, &e) in s.el2n.unwrap().iter().enumerate() {
            assert!((0.0..=2f32.sqrt() + 1e-6).contains(&e));
            let row = to_vec_f32(&logits.narrow(0, i as i64, 1));
            let arg = (0..4).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            let label = [0, 3, 2, 2, 1][i];
            assert_eq!(s.correct[i], (arg == label) as u8);
        }
    }

    #[test]
    fn optional_signals_only_on_demand() {
        let h = Tensor::randn([3, 2], (Kind::Float, Device::Cpu));
        let logits = Tensor::randn([3, 10], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[1i64, 2, 3]);
        let s = compute(&h, &logits, &labels, ScoreFields::LOSS_LAST);
        assert!(s.el2n.is_none() && s.grad_norm.is_none() && s.embedding.is_none());
        assert_eq!((s.loss.len(), s.correct.len(), s.embedding_dim), (3, 3, 0));
        let s = compute(&h, &logits, &labels, ScoreFields::EL2N);
        assert!(s.el2n.is_some() && s.grad_norm.is_none() && s.embedding.is_none());
    }
}
