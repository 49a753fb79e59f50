//! Training on any thresher config (`--config FILE.json`): the flags for it, reading the config
//! files, what the first batch says about the task (images, feature vectors or token blocks;
//! class labels, float targets or next tokens), and the one conversion of a batch into torch
//! tensors.
//!
//! `view` is the only function here that knows the core's batch accessors; everything else works
//! on its `BatchView`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use tch::{Device, Kind, Tensor};
use thresher_core::{Batch, Dtype};

use crate::cli::PolicySpec;
use crate::Result;

/// Flags of the config path (`--config`) and of the models it adds.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Train on this thresher config (JSON: any source, transform, batch size, workers) instead
    /// of `--dataset`. Its `policy` is used unless `--policy`/`--policies` is given; its `seed`
    /// is replaced by `--seed` (train) or the seed of each run (compare).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Evaluation loader config for `--config` runs, read after every epoch in order, every
    /// sample once (its policy becomes `full` and `shuffle` false). Without it there is no
    /// evaluation.
    #[arg(long)]
    pub val_config: Option<PathBuf>,
    /// Loss: `auto` picks cross-entropy for class labels and token blocks, MSE for float
    /// targets; `bce` treats float targets in [0, 1] as independent binary labels (multi-label).
    #[arg(long, value_enum, default_value_t = LossArg::Auto)]
    pub loss: LossArg,
    /// Output size: classes for class labels, vocabulary for token blocks. Default: from the data
    /// (the label or token file's largest value + 1; 10 for cifar; the class folders of an
    /// image_folder); required for tar sources.
    #[arg(long)]
    pub classes: Option<i64>,
    /// `auto`: AdamW for the transformer, SGD with momentum for the others. Pass a matching
    /// `--lr` (its default, 0.05, suits SGD).
    #[arg(long, value_enum, default_value_t = OptimizerArg::Auto)]
    pub optimizer: OptimizerArg,
    /// Transformer: model width, blocks and attention heads.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(i64).range(1..=crate::cli::MAX_WIDTH))]
    pub d_model: i64,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(1..=256))]
    pub layers: i64,
    /// Attention heads: `--d-model` must be a multiple of it.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i64).range(1..=256))]
    pub heads: i64,
    /// Clip the global gradient norm (over all parameters) to this (default: 1 for the
    /// transformer, off otherwise; 0 = off).
    #[arg(long, value_parser = crate::cli::non_negative)]
    pub clip_grad: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossArg {
    Auto,
    Ce,
    Mse,
    Bce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerArg {
    Auto,
    Sgd,
    Adamw,
}

/// Reads a config file as JSON.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// The policy a config file names (a `full` loader when it names none), as a spec whose keys
/// are the file's: `to_json` adds the keys the common flags give only where the file has none.
pub fn policy_of(config: &Value) -> Result<PolicySpec> {
    let Some(p) = config.get("policy") else {
        return Ok("full".parse()?);
    };
    let kind = p
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("the config's policy has no `kind`")?;
    let mut spec: PolicySpec = kind.parse()?;
    if let Some(obj) = p.as_object() {
        spec.overrides = obj
            .iter()
            .filter(|(k, _)| k.as_str() != "kind")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Map<_, _>>();
    }
    Ok(spec)
}

/// The training loader's config: the file with `policy` and `seed` replaced.
pub fn train_config(file: &Value, policy: Value, seed: u64) -> Result<Value> {
    let mut v = file.clone();
    let obj = v
        .as_object_mut()
        .ok_or("a thresher config is a JSON object")?;
    obj.insert("policy".into(), policy);
    obj.insert("seed".into(), json!(seed));
    Ok(v)
}

/// The evaluation loader's config: every sample once, in order.
pub fn eval_config(file: &Value) -> Result<Value> {
    let mut v = file.clone();
    let obj = v
        .as_object_mut()
        .ok_or("a thresher config is a JSON object")?;
    obj.insert("policy".into(), json!({"kind": "full"}));
    obj.insert("shuffle".into(), json!(false));
    obj.remove("report");
    obj.remove("resume_from");
    Ok(v)
}

/// Whether a config's transform asks for NHWC (a source without a transform keeps its own
/// layout: `view` then guesses from the shape).
fn layout_nhwc(config: &Value) -> Option<bool> {
    config
        .get("transform")
        .map(|t| t.get("layout").and_then(Value::as_str) == Some("nhwc"))
}

/// The largest value + 1 of an integer array stored as an npy file or a raw token file.
fn max_plus_one(t: Tensor) -> i64 {
    t.max().to_kind(Kind::Int64).int64_value(&[]) + 1
}

/// Where the values of a token file start: after the header of a `.npy` (versions 1–3), at 0
/// for a raw array.
fn npy_data_offset(file: &[u8]) -> usize {
    if file.len() < 12 || !file.starts_with(b"\x93NUMPY") {
        return 0;
    }
    let offset = match file[6] {
        1 => 10 + u16::from_le_bytes([file[8], file[9]]) as usize,
        _ => 12 + u32::from_le_bytes([file[8], file[9], file[10], file[11]]) as usize,
    };
    offset.min(file.len())
}

/// The output size when `--classes` is not given, from the config's source (the whole token
/// file is read: pass `--classes` for a large corpus).
pub fn default_classes(config: &Value, task: Task) -> Result<i64> {
    let src = &config["source"];
    let kind = src["kind"].as_str().unwrap_or_default();
    let path = |key: &str| -> Result<PathBuf> {
        src[key]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| format!("source.{key} is missing").into())
    };
    match (task, kind) {
        (Task::Tokens, "tokens") => {
            let p = path("path")?;
            let file = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let bytes = &file[npy_data_offset(&file)..];
            let wide = src["dtype"].as_str() == Some("u32");
            let max = if wide {
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .max()
                    .unwrap_or(0) as i64
            } else {
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_ne_bytes([c[0], c[1]]) as i64)
                    .max()
                    .unwrap_or(0)
            };
            Ok(max + 1)
        }
        (Task::Classes, "npy") => {
            let p = path("y")?;
            let y = Tensor::read_npy(&p)
                .map_err(|e| format!("{}: {e} (pass --classes)", p.display()))?;
            Ok(max_plus_one(y))
        }
        (Task::Classes, "cifar" | "idx") => Ok(10),
        (Task::Classes, "image_folder") => {
            let root = path("root")?;
            let n = std::fs::read_dir(&root)
                .map_err(|e| format!("{}: {e}", root.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .count();
            Ok(n as i64)
        }
        _ => Err(
            format!("cannot tell the number of outputs of a `{kind}` source; pass --classes")
                .into(),
        ),
    }
}

/// Element type of a tensor in a batch: the core's own.
pub type Elem = Dtype;

/// Whether the element type is a floating-point one (targets of regression, not classes).
fn is_float(e: Elem) -> bool {
    matches!(e, Elem::F16 | Elem::BF16 | Elem::F32 | Elem::F64)
}

/// A typed tensor of a batch, borrowed.
pub struct View<'a> {
    pub elem: Elem,
    pub shape: Vec<usize>,
    pub bytes: &'a [u8],
}

