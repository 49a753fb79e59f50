//! CIFAR-10 and CIFAR-100 binary batches (the "binary version" from the CIFAR page): fixed-size
//! records of label byte(s) then 3072 pixel bytes, 32×32 and planar (1024 R, 1024 G, 1024 B).
//! CIFAR-10 records are 3073 bytes (label 0–9); CIFAR-100 records are 3074 (coarse label, then
//! fine label). The files are read whole at open and the pixels rearranged to HWC once, into a
//! `MemorySource`, so a read is a slice.

use std::path::PathBuf;

use serde::Deserialize;

use super::{check_limit, MemorySource};
use crate::error::{Error, Result};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const PIXELS: usize = 3 * PLANE;

/// Which CIFAR-100 label to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CifarLabel {
    /// The 100 classes.
    Fine,
    /// The 20 superclasses.
    Coarse,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CifarConfig {
    /// The batch files, read in this order (e.g. `data_batch_1.bin` … `data_batch_5.bin`).
    pub files: Vec<PathBuf>,
    /// Absent: CIFAR-10 records (3073 bytes). Present: CIFAR-100 records (3074 bytes), with
    /// this label.
    #[serde(default)]
    pub cifar100_label: Option<CifarLabel>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The CIFAR parser under the name callers know: `CifarSource::open` returns the
/// `MemorySource` it fills. Never a value, only a namespace.
pub enum CifarSource {}

impl CifarSource {
    /// Reads the batch files in order, up to `limit` samples; errors name the file at fault.
    pub fn open(config: &CifarConfig) -> Result<MemorySource> {
        check_limit(config.limit)?;
        if config.files.is_empty() {
            return Err(Error::invalid(
                "config key `source.files`: give at least one CIFAR batch file",
            ));
        }
        let (record, label_at) = match config.cifar100_label {
            None => (PIXELS + 1, 0),
            Some(CifarLabel::Coarse) => (PIXELS + 2, 0),
            Some(CifarLabel::Fine) => (PIXELS + 2, 1),
        };
        let label_bytes = record - PIXELS;
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        let limit = config.limit.unwrap_or(usize::MAX);
        for path in &config.files {
            if labels.len() >= limit {
                break;
            }
            // Only a regular file, its size checked against the record size before a byte is
            // read: /dev/zero or a FIFO is refused, not read until memory runs out.
            let (mut file, len) = crate::util::open_regular(path, "CIFAR batch file")?;
            if len == 0 || len % record as u64 != 0 {
                // A hint when the size fits the other variant's records.
                let (other, hint) = if record == PIXELS + 1 {
                    (PIXELS + 2, "CIFAR-100 records: set `source.cifar100_label`")
                } else {
                    (
                        PIXELS + 1,
                        "CIFAR-10 records: leave out `source.cifar100_label`",
                    )
                };
                let fits_other = len != 0 && len % other as u64 == 0;
                return Err(Error::format(format!(
                    "{}: {len} bytes is not a whole number of {record}-byte CIFAR records{}",
                    path.display(),
                    if fits_other {
                        format!(" (it is a whole number of {other}-byte {hint})")
                    } else {
                        String::new()
                    }
                )));
            }
            // Only the records `limit` still wants are read.
            let records = usize::try_from(len / record as u64)
                .unwrap_or(usize::MAX)
                .min(limit - labels.len());
            let too_large = || {
                Error::format(format!(
                    "{}: {len} bytes: too large to load",
                    path.display()
                ))
            };
            let mut bytes = Vec::new();
            bytes
                .try_reserve_exact(records * record)
                .map_err(|_| too_large())?;
            bytes.resize(records * record, 0);
            std::io::Read::read_exact(&mut file, &mut bytes).map_err(|e| Error::io(path, &e))?;
            pixels
                .try_reserve_exact(records * PIXELS)
                .map_err(|_| too_large())?;
            labels.try_reserve_exact(records).map_err(|_| too_large())?;
            let max_label = if record == PIXELS + 1 {
                9
            } else if label_at == 0 {
                19
            } else {
                99
            };
            for (i, rec) in bytes.chunks_exact(record).enumerate() {
                if labels.len() >= limit {
                    break;
                }
                let label = rec[label_at];
                if label > max_label {
                    return Err(Error::format(format!(
                        "{}: record {i} has label {label}, above {max_label}: not a {} file",
                        path.display(),
                        if record == PIXELS + 1 {
                            "CIFAR-10"
                        } else {
                            "CIFAR-100"
                        }
                    )));
                }
                labels.push(i64::from(label));
                let planar = &rec[label_bytes..];
                let start = pixels.len();
                pixels.resize(start + PIXELS, 0);
                for (p, px) in pixels[start..].chunks_exact_mut(3).enumerate() {
                    px[0] = planar[p];
                    px[1] = planar[PLANE + p];
                    px[2] = planar[2 * PLANE + p];
                }
            }
        }
        Ok(MemorySource::from_parts(pixels, [SIDE, SIDE, 3], labels))
    }
}
