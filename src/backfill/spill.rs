//! The history of the targets read so far, on disk: one file per metric family, each target's
//! series appended as the target finishes, then joined family by family into the OpenMetrics
//! text.
//!
//! promtool wants each family contiguous (one `# TYPE`, one `# HELP`, all its series) and each
//! series' samples together and in time order, but targets finish in any order and each
//! makes series of many families. Held in memory until the end, 90 days of the demo at 15m
//! took 426 MB; here memory holds one target's runs at a time plus, per family, where each
//! target's lines start in its file. Each target's lines go to the families' files in one
//! piece, so a series is never split; the join writes a family's pieces in target order, so
//! the file does not depend on which target answered first.
//!
//! The files live in a directory the caller owns (beside `--output`, see
//! [`output`](super::output)), which removes them however the run ends.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read as _, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::history::{self, History, Labels};

/// How much of a family file is copied between two looks at the stop flag.
const COPY_CHUNK: usize = 1024 * 1024;

/// One family's file and what is known about it without reading it back.
#[derive(Debug)]
struct FamilySpill {
    help: String,
    /// The target `help` came from: the first in target order wins whichever finished
    /// first, so that a HELP text that differs between targets does not make the file depend
    /// on which answered first.
    help_from: usize,
    file: PathBuf,
    /// `(target index, offset, length)` of each target's lines in `file`.
    pieces: Vec<(usize, u64, u64)>,
    /// Label sets already written, so a second target's copy of a series is left out
    /// rather than split the series in two.
    series: HashSet<Labels>,
    bytes: u64,
}

/// What one target added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Absorbed {
    /// Samples written.
    pub samples: u64,
    /// Series written.
    pub series: usize,
    /// Series left out because another target had already written them, as `family{labels}`.
    pub duplicates: Vec<String>,
}

/// Per-family files in one directory.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    families: BTreeMap<String, FamilySpill>,
}

/// Why the join stopped.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The stop flag was raised (SIGTERM or Ctrl-C).
    #[error("stopped")]
    Stopped,
    /// Reading a family file or writing the output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Spill {
    /// An empty spill whose files go in `dir`, which must exist and stay until the join.
    pub fn new(dir: &Path) -> Spill {
        Spill {
            dir: dir.to_owned(),
            families: BTreeMap::new(),
        }
    }

    /// Appends the history of the target at `index` (its place in the target list) to the
    /// family files.
    pub fn absorb(&mut self, index: usize, history: History) -> io::Result<Absorbed> {
        let mut absorbed = Absorbed::default();
        let mut buffer = String::with_capacity(64 * 1024);
        for (name, family) in history.into_families() {
            let count = self.families.len();
            let spill = self
                .families
                .entry(name.clone())
                .or_insert_with(|| FamilySpill {
                    help: family.help().to_owned(),
                    help_from: index,
                    // Numbered, not named after the family: a name is not always a valid file name
                    // everywhere (`:` on some file systems).
                    file: self.dir.join(format!("family-{count:05}")),
                    pieces: Vec::new(),
                    series: HashSet::new(),
                    bytes: 0,
                });
            if index < spill.help_from {
                family.help().clone_into(&mut spill.help);
                spill.help_from = index;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spill.file)?;
            let mut out = Counting::new(BufWriter::with_capacity(64 * 1024, file));
            for (labels, runs) in family.series() {
                if !spill.series.insert(labels.clone()) {
                    let mut line = String::new();
                    crate::exposition::write_sample(&mut line, &name, labels, 0.0);
                    line.truncate(line.len() - 3);
                    absorbed.duplicates.push(line);
                    continue;
                }
                absorbed.samples +=
                    history::write_series(&mut buffer, &name, labels, runs, &mut out)?;
                absorbed.series += 1;
            }
            out.write_all(buffer.as_bytes())?;
            buffer.clear();
            out.flush()?;
            if out.written > 0 {
                spill.pieces.push((index, spill.bytes, out.written));
                spill.bytes += out.written;
            }
        }
        Ok(absorbed)
    }

    /// Writes the OpenMetrics text: families sorted by name, each with its header and then
    /// its pieces in target order, and `# EOF`. Each family file is removed once copied, so
    /// the disk holds the output plus at most one family twice. Returns the bytes written;
    /// stops with [`JoinError::Stopped`] soon after `stop` is raised.
    pub fn join(self, out: &mut impl Write, stop: &AtomicBool) -> Result<u64, JoinError> {
        let mut written = 0;
        let mut chunk = vec![0; COPY_CHUNK];
        for (name, mut family) in self.families {
            let mut header = String::new();
            history::write_header(&mut header, &name, &family.help);
            out.write_all(header.as_bytes())?;
            written += header.len() as u64;
            family.pieces.sort_by_key(|(index, _, _)| *index);
            let mut file = File::open(&family.file)?;
            for (_, offset, length) in family.pieces {
                file.seek(SeekFrom::Start(offset))?;
                let mut left = length;
                while left > 0 {
                    if stop.load(Ordering::Relaxed) {
                        return Err(JoinError::Stopped);
                    }
                    let take =
                        usize::try_from(left).map_or(COPY_CHUNK, |left| left.min(COPY_CHUNK));
                    file.read_exact(&mut chunk[..take])?;
                    out.write_all(&chunk[..take])?;
                    left -= take as u64;
                }
                written += length;
            }
            drop(file);
            std::fs::remove_file(&family.file)?;
        }
        out.write_all(b"# EOF\n")?;
        Ok(written + 6)
    }

    /// The text the join would write, in bytes.
    pub fn bytes(&self) -> u64 {
        self.families
            .iter()
            .map(|(name, family)| {
                let mut header = String::new();
                history::write_header(&mut header, name, &family.help);
                header.len() as u64 + family.bytes
            })
            .sum::<u64>()
            + 6
    }
}

