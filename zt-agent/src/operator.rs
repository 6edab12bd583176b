//! The operator's commands on the store: push a policy (validated first, so the store never
//! holds an invalid policy written through zt), remove one, and the fleet's status.

use crate::compose::Stored;
use crate::contract::{
    HOSTS, HostRecord, Labels, POLICIES, PolicyRef, STATUS, Status, policy_key, policy_name_problem,
};
use crate::store::{StoreOptions, bounded};
use etcd_client::GetOptions;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use zt_core::fleet::Scope;
use zt_core::{NameResolver, Policy};

/// A refusal (exit 1) as opposed to a failure (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// User and group names are resolved by each host, where the policy is enforced: the
/// operator's machine need not know them. Any name passes here, so push checks everything
/// else (structure, ports, addresses, selector, order).
struct EveryName;

impl NameResolver for EveryName {
    fn uid(&self, _name: &str) -> Option<u32> {
        Some(u32::MAX - 1)
    }

    fn gid(&self, _name: &str) -> Option<u32> {
        Some(u32::MAX - 1)
    }

    fn user_name(&self, _uid: u32) -> Option<String> {
        None
    }

    fn group_name(&self, _gid: u32) -> Option<String> {
        None
    }
}

/// `zt-agent push NAME FILE`: validate, then write. Its report.
pub async fn push(
    store: &StoreOptions,
    name: &str,
    file: &Path,
) -> anyhow::Result<serde_json::Value> {
    if let Some(problem) = policy_name_problem(name) {
        return Err(Refusal(format!("policy name '{name}': {problem}")).into());
    }
    let text = read_bounded(file)?;
    let loaded =
        Policy::from_yaml(&text, &file.display().to_string(), &EveryName).map_err(|e| {
            Refusal(format!(
                "{}\nnothing was written to the store",
                e.to_string().trim_end()
            ))
        })?;
    let mut client = store.connect().await?;
    let put = bounded(client.put(policy_key(name), text, None)).await?;
    let revision = put.header().map_or(0, |h| h.revision());
    Ok(json!({
        "command": "push",
        "name": name,
        "key": policy_key(name),
        "revision": revision,
        "rules": loaded.policy.rules().len(),
        "selector": loaded.scope.selector(),
        "order": loaded.scope.order(),
        "warnings": loaded.warnings.items,
    }))
}

/// The policy file, read as `zt check` reads one: only a regular file or a pipe, never waiting
/// on a pipe without a writer, and at most 16 MiB.
fn read_bounded(file: &Path) -> anyhow::Result<String> {
    let name = file.display().to_string();
    let bytes = zt_core::input::Input::open(file)
        .map_err(|e| Refusal(format!("cannot read {name}: {e}")))?
        .read_policy(&name)
        .map_err(|e| Refusal(e.to_string().trim_end().to_owned()))?;
    String::from_utf8(bytes).map_err(|_| Refusal(format!("{name} is not UTF-8 text")).into())
}

/// `zt-agent remove NAME`. Its report.
pub async fn remove(store: &StoreOptions, name: &str) -> anyhow::Result<serde_json::Value> {
    let mut client = store.connect().await?;
    let deleted = bounded(client.delete(policy_key(name), None)).await?;
    if deleted.deleted() == 0 {
        return Err(Refusal(format!("the store holds no policy '{name}'")).into());
    }
    let revision = deleted.header().map_or(0, |h| h.revision());
    Ok(json!({"command": "remove", "name": name, "revision": revision}))
}

/// One host of the fleet.
#[derive(Debug, Serialize)]
pub struct HostRow {
    host: String,
    live: bool,
    labels: Labels,
    backend: Option<String>,
    policies: Vec<PolicyRef>,
    result: Option<String>,
    error: Option<String>,
    drift: bool,
    repairs: u64,
    converged: bool,
    sha256: Option<String>,
    applied_at: Option<jiff::Timestamp>,
    store_revision: Option<i64>,
}

/// The fleet's status.
#[derive(Debug, Serialize)]
pub struct Fleet {
    revision: i64,
    hosts: Vec<HostRow>,
}

