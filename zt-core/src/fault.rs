//! Fault-injection hooks for the reliability tests, shared by the backends and the CLI so a
//! test can stop an apply at any step boundary, in whichever crate that step lives.
//!
//! With the cargo feature `fault-injection` (test builds; release builds leave it out), a
//! process whose environment has `ZT_FAULT=<point>` kills itself with SIGKILL on reaching
//! [`kill_at`]`(<point>)` — the abrupt end a crash, an OOM kill or a power cut gives, with no
//! destructor or handler run — and [`active`]`(<point>)` is true, so a crate can make a step
//! fail on purpose. Without the feature both compile to nothing, and no environment variable
//! can change a release build's behaviour.

/// Whether the test asked for the fault named `point`.
#[cfg(feature = "fault-injection")]
pub fn active(point: &str) -> bool {
    std::env::var("ZT_FAULT").is_ok_and(|v| v == point)
}

/// Whether the test asked for the fault named `point` (never, without `fault-injection`).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn active(_point: &str) -> bool {
    false
}

/// A named step boundary: SIGKILL this process here if the test asked for it.
#[cfg(feature = "fault-injection")]
pub fn kill_at(point: &str) {
    if active(point) {
        // SAFETY: kill(2) on our own pid; it does not return.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// A named step boundary (a no-op without `fault-injection`).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn kill_at(_point: &str) {}