/// What the trainer reads from a batch.
pub struct BatchView<'a> {
    /// [B, ...sample dims].
    pub data: View<'a>,
    /// Class labels; empty when the source has none.
    pub labels: &'a [i64],
    pub targets: Option<View<'a>>,
    pub mask: Option<View<'a>>,
    pub weights: &'a [f32],
}

/// The batch's tensors as the core gives them (the only place that knows its accessors).
pub fn view(batch: &Batch) -> BatchView<'_> {
    fn tv(t: thresher_core::TensorView<'_>) -> View<'_> {
        View {
            elem: t.dtype,
            shape: t.shape.to_vec(),
            bytes: t.bytes,
        }
    }
    BatchView {
        data: View {
            elem: batch.dtype(),
            shape: batch.shape().to_vec(),
            bytes: batch.data_bytes(),
        },
        labels: batch.labels(),
        targets: batch.targets().map(tv),
        mask: batch.mask().map(tv),
        weights: batch.weights(),
    }
}

/// A CPU tensor of the view's values in the nearest torch kind (u16 → i32, u32 → i64: torch's
/// unsigned kinds beyond u8 lack most operations).
pub fn to_tensor(v: &View<'_>) -> Tensor {
    let shape: Vec<i64> = v.shape.iter().map(|&s| s as i64).collect();
    let raw = |kind| Tensor::from_data_size(v.bytes, &shape, kind);
    match v.elem {
        Elem::U8 => raw(Kind::Uint8),
        Elem::I8 => raw(Kind::Int8),
        Elem::I16 => raw(Kind::Int16),
        Elem::I32 => raw(Kind::Int),
        Elem::I64 => raw(Kind::Int64),
        Elem::F16 => raw(Kind::Half),
        Elem::BF16 => raw(Kind::BFloat16),
        Elem::F32 => raw(Kind::Float),
        Elem::F64 => raw(Kind::Double),
        Elem::U16 => {
            let w: Vec<i32> = v
                .bytes
                .chunks_exact(2)
                .map(|c| u16::from_ne_bytes([c[0], c[1]]) as i32)
                .collect();
            Tensor::from_slice(&w).view(shape.as_slice())
        }
        Elem::U32 => {
            let w: Vec<i64> = v
                .bytes
                .chunks_exact(4)
                .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect();
            Tensor::from_slice(&w).view(shape.as_slice())
        }
    }
}

