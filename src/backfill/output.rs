//! Where the OpenMetrics text goes: a file, written beside its final name and renamed once
//! complete (so `promtool` never reads half a history), or stdout for `--output=-`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::history::History;

/// `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file path.
    File(PathBuf),
    /// `-`: stdout.
    Stdout,
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

    /// Writes `history`; returns the bytes written.
    pub fn write(&self, history: &History) -> anyhow::Result<u64> {
        match self {
            Output::Stdout => {
                let mut out = Counting::new(io::stdout().lock());
                history
                    .write_openmetrics(&mut out)
                    .and_then(|()| out.flush())
                    .context("writing the history to stdout")?;
                Ok(out.written)
            }
            Output::File(path) => write_file(path, history),
        }
    }
}

fn write_file(path: &Path, history: &History) -> anyhow::Result<u64> {
    let name = path
        .file_name()
        .with_context(|| format!("--output {}: not a file name", path.display()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = path.with_file_name(partial_name);
    let written = (|| -> io::Result<u64> {
        let file = File::create(&partial)?;
        let mut out = Counting::new(BufWriter::with_capacity(256 * 1024, file));
        history.write_openmetrics(&mut out)?;
        out.flush()?;
        let written = out.written;
        out.inner
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        Ok(written)
    })();
    let written = match written {
        Ok(written) => written,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error).with_context(|| format!("writing {}", partial.display()));
        }
    };
    std::fs::rename(&partial, path).with_context(|| {
        let _ = std::fs::remove_file(&partial);
        format!("renaming {} to {}", partial.display(), path.display())
    })?;
    Ok(written)
}

/// A writer that counts what passes through it, for the summary.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W> Counting<W> {
    fn new(inner: W) -> Self {
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

    #[test]
    fn the_file_appears_only_complete_and_nothing_else_is_left_beside_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("history.om");
        let mut history = History::default();
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
        let written = Output::parse(path.to_str().expect("utf-8"))
            .write(&history)
            .expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written, text.len() as u64);
        assert!(text.ends_with("meta_x 1 60\n# EOF\n"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_directory_that_does_not_exist_is_an_error_naming_the_path() {
        let error = Output::parse("/nonexistent-dir/history.om")
            .write(&History::default())
            .expect_err("no directory");
        assert!(format!("{error:#}").contains("/nonexistent-dir/.history.om.partial-"));
    }
}
