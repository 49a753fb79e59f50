//! Atomic file replacement, for checkpoints, score files and the CLI's outputs: a reader sees
//! the old file or the new one, never a torn one.
//!
//! Each write goes to its own temporary file beside the target — `.NAME.tmp-PID-SEQ`, unique
//! per process and call, so concurrent writers (threads or processes) never share one — which
//! is fsynced and renamed over the target; then the directory is fsynced. Writers to one path
//! inside a process take turns (a lock per path), so the last `write_atomic` to return is the
//! content that stays. A writer killed mid-write leaves its temporary behind: the next write to
//! the same target removes those whose process no longer exists.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// Numbers this process's temporary files.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// One lock per target path being written in this process.
fn path_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock();
    // Forget the locks nobody holds, so the map stays as small as the writes in flight.
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    Arc::clone(locks.entry(path.to_path_buf()).or_default())
}

/// Writes `bytes` to `path` atomically (see the module's comment).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file path", path.display())))?
        .to_string_lossy()
        .into_owned();
    let lock = path_lock(path);
    let _turn = lock.lock();
    remove_orphans(&dir, &name);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, &e)
    })
}

/// Removes `.NAME.tmp-PID-…` files in `dir` whose writer process is gone (killed mid-write).
fn remove_orphans(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid > 0 && !process_exists(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_to_one_path_all_succeed_and_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..25 {
                        let body = vec![t; 4096 + t as usize];
                        write_atomic(path, &body).expect("every concurrent save succeeds");
                    }
                });
            }
        });
        let got = std::fs::read(&path).unwrap();
        let t = got[0];
        assert_eq!(
            got,
            vec![t; 4096 + t as usize],
            "a whole file from one writer"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("state")],
            "no temporaries left"
        );
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck");
        // A pid above the kernel's maximum (4194304) cannot be running.
        let dead = dir.path().join(".ck.tmp-999999999-0");
        let live = dir
            .path()
            .join(format!(".ck.tmp-{}-12345", std::process::id()));
        let other = dir.path().join(".other.tmp-999999999-0");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"partial").unwrap();
        }
        write_atomic(&path, b"whole").unwrap();
        assert!(!dead.exists(), "a killed writer's temporary is cleaned up");
        assert!(live.exists(), "a running writer's temporary is left alone");
        assert!(
            other.exists(),
            "another target's temporaries are not touched"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }
}
