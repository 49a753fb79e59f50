//! The models: a small CNN for 28×28 grey images (Fashion-MNIST, MNIST) and a CIFAR-style
//! ResNet-18 for 32×32 colour images. Both return the penultimate features `h` next to the
//! logits, because the last-layer gradient signals (gradient norm, the influence embedding
//! (p − y) ⊗ [h, 1]) are computed from them without a second backward pass.

use tch::nn::{self, Module};
use tch::Tensor;

/// What the trainer needs from a model.
pub trait Net {
    /// (features h [B, F], logits [B, classes]) for a batch [B, C, H, W].
    fn forward(&self, xs: &Tensor, train: bool) -> (Tensor, Tensor);
}

/// Which model to build; `Auto` picks by the sample's kind and shape (`task::resolve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Auto,
    Cnn,
    Resnet18,
    /// For feature vectors (`mlp.rs`).
    Mlp,
    /// For token blocks (`transformer.rs`).
    Transformer,
}

impl ModelKind {
    /// The concrete model for samples of [C, H, W]: the CNN for one-channel images, ResNet-18 for
    /// colour.
    pub fn resolve(self, shape: [usize; 3]) -> ModelKind {
        match self {
            ModelKind::Auto if shape[0] == 1 => ModelKind::Cnn,
            ModelKind::Auto => ModelKind::Resnet18,
            k => k,
        }
    }
}

/// Builds `kind` (resolved) under `vs` for inputs of [C, H, W] and `classes` outputs.
pub fn build(
    kind: ModelKind,
    vs: &nn::Path,
    shape: [usize; 3],
    classes: i64,
    width: i64,
) -> Box<dyn Net> {
    match kind.resolve(shape) {
        ModelKind::Cnn | ModelKind::Auto => Box::new(SmallCnn::new(vs, shape, classes, width)),
        ModelKind::Resnet18 => Box::new(ResNet18::new(vs, shape[0] as i64, classes)),
        k => unreachable!("{k:?} is built by task::build"),
    }
}

fn conv(vs: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, bias: bool) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias,
        ..Default::default()
    };
    nn::conv2d(vs, c_in, c_out, k, cfg)
}

/// conv(w)-BN-ReLU-pool → conv(2w)-BN-ReLU-pool → linear(4w) → ReLU (= h) → linear(classes).
/// Sized for two CPU cores: with w = 16 a Fashion-MNIST epoch is tens of seconds, and it still
/// reaches ~91% test accuracy, enough to tell the policies apart.
pub struct SmallCnn {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    fc: nn::Linear,
    head: nn::Linear,
}

impl SmallCnn {
    pub fn new(vs: &nn::Path, shape: [usize; 3], classes: i64, width: i64) -> SmallCnn {
        let [c, h, w] = shape.map(|v| v as i64);
        let hidden = 4 * width;
        // Two 2×2 pools (floor), as max_pool2d computes them.
        let flat = 2 * width * (h / 4) * (w / 4);
        SmallCnn {
            conv1: conv(vs / "conv1", c, width, 3, 1, false),
            bn1: nn::batch_norm2d(vs / "bn1", width, Default::default()),
            conv2: conv(vs / "conv2", width, 2 * width, 3, 1, false),
            bn2: nn::batch_norm2d(vs / "bn2", 2 * width, Default::default()),
            fc: nn::linear(vs / "fc", flat, hidden, Default::default()),
            head: nn::linear(vs / "head", hidden, classes, Default::default()),
        }
    }
}

impl Net for SmallCnn {
    fn forward(&self, xs: &Tensor, train: bool) -> (Tensor, Tensor) {
        let h = xs
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .apply_t(&self.bn2, train)
            .relu()
            .max_pool2d_default(2)
            .flatten(1, -1)
            .apply(&self.fc)
            .relu();
        let logits = self.head.forward(&h);
        (h, logits)
    }
}

