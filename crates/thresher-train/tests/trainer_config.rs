//! Smoke test of `thresher-train train --config` on data the test makes (`make test-trainer`):
//! a byte-level token corpus trained by the transformer (next-token loss, per-block losses fed
//! back to InfoBatch, validation loss and perplexity), the same on ragged documents (padding
//! masked out of the loss), an f32 npy feature set with int labels
//! trained by the MLP (cross-entropy, accuracy) and the same features with float targets (MSE).
//! Each run must finish and its training loss fall.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

/// A C-order .npy file of `descr` ('<f4', '<i8') and `shape`.
fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).unwrap();
}

/// A deterministic stream of pseudo-random numbers in [0, 1).
fn uniforms(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn train(dir: &Path, config: &Value, val: Option<&Value>, extra: &[&str]) -> Vec<Value> {
    let cfg = dir.join("train.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let log = dir.join("run.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thresher-train"));
    cmd.arg("train").arg("--config").arg(&cfg);
    if let Some(v) = val {
        let p = dir.join("val.json");
        std::fs::write(&p, v.to_string()).unwrap();
        cmd.arg("--val-config").arg(p);
    }
    let out = cmd
        .args(["--threads", "1", "--seed", "0"])
        .args(extra)
        .arg("--out")
        .arg(dir)
        .arg("--log")
        .arg(&log)
        .output()
        .expect("thresher-train starts");
    assert!(
        out.status.success(),
        "thresher-train failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_type<'a>(log: &'a [Value], t: &str) -> Vec<&'a Value> {
    log.iter().filter(|v| v["type"] == t).collect()
}

/// Mean step loss of the first and the last `k` steps.
fn first_last(log: &[Value], k: usize) -> (f64, f64) {
    let steps = of_type(log, "step");
    assert!(steps.len() >= 2 * k, "{} steps", steps.len());
    let mean = |s: &[&Value]| s.iter().map(|v| v["loss"].as_f64().unwrap()).sum::<f64>() / k as f64;
    (mean(&steps[..k]), mean(&steps[steps.len() - k..]))
}

#[test]
fn transformer_on_a_token_stream() {
    let dir = tempfile::tempdir().unwrap();
    // English-like text with structure a small model picks up within a few dozen steps.
    let text = "the quick brown fox jumps over the lazy dog; a stitch in time saves nine. ";
    let tokens: Vec<u16> = text.bytes().cycle().take(24_000).map(u16::from).collect();
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_ne_bytes()).collect();
    let train_bin = dir.path().join("train.bin");
    std::fs::write(&train_bin, &bytes).unwrap();
    let source = |stride: usize| json!({"kind": "tokens", "path": train_bin, "dtype": "u16", "block": 32, "stride": stride});
    let config = json!({
        "source": source(32), "batch_size": 32, "workers": 1,
        "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 3},
    });
    let val = json!({"source": source(320), "batch_size": 64, "workers": 1});
    let log = train(
        dir.path(),
        &config,
        Some(&val),
        &[
            "--epochs",
            "3",
            "--lr",
            "3e-3",
            "--classes",
            "256",
            "--d-model",
            "32",
            "--layers",
            "1",
            "--heads",
            "2",
        ],
    );
    let model = of_type(&log, "model");
    assert_eq!(model[0]["model"], "transformer");
    assert_eq!(model[0]["loss"], "next_token");
    assert_eq!(of_type(&log, "run")[0]["policy"]["kind"], "infobatch");
    let (first, last) = first_last(&log, 3);
    println!("tokens: loss of the first 3 steps {first:.4}, of the last 3 {last:.4}");
    assert!(
        last < 0.5 * first,
        "the loss did not fall: {first} → {last}"
    );
    let epochs = of_type(&log, "epoch");
    assert_eq!(epochs.len(), 3);
    // 749 whole windows of 32 + 1 tokens in epoch 0; InfoBatch prunes part of epoch 1 (before
    // its annealing epoch ⌊0.875 · 3⌋ = 2) from the fed-back block losses.
    assert_eq!(epochs[0]["samples"], 749);
    assert!(epochs[1]["samples"].as_u64().unwrap() < 749);
    assert_eq!(epochs[2]["samples"], 749);
    let val_loss = epochs[2]["test_loss"].as_f64().unwrap();
    assert!(val_loss < 0.5 * first, "validation loss {val_loss}");
}

#[test]
fn transformer_on_ragged_documents() {
    let dir = tempfile::tempdir().unwrap();
    // Documents of 5 to 60 tokens, one sentence each, cut or padded to blocks of 32 with a mask.
    let words = [
        "a stitch in time saves nine",
        "the quick brown fox",
        "jumps over the lazy dog",
    ];
    let (mut tokens, mut offsets) = (Vec::<u16>::new(), vec![0i64]);
    for i in 0..600 {
        let doc = words[i % 3].repeat(1 + i % 2);
        let n = 5 + (i * 7) % 56;
        tokens.extend(doc.bytes().cycle().take(n).map(u16::from));
        offsets.push(tokens.len() as i64);
    }
    let bin = dir.path().join("docs.bin");
    std::fs::write(
        &bin,
        tokens
            .iter()
            .flat_map(|t| t.to_ne_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let off = dir.path().join("offsets.npy");
    let bytes: Vec<u8> = offsets.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&off, "<i8", &[offsets.len()], &bytes);
    let config = json!({
        "source": {"kind": "tokens", "path": bin, "dtype": "u16", "block": 32, "offsets": off},
        "batch_size": 32, "workers": 1, "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 3},
    });
    let log = train(
        dir.path(),
        &config,
        Some(&config),
        &[
            "--epochs",
            "3",
            "--lr",
            "3e-3",
            "--classes",
            "128",
            "--d-model",
            "32",
        ],
    );
    assert_eq!(of_type(&log, "run")[0]["dataset_len"], 600);
    let (first, last) = first_last(&log, 3);
    println!("documents: loss {first:.4} → {last:.4}");
    assert!(
        last < 0.6 * first,
        "the loss did not fall: {first} → {last}"
    );
    let epochs = of_type(&log, "epoch");
    assert!(epochs[1]["samples"].as_u64().unwrap() < 600);
    assert!(epochs[2]["test_loss"].as_f64().unwrap() < 0.6 * first);
}

/// x: [N, 8] f32 normal-ish features; the class is the argmax of four fixed projections and the
/// regression target two of those projections.
fn features(dir: &Path, n: usize) -> (Vec<f32>, Vec<i64>, Vec<f32>) {
    let u = uniforms(7, n * 8);
    let x: Vec<f32> = u.iter().map(|v| (v - 0.5) * 3.0).collect();
    let w = uniforms(11, 4 * 8);
    let (mut labels, mut targets) = (Vec::new(), Vec::new());
    for row in x.chunks(8) {
        let proj: Vec<f32> = (0..4)
            .map(|k| (0..8).map(|j| row[j] * (w[k * 8 + j] - 0.5)).sum())
            .collect();
        let arg = (0..4).max_by(|&a, &b| proj[a].total_cmp(&proj[b])).unwrap();
        labels.push(arg as i64);
        targets.extend_from_slice(&proj[..2]);
    }
    let f32s = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    write_npy(&dir.join("x.npy"), "<f4", &[n, 8], &f32s(&x));
    let l: Vec<u8> = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&dir.join("labels.npy"), "<i8", &[n], &l);
    write_npy(&dir.join("targets.npy"), "<f4", &[n, 2], &f32s(&targets));
    (x, labels, targets)
}

#[test]
fn mlp_on_npy_features() {
    let dir = tempfile::tempdir().unwrap();
    features(dir.path(), 2000);
    let cfg = |y: &str, policy: Value| {
        json!({
            "source": {"kind": "npy", "x": dir.path().join("x.npy"), "y": dir.path().join(y)},
            "batch_size": 50, "workers": 1, "policy": policy,
        })
    };
    // Class labels: cross-entropy, accuracy on the same features.
    let log = train(
        dir.path(),
        &cfg("labels.npy", json!({"kind": "random", "prune": 0.3})),
        Some(&cfg("labels.npy", json!({"kind": "full"}))),
        &["--epochs", "3", "--lr", "0.05"],
    );
    let model = of_type(&log, "model");
    assert_eq!(model[0]["model"], "mlp");
    assert_eq!(model[0]["outputs"], 4);
    let (first, last) = first_last(&log, 3);
    println!("labels: loss {first:.4} → {last:.4}");
    assert!(
        last < 0.6 * first,
        "the loss did not fall: {first} → {last}"
    );
    let acc = of_type(&log, "epoch")[2]["test_acc"].as_f64().unwrap();
    assert!(acc > 70.0, "accuracy {acc}% (4 classes)");
    // Float targets [N, 2]: MSE.
    let log = train(
        dir.path(),
        &cfg("targets.npy", json!({"kind": "infobatch", "epochs": 3})),
        None,
        &["--epochs", "3", "--lr", "0.02"],
    );
    assert_eq!(of_type(&log, "model")[0]["loss"], "mse");
    let (first, last) = first_last(&log, 3);
    println!("targets: loss {first:.4} → {last:.4}");
    assert!(
        last < 0.5 * first,
        "the loss did not fall: {first} → {last}"
    );
}
