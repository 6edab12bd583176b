//! From the reference evaluator's verdict to what a process must experience.

use crate::probe::{Outcome, Proto};
use zt_core::{Direction, Verdict};

/// The outcome a kernel must produce for a reference-evaluator verdict:
/// egress: Accept → Connected, Drop → NotPermitted, Reject → Refused;
/// ingress: Accept → Connected, Drop → TimedOut, Reject → Refused.
///
/// One exception makes this a single representative rather than the whole truth: a TCP SYN
/// that netfilter drops on the output path never reports EPERM (the kernel ignores the error
/// and retransmits), so it shows as [`Outcome::TimedOut`]. Compare with [`expected_outcomes`].
pub fn expected_outcome(verdict: Verdict, direction: Direction) -> Outcome {
    match (verdict, direction) {
        (Verdict::Accept, _) => Outcome::Connected,
        (Verdict::Reject, _) => Outcome::Refused,
        (Verdict::Drop, Direction::Egress) => Outcome::NotPermitted,
        (Verdict::Drop, Direction::Ingress) => Outcome::TimedOut,
    }
}

/// Every outcome a correct kernel may produce for a verdict, [`expected_outcome`] first.
///
/// Only an egress TCP drop has two: a cgroup BPF connect hook refuses with EPERM
/// (NotPermitted), while netfilter dropping the SYN on OUTPUT leaves `connect` waiting
/// (TimedOut). A UDP datagram dropped on output always fails `send` with EPERM.
pub fn expected_outcomes(
    verdict: Verdict,
    direction: Direction,
    proto: Proto,
) -> &'static [Outcome] {
    match (verdict, direction, proto) {
        (Verdict::Accept, _, _) => &[Outcome::Connected],
        (Verdict::Reject, _, _) => &[Outcome::Refused],
        (Verdict::Drop, Direction::Egress, Proto::Tcp) => {
            &[Outcome::NotPermitted, Outcome::TimedOut]
        }
        (Verdict::Drop, Direction::Egress, Proto::Udp) => &[Outcome::NotPermitted],
        (Verdict::Drop, Direction::Ingress, _) => &[Outcome::TimedOut],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_outcome_is_always_among_the_acceptable_ones() {
        for verdict in [Verdict::Accept, Verdict::Drop, Verdict::Reject] {
            for direction in [Direction::Egress, Direction::Ingress] {
                for proto in [Proto::Tcp, Proto::Udp] {
                    let all = expected_outcomes(verdict, direction, proto);
                    assert_eq!(all.first(), Some(&expected_outcome(verdict, direction)));
                }
            }
        }
    }

    #[test]
    fn drops_are_told_apart_from_rejects_and_accepts() {
        assert_eq!(
            expected_outcome(Verdict::Drop, Direction::Egress),
            Outcome::NotPermitted
        );
        assert_eq!(
            expected_outcome(Verdict::Drop, Direction::Ingress),
            Outcome::TimedOut
        );
        assert_eq!(
            expected_outcome(Verdict::Reject, Direction::Ingress),
            Outcome::Refused
        );
        assert!(
            !expected_outcomes(Verdict::Drop, Direction::Egress, Proto::Tcp)
                .contains(&Outcome::Connected)
        );
    }
}
