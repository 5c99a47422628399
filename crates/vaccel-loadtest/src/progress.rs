//! The live status line on stderr (only when stderr is a terminal), and
//! the one-line notes printed when it is not.

use std::io::{IsTerminal, Write};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A status line redrawn every second when stderr is a terminal; a line
    /// per configuration otherwise.
    #[default]
    Auto,
    /// Nothing on stderr.
    Quiet,
}

/// Writes progress to stderr.
#[derive(Debug)]
pub struct Progress {
    live: bool,
    notes: bool,
    drawn: bool,
}

impl Progress {
    /// For this mode and this process's stderr.
    pub fn new(mode: ProgressMode) -> Progress {
        let quiet = mode == ProgressMode::Quiet;
        Progress {
            live: !quiet && std::io::stderr().is_terminal(),
            notes: !quiet,
            drawn: false,
        }
    }

    /// Whether a live line is drawn.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Redraw the status line.
    pub fn status(&mut self, line: &str) {
        if self.live {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K{line}");
            let _ = e.flush();
            self.drawn = true;
        }
    }

    /// Print a note on its own line (clearing the status line first).
    pub fn note(&mut self, line: &str) {
        if !self.notes {
            return;
        }
        self.clear();
        eprintln!("{line}");
    }

    /// Remove the status line.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