/// A basic residual block (two 3×3 convs; a 1×1 projection when the shape changes).
struct Block {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    shortcut: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn new(vs: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Block {
        let shortcut = (stride != 1 || c_in != c_out).then(|| {
            (
                conv(&vs / "sc_conv", c_in, c_out, 1, stride, false),
                nn::batch_norm2d(&vs / "sc_bn", c_out, Default::default()),
            )
        });
        Block {
            conv1: conv(&vs / "conv1", c_in, c_out, 3, stride, false),
            bn1: nn::batch_norm2d(&vs / "bn1", c_out, Default::default()),
            conv2: conv(&vs / "conv2", c_out, c_out, 3, 1, false),
            bn2: nn::batch_norm2d(&vs / "bn2", c_out, Default::default()),
            shortcut,
        }
    }
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu()
            .apply(&self.conv2)
            .apply_t(&self.bn2, train);
        let sc = match &self.shortcut {
            Some((c, bn)) => xs.apply(c).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (ys + sc).relu()
    }
}

/// ResNet-18 in the CIFAR layout (He et al.; the variant the InfoBatch and Data Diet papers
/// train): a 3×3 stem without max-pool, four stages of two blocks (64, 128, 256, 512 channels),
/// global average pool (= h, 512 wide), linear head. torchvision's ImageNet stem (7×7 stride 2
/// and a max-pool) would shrink a 32×32 image to 8×8 before the first stage.
pub struct ResNet18 {
    stem: nn::Conv2D,
    bn: nn::BatchNorm,
    blocks: Vec<Block>,
    head: nn::Linear,
}

impl ResNet18 {
    pub fn new(vs: &nn::Path, channels: i64, classes: i64) -> ResNet18 {
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (stage, &c_out) in [64i64, 128, 256, 512].iter().enumerate() {
            for i in 0..2 {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                blocks.push(Block::new(
                    vs / format!("layer{}_{i}", stage + 1),
                    c_in,
                    c_out,
                    stride,
                ));
                c_in = c_out;
            }
        }
        ResNet18 {
            stem: conv(vs / "stem", channels, 64, 3, 1, false),
            bn: nn::batch_norm2d(vs / "stem_bn", 64, Default::default()),
            blocks,
            head: nn::linear(vs / "head", 512, classes, Default::default()),
        }
    }
}

impl Net for ResNet18 {
    fn forward(&self, xs: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut ys = xs.apply(&self.stem).apply_t(&self.bn, train).relu();
        for b in &self.blocks {
            ys = b.forward(&ys, train);
        }
        let h = ys.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        let logits = self.head.forward(&h);
        (h, logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn params(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    #[test]
    fn cnn_shapes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = build(ModelKind::Auto, &vs.root(), [1, 28, 28], 10, 16);
        let x = Tensor::randn([5, 1, 28, 28], (Kind::Float, Device::Cpu));
        let (h, logits) = net.forward(&x, true);
        assert_eq!(h.size(), vec![5, 64]);
        assert_eq!(logits.size(), vec![5, 10]);
    }

    #[test]
    fn resnet18_on_random_colour_input() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = build(ModelKind::Auto, &vs.root(), [3, 32, 32], 10, 16);
        // 11.17M parameters: ResNet-18 with a 10-class head and a 3×3 stem.
        let n = params(&vs);
        assert!((11_100_000..11_250_000).contains(&n), "{n} parameters");
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (h, logits) = net.forward(&x, true);
        assert_eq!(h.size(), vec![2, 512]);
        assert_eq!(logits.size(), vec![2, 10]);
        // Gradients reach the stem.
        let y = Tensor::from_slice(&[1i64, 7]);
        logits.cross_entropy_for_logits(&y).backward();
        let g = vs
            .variables()
            .into_iter()
            .find(|(k, _)| k == "stem.weight")
            .map(|(_, v)| v.grad())
            .expect("stem weight");
        assert!(g.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        // Eval mode runs too (BN running statistics).
        let (_, l) = net.forward(&x, false);
        assert_eq!(l.size(), vec![2, 10]);
    }
}
