//! Ports and port lists, checked.

use super::{Problem, Validator, problem};
use crate::config::{OneOrMany, PortSpec, Spanned};
use crate::diagnostic::Code;
use crate::policy::{PortRange, PortSet};

/// A port or range, checked.
fn port_range(spec: PortSpec) -> Result<PortRange, Problem> {
    let out_of_range = |p: i64| {
        problem(
            Code::PortOutOfRange,
            format!("port {p} is out of range"),
            "ports are 1-65535",
        )
    };
    let port = |p: i64| {
        u16::try_from(p)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| out_of_range(p))
    };
    match spec {
        PortSpec::Single(p) => {
            let p = port(p)?;
            PortRange::single(p).ok_or_else(|| out_of_range(i64::from(p)))
        }
        PortSpec::Range(a, b) => {
            let (first, last) = (port(a)?, port(b)?);
            PortRange::new(first, last).ok_or_else(|| {
                problem(
                    Code::InvertedRange,
                    format!("range {a}-{b} is inverted"),
                    format!("write the lower port first: \"{b}-{a}\""),
                )
            })
        }
    }
}

impl Validator<'_> {
    /// A port list, checked; errors are reported and give `None`.
    pub(super) fn port_set(
        &mut self,
        ports: &Spanned<OneOrMany<Spanned<PortSpec>>>,
        field: &str,
    ) -> Option<PortSet> {
        let specs = ports.value.as_slice();
        if specs.is_empty() {
            self.error(
                problem(
                    Code::EmptyList,
                    "an empty port list matches nothing",
                    "omit the key to mean any port, or list at least one",
                ),
                field,
                ports.position,
            );
            return None;
        }
        let mut ok = true;
        for spec in specs {
            if let Err(p) = port_range(spec.value) {
                ok = false;
                self.error(p, field, spec.position);
            }
        }
        if !ok {
            return None;
        }
        // Checked above; read again rather than kept in a list of their own (checking a
        // range is cheaper than allocating one).
        PortSet::from_ranges(specs.iter().filter_map(|s| port_range(s.value).ok()))
    }
}
