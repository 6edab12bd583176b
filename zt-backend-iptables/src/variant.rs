//! Which iptables a host uses: `iptables-legacy` (the kernel's x_tables) or `iptables-nft`
//! (the same command line over nf_tables). Rules written with one are invisible to the other,
//! so zt must use the variant the host's other tools use, and that variant's binaries for
//! every read and write.
//!
//! Detection follows kube-proxy's `iptables-wrapper`: the variant that already holds more
//! rules (both families, every table) is the one in use. When neither holds any (a fresh host,
//! a fresh network namespace), zt follows what the host's `iptables` command is (Debian's
//! alternatives, `iptables --version` says `legacy` or `nf_tables`), and nft when that says
//! nothing — nft is the default of every current distribution. Forcing a variant skips all of
//! this.

use crate::error::IptablesError;
use crate::kernel::{collect, spawn};
use crate::save;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::process::{Child, Command};
use zt_core::Family;

/// An iptables variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// `iptables-legacy`: x_tables, one blob per table.
    Legacy,
    /// `iptables-nft`: nf_tables behind the iptables command line.
    Nft,
}

impl Variant {
    /// `legacy` or `nft`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Legacy => "legacy",
            Variant::Nft => "nft",
        }
    }

    /// The `iptables-save` of this variant for `family`.
    pub fn save(self, family: Family) -> &'static str {
        match (self, family) {
            (Variant::Legacy, Family::V4) => "iptables-legacy-save",
            (Variant::Legacy, Family::V6) => "ip6tables-legacy-save",
            (Variant::Nft, Family::V4) => "iptables-nft-save",
            (Variant::Nft, Family::V6) => "ip6tables-nft-save",
        }
    }

    /// The `iptables-restore` of this variant for `family`.
    pub fn restore(self, family: Family) -> &'static str {
        match (self, family) {
            (Variant::Legacy, Family::V4) => "iptables-legacy-restore",
            (Variant::Legacy, Family::V6) => "ip6tables-legacy-restore",
            (Variant::Nft, Family::V4) => "iptables-nft-restore",
            (Variant::Nft, Family::V6) => "ip6tables-nft-restore",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one variant holds: the number of rules over both families, or why it cannot be used.
pub type Holding = Result<usize, IptablesError>;

/// The decision, from what each variant holds and what the host's `iptables` command is.
pub fn choose(
    legacy: Holding,
    nft: Holding,
    host_default: Option<Variant>,
) -> Result<Variant, IptablesError> {
    match (legacy, nft) {
        (Ok(l), Ok(n)) if l > n => Ok(Variant::Legacy),
        (Ok(l), Ok(n)) if n > l => Ok(Variant::Nft),
        (Ok(_), Ok(_)) => Ok(host_default.unwrap_or(Variant::Nft)),
        (Ok(_), Err(_)) => Ok(Variant::Legacy),
        (Err(_), Ok(_)) => Ok(Variant::Nft),
        (Err(l), Err(n)) => Err(IptablesError::Variant(format!(
            "neither variant's tools work (legacy: {l}; nft: {n})"
        ))),
    }
}

/// Detect the variant this host (this network namespace) uses.
///
/// Runs the four `*-save` tools at once, without `-t` (which would create the legacy `filter`
/// table in a namespace that has none), and `iptables --version` only on a tie.
pub fn detect() -> Result<Variant, IptablesError> {
    let start = |variant: Variant| {
        [Family::V4, Family::V6].map(|f| {
            let binary = variant.save(f);
            spawn(binary, &[]).map(|child| (binary, child))
        })
    };
    let legacy = start(Variant::Legacy);
    let nft = start(Variant::Nft);
    let count = |children: [Result<(&'static str, Child), IptablesError>; 2]| -> Holding {
        // Wait for every started child before giving up on any of them.
        let outputs = children.map(|c| c.and_then(|(binary, child)| collect(binary, child)));
        let mut total = 0;
        for text in outputs {
            total += save::parse(&text?)?.rule_count();
        }
        Ok(total)
    };
    let (legacy, nft) = (count(legacy), count(nft));
    if matches!((&legacy, &nft), (Ok(l), Ok(n)) if l == n) {
        return choose(legacy, nft, host_default());
    }
    choose(legacy, nft, None)
}

/// The variant the host's plain `iptables` command is, if it says.
fn host_default() -> Option<Variant> {
    let out = Command::new("iptables").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("(legacy)") {
        Some(Variant::Legacy)
    } else if text.contains("(nf_tables)") {
        Some(Variant::Nft)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> Holding {
        Err(IptablesError::Variant("not installed".to_owned()))
    }

    #[test]
    fn the_variant_holding_more_rules_wins() {
        assert_eq!(
            choose(Ok(12), Ok(3), Some(Variant::Nft)).unwrap(),
            Variant::Legacy
        );
        assert_eq!(
            choose(Ok(0), Ok(3), Some(Variant::Legacy)).unwrap(),
            Variant::Nft
        );
    }

    #[test]
    fn a_tie_follows_the_host_command_then_nft() {
        assert_eq!(
            choose(Ok(0), Ok(0), Some(Variant::Legacy)).unwrap(),
            Variant::Legacy
        );
        assert_eq!(choose(Ok(0), Ok(0), None).unwrap(), Variant::Nft);
    }

    #[test]
    fn a_variant_without_tools_is_never_chosen() {
        assert_eq!(choose(missing(), Ok(0), None).unwrap(), Variant::Nft);
        assert_eq!(choose(Ok(0), missing(), None).unwrap(), Variant::Legacy);
        let err = choose(missing(), missing(), None).unwrap_err().to_string();
        assert!(err.contains("neither variant"), "{err}");
    }
}
