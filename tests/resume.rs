//! Checkpoints: a loader restored from `save_state` yields exactly the batches the
//! uninterrupted run would have yielded next, wherever it was saved; damaged checkpoints are
//! refused with a clear error. Also the epoch report file and score files through the loader.

use std::path::Path;
use std::sync::Arc;

use thresher_core::source::{ArraySource, Source};
use thresher_core::{Config, ErrorKind, Feedback, Loader};

fn source() -> Arc<dyn Source> {
    let pixels = (0..300 * 4).map(|i| (i * 31 % 251) as u8).collect();
    Arc::new(ArraySource::new(pixels, [2, 2, 1], (0..300).map(|i| i % 7).collect()).unwrap())
}

const CONFIG: &str = r#"{"batch_size": 32, "workers": 3, "seed": 11,
    "policy": {"kind": "random", "prune": 0.4, "rescale": true}}"#;

fn loader(resume: Option<&Path>) -> thresher_core::Result<Loader> {
    loader_with(CONFIG, resume)
}

fn loader_with(config: &str, resume: Option<&Path>) -> thresher_core::Result<Loader> {
    let mut c = Config::from_json(config).unwrap();
    c.resume_from = resume.map(Path::to_path_buf);
    Loader::with_source(c, source())
}

type Step = Option<(u64, usize, Vec<u64>, Vec<f32>, Vec<u8>)>;

/// One `next` call (None = end of epoch), with feedback so the ScoreBook moves.
fn step(l: &Loader) -> Step {
    let b = l.next().unwrap()?;
    // Every signal, varying with the epoch, so every policy's scores move.
    let e = b.epoch() as f32;
    let loss: Vec<f32> = b
        .ids()
        .iter()
        .map(|&i| ((i * 7 + b.epoch() * 3) % 5) as f32)
        .collect();
    // The ranking changes from epoch to epoch, so a subset re-chosen after a resume differs.
    let p = b.epoch() * 4 + 3;
    let el2n: Vec<f32> = b
        .ids()
        .iter()
        .map(|&i| ((i * p) % 11) as f32 / 11.0)
        .collect();
    let grad: Vec<f32> = b.ids().iter().map(|&i| ((i * p) % 13) as f32).collect();
    let correct: Vec<u8> = b
        .ids()
        .iter()
        .map(|&i| ((i + b.epoch()) % 3 == 0) as u8)
        .collect();
    let emb: Vec<f32> = b
        .ids()
        .iter()
        .flat_map(|&i| (0..4).map(move |k| ((i * (k + p)) % 17) as f32 - 8.0 + e))
        .collect();
    l.feedback(&Feedback {
        ids: b.ids(),
        loss: &loss,
        el2n: Some(&el2n),
        grad_norm: Some(&grad),
        correct: Some(&correct),
        embedding: Some(&emb),
        embedding_dim: 4,
    })
    .unwrap();
    Some((
        b.epoch(),
        b.index(),
        b.ids().to_vec(),
        b.weights().to_vec(),
        b.data_bytes().to_vec(),
    ))
}

#[test]
fn resume_is_exact_at_every_kind_of_point() {
    let dir = tempfile::tempdir().unwrap();
    // 180 kept per epoch → 6 batches; 3 epochs with their END markers = 21 steps.
    let reference: Vec<Step> = {
        let l = loader(None).unwrap();
        (0..21).map(|_| step(&l)).collect()
    };
    assert!(reference[6].is_none() && reference[13].is_none());
    // Save after k steps: 0 = start, 3 = mid-epoch, 5 = before the last batch,
    // 6 = after the last batch, 7 = right after END, 10 = mid second epoch.
    for k in [0usize, 3, 5, 6, 7, 10] {
        let path = dir.path().join(format!("ck{k}"));
        let l = loader(None).unwrap();
        for s in &reference[..k] {
            assert_eq!(&step(&l), s);
        }
        l.save_state(&path).unwrap();
        drop(l);
        let r = loader(Some(&path)).unwrap();
        for (i, s) in reference[k..].iter().enumerate() {
            assert_eq!(&step(&r), s, "resumed after {k} steps, step {i}");
        }
    }
}