/// What the model reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// [C, H, W] after `batch_tensors` (grey: C = 1).
    Image,
    /// A flat vector per sample (any other shape is flattened).
    Features,
    /// A block of token ids.
    Tokens,
}

/// What the model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Class labels (cross-entropy).
    Classes,
    /// Float targets [K] per sample (MSE, or BCE with `--loss bce`).
    Values,
    /// The next token at every position (cross-entropy over the vocabulary).
    Tokens,
}

/// The shape of the problem, read from the first batch.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Problem {
    pub input: Input,
    pub task: Task,
    /// Per-sample input shape as the model gets it ([C, H, W], [D] or [T]).
    pub sample: Vec<usize>,
    /// Float targets per sample (Task::Values).
    pub target_dim: usize,
    /// Source images in NHWC order, permuted to NCHW by `batch_tensors`.
    pub nhwc: bool,
}

/// Reads the problem from a batch; `config` (the loader's) tells an image's layout.
pub fn problem(b: &BatchView<'_>, config: Option<&Value>) -> Result<Problem> {
    let dims = &b.data.shape[1..];
    if let Some(t) = &b.targets {
        if !is_float(t.elem) && !is_float(b.data.elem) && t.shape == b.data.shape {
            if dims.len() != 1 {
                return Err(format!("token blocks must be [B, T], got {:?}", b.data.shape).into());
            }
            return Ok(Problem {
                input: Input::Tokens,
                task: Task::Tokens,
                sample: dims.to_vec(),
                target_dim: 0,
                nhwc: false,
            });
        }
    }
    // An int `y` gives class labels (and the same values as typed targets); float targets are
    // regression or multi-label.
    let task = match (&b.targets, b.labels.is_empty()) {
        (_, false) => Task::Classes,
        (Some(t), true) if is_float(t.elem) => Task::Values,
        (Some(t), true) => {
            return Err(format!(
                "integer targets of shape {:?} that are neither class labels nor token blocks",
                t.shape
            )
            .into())
        }
        (None, true) => return Err("the batches carry neither labels nor targets".into()),
    };
    let target_dim = match (&b.targets, task) {
        (Some(t), Task::Values) => t.shape[1..].iter().product::<usize>().max(1),
        _ => 0,
    };
    let (input, sample, nhwc) = if dims.len() == 3 {
        // A transform says the layout; raw arrays (npy without a transform) are taken as HWC
        // when the last axis looks like channels and the first does not.
        let nhwc = config
            .and_then(layout_nhwc)
            .unwrap_or_else(|| matches!(dims[2], 1 | 3 | 4) && !matches!(dims[0], 1 | 3 | 4));
        let chw = if nhwc {
            vec![dims[2], dims[0], dims[1]]
        } else {
            dims.to_vec()
        };
        (Input::Image, chw, nhwc)
    } else {
        (Input::Features, vec![dims.iter().product::<usize>()], false)
    };
    Ok(Problem {
        input,
        task,
        sample,
        target_dim,
        nhwc,
    })
}

/// What the loss compares the model's output with.
pub enum Target {
    /// Class ids [B] (i64).
    Labels(Tensor),
    /// Float targets [B, K] (f32).
    Values(Tensor),
    /// Next tokens [B, T] (i64) and the valid positions [B, T] (f32 0/1), when the source marks
    /// padding.
    Tokens { y: Tensor, mask: Option<Tensor> },
}

/// A batch as torch tensors on `device`: input, target, loss weights [B].
pub struct Tensors {
    pub x: Tensor,
    pub target: Target,
    pub w: Tensor,
}

