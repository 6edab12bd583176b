//! Comparing two kernel states unit by unit, by the policy rule (or zt entry) each unit
//! belongs to: the diff every backend's plan and drift report are made of.

use super::report::{Change, ChangeKind};

/// One comparable unit of kernel state: the subject it belongs to and its canonical text.
/// A subject may own several units (one rule per family, a log rule and a verdict rule).
pub type Unit = (String, String);

/// Group units by subject, keeping the order subjects first appear in.
fn group(units: &[Unit]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (subject, text) in units {
        let i = *index.entry(subject.as_str()).or_insert_with(|| {
            out.push((subject.as_str(), Vec::new()));
            out.len() - 1
        });
        out[i].1.push(text.as_str());
    }
    out
}

/// Each subject's position in a grouped list.
fn index<'a>(list: &[(&'a str, Vec<&'a str>)]) -> std::collections::HashMap<&'a str, usize> {
    list.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect()
}

/// The differences between what is (`current`) and what should be (`desired`), by subject:
/// `Add` for desired subjects absent now, `Remove` for current subjects not desired,
/// `Modify` for subjects whose units differ — and one `Modify` of subject `order` when the
/// same subjects appear in a different order (first match makes order part of the meaning).
pub fn compare(current: &[Unit], desired: &[Unit]) -> Vec<Change> {
    let now = group(current);
    let want = group(desired);
    // Indexed by subject: a plan where thousands of subjects change stays linear.
    let (now_at, want_at) = (index(&now), index(&want));
    let mut changes = Vec::new();
    for (subject, texts) in &want {
        match now_at.get(subject).copied() {
            None => changes.push(Change {
                kind: ChangeKind::Add,
                subject: (*subject).to_owned(),
                detail: texts.join("\n"),
            }),
            Some(i) if now[i].1 != *texts => changes.push(Change {
                kind: ChangeKind::Modify,
                subject: (*subject).to_owned(),
                detail: format!(
                    "{}\n{}",
                    now[i]
                        .1
                        .iter()
                        .map(|t| format!("- {t}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    texts
                        .iter()
                        .map(|t| format!("+ {t}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }),
            Some(_) => {}
        }
    }
    for (subject, texts) in &now {
        if !want_at.contains_key(subject) {
            changes.push(Change {
                kind: ChangeKind::Remove,
                subject: (*subject).to_owned(),
                detail: texts.join("\n"),
            });
        }
    }
    if changes.is_empty() {
        let order_now: Vec<&str> = now.iter().map(|(s, _)| *s).collect();
        let order_want: Vec<&str> = want.iter().map(|(s, _)| *s).collect();
        if order_now != order_want {
            changes.push(Change {
                kind: ChangeKind::Modify,
                subject: "order".to_owned(),
                detail: format!("- {}\n+ {}", order_now.join(", "), order_want.join(", ")),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(list: &[(&str, &str)]) -> Vec<Unit> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn identical_states_compare_empty() {
        let a = units(&[("x", "1"), ("y", "2"), ("y", "3")]);
        assert!(compare(&a, &a).is_empty());
    }

    #[test]
    fn compare_reports_adds_removes_modifies_and_reordering() {
        let now = units(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let want = units(&[("a", "1"), ("b", "9"), ("d", "4")]);
        let kinds: Vec<(ChangeKind, String)> = compare(&now, &want)
            .into_iter()
            .map(|c| (c.kind, c.subject))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeKind::Modify, "b".to_owned()),
                (ChangeKind::Add, "d".to_owned()),
                (ChangeKind::Remove, "c".to_owned())
            ]
        );
        let swapped = units(&[("b", "2"), ("a", "1"), ("c", "3")]);
        let order = compare(&now, &swapped);
        assert_eq!(order.len(), 1);
        assert_eq!(order[0].subject, "order");
    }
}
