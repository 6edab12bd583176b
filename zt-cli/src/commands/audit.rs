//! `zt audit`: who tried to reach what and was refused, from the kernel log.
//!
//! The parsing and summarizing are `zt_core::kernel_log`'s; this command picks the source,
//! reads it, supplies the clock, the time zone and the boot time, and prints the summary with
//! uids turned into user names. A backend that records refusals itself (eBPF) hands them to
//! the engine, which keeps them in the state directory; those are summarized instead.
//!
//! Sources, first available wins unless `--file` names one: the journal (`journalctl -k`,
//! where journald runs), `/var/log/kern.log` (rsyslog), the kernel ring buffer (`dmesg`).

use crate::args::AuditArgs;
use crate::exit::{Classify, Failure, Outcome};
use crate::{Context, Report, backends};
use serde_json::{Value, json};
use std::fmt::Write;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Command;
use zt_core::input::Input;
use zt_core::kernel_log::jiff::{Timestamp, tz::TimeZone};
use zt_core::kernel_log::{ParseContext, Summary, parse_line, parse_since, summarize};

/// Summarize blocked attempts.
pub fn run(ctx: &Context<'_>, args: &AuditArgs) -> Outcome<Report> {
    let now = Timestamp::now();
    let tz = TimeZone::system();
    let since = args
        .since
        .as_deref()
        .map(|text| parse_since(text, now, &tz))
        .transpose()
        .map_err(|e| Failure::new(crate::exit::Class::Usage, e))?;
    let mut engine = backends::engine(ctx, false)?;
    let prefixes = if args.prefix.is_empty() {
        vec![engine.log_prefix()?]
    } else {
        args.prefix.clone()
    };
    let kept = match args.file {
        Some(_) => None,
        None => engine.kept_records()?,
    };
    let (source, summary) = match kept {
        Some(kept) => (
            format!(
                "the {} backend's audit records (kept in {})",
                engine.state().backend(),
                kept.path.display()
            ),
            summarize(kept.records, since),
        ),
        None => {
            let (source, log, boot) = read_source(args)?;
            let mut parse = ParseContext::new(prefixes.clone(), now, tz);
            if let Some(boot) = boot {
                parse = parse.with_boot(boot);
            }
            let summary = match log {
                Log::Text(text) => {
                    ctx.verbose(format_args!(
                        "read {} lines from {source}",
                        text.lines().count()
                    ));
                    summarize(text.lines().filter_map(|l| parse_line(l, &parse)), since)
                }
                Log::File { input, named } => {
                    let mut lines = Lines::new(input.into_reader());
                    let summary =
                        summarize(lines.by_ref().filter_map(|l| parse_line(&l, &parse)), since);
                    if let Some(e) = lines.error {
                        let e = anyhow::Error::new(e).context(format!("cannot read {source}"));
                        return Err(if named {
                            Failure::rejected(e)
                        } else {
                            Failure::system(e)
                        });
                    }
                    ctx.verbose(format_args!(
                        "read {} lines from {source}{}",
                        lines.count,
                        match lines.skipped {
                            0 => String::new(),
                            n => format!(" and skipped {n} longer than {} KiB", MAX_LINE / 1024),
                        }
                    ));
                    summary
                }
            };
            (source, summary)
        }
    };
    if let Some(warning) = unlogged_namespace() {
        ctx.note(warning);
    }
    ctx.say(table(&summary, &source).trim_end());
    let mut doc = json!({
        "command": "audit",
        "ok": true,
        "source": source,
        "prefixes": prefixes,
    });
    let mut summary_json = serde_json::to_value(&summary).or_system("cannot encode the summary")?;
    if let Some(groups) = summary_json.get_mut("groups").and_then(Value::as_array_mut) {
        for group in groups {
            let user = group["uid"].as_u64().and_then(|u| user_name(u as u32));
            group["user"] = json!(user);
        }
    }
    doc["summary"] = summary_json;
    Ok(Report::ok(doc))
}

/// A kernel log: a command's output, or a file to read line by line.
enum Log {
    /// `journalctl` or `dmesg` output, whole (the journal's and the ring buffer's size).
    Text(String),
    /// A file, open: read piece by piece, so that its size does not matter.
    File {
        /// The file (boxed: its metadata is large beside a `String`).
        input: Box<Input>,
        /// The operator named it (`--file`): a failure to read it is their mistake (exit 1),
        /// not the system's.
        named: bool,
    },
}

/// The log, where it came from, and the boot time for raw dmesg stamps.
///
/// A file is opened as a policy is ([`Input`]): a regular file or a pipe (`--file
/// <(journalctl -k)`); a device (`/dev/zero`), a socket or a directory is refused at once,
/// and so is a FIFO with no writer. Unlike a policy it has no size limit: a busy host's kern.log
/// passes 16 MiB in days, so it is read line by line ([`Lines`]) in bounded memory, however
/// large, rather than capped.
fn read_source(args: &AuditArgs) -> Outcome<(String, Log, Option<Timestamp>)> {
    if let Some(path) = &args.file {
        let input = Input::open(path).map_err(|e| {
            Failure::rejected(
                anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
            )
        })?;
        return Ok((
            path.display().to_string(),
            Log::File {
                input: Box::new(input),
                named: true,
            },
            None,
        ));
    }
    if Path::new("/run/systemd/journal/socket").exists() {
        let text = output(
            "journalctl",
            &["-k", "-o", "short-iso-precise", "--no-pager", "-q"],
        )?;
        return Ok(("journal (journalctl -k)".into(), Log::Text(text), None));
    }
    let kern_log = Path::new("/var/log/kern.log");
    if kern_log.exists() {
        let input = Input::open(kern_log).or_system("cannot read /var/log/kern.log")?;
        return Ok((
            "/var/log/kern.log".into(),
            Log::File {
                input: Box::new(input),
                named: false,
            },
            None,
        ));
    }
    let text = output("dmesg", &["--time-format", "iso"])?;
    Ok((
        "kernel ring buffer (dmesg)".into(),
        Log::Text(text),
        boot_time(),
    ))
}

