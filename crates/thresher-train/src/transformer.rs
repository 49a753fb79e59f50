//! A small decoder-only transformer for token blocks (GPT-2's layout, pre-norm): token and
//! learned position embeddings, `layers` blocks of causal self-attention and a 4× GELU MLP, a
//! final layer norm and a linear head over the vocabulary. Written with tch's `nn` and torch's
//! fused scaled-dot-product attention; no dropout (the runs are short and the comparison is of
//! data, not regularisers). Parameters start at torch's defaults (N(0, 1) embeddings, Kaiming-
//! uniform linear layers): in the few hundred steps a CPU run affords they learn faster than
//! GPT-2's N(0, 0.02).

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::model::Net;

/// The transformer's sizes.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Config {
    pub vocab: i64,
    /// Longest block it reads (the position table's length).
    pub block: i64,
    pub d_model: i64,
    pub layers: i64,
    pub heads: i64,
}

struct Block {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ln2: nn::LayerNorm,
    fc: nn::Linear,
    out: nn::Linear,
    heads: i64,
}

impl Block {
    fn new(vs: nn::Path, d: i64, heads: i64) -> Block {
        let ln = |p: nn::Path| nn::layer_norm(p, vec![d], Default::default());
        let lin = Default::default();
        Block {
            ln1: ln(&vs / "ln1"),
            qkv: nn::linear(&vs / "qkv", d, 3 * d, lin),
            proj: nn::linear(&vs / "proj", d, d, lin),
            ln2: ln(&vs / "ln2"),
            fc: nn::linear(&vs / "fc", d, 4 * d, lin),
            out: nn::linear(&vs / "out", 4 * d, d, lin),
            heads,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, t, d) = x.size3().expect("[B, T, D]");
        let hd = d / self.heads;
        let qkv = x.apply(&self.ln1).apply(&self.qkv);
        let split = |i: i64| {
            qkv.narrow(2, i * d, d)
                .view([b, t, self.heads, hd])
                .transpose(1, 2)
        };
        let att = Tensor::scaled_dot_product_attention::<Tensor>(
            &split(0),
            &split(1),
            &split(2),
            None,
            0.0,
            true,
            None,
            false,
        )
        .transpose(1, 2)
        .contiguous()
        .view([b, t, d])
        .apply(&self.proj);
        let x = x + att;
        let m = x
            .apply(&self.ln2)
            .apply(&self.fc)
            .gelu("tanh")
            .apply(&self.out);
        x + m
    }
}

pub struct Transformer {
    tok: nn::Embedding,
    pos: nn::Embedding,
    blocks: Vec<Block>,
    ln: nn::LayerNorm,
    head: nn::Linear,
    block: i64,
}

impl Transformer {
    pub fn new(vs: &nn::Path, c: Config) -> Transformer {
        assert!(
            c.d_model % c.heads == 0,
            "d_model {} is not a multiple of heads {}",
            c.d_model,
            c.heads
        );
        Transformer {
            tok: nn::embedding(vs / "tok", c.vocab, c.d_model, Default::default()),
            pos: nn::embedding(vs / "pos", c.block, c.d_model, Default::default()),
            blocks: (0..c.layers)
                .map(|i| Block::new(vs / format!("block{i}"), c.d_model, c.heads))
                .collect(),
            ln: nn::layer_norm(vs / "ln", vec![c.d_model], Default::default()),
            head: nn::linear(vs / "head", c.d_model, c.vocab, Default::default()),
            block: c.block,
        }
    }
}

impl Net for Transformer {
    /// Token ids [B, T] → (hidden states [B, T, D], logits [B, T, V]).
    fn forward(&self, xs: &Tensor, _train: bool) -> (Tensor, Tensor) {
        let t = xs.size()[1];
        assert!(
            t <= self.block,
            "a block of {t} tokens; the model reads {}",
            self.block
        );
        let positions = Tensor::arange(t, (Kind::Int64, xs.device()));
        let mut h = xs.apply(&self.tok) + positions.apply(&self.pos).unsqueeze(0);
        for b in &self.blocks {
            h = b.forward(&h);
        }
        let h = h.apply(&self.ln);
        let logits = self.head.forward(&h);
        (h, logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::OptimizerConfig, Device};

    fn cfg() -> Config {
        Config {
            vocab: 11,
            block: 8,
            d_model: 16,
            layers: 2,
            heads: 2,
        }
    }

    /// Causal: changing a later token changes no earlier position's logits.
    #[test]
    fn attention_is_causal() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Transformer::new(&vs.root(), cfg());
        let a = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6]).view([1, 6]);
        let b = Tensor::from_slice(&[1i64, 2, 3, 4, 9, 6]).view([1, 6]);
        let (_, la) = net.forward(&a, false);
        let (_, lb) = net.forward(&b, false);
        assert_eq!(la.size(), vec![1, 6, 11]);
        let diff = |i: i64| {
            (la.narrow(1, i, 1) - lb.narrow(1, i, 1))
                .abs()
                .max()
                .double_value(&[])
        };
        for i in 0..4 {
            assert!(diff(i) < 1e-6, "position {i} saw the future");
        }
        assert!(diff(4) > 1e-6);
    }

    /// It learns a fixed sequence (a cycle) to a loss near 0.
    #[test]
    fn learns_a_cycle() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Transformer::new(&vs.root(), cfg());
        let mut opt = nn::AdamW::default().build(&vs, 3e-3).unwrap();
        let seq: Vec<i64> = (0..9).map(|i| i % 5).collect();
        let x = Tensor::from_slice(&seq[..8]).view([1, 8]);
        let y = Tensor::from_slice(&seq[1..]).view([1, 8]);
        let loss = |net: &Transformer| {
            let (_, l) = net.forward(&x, true);
            l.view([-1, 11]).cross_entropy_for_logits(&y.view([-1]))
        };
        let first = loss(&net).double_value(&[]);
        for _ in 0..150 {
            let l = loss(&net);
            opt.backward_step(&l);
        }
        let last = loss(&net).double_value(&[]);
        assert!(last < 0.1 * first, "{first} → {last}");
    }
}
