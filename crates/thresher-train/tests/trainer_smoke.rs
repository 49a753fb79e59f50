//! CI smoke test of the reference trainer (`make test-trainer`): one epoch on the first 2,000
//! Fashion-MNIST training samples with `infobatch` and with `influence`, through the built
//! `thresher-train` binary. It checks what would break first if the trainer ↔ loader loop were
//! wrong: the run finishes, the training loss falls within the epoch, the test accuracy on the
//! 10,000 test images is far above chance (10 classes), and the feedback carries the signals the
//! policy needs (the gradient embedding for `influence`). One more run, `full` with
//! `--label-noise`, checks the count of visits to flipped labels.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn run(policy: &str, extra: &[&str]) -> Vec<Value> {
    // The workspace root holds data/ (made by `make setup`).
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    assert!(
        data.join("fashion-mnist/train-images-idx3-ubyte.gz")
            .exists(),
        "Fashion-MNIST is missing under {}; run `make setup`",
        data.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_thresher-train"))
        .args(["train", "--dataset", "fashion-mnist", "--policy", policy])
        .args(["--epochs", "1", "--limit", "2000", "--seed", "0"])
        // Two tests run at once on a small machine: one torch thread each.
        .args(["--threads", "1"])
        .args(extra)
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(dir.path())
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

fn check(policy: &str) -> Vec<Value> {
    let log = run(policy, &[]);
    let header = of_type(&log, "run");
    assert_eq!(header.len(), 1);
    assert_eq!(header[0]["dataset_len"], 2000);
    let steps = of_type(&log, "step");
    // 2,000 samples in batches of 128: 16 steps (the policy keeps every sample in epoch 0,
    // where nothing has been seen yet).
    assert_eq!(steps.len(), 16, "steps");
    let loss = |s: &[&Value]| s.iter().map(|v| v["loss"].as_f64().unwrap()).sum::<f64>() / 3.0;
    let (first, last) = (loss(&steps[..3]), loss(&steps[steps.len() - 3..]));
    println!("{policy}: loss of the first 3 steps {first:.4}, of the last 3 {last:.4}");
    assert!(
        last < 0.75 * first,
        "the loss did not fall: {first} → {last}"
    );
    let epochs = of_type(&log, "epoch");
    assert_eq!(epochs.len(), 1);
    let acc = epochs[0]["test_acc"].as_f64().unwrap();
    println!("{policy}: test accuracy {acc:.2}%");
    assert!(
        acc > 50.0,
        "test accuracy {acc}% is not well above chance (10%)"
    );
    assert_eq!(epochs[0]["samples"], 2000);
    let end = of_type(&log, "end");
    assert_eq!(end.len(), 1);
    log
}

#[test]
fn infobatch_one_epoch() {
    let log = check("infobatch");
    assert_eq!(of_type(&log, "run")[0]["policy"]["epochs"], 1);
}

#[test]
fn influence_one_epoch() {
    let log = check("influence");
    // influence scores samples by their last-layer gradient embeddings: the trainer must have
    // computed and sent them.
    assert_eq!(
        of_type(&log, "run")[0]["needs"]["embedding"],
        true,
        "influence does not receive gradient embeddings"
    );
}

#[test]
fn label_noise_counts_the_visits_to_flipped_labels() {
    // `full` visits each of the 2,000 samples once at weight 1, so the flipped visits are the
    // flipped samples (about 30 %, seeded) and their weight share is their share of visits.
    let log = run("full", &["--label-noise", "0.3"]);
    let epochs = of_type(&log, "epoch");
    assert_eq!(epochs.len(), 1);
    let f = &epochs[0]["flipped"];
    let visits = f["visits"]
        .as_u64()
        .expect("the epoch counts flipped visits");
    assert!(
        (500..=700).contains(&visits),
        "{visits} of 2000 flipped at rate 0.3"
    );
    let share = f["weight_share"].as_f64().unwrap();
    assert!((share - visits as f64 / 2000.0).abs() < 1e-9, "{share}");
    assert_eq!(&of_type(&log, "end")[0]["flipped"], f);
    // Without noise there is nothing to count.
    let clean = run("full", &[]);
    assert!(of_type(&clean, "epoch")[0]["flipped"].is_null());
}