/// Longest line [`Lines`] yields. The kernel caps a log record at 1 KiB (printk), so a longer
/// line is not one of its; skipping it keeps the memory a line takes bounded.
const MAX_LINE: usize = 64 * 1024;

/// The lines of a log, read piece by piece: what is held at once is one line (at most
/// [`MAX_LINE`]) and the reader's buffer, whatever the size of the log. Invalid UTF-8 is
/// replaced, as a log may hold anything. A read that fails ends the lines, and is kept in
/// [`Lines::error`].
struct Lines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// Lines yielded.
    count: usize,
    /// Lines longer than [`MAX_LINE`], skipped.
    skipped: usize,
    /// The error that ended the reading, if one did.
    error: Option<std::io::Error>,
}

impl<R: Read> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            line: Vec::new(),
            count: 0,
            skipped: 0,
            error: None,
        }
    }
}

impl<R: Read> Iterator for Lines<R> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            self.line.clear();
            let mut too_long = false;
            loop {
                let available = match self.reader.fill_buf() {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.error = Some(e);
                        return None;
                    }
                };
                if available.is_empty() {
                    if self.line.is_empty() && !too_long {
                        return None;
                    }
                    break;
                }
                let (take, ends) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (available.len(), false),
                };
                if !too_long {
                    if self.line.len() + take > MAX_LINE {
                        too_long = true;
                        self.line = Vec::new();
                    } else {
                        self.line.extend_from_slice(&available[..take]);
                    }
                }
                self.reader.consume(take);
                if ends {
                    break;
                }
            }
            if too_long {
                self.skipped += 1;
                continue;
            }
            self.count += 1;
            return Some(String::from_utf8_lossy(&self.line).into_owned());
        }
    }
}

/// A command's standard output; a failure names the command and its error output.
fn output(program: &str, args: &[&str]) -> Outcome<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .or_system(format!("cannot run {program}"))?;
    if !out.status.success() {
        return Err(Failure::system(anyhow::anyhow!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// When this boot started (`btime` in /proc/stat).
fn boot_time() -> Option<Timestamp> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let seconds = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<i64>()
        .ok()?;
    Timestamp::from_second(seconds).ok()
}

/// A warning when this process's network namespace is not the host's and the kernel does not
/// log packets of other namespaces.
fn unlogged_namespace() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let ns = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let own = ns("/proc/self/ns/net")?;
    let host = ns("/proc/1/ns/net")?;
    let all = std::fs::read_to_string("/proc/sys/net/netfilter/nf_log_all_netns").ok()?;
    (own != host && all.trim() == "0").then(|| {
        "zt: note: this network namespace is not the host's, and the kernel logs packets of \
         other namespaces only with net.netfilter.nf_log_all_netns=1: refusals here are not \
         in the log"
            .to_owned()
    })
}

fn user_name(uid: u32) -> Option<String> {
    uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
}

/// The summary as an aligned table, busiest first.
fn table(summary: &Summary, source: &str) -> String {
    let mut out = format!(
        "{} blocked packet{} logged in {source}",
        summary.records(),
        if summary.records() == 1 { "" } else { "s" }
    );
    if let Some(since) = summary.since() {
        let _ = write!(out, " since {since}");
    }
    out.push('\n');
    if summary.groups().is_empty() {
        return out;
    }
    let stamp = |t: Option<Timestamp>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
    let rows: Vec<[String; 8]> = summary
        .groups()
        .iter()
        .map(|g| {
            [
                match g.uid {
                    Some(uid) => {
                        user_name(uid).map_or_else(|| uid.to_string(), |n| format!("{n} ({uid})"))
                    }
                    None => "-".into(),
                },
                g.direction.map_or_else(|| "-".into(), |d| d.to_string()),
                g.dst.to_string(),
                g.dst_port.map_or_else(|| "-".into(), |p| p.to_string()),
                g.protocol.clone(),
                g.count.to_string(),
                stamp(g.first_seen),
                stamp(g.last_seen),
            ]
        })
        .collect();
    let header = [
        "USER",
        "DIRECTION",
        "DESTINATION",
        "PORT",
        "PROTO",
        "COUNT",
        "FIRST SEEN",
        "LAST SEEN",
    ]
    .map(str::to_owned);
    let mut width = [0usize; 8];
    for row in rows.iter().chain([&header]) {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push('\n');
    for row in [&header].into_iter().chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(width).enumerate() {
            if i == 5 {
                let _ = write!(line, "{cell:>w$}  ");
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_are_yielded_whole_and_overlong_ones_skipped() {
        let mut text = b"one\ntwo\n".to_vec();
        text.extend(vec![b'x'; MAX_LINE + 1]);
        text.extend(b"\nthree\xff\nlast, unterminated");
        let mut lines = Lines::new(&text[..]);
        let got: Vec<String> = lines.by_ref().collect();
        assert_eq!(
            got,
            ["one\n", "two\n", "three\u{fffd}\n", "last, unterminated"]
        );
        assert_eq!((lines.count, lines.skipped), (4, 1));
        assert!(lines.error.is_none());

        // A line of exactly MAX_LINE bytes, newline included, is kept.
        let mut text = vec![b'y'; MAX_LINE - 1];
        text.push(b'\n');
        let mut lines = Lines::new(&text[..]);
        assert_eq!(lines.next().map(|l| l.len()), Some(MAX_LINE));
        assert_eq!(lines.next(), None);
    }
}
