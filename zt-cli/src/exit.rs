//! Exit codes, and the one error type every command returns.
//!
//! Scripts branch on the exit code, so each failure is classified once, where it happens:
//! 1 for a policy or a kernel state that is not what it should be, 2 for a usage error
//! (clap's own code), 3 for a kernel, backend or system failure. The engine's errors carry
//! their class ([`zt_engine::ErrorClass`]); this module turns it into the code.

use std::fmt;
use std::process::ExitCode;
use zt_core::Diagnostics;
use zt_engine::{EngineError, ErrorClass};

/// Why a command failed, as scripts see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Invalid policy, failed verification, a change that was not kept, nothing to confirm or
    /// roll back: exit 1.
    Rejected,
    /// A usage error clap could not catch: exit 2.
    Usage,
    /// The kernel, a backend, the state directory or the system failed: exit 3.
    System,
}

impl Class {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Class::Rejected => 1,
            Class::Usage => 2,
            Class::System => 3,
        }
    }
}

/// A failed command: its class, the error, and the diagnostics of an invalid policy (printed
/// as they are, with positions, or as JSON).
#[derive(Debug)]
pub struct Failure {
    /// How scripts see it.
    pub class: Class,
    /// What went wrong, with its causes.
    pub error: anyhow::Error,
    /// Every problem of an invalid policy.
    pub diagnostics: Option<Diagnostics>,
    /// A machine-readable report included in `--json` output (a drift report, say).
    pub details: Option<serde_json::Value>,
}

/// An error and its causes, as `{:#}` prints them but each once: a cause whose text is
/// already in what precedes it (a wrapper that quotes its source, as the backends' errors do
/// for readers that print only the top) is left out.
pub fn describe(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

impl Failure {
    /// A failure of the given class.
    pub fn new(class: Class, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            class,
            error: error.into(),
            diagnostics: None,
            details: None,
        }
    }

    /// Exit 1: the policy or the kernel state is not what it should be.
    pub fn rejected(error: impl Into<anyhow::Error>) -> Self {
        Self::new(Class::Rejected, error)
    }

    /// Exit 3: the kernel, a backend or the system failed.
    pub fn system(error: impl Into<anyhow::Error>) -> Self {
        Self::new(Class::System, error)
    }

    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.class.code())
    }
}

impl From<EngineError> for Failure {
    /// The engine's class; an invalid policy is printed as its diagnostics, a failed
    /// verification carries its drift.
    fn from(error: EngineError) -> Self {
        let class = match error.class() {
            ErrorClass::Refused => Class::Rejected,
            ErrorClass::Failed => Class::System,
        };
        let diagnostics = error.diagnostics().cloned();
        let details = error
            .drift()
            .map(|d| serde_json::json!({ "drift": d.items }));
        let error = match &diagnostics {
            Some(d) => {
                let what = format!("{}: the policy is invalid", d.source);
                match error {
                    EngineError::Core(zt_core::Error::Invalid(_)) => anyhow::anyhow!(what),
                    other => anyhow::Error::new(other).context(what),
                }
            }
            None => anyhow::Error::new(error),
        };
        Failure {
            class,
            error,
            diagnostics,
            details,
        }
    }
}

impl From<zt_core::Error> for Failure {
    fn from(error: zt_core::Error) -> Self {
        EngineError::from(error).into()
    }
}

/// Shorthand for command results.
pub type Outcome<T> = Result<T, Failure>;

/// Attach context to errors of any type convertible to anyhow, classifying them.
pub trait Classify<T> {
    /// Classify the error as a system failure (3) with context.
    fn or_system(self, context: impl fmt::Display + Send + Sync + 'static) -> Outcome<T>;
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn or_system(self, context: impl fmt::Display + Send + Sync + 'static) -> Outcome<T> {
        self.map_err(|e| Failure::system(e.into().context(context)))
    }
}
