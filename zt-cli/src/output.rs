//! Everything `zt` prints goes through here, and nothing here panics.
//!
//! `println!` and `eprintln!` panic when the write fails, and zt prints from inside the
//! engine's observer, in the middle of an apply: a reader that leaves early (`zt apply | head`)
//! or a full disk (`> /dev/full`) would then unwind through the transaction and lose the audit
//! line of a change the kernel already enforces. So output is best effort, and its failures
//! are reported the way a Unix filter reports them:
//!
//! - a reader that went away (`EPIPE`) ends that stream's output quietly: nobody is left to
//!   read it, and the command's work, its records and its exit code are unaffected;
//! - any other write error (`ENOSPC`, `EIO`, …) ends that stream's output too, and the first
//!   one is reported once, on standard error, when the command is done ([`finish`]); a command
//!   that succeeded then exits 3 (the system failed), one that already failed keeps its code.
//!
//! Nothing here can stop a command: the engine calls the observer that prints during a
//! transaction, and a print that fails returns to it like one that succeeded.
//!
//! Standard output is flushed at the end and its failure is treated the same way.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard};

/// The two streams zt writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Out => 0,
            Stream::Err => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stream::Out => "standard output",
            Stream::Err => "standard error",
        }
    }
}

/// What went wrong with the streams so far.
struct State {
    /// A stream is done (its reader left, or a write failed): nothing more is written to it.
    done: [bool; 2],
    /// The first write failure that was not a departed reader, for [`finish`] to report.
    failed: Option<(Stream, io::Error)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    done: [false, false],
    failed: None,
});

/// The state, even if a thread panicked while holding it (it holds only flags).
fn state() -> MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write `text` to `stream` unless it is done; a failure marks it done and is remembered.
fn write(stream: Stream, text: &dyn Display, newline: bool) {
    let mut state = state();
    if state.done[stream.index()] {
        return;
    }
    let result = match stream {
        Stream::Out => put(&mut io::stdout().lock(), text, newline),
        Stream::Err => put(&mut io::stderr().lock(), text, newline),
    };
    if let Err(e) = result {
        fail(&mut state, stream, e);
    }
}

fn put(to: &mut impl Write, text: &dyn Display, newline: bool) -> io::Result<()> {
    if newline {
        writeln!(to, "{text}")
    } else {
        write!(to, "{text}")
    }
}

fn fail(state: &mut State, stream: Stream, error: io::Error) {
    state.done[stream.index()] = true;
    if error.kind() != io::ErrorKind::BrokenPipe && state.failed.is_none() {
        state.failed = Some((stream, error));
    }
}

/// A line on standard output.
pub fn out(text: impl Display) {
    write(Stream::Out, &text, true);
}

/// Text on standard output as it is, without a line break added (generated scripts and
/// pages end with their own).
pub fn out_raw(text: &str) {
    write(Stream::Out, &text, false);
}

/// A line on standard error.
pub fn err(text: impl Display) {
    write(Stream::Err, &text, true);
}

/// Flush standard output and report the first write failure, if any, on standard error; the
/// exit code the process should end with: `code`, or 3 when the command succeeded but its
/// output did not get out (a script must not take a half-written report for a whole one). A
/// non-zero `code` is kept: the command failed, or its code is its answer (`verify` found
/// drift, `plan --detailed-exitcode` found changes), which says more than the output failure.
pub fn finish(code: u8) -> u8 {
    let mut state = state();
    if !state.done[Stream::Out.index()]
        && let Err(e) = io::stdout().lock().flush()
    {
        fail(&mut state, Stream::Out, e);
    }
    let Some((stream, error)) = state.failed.take() else {
        return code;
    };
    // Best effort: when standard error is what failed, this most likely fails too.
    let _ = writeln!(
        io::stderr().lock(),
        "zt: error: cannot write to {}: {error}; what was not written is lost (the command's \
         own work and records are not affected)",
        stream.name()
    );
    if code == 0 { 3 } else { code }
}