/// `zt-agent status`: read the whole `/zt/v1/` prefix at one revision.
pub async fn status(store: &StoreOptions) -> anyhow::Result<Fleet> {
    let mut client = store.connect().await?;
    let all = bounded(client.get("/zt/v1/", Some(GetOptions::new().with_prefix()))).await?;
    let revision = all.header().map_or(0, |h| h.revision());
    let mut policies: BTreeMap<String, Stored> = BTreeMap::new();
    let mut hosts: BTreeMap<String, HostRecord> = BTreeMap::new();
    let mut statuses: BTreeMap<String, Status> = BTreeMap::new();
    for kv in all.kvs() {
        let (Ok(key), Ok(value)) = (kv.key_str(), kv.value_str()) else {
            continue;
        };
        if let Some(name) = key.strip_prefix(POLICIES) {
            policies.insert(
                name.to_owned(),
                Stored {
                    text: value.to_owned(),
                    mod_revision: kv.mod_revision(),
                },
            );
        } else if let Some(host) = key.strip_prefix(HOSTS) {
            if let Ok(record) = serde_json::from_str(value) {
                hosts.insert(host.to_owned(), record);
            }
        } else if let Some(host) = key.strip_prefix(STATUS)
            && let Ok(status) = serde_json::from_str(value)
        {
            statuses.insert(host.to_owned(), status);
        }
    }
    let mut names: Vec<&String> = hosts.keys().chain(statuses.keys()).collect();
    names.sort();
    names.dedup();
    let rows = names
        .into_iter()
        .map(|name| {
            let record = hosts.get(name);
            let status = statuses.get(name);
            let labels = record
                .map(|r| r.labels.clone())
                .or_else(|| status.map(|s| s.labels.clone()))
                .unwrap_or_default();
            let expected = expected_policies(&policies, &labels);
            let converged = status.is_some_and(|s| {
                s.result.is_good() && {
                    let mut had = s.policies.clone();
                    had.sort();
                    had == expected
                }
            });
            HostRow {
                host: name.clone(),
                live: record.is_some(),
                backend: record.map(|r| r.backend.clone()),
                policies: status.map(|s| s.policies.clone()).unwrap_or_default(),
                result: status.map(|s| s.result.as_str().to_owned()),
                error: status.and_then(|s| s.error.clone()),
                drift: status.is_some_and(|s| s.drift),
                repairs: status.map_or(0, |s| s.repairs),
                converged,
                sha256: status.and_then(|s| s.sha256.clone()),
                applied_at: status.and_then(|s| s.applied_at),
                store_revision: status.map(|s| s.store_revision),
                labels,
            }
        })
        .collect();
    Ok(Fleet {
        revision,
        hosts: rows,
    })
}

/// The policies of the store that a host labelled `labels` should be enforcing, sorted.
/// A policy whose scope cannot be read counts as matching (its host reports it invalid).
fn expected_policies(policies: &BTreeMap<String, Stored>, labels: &Labels) -> Vec<PolicyRef> {
    let mut out: Vec<PolicyRef> = policies
        .iter()
        .filter(|(name, p)| {
            Scope::read(&p.text, &policy_key(name)).map_or(true, |s| s.matches(labels))
        })
        .map(|(name, p)| PolicyRef {
            name: name.clone(),
            mod_revision: p.mod_revision,
        })
        .collect();
    out.sort();
    out
}

impl Fleet {
    /// The table operators read.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "HOST".to_owned(),
            "LIVE".to_owned(),
            "LABELS".to_owned(),
            "POLICIES".to_owned(),
            "RESULT".to_owned(),
            "DRIFT".to_owned(),
            "CONVERGED".to_owned(),
        ]];
        for h in &self.hosts {
            let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let policies: Vec<String> = h
                .policies
                .iter()
                .map(|p| format!("{}@{}", p.name, p.mod_revision))
                .collect();
            rows.push([
                h.host.clone(),
                if h.live { "yes" } else { "no" }.to_owned(),
                or_dash(labels.join(",")),
                or_dash(policies.join(",")),
                h.result.clone().unwrap_or_else(|| "-".to_owned()),
                match (h.drift, h.repairs) {
                    (true, _) => "yes".to_owned(),
                    (false, 0) => "no".to_owned(),
                    (false, n) => format!("repaired x{n}"),
                },
                if h.converged { "yes" } else { "no" }.to_owned(),
            ]);
        }
        let mut widths = [0usize; 7];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = format!("store revision {}\n", self.revision);
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        for h in &self.hosts {
            if let Some(e) = &h.error {
                out.push_str(&format!("\n{}: {}\n", h.host, e));
            }
        }
        out
    }
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}