/// Every policy with state (cached period plans, fixed subsets) resumes exactly too, also when
/// saved after its subset was fixed and the ScoreBook moved on.
#[test]
fn resume_is_exact_for_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    for policy in [
        r#"{"kind": "epsilon_greedy", "prune": 0.3, "period": 2}"#,
        r#"{"kind": "ucb", "prune": 0.3, "period": 2, "spread": "var"}"#,
        r#"{"kind": "infobatch", "prune": 0.5, "epochs": 4, "anneal": 0.75}"#,
        r#"{"kind": "el2n", "prune": 0.4, "score_epochs": 1}"#,
        r#"{"kind": "grand", "prune": 0.4, "score_epochs": 1, "drop_hardest": 0.05}"#,
        r#"{"kind": "forgetting", "prune": 0.4, "score_epochs": 1}"#,
        r#"{"kind": "influence", "prune": 0.3, "score_epochs": 1}"#,
    ] {
        let config =
            format!(r#"{{"batch_size": 64, "workers": 2, "seed": 5, "policy": {policy}}}"#);
        let reference: Vec<Step> = {
            let l = loader_with(&config, None).unwrap();
            (0..40).map(|_| step(&l)).collect()
        };
        let ends: Vec<usize> = (0..40).filter(|&i| reference[i].is_none()).collect();
        assert!(ends.len() >= 3, "{policy}: {ends:?}");
        // Mid epoch 2 (after the subset is fixed), and right after the second END.
        for k in [ends[1] + 2, ends[1] + 1, ends[2]] {
            let path = dir.path().join("ck");
            let l = loader_with(&config, None).unwrap();
            for s in &reference[..k] {
                assert_eq!(&step(&l), s);
            }
            l.save_state(&path).unwrap();
            drop(l);
            let r = loader_with(&config, Some(&path)).unwrap();
            for (i, s) in reference[k..].iter().enumerate() {
                assert_eq!(&step(&r), s, "{policy}: resumed after {k} steps, step {i}");
            }
        }
    }
}

#[test]
fn damaged_or_mismatched_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck");
    let l = loader(None).unwrap();
    step(&l);
    l.save_state(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    for (bytes, kind) in [
        (good[..good.len() / 2].to_vec(), ErrorKind::Format),
        (
            {
                let mut b = good.clone();
                b[30] ^= 0x40;
                b
            },
            ErrorKind::Format,
        ),
        (b"not a checkpoint".to_vec(), ErrorKind::Format),
    ] {
        std::fs::write(&path, bytes).unwrap();
        let e = loader(Some(&path)).err().unwrap();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().contains("ck"), "{e}");
    }
    std::fs::write(&path, &good).unwrap();
    let mut other = Config::from_json(CONFIG).unwrap();
    other.seed = 12;
    other.resume_from = Some(path.clone());
    let e = Loader::with_source(other, source()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("resume_from"), "{e}");
    let e = loader(Some(&dir.path().join("missing"))).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Io);
}

/// A checkpoint names what it belongs to: another dataset of the same length, or other policy
/// parameters, are refused with a message saying which part differs; the same parameters
/// written differently (a default spelled out, other loading keys) resume.
#[test]
fn a_checkpoint_resumes_only_onto_its_dataset_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck");
    let l = loader(None).unwrap();
    step(&l);
    l.save_state(&path).unwrap();
    let resume = |config: &str, source: Arc<dyn Source>| {
        let mut c = Config::from_json(config).unwrap();
        c.resume_from = Some(path.clone());
        Loader::with_source(c, source)
    };
    // Same N, other labels (an in-memory source is known by its labels and shape: pixels are
    // never read for the fingerprint, see docs/policies.md).
    let relabelled: Arc<dyn Source> = Arc::new(
        ArraySource::new(
            (0..300 * 4).map(|i| (i * 31 % 251) as u8).collect(),
            [2, 2, 1],
            (0..300).map(|i| if i == 150 { 6 } else { i % 7 }).collect(),
        )
        .unwrap(),
    );
    let e = resume(CONFIG, relabelled).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("dataset contents"), "{e}");
    assert!(!e.message().contains("policy"), "{e}");
    // Another value of a policy key, and a key added: each named.
    for (config, key) in [
        (
            r#"{"batch_size": 32, "seed": 11,
                "policy": {"kind": "random", "prune": 0.5, "rescale": true}}"#,
            "`policy.prune` 0.4 in the saved run, 0.5 here",
        ),
        (
            r#"{"batch_size": 32, "seed": 11,
                "policy": {"kind": "random", "prune": 0.4, "rescale": true, "period": 2}}"#,
            "`policy.period` 1 in the saved run, 2 here",
        ),
    ] {
        let e = resume(config, source()).err().expect("refused");
        assert!(e.message().contains(key), "{e}");
        assert!(!e.message().contains("dataset"), "{e}");
    }
    // A default spelled out, other workers, prefetch and batch size: the same run.
    let same = r#"{"batch_size": 16, "workers": 1, "prefetch": 2, "seed": 11,
        "policy": {"kind": "random", "prune": 0.4, "rescale": true, "period": 1}}"#;
    assert!(resume(same, source()).is_ok());
    // A checkpoint of the format before these were recorded is refused by its version.
    let mut old = std::fs::read(&path).unwrap();
    old[8..12].copy_from_slice(&2u32.to_le_bytes());
    let body = old.len() - 4;
    let crc = crc32(&old[..body]);
    old[body..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &old).unwrap();
    let e = resume(CONFIG, source()).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.message().contains("version 2"), "{e}");
}