/// A writer that counts what passes through it.
pub(super) struct Counting<W> {
    pub(super) inner: W,
    pub(super) written: u64,
}

impl<W> Counting<W> {
    pub(super) fn new(inner: W) -> Self {
        Self { inner, written: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Family, Sample};

    fn family(name: &str, id: &str, value: f64) -> Family {
        Family {
            name: name.into(),
            help: format!("Help of {name}."),
            samples: vec![Sample {
                labels: vec![("page_id".into(), id.into())],
                value,
            }],
        }
    }

    /// A target's history: `meta_b` and `meta_a` of Page `id` at 0 and 60.
    fn target(id: &str, value: f64) -> History {
        let mut history = History::default();
        for at in [0, 60] {
            history.record(
                at,
                60,
                vec![
                    family("meta_b", id, value),
                    family("meta_a", id, value + at as f64),
                ],
            );
        }
        history
    }

    fn joined(spill: Spill) -> String {
        let mut out = Vec::new();
        let written = spill
            .join(&mut out, &AtomicBool::new(false))
            .expect("joined");
        assert_eq!(written, out.len() as u64);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn families_stay_contiguous_and_in_target_order_whatever_order_targets_finish_in() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spill = Spill::new(dir.path());
        // The second target finishes first.
        let second = spill.absorb(1, target("2", 5.0)).expect("absorbed");
        let first = spill.absorb(0, target("1", 1.0)).expect("absorbed");
        assert_eq!((first.samples, first.series), (4, 2));
        assert_eq!(second, first);
        let expected_bytes = spill.bytes();
        let text = joined(spill);
        assert_eq!(
            text,
            "# TYPE meta_a gauge\n\
             # HELP meta_a Help of meta_a.\n\
             meta_a{page_id=\"1\"} 1 0\n\
             meta_a{page_id=\"1\"} 61 60\n\
             meta_a{page_id=\"2\"} 5 0\n\
             meta_a{page_id=\"2\"} 65 60\n\
             # TYPE meta_b gauge\n\
             # HELP meta_b Help of meta_b.\n\
             meta_b{page_id=\"1\"} 1 0\n\
             meta_b{page_id=\"1\"} 1 60\n\
             meta_b{page_id=\"2\"} 5 0\n\
             meta_b{page_id=\"2\"} 5 60\n\
             # EOF\n"
        );
        assert_eq!(expected_bytes, text.len() as u64);
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert!(
            left.is_empty(),
            "the family files are removed as they are copied"
        );
    }

    #[test]
    fn a_series_a_second_target_also_made_is_left_out_and_named() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spill = Spill::new(dir.path());
        spill.absorb(0, target("1", 1.0)).expect("absorbed");
        let again = spill.absorb(1, target("1", 9.0)).expect("absorbed");
        assert_eq!(again.samples, 0);
        assert_eq!(
            again.duplicates,
            vec!["meta_a{page_id=\"1\"}", "meta_b{page_id=\"1\"}"]
        );
        let text = joined(spill);
        assert!(!text.contains(" 9 "), "{text}");
        assert_eq!(text.matches("meta_b{page_id=\"1\"}").count(), 2);
    }

    #[test]
    fn the_help_text_is_the_first_targets_in_target_order() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spill = Spill::new(dir.path());
        let mut later = History::default();
        let mut other = family("meta_a", "2", 1.0);
        other.help = "Another help.".into();
        later.record(0, 60, vec![other]);
        spill.absorb(1, later).expect("absorbed");
        spill.absorb(0, target("1", 1.0)).expect("absorbed");
        let text = joined(spill);
        assert!(text.contains("# HELP meta_a Help of meta_a.\n"), "{text}");
        assert!(!text.contains("Another help"), "{text}");
    }

    #[test]
    fn a_raised_stop_flag_ends_the_join() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spill = Spill::new(dir.path());
        spill.absorb(0, target("1", 1.0)).expect("absorbed");
        let error = spill
            .join(&mut Vec::new(), &AtomicBool::new(true))
            .expect_err("stopped");
        assert!(matches!(error, JoinError::Stopped));
    }

    #[test]
    fn nothing_absorbed_joins_to_just_the_end_marker() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(joined(Spill::new(dir.path())), "# EOF\n");
    }
}
