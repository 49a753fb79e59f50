//! The `thresher` binary, run as a user would, on score files written through the library.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use thresher_core::scorefile::ScoreFile;
use thresher_core::{Feedback, ScoreBook, ScoreFields};

fn thresher(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thresher"))
        .args(args)
        .output()
        .expect("the thresher binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `thresher scores coreset FILE FLAGS... -o IDS`.
fn coreset(file: &Path, flags: &[&str], ids: &Path) -> Output {
    let mut args = vec!["scores", "coreset", s(file)];
    args.extend_from_slice(flags);
    args.extend(["-o", s(ids)]);
    thresher(&args)
}

/// A score file of `n` samples where the first `scored` got one feedback: el2n and grad norm
/// from `el2n(id)`, loss 1 + id, every other sample right.
fn write_scores(
    dir: &Path,
    name: &str,
    n: usize,
    scored: usize,
    el2n: impl Fn(u64) -> f32,
) -> PathBuf {
    let mut book = ScoreBook::new(n, ScoreFields::ALL);
    let ids: Vec<u64> = (0..scored as u64).collect();
    let loss: Vec<f32> = ids.iter().map(|&i| 1.0 + i as f32).collect();
    let e: Vec<f32> = ids.iter().map(|&i| el2n(i)).collect();
    let g: Vec<f32> = e.iter().map(|x| 2.0 * x).collect();
    let correct: Vec<u8> = ids.iter().map(|&i| (i % 2) as u8).collect();
    book.feedback(
        &Feedback {
            ids: &ids,
            loss: &loss,
            el2n: Some(&e),
            grad_norm: Some(&g),
            correct: Some(&correct),
            ..Default::default()
        },
        0,
    )
    .unwrap();
    let path = dir.join(name);
    ScoreFile::from_book(&book).write(&path).unwrap();
    path
}

/// A permutation of 0..n scaled to (0, 1], so the hardest K is a known set.
fn permuted(n: u64) -> impl Fn(u64) -> f32 {
    move |i| ((i * 7) % n + 1) as f32 / n as f32
}

fn read_ids(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn inspect_prints_shape_stats_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scores(dir.path(), "a.scores", 10, 8, |i| i as f32 / 10.0);
    let o = thresher(&["scores", "inspect", s(&path)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("N = 10"), "{out}");
    assert!(out.contains("seen      8 of 10"), "{out}");
    for col in [
        "seen",
        "times_kept",
        "loss_last",
        "loss_ema",
        "grad_norm_ema",
        "el2n",
        "forgets",
    ] {
        assert!(out.contains(col), "column {col} missing:\n{out}");
    }
    // el2n's row: 8 non-NaN values from 0 to 0.7, mean 0.35.
    let row = out.lines().find(|l| l.starts_with("el2n ")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "8", "{row}");
    assert_eq!(cells[2], "0", "{row}");
    assert!(cells[3].starts_with("0.35"), "{row}");
    assert!(out.contains("el2n over seen samples: 8 values\n"), "{out}");
    // Unseen samples' placeholder 0 loss EMA is left out of the statistics.
    let row = out.lines().find(|l| l.starts_with("loss_ema ")).unwrap();
    assert_eq!(row.split_whitespace().nth(1), Some("8"), "{row}");
    assert!(
        row.split_whitespace().nth(2).unwrap().starts_with("1.0"),
        "{row}"
    );
    // Integer counts get one bin per value.
    assert!(
        out.contains("forgets over seen samples: 8 values\n  0  8  █"),
        "{out}"
    );
    assert!(out.contains('█'), "{out}");
    // 20 equal-width bins over [0, 0.7] for el2n, each label with its range and count.
    let el2n_hist: Vec<&str> = out
        .split("el2n over seen samples: ")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  ["))
        .collect();
    assert_eq!(el2n_hist.len(), 20, "{out}");
    let total: usize = el2n_hist
        .iter()
        .map(|l| {
            l.split(&[')', ']'][..])
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
        })
        .map(|c| c.parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, 8);
}

#[test]
fn merge_averages_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scores(dir.path(), "a.scores", 6, 6, |i| i as f32);
    let b = write_scores(dir.path(), "b.scores", 6, 4, |i| 3.0 * i as f32);
    let out = dir.path().join("m.scores");
    let o = thresher(&["scores", "merge", s(&a), s(&b), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
    assert!(stdout(&o).contains("merged 2"), "{}", stdout(&o));
    let m = ScoreFile::read(&out).unwrap();
    let el2n = m.column("el2n").unwrap().to_f32();
    assert_eq!(el2n[2], 4.0); // (2 + 6) / 2
    assert_eq!(el2n[5], 5.0); // b never scored sample 5: a's value alone
    let seen = m.column("seen").unwrap().to_f32();
    assert_eq!(seen, vec![2.0, 2.0, 2.0, 2.0, 1.0, 1.0]);
}

#[test]
fn merge_refuses_files_of_different_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_scores(dir.path(), "a.scores", 6, 6, |i| i as f32);
    let b = write_scores(dir.path(), "b.scores", 7, 7, |i| i as f32);
    let out = dir.path().join("m.scores");
    let o = thresher(&["scores", "merge", s(&a), s(&b), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("thresher: "), "{}", stderr(&o));
    assert!(stderr(&o).contains("b.scores"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn el2n_coreset_keeps_the_hardest_half() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100;
    let path = write_scores(dir.path(), "a.scores", n as usize, n as usize, permuted(n));
    let ids = dir.path().join("ids.txt");
    let o = coreset(&path, &["--policy", "el2n", "--prune", "0.5"], &ids);
    assert!(o.status.success(), "{}", stderr(&o));
    let score = permuted(n);
    let want: Vec<u64> = (0..n).filter(|&i| score(i) > 0.5).collect();
    assert_eq!(want.len(), 50);
    assert_eq!(read_ids(&ids), want);
    assert!(stdout(&o).contains("kept 50 / 100"), "{}", stdout(&o));
    assert!(stdout(&o).contains("pruned 50.00%"), "{}", stdout(&o));
}

#[test]
fn grand_coreset_with_drop_hardest_keeps_the_window_below_the_hardest() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100;
    let path = write_scores(dir.path(), "a.scores", n as usize, n as usize, permuted(n));
    let ids = dir.path().join("ids.txt");
    let o = coreset(
        &path,
        &[
            "--policy",
            "grand",
            "--prune",
            "0.5",
            "--drop-hardest",
            "0.1",
        ],
        &ids,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Ranks 40..90 of 100 ascending: scores in (0.4, 0.9].
    let score = permuted(n);
    let want: Vec<u64> = (0..n)
        .filter(|&i| score(i) > 0.4 && score(i) <= 0.9)
        .collect();
    assert_eq!(read_ids(&ids), want);
}

#[test]
fn coreset_refuses_out_of_range_prune() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scores(dir.path(), "a.scores", 10, 10, |i| i as f32);
    let ids = dir.path().join("ids.txt");
    let o = coreset(&path, &["--policy", "el2n", "--prune", "0.95"], &ids);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("prune"), "{}", stderr(&o));
    assert!(!ids.exists());
    // NaN and infinity are usage errors naming the flag.
    for (flag, value) in [("--prune", "nan"), ("--drop-hardest", "inf")] {
        let o = coreset(&path, &["--policy", "el2n", flag, value], &ids);
        assert_eq!(o.status.code(), Some(2));
        let e = stderr(&o);
        assert!(e.contains(flag) && e.contains("not a finite number"), "{e}");
        assert!(!ids.exists());
    }
}

#[test]
fn corrupt_file_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scores(dir.path(), "a.scores", 10, 10, |i| i as f32);
    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.path().join("truncated.scores");
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    let garbage = dir.path().join("garbage.scores");
    std::fs::write(&garbage, b"not a score file at all, just some text").unwrap();
    let ids = dir.path().join("ids.txt");
    for bad in [&truncated, &garbage] {
        for args in [
            vec!["scores", "inspect", s(bad)],
            vec![
                "scores",
                "coreset",
                s(bad),
                "--policy",
                "el2n",
                "-o",
                s(&ids),
            ],
            vec!["scores", "merge", s(&path), s(bad), "-o", s(&ids)],
        ] {
            let o = thresher(&args);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(err.starts_with("thresher: "), "{err}");
            assert!(err.contains(s(bad)), "{err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    assert!(!ids.exists());
}

#[test]
fn missing_file_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.scores");
    let o = thresher(&["scores", "inspect", s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("thresher: "), "{}", stderr(&o));
    assert!(stderr(&o).contains(s(&missing)), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_with_status_2() {
    let o = thresher(&[
        "scores", "coreset", "x.scores", "--policy", "ucb", "-o", "ids.txt",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = thresher(&["scores", "merge", "-o", "out.scores"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn forgetting_coreset_ranks_never_learnt_hardest_and_keeps_unseen() {
    let dir = tempfile::tempdir().unwrap();
    let mut book = ScoreBook::new(8, ScoreFields::ALL);
    let ids: Vec<u64> = (0..7).collect();
    let loss = [1.0f32; 7];
    // Forgetting events: id 0 twice, id 3 once, ids 1, 2, 5, 6 never; id 4 is never right
    // (+∞) and id 7 never seen (always kept).
    let epochs: [[u8; 7]; 4] = [
        [1, 1, 1, 1, 0, 1, 1],
        [0, 1, 1, 1, 0, 1, 1],
        [1, 1, 1, 0, 0, 1, 1],
        [0, 1, 1, 1, 0, 1, 1],
    ];
    for (epoch, correct) in epochs.iter().enumerate() {
        let fb = Feedback {
            ids: &ids,
            loss: &loss,
            correct: Some(correct),
            ..Default::default()
        };
        book.feedback(&fb, epoch as u64).unwrap();
    }
    let path = dir.path().join("f.scores");
    ScoreFile::from_book(&book).write(&path).unwrap();
    let out = dir.path().join("ids.txt");
    let o = coreset(&path, &["--policy", "forgetting", "--prune", "0.5"], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_ids(&out), vec![0, 3, 4, 7]);
}