/// CRC-32 (IEEE), as the checkpoint trailer uses, bit by bit (a test needs no table).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn report_lines_and_saved_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.jsonl");
    let mut c = Config::from_json(CONFIG).unwrap();
    c.report = Some(report.clone());
    let l = Loader::with_source(c, source()).unwrap();
    for _ in 0..2 {
        while step(&l).is_some() {}
    }
    let r = l.report();
    assert_eq!((r.epoch, r.samples, r.delivered), (1, 180, 6));
    assert!((r.saved_fraction - 0.4).abs() < 1e-12);
    assert!((r.mean_weight - 1.0 / 0.6).abs() < 1e-6);
    let text = std::fs::read_to_string(&report).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["epoch"], 1);
    assert_eq!(lines[0]["samples"], 180);
    assert!((lines[0]["prune_fraction"].as_f64().unwrap() - 0.4).abs() < 1e-12);
}

/// Run by `sigkill_during_save_leaves_a_loadable_checkpoint` in a child process: saves
/// checkpoints to $THRESHER_KILL_DIR/ck as fast as it can until it is killed.
#[test]
#[ignore]
fn child_saves_until_killed() {
    let Some(dir) = std::env::var_os("THRESHER_KILL_DIR") else {
        return;
    };
    let path = Path::new(&dir).join("ck");
    let l = loader(None).unwrap();
    loop {
        step(&l);
        l.save_state(&path).unwrap();
    }
}

/// Kills the child when the test fails before it does, so a failed run leaves no process
/// saving checkpoints forever.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILL while a checkpoint is being written leaves the previous one (or the new one) intact:
/// the write goes to a temporary file that is renamed over the old one only when complete.
///
/// Loadable alone would prove nothing if the child never replaced the checkpoint (a child that
/// failed to start, or a save that wrote nothing, leaves the parent's intact file behind). So
/// each round starts from a checkpoint of a loader that has taken no step, and every save the
/// child makes follows a step: the test waits until the file differs from the initial one before
/// it kills the child, and the loader resumed from what is left must be past the first batch.
#[test]
fn sigkill_during_save_leaves_a_loadable_checkpoint() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck");
    let first = step(&loader(None).unwrap());
    for round in 0..6u64 {
        loader(None).unwrap().save_state(&path).unwrap();
        let initial = std::fs::read(&path).unwrap();
        let mut child = KillOnDrop(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_saves_until_killed",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env("THRESHER_KILL_DIR", dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Generous: a loaded machine may take seconds to start the child.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read(&path).unwrap() == initial {
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("round {round}: the child exited ({status}) without rewriting {path:?}");
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the child has not rewritten {path:?} in 60 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        // Into the save loop now; a different moment of it each round.
        std::thread::sleep(Duration::from_millis(5 + 37 * round));
        child.0.kill().unwrap(); // SIGKILL on Unix
        child.0.wait().unwrap();
        assert_ne!(std::fs::read(&path).unwrap(), initial, "round {round}");
        let resumed = loader(Some(&path));
        assert!(resumed.is_ok(), "round {round}: {:?}", resumed.err());
        // The checkpoint left is one the child wrote after k >= 1 steps, so the resumed loader
        // yields the reference's step k, never the first batch again.
        assert_ne!(
            step(&resumed.unwrap()),
            first,
            "round {round}: resumed at the start"
        );
    }
}

/// An image folder's checkpoint knows its files by name and size: the folder moved elsewhere
/// resumes; a sampled file rewritten at another size is another dataset.
#[test]
fn an_image_folder_checkpoint_knows_its_files_not_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("cat")).unwrap();
    let png = |side: u32, v: u8, path: &Path| {
        image::GrayImage::from_raw(side, side, vec![v; (side * side) as usize])
            .unwrap()
            .save(path)
            .unwrap();
    };
    for i in 0..8u8 {
        png(2, i * 20, &root.join("cat").join(format!("{i}.png")));
    }
    let config = |root: &Path, resume: Option<&Path>| {
        let mut c = Config::from_json(
            &serde_json::json!({
                "source": {"kind": "image_folder", "root": root},
                "transform": {"resize": [2, 2]}, "batch_size": 4, "workers": 1, "seed": 1
            })
            .to_string(),
        )
        .unwrap();
        c.resume_from = resume.map(Path::to_path_buf);
        c
    };
    let ck = dir.path().join("ck");
    let l = Loader::new(config(&root, None)).unwrap();
    l.next().unwrap().unwrap();
    l.save_state(&ck).unwrap();
    drop(l);
    let moved = dir.path().join("elsewhere");
    std::fs::rename(&root, &moved).unwrap();
    Loader::new(config(&moved, Some(&ck))).expect("the same files, moved");
    png(3, 7, &moved.join("cat").join("5.png"));
    let e = Loader::new(config(&moved, Some(&ck)))
        .err()
        .expect("refused");
    assert!(e.message().contains("dataset contents"), "{e}");
}