/// Converts a batch for the model: images to f32 NCHW (u8 scaled to [0, 1]), features to f32
/// [B, D], token ids to i64; targets as `Target`.
pub fn batch_tensors(b: &BatchView<'_>, p: &Problem, device: Device) -> Result<Tensors> {
    let bsz = b.data.shape[0] as i64;
    let raw = to_tensor(&b.data);
    let x = match p.input {
        Input::Tokens => raw.to_kind(Kind::Int64),
        Input::Image | Input::Features => {
            let f = if b.data.elem == Elem::U8 && p.input == Input::Image {
                raw.to_kind(Kind::Float) / 255.0
            } else {
                raw.to_kind(Kind::Float)
            };
            match p.input {
                Input::Image if p.nhwc => f.permute([0, 3, 1, 2]).contiguous(),
                Input::Image => f,
                _ => f.reshape([bsz, -1]),
            }
        }
    };
    let target = match p.task {
        Task::Classes => Target::Labels(Tensor::from_slice(b.labels).to_device(device)),
        Task::Values => {
            let t = b.targets.as_ref().ok_or("a batch lost its targets")?;
            Target::Values(
                to_tensor(t)
                    .to_kind(Kind::Float)
                    .reshape([bsz, -1])
                    .to_device(device),
            )
        }
        Task::Tokens => {
            let t = b.targets.as_ref().ok_or("a batch lost its targets")?;
            let mask = b.mask.as_ref().map(|m| {
                to_tensor(m)
                    .to_kind(Kind::Float)
                    .ne(0.0)
                    .to_kind(Kind::Float)
                    .view([bsz, -1])
                    .to_device(device)
            });
            Target::Tokens {
                y: to_tensor(t).to_kind(Kind::Int64).to_device(device),
                mask,
            }
        }
    };
    Ok(Tensors {
        x: x.to_device(device),
        target,
        w: Tensor::from_slice(b.weights).to_device(device),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_from_the_file_keeps_its_keys() {
        let c = json!({"policy": {"kind": "infobatch", "prune": 0.4, "epochs": 3}});
        let s = policy_of(&c).unwrap();
        assert_eq!(s.kind, "infobatch");
        assert_eq!(s.overrides["prune"], json!(0.4));
        assert_eq!(policy_of(&json!({})).unwrap().kind, "full");
        let t = train_config(
            &json!({"seed": 1, "batch_size": 8}),
            json!({"kind": "full"}),
            5,
        )
        .unwrap();
        assert_eq!(
            (t["seed"].clone(), t["batch_size"].clone()),
            (json!(5), json!(8))
        );
        let e = eval_config(&c).unwrap();
        assert_eq!(
            (e["policy"]["kind"].clone(), e["shuffle"].clone()),
            (json!("full"), json!(false))
        );
    }

    #[test]
    fn vocabulary_from_raw_and_npy_token_files() {
        let dir = std::env::temp_dir().join(format!("thresher-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ids: Vec<u8> = [3u16, 41, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("t.bin"), &ids).unwrap();
        // A v1 .npy whose header holds bytes larger than any id.
        let header = b"{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }          \n";
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(header);
        npy.extend_from_slice(&ids);
        std::fs::write(dir.join("t.npy"), &npy).unwrap();
        for f in ["t.bin", "t.npy"] {
            let c = json!({"source": {"kind": "tokens", "path": dir.join(f), "dtype": "u16"}});
            assert_eq!(default_classes(&c, Task::Tokens).unwrap(), 42, "{f}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_dtype_converts() {
        let vals: [u16; 3] = [1, 65535, 7];
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let t = to_tensor(&View {
            elem: Elem::U16,
            shape: vec![1, 3],
            bytes: &bytes,
        });
        assert_eq!(
            Vec::<i64>::try_from(t.flatten(0, -1).to_kind(Kind::Int64)).unwrap(),
            [1, 65535, 7]
        );
        let f: [f64; 2] = [0.5, -2.0];
        let bytes: Vec<u8> = f.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let t = to_tensor(&View {
            elem: Elem::F64,
            shape: vec![2],
            bytes: &bytes,
        });
        assert_eq!(Vec::<f64>::try_from(t).unwrap(), [0.5, -2.0]);
    }

    fn bv<'a>(data: View<'a>, labels: &'a [i64], targets: Option<View<'a>>) -> BatchView<'a> {
        BatchView {
            data,
            labels,
            targets,
            mask: None,
            weights: &[],
        }
    }

    #[test]
    fn problems_from_shapes() {
        let z = [0u8; 4096];
        let v = |elem, shape: &[usize]| View {
            elem,
            shape: shape.to_vec(),
            bytes: &z,
        };
        let p = problem(
            &bv(v(Elem::U16, &[2, 8]), &[], Some(v(Elem::U16, &[2, 8]))),
            None,
        )
        .unwrap();
        assert_eq!(
            (p.input, p.task, p.sample.clone()),
            (Input::Tokens, Task::Tokens, vec![8])
        );
        let p = problem(
            &bv(v(Elem::F32, &[2, 5]), &[], Some(v(Elem::F32, &[2, 3]))),
            None,
        )
        .unwrap();
        assert_eq!(
            (p.input, p.task, p.target_dim),
            (Input::Features, Task::Values, 3)
        );
        let p = problem(&bv(v(Elem::U8, &[2, 32, 32, 3]), &[1, 2], None), None).unwrap();
        assert_eq!(
            (p.input, p.task, p.nhwc),
            (Input::Image, Task::Classes, true)
        );
        assert_eq!(p.sample, vec![3, 32, 32]);
        let nchw = json!({"transform": {"layout": "nchw"}});
        let p = problem(
            &bv(v(Elem::F32, &[2, 1, 28, 28]), &[1, 2], None),
            Some(&nchw),
        )
        .unwrap();
        assert_eq!((p.sample.clone(), p.nhwc), (vec![1, 28, 28], false));
        assert!(problem(&bv(v(Elem::F32, &[2, 5]), &[], None), None).is_err());
    }
}
