//! Where the OpenMetrics text goes, checked before the first call: a file, or stdout for
//! `--output=-`.
//!
//! A backfill can read for hours, so everything that would make the write fail is found out
//! first: `--output` a directory, its directory missing or not writable, or a file already
//! there without `--force`. The check is made by creating the one directory the run writes
//! in, `.NAME.partial-XXXXXX` beside the file: the [`Spill`]'s family files and the joined
//! file go there, the joined file is renamed onto `--output` once complete (so `promtool`
//! never reads half a history), and the directory is removed however the run ends, a
//! SIGTERM included. For stdout the directory is a temporary one in `$TMPDIR`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use tempfile::TempDir;

use super::spill::{Counting, JoinError, Spill};

/// `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file path.
    File(PathBuf),
    /// `-`: stdout.
    Stdout,
}

/// Why `--output` cannot be written; each names the path and the flag.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path names no file (`/`, `..`).
    #[error("--output {0}: not a file name")]
    NotAFileName(PathBuf),
    /// The path is a directory.
    #[error("--output {0} is a directory; give the file to write in it, such as {1}")]
    Directory(PathBuf, PathBuf),
    /// Something other than a regular file is there (a device, a FIFO, a socket), which a
    /// rename would replace.
    #[error("--output {0} exists and is not a regular file")]
    NotARegularFile(PathBuf),
    /// A file is there and `--force` was not given.
    #[error("--output {0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    /// The directory the file would go in does not exist.
    #[error("--output {0}: the directory {1} does not exist")]
    NoDirectory(PathBuf, PathBuf),
    /// What the file would go in is not a directory.
    #[error("--output {0}: {1} is not a directory")]
    ParentNotADirectory(PathBuf, PathBuf),
    /// The directory cannot be written in (or stat'ed).
    #[error("--output {0}: cannot write in {1}: {2}")]
    Unwritable(PathBuf, PathBuf, #[source] io::Error),
    /// No temporary directory for `--output=-`.
    #[error("--output=-: cannot create a temporary directory in {0}: {1}")]
    NoTemporaryDirectory(PathBuf, #[source] io::Error),
    /// The file appeared while the backfill ran (no `--force`); the history is kept aside.
    #[error("--output {0} appeared while the backfill ran, so it was not replaced (pass --force to replace it); the complete history is in {1}")]
    AppearedMeanwhile(PathBuf, PathBuf),
    /// Joining or writing failed.
    #[error("writing {0}: {1}")]
    Write(String, #[source] io::Error),
    /// SIGTERM or Ctrl-C during the join.
    #[error("stopped while writing {0}")]
    Stopped(String),
}

impl Output {
    /// Reads `--output`: `-` is stdout, anything else a path.
    pub fn parse(text: &str) -> Output {
        if text == "-" {
            Output::Stdout
        } else {
            Output::File(PathBuf::from(text))
        }
    }

    /// Checks that the history can be written, and creates the directory the run writes in.
    /// With `force` an existing regular file may be replaced.
    pub fn prepare(&self, force: bool) -> Result<Prepared, OutputError> {
        match self {
            Output::Stdout => {
                let dir = tempfile::Builder::new()
                    .prefix(".meta-messaging-exporter-backfill-")
                    .tempdir()
                    .map_err(|error| {
                        OutputError::NoTemporaryDirectory(std::env::temp_dir(), error)
                    })?;
                Ok(Prepared {
                    output: self.clone(),
                    dir,
                    force,
                })
            }
            Output::File(path) => {
                let dir = prepare_file(path, force)?;
                Ok(Prepared {
                    output: self.clone(),
                    dir,
                    force,
                })
            }
        }
    }
}

fn prepare_file(path: &Path, force: bool) -> Result<TempDir, OutputError> {
    let owned = || path.to_owned();
    // First, so `.` and `..` are named as the directories they are.
    if std::fs::metadata(path).is_ok_and(|target| target.is_dir()) {
        return Err(OutputError::Directory(owned(), path.join("history.om")));
    }
    let name = path
        .file_name()
        .ok_or_else(|| OutputError::NotAFileName(owned()))?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(OutputError::ParentNotADirectory(owned(), parent)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(OutputError::NoDirectory(owned(), parent))
        }
        Err(error) if error.kind() == io::ErrorKind::NotADirectory => {
            return Err(OutputError::ParentNotADirectory(owned(), parent))
        }
        Err(error) => return Err(OutputError::Unwritable(owned(), parent, error)),
    }
    // The rename at the end replaces a link rather than follow it, so it is the link that
    // must be a file or absent (a link to a directory was refused above).
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(OutputError::Unwritable(owned(), parent, error)),
        Ok(link) => {
            if !(link.is_file() || link.file_type().is_symlink()) {
                return Err(OutputError::NotARegularFile(owned()));
            }
            if !force {
                return Err(OutputError::Exists(owned()));
            }
        }
    }
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".partial-");
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(&parent)
        .map_err(|error| OutputError::Unwritable(owned(), parent, error))
}

/// A checked output and the directory the run writes in, removed when this is dropped.
#[derive(Debug)]
pub struct Prepared {
    output: Output,
    dir: TempDir,
    force: bool,
}

