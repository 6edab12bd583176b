//! Exit codes, and the one error type every command returns.
//!
//! Scripts branch on the exit code, so each failure is classified once, where it happens:
//! 1 for a policy or a kernel state that is not what it should be, 2 for a usage error
//! (clap's own code), 3 for a kernel, backend or system failure.

use std::fmt;
use std::process::ExitCode;
use zt_core::Diagnostics;

/// Why a command failed, as scripts see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Invalid policy, failed verification, a change that was not kept, nothing to confirm or
    /// roll back: exit 1.
    Rejected,
    /// A usage error clap could not catch (contradictory state-dir contents are not one):
    /// exit 2.
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
    /// A report to print before the error (a drift report, say), already formatted.
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

    /// Attach a machine-readable report (included in `--json` output).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Add context to the error, keeping the class.
    pub fn context(mut self, context: impl fmt::Display + Send + Sync + 'static) -> Self {
        self.error = self.error.context(context);
        self
    }

    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.class.code())
    }
}

impl From<zt_core::Error> for Failure {
    /// An invalid policy or a rule the backend cannot express is the policy's fault (1);
    /// anything a backend or the system reports is 3.
    fn from(error: zt_core::Error) -> Self {
        match error {
            zt_core::Error::Invalid(diagnostics) => Failure {
                class: Class::Rejected,
                error: anyhow::anyhow!("{}: the policy is invalid", diagnostics.source),
                diagnostics: Some(diagnostics),
                details: None,
            },
            e @ zt_core::Error::Unsupported { .. } => Failure::rejected(e),
            e => Failure::system(e),
        }
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
