//! The keys each mapping of a configuration may have: one table per mapping, which the decoder
//! reads for every file, whichever YAML reader read it. A key added to a table does not
//! compile until the decoder stores it (its slots for a mapping are an array the table's size,
//! taken apart key by key), and the field it is stored in does not compile until validation
//! checks it (validation takes each configuration struct apart in full).

/// Known keys of a mapping, each with the field path it is reported under.
pub(super) type Keys<const N: usize> = [(&'static str, &'static str); N];

/// The top of the file.
pub(super) const TOP_KEYS: Keys<5> = [
    ("version", "version"),
    ("settings", "settings"),
    ("rules", "rules"),
    ("selector", "selector"),
    ("order", "order"),
];

/// The `settings:` mapping.
pub(super) const SETTINGS_KEYS: Keys<7> = [
    ("default_policy", "settings.default_policy"),
    ("log_blocked", "settings.log_blocked"),
    ("log_prefix", "settings.log_prefix"),
    ("log_rate", "settings.log_rate"),
    ("preserve_ssh", "settings.preserve_ssh"),
    ("ssh_ports", "settings.ssh_ports"),
    ("preserve_established", "settings.preserve_established"),
];

/// A rule.
pub(super) const RULE_KEYS: Keys<8> = [
    ("name", "name"),
    ("description", "description"),
    ("direction", "direction"),
    ("from", "from"),
    ("to", "to"),
    ("action", "action"),
    ("priority", "priority"),
    ("log", "log"),
];

/// A rule's `from:` mapping.
pub(super) const FROM_KEYS: Keys<7> = [
    ("user", "from.user"),
    ("uid", "from.uid"),
    ("group", "from.group"),
    ("gid", "from.gid"),
    ("cgroup", "from.cgroup"),
    ("host", "from.host"),
    ("hosts", "from.hosts"),
];

/// A rule's `to:` mapping.
pub(super) const TO_KEYS: Keys<5> = [
    ("host", "to.host"),
    ("hosts", "to.hosts"),
    ("port", "to.port"),
    ("ports", "to.ports"),
    ("protocol", "to.protocol"),
];