impl Prepared {
    /// The directory the spill's files go in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Joins `spill` into the output; returns the bytes written. Stops soon after `stop` is
    /// raised. The directory is removed when this returns, except when the file appeared
    /// meanwhile, where it keeps the history.
    pub fn finish(self, spill: Spill, stop: &AtomicBool) -> Result<u64, OutputError> {
        match &self.output {
            Output::Stdout => {
                let mut out = Counting::new(io::stdout().lock());
                let written = spill.join(&mut out, stop).map_err(|error| match error {
                    JoinError::Stopped => OutputError::Stopped("stdout".into()),
                    JoinError::Io(error) => OutputError::Write("stdout".into(), error),
                })?;
                out.flush()
                    .map_err(|error| OutputError::Write("stdout".into(), error))?;
                Ok(written)
            }
            Output::File(path) => {
                let path = path.clone();
                self.finish_file(&path, spill, stop)
            }
        }
    }

    fn finish_file(self, path: &Path, spill: Spill, stop: &AtomicBool) -> Result<u64, OutputError> {
        let joined = self.dir.path().join(path.file_name().unwrap_or_default());
        let shown = joined.display().to_string();
        let written = (|| -> Result<u64, JoinError> {
            let file = File::create(&joined)?;
            let mut out = BufWriter::with_capacity(256 * 1024, file);
            let written = spill.join(&mut out, stop)?;
            out.into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_all()?;
            Ok(written)
        })()
        .map_err(|error| match error {
            JoinError::Stopped => OutputError::Stopped(shown.clone()),
            JoinError::Io(error) => OutputError::Write(shown.clone(), error),
        })?;
        // Checked again: hours may have passed since `prepare`, and a file that appeared
        // meanwhile is someone's. The directory is kept, and with it hours of reads.
        if !self.force && std::fs::symlink_metadata(path).is_ok() {
            let _ = self.dir.keep();
            return Err(OutputError::AppearedMeanwhile(path.to_owned(), joined));
        }
        std::fs::rename(&joined, path).map_err(|error| {
            OutputError::Write(format!("{} (renamed from {shown})", path.display()), error)
        })?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Family, Sample};
    use std::sync::atomic::AtomicBool;

    fn one_sample() -> super::super::history::History {
        let mut history = super::super::history::History::default();
        history.record(
            60,
            60,
            vec![Family {
                name: "meta_x".into(),
                help: "x".into(),
                samples: vec![Sample {
                    labels: Vec::new(),
                    value: 1.0,
                }],
            }],
        );
        history
    }

    fn entries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn the_file_appears_only_complete_and_nothing_else_is_left_beside_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("history.om");
        let prepared = Output::File(path.clone()).prepare(false).expect("prepared");
        assert_eq!(entries(dir.path()).len(), 1, "the partial directory");
        assert!(entries(dir.path())[0].starts_with(".history.om.partial-"));
        let mut spill = Spill::new(prepared.dir());
        spill.absorb(0, one_sample()).expect("absorbed");
        let written = prepared
            .finish(spill, &AtomicBool::new(false))
            .expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written, text.len() as u64);
        assert!(text.ends_with("meta_x 1 60\n# EOF\n"));
        assert_eq!(entries(dir.path()), vec!["history.om"]);
    }

    #[test]
    fn a_directory_a_missing_directory_and_a_file_in_the_way_are_refused_naming_the_path() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("exists.om");
        std::fs::write(&file, "x").expect("write");
        let cases = [
            (
                dir.path().to_owned(),
                "is a directory; give the file to write in it",
            ),
            (dir.path().join("missing/h.om"), "missing does not exist"),
            (file.join("h.om"), "exists.om is not a directory"),
            (
                file.clone(),
                "exists.om already exists; pass --force to replace it",
            ),
            (
                PathBuf::from("/dev/null"),
                "/dev/null exists and is not a regular file",
            ),
        ];
        for (path, message) in cases {
            let error = Output::File(path.clone())
                .prepare(false)
                .expect_err("refused");
            let text = error.to_string();
            assert!(text.contains(message), "{}: {text}", path.display());
            assert!(text.starts_with("--output "), "{text}");
        }
        assert_eq!(
            entries(dir.path()),
            vec!["exists.om"],
            "nothing was created"
        );
    }

    #[test]
    fn with_force_an_existing_file_is_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("history.om");
        std::fs::write(&path, "old").expect("write");
        let prepared = Output::File(path.clone()).prepare(true).expect("prepared");
        let mut spill = Spill::new(prepared.dir());
        spill.absorb(0, one_sample()).expect("absorbed");
        prepared
            .finish(spill, &AtomicBool::new(false))
            .expect("written");
        assert!(std::fs::read_to_string(&path)
            .expect("read")
            .ends_with("# EOF\n"));
    }

    #[test]
    fn a_file_that_appears_during_the_run_is_kept_and_so_is_the_history() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("history.om");
        let prepared = Output::File(path.clone()).prepare(false).expect("prepared");
        std::fs::write(&path, "someone else's").expect("write");
        let mut spill = Spill::new(prepared.dir());
        spill.absorb(0, one_sample()).expect("absorbed");
        let error = prepared
            .finish(spill, &AtomicBool::new(false))
            .expect_err("not replaced");
        let OutputError::AppearedMeanwhile(_, kept) = &error else {
            panic!("{error}");
        };
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "someone else's"
        );
        assert!(std::fs::read_to_string(kept)
            .expect("kept")
            .ends_with("# EOF\n"));
    }

    #[test]
    fn a_stopped_join_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("history.om");
        let prepared = Output::File(path.clone()).prepare(false).expect("prepared");
        let mut spill = Spill::new(prepared.dir());
        spill.absorb(0, one_sample()).expect("absorbed");
        let error = prepared
            .finish(spill, &AtomicBool::new(true))
            .expect_err("stopped");
        assert!(matches!(error, OutputError::Stopped(_)), "{error}");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }
}
