//! Reading a large configuration on a second thread while this one validates its rules.
//!
//! Reading the text and validating what it says take comparable time, and neither needs the
//! other's state: the reader produces rules in file order, the validator consumes them in file
//! order. So for a large file the fast reader runs on a scoped thread and hands over batches of
//! rules through a bounded channel; this thread validates them (with the caller's name resolver,
//! which therefore never crosses threads) as they come. Everything after reading (duplicate
//! names, shadowing, settings) runs here once the reader is done, exactly as without a thread:
//! the rules, their order and every diagnostic are the same either way.
//!
//! A small file is read on the calling thread: starting a thread costs more than it saves.

use crate::config::{RuleConfig, decode, direct};
use crate::diagnostic::Diagnostic;
use crate::yaml::{self, ItemLines, ItemSink, Node};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// One rule (or instruction) from the reader, in file order.
// Items are filled in place in a batch that is reused: the large variant is the common one,
// and boxing it would cost an allocation per rule.
#[allow(clippy::large_enum_variant)]
pub(super) enum Item<'a> {
    /// A rule read straight from its lines.
    Read(RuleConfig<&'a str>),
    /// A rule decoded from its nodes, with what decoding reported. Boxed: rare, and with
    /// owned text larger than a rule read directly, which every item would otherwise be sized
    /// for.
    Decoded(Box<(RuleConfig, Vec<Diagnostic>)>),
    /// Forget every rule so far.
    Reset,
}

/// Files from this size on are read on a second thread (about 500 rules).
const MIN_BYTES: usize = 64 * 1024;

/// Rules per batch: few enough that validation starts early, enough that the channel is not
/// touched for every rule.
const BATCH: usize = 256;

/// Batches sent and not yet validated, at most: the reader runs this far ahead. A small
/// number keeps the rules in the cache between the two threads.
const IN_FLIGHT: usize = 4;

/// Whether `text` is worth a second thread: large, with a second CPU to run it on.
pub(super) fn worthwhile(text: &str) -> bool {
    static CPUS: OnceLock<usize> = OnceLock::new();
    text.len() >= MIN_BYTES
        && *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) > 1
}

/// Read `text` with the fast reader on a second thread, streaming the rules to `take` on this
/// one. `Some(root)` when the fast reader took the text, `Some(None)` when it declined it (the
/// caller then reads it with the full reader, which resets what `take` received), `None` when
/// no thread could be started (nothing was read).
pub(super) fn read<'a>(
    text: &'a str,
    mut take: impl FnMut(&mut Item<'a>),
) -> Option<Option<Node<'a>>> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Vec<Item<'a>>>(IN_FLIGHT);
        // Validated batches go back to the reader, which refills their rules in place (freeing
        // what it allocated itself as it overwrites them): this thread does neither.
        let (done_tx, done_rx) = sync_channel::<Vec<Item<'a>>>(IN_FLIGHT + 1);
        let reader = std::thread::Builder::new()
            .name("zt-read".into())
            .spawn_scoped(scope, move || {
                let mut sink = Forward {
                    tx,
                    done: done_rx,
                    batch: Vec::with_capacity(BATCH),
                    used: 0,
                    count: 0,
                };
                let root = yaml::fast::read(text, Some("rules"), &mut sink);
                sink.flush();
                root
            })
            .ok()?;
        for mut batch in rx {
            // Lent in place: a rule is several hundred bytes, not worth a copy out of the batch.
            batch.iter_mut().for_each(&mut take);
            // Refused once the reader has finished: the batch is then dropped here.
            let _ = done_tx.try_send(batch);
        }
        // The channel closes when the reader returns or panics; a panic is this call's panic.
        Some(
            reader
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    })
}

/// The reader thread's sink: rules into batches, batches into the channel.
struct Forward<'a> {
    tx: SyncSender<Vec<Item<'a>>>,
    /// Batches the validating thread is done with.
    done: Receiver<Vec<Item<'a>>>,
    /// The batch being filled: its first `used` items are this batch's, the rest are items
    /// of a batch the validating thread is done with, overwritten as the batch fills.
    batch: Vec<Item<'a>>,
    used: usize,
    /// Items so far: the index decoding reports a rule without a name by (`rules[3].to`).
    count: usize,
}

impl<'a> Forward<'a> {
    fn push(&mut self, item: Item<'a>) {
        match self.batch.get_mut(self.used) {
            Some(slot) => *slot = item,
            None => self.batch.push(item),
        }
        self.used += 1;
        if self.used == BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.used > 0 {
            self.batch.truncate(self.used);
            // Its items stay: they are refilled in place.
            let next = self
                .done
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            let batch = std::mem::replace(&mut self.batch, next);
            self.used = 0;
            // A send fails only when the validating thread is unwinding; the reader's result
            // no longer matters then.
            let _ = self.tx.send(batch);
        }
    }
}

impl<'a> ItemSink<'a> for Forward<'a> {
    fn item(&mut self, node: &Node<'a>) {
        let mut diags = Vec::new();
        let rule = decode::decode_rule_owned(self.count, node, &mut diags);
        self.count += 1;
        self.push(Item::Decoded(Box::new((rule, diags))));
    }

    fn read_item(&mut self, lines: &mut ItemLines<'a, '_>) -> bool {
        // Filled in place in the batch, over an old rule where there is one: a rule is
        // several hundred bytes.
        match self.batch.get_mut(self.used) {
            Some(Item::Read(rule)) => rule.clear(),
            Some(other) => *other = Item::Read(RuleConfig::default()),
            None => self.batch.push(Item::Read(RuleConfig::default())),
        }
        let read = match self.batch.get_mut(self.used) {
            Some(Item::Read(rule)) => direct::read_rule(lines, rule).is_some(),
            _ => false,
        };
        if !read {
            // The slot is not the batch's: the next item overwrites it.
            return false;
        }
        self.used += 1;
        self.count += 1;
        if self.used == BATCH {
            self.flush();
        }
        true
    }

    fn reset(&mut self) {
        self.count = 0;
        self.push(Item::Reset);
    }
}
