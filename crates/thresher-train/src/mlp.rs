//! An MLP for feature vectors: D → 256 → 256 → outputs, ReLU, a layer norm after each hidden
//! linear layer (features arrive unnormalised: embeddings, audio features, tabular columns; layer
//! norm, unlike batch norm, also takes a last batch of one sample).

use tch::nn::{self, Module};
use tch::Tensor;

use crate::model::Net;

const HIDDEN: i64 = 256;

pub struct Mlp {
    fc1: nn::Linear,
    ln1: nn::LayerNorm,
    fc2: nn::Linear,
    ln2: nn::LayerNorm,
    head: nn::Linear,
}

impl Mlp {
    pub fn new(vs: &nn::Path, inputs: i64, outputs: i64) -> Mlp {
        Mlp {
            fc1: nn::linear(vs / "fc1", inputs, HIDDEN, Default::default()),
            ln1: nn::layer_norm(vs / "ln1", vec![HIDDEN], Default::default()),
            fc2: nn::linear(vs / "fc2", HIDDEN, HIDDEN, Default::default()),
            ln2: nn::layer_norm(vs / "ln2", vec![HIDDEN], Default::default()),
            head: nn::linear(vs / "head", HIDDEN, outputs, Default::default()),
        }
    }
}

impl Net for Mlp {
    /// [B, D] (any trailing shape is flattened) → (h [B, 256], outputs [B, K]).
    fn forward(&self, xs: &Tensor, _train: bool) -> (Tensor, Tensor) {
        let h = xs
            .flatten(1, -1)
            .apply(&self.fc1)
            .apply(&self.ln1)
            .relu()
            .apply(&self.fc2)
            .apply(&self.ln2)
            .relu();
        let out = self.head.forward(&h);
        (h, out)
    }
}
