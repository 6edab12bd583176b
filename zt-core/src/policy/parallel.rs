//! Reading a large configuration on a second thread while this one decodes and validates it.
//!
//! Reading the text into nodes takes about as long as decoding and validating what they say,
//! and neither needs the other's state: the reader produces rules in file order, the validator
//! consumes them in file order. So for a large file the fast reader runs on a scoped thread and
//! hands the rules' nodes over in batches through a bounded channel; this thread decodes and
//! validates them (with the caller's name resolver, which therefore never crosses threads)
//! exactly as it does the nodes of a file read on one thread. The rules, their order and every
//! diagnostic are the same either way: there is one reader and one decoder, on either thread.
//!
//! A small file is read on the calling thread: starting a thread costs more than it saves.

use crate::yaml::{self, ItemSink, Node, Spare, Stream};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Files from this size on are read on a second thread (about 4 000 rules). Below it the
/// thread costs more than it saves: measured, a 2 000-rule file loads faster on one thread,
/// and a 6 000-rule file about a fifth faster on two.
const MIN_BYTES: usize = 512 * 1024;

/// Rules per batch: few enough that validation starts early, enough that the channel is not
/// touched for every rule.
const BATCH: usize = 256;

/// Batches sent and not yet validated, at most: the reader runs this far ahead.
const IN_FLIGHT: usize = 4;

/// Whether `text` is worth a second thread: large (but not too large to read at all), with a
/// second CPU to run it on.
pub(super) fn worthwhile(text: &str) -> bool {
    static CPUS: OnceLock<usize> = OnceLock::new();
    text.len() >= MIN_BYTES
        && yaml::check_size(text).is_ok()
        && *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) > 1
}

/// Read `text` with the fast reader on a second thread, lending the items under `rules:` to
/// `sink` on this one. `Some(Some(root))` when the fast reader took the text, `Some(None)` when
/// it declined it (the caller then reads it with the full reader, which resets `sink`), `None`
/// when no thread could be started (nothing was read).
pub(super) fn read<'a>(text: &'a str, sink: &mut dyn ItemSink<'a>) -> Option<Option<Node<'a>>> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Batch<'a>>(IN_FLIGHT);
        // Batches go back to the reader with their nodes' vectors emptied, to build new nodes
        // with: no vector is freed on the thread that did not allocate it.
        let (done_tx, done_rx) = sync_channel::<Batch<'a>>(IN_FLIGHT + 1);
        let reader = std::thread::Builder::new()
            .name("zt-read".into())
            .spawn_scoped(scope, move || {
                let mut forward = Forward {
                    tx,
                    done: done_rx,
                    batch: Batch::default(),
                };
                let root = yaml::fast::read(text, Some("rules"), &mut forward);
                forward.flush(&mut Spare::default());
                root
            })
            .ok()?;
        for mut batch in rx {
            let Batch { items, spare } = &mut batch;
            for mut item in items.drain(..) {
                sink.item(&item);
                spare.recycle(&mut item);
            }
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

/// Items on their way to the validating thread, or their emptied vectors on their way back.
#[derive(Default)]
struct Batch<'a> {
    items: Vec<Node<'a>>,
    spare: Spare<'a>,
}

/// The reader thread's stream: items into batches, batches into the channel.
struct Forward<'a> {
    tx: SyncSender<Batch<'a>>,
    /// Batches the validating thread is done with.
    done: Receiver<Batch<'a>>,
    batch: Batch<'a>,
}

impl<'a> Forward<'a> {
    /// Send the batch being filled, and take the vectors of one that came back into `spare`.
    fn flush(&mut self, spare: &mut Spare<'a>) {
        if self.batch.items.is_empty() {
            return;
        }
        let next = match self.done.try_recv() {
            Ok(mut back) => {
                spare.append(&mut back.spare);
                back
            }
            Err(_) => Batch {
                items: Vec::with_capacity(BATCH),
                spare: Spare::default(),
            },
        };
        let batch = std::mem::replace(&mut self.batch, next);
        // A send fails only when the validating thread is unwinding; the reader's result no
        // longer matters then.
        let _ = self.tx.send(batch);
    }
}

impl<'a> Stream<'a> for Forward<'a> {
    fn give(&mut self, item: Node<'a>, spare: &mut Spare<'a>) {
        self.batch.items.push(item);
        if self.batch.items.len() == BATCH {
            self.flush(spare);
        }
    }
}
