//! The channel table shared by a session's handle, channels and tasks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc, watch};

use super::credit::RecvWindow;
use super::writer::Outbox;
use crate::error::{Error, Result};
use crate::frame::Inner;

/// Events delivered to one channel's receiver.
pub(super) enum Event {
    /// A piece of a message; `true` on its last piece.
    Piece(Bytes, bool),
    /// The peer sends no more.
    Close,
    /// The peer reset the channel, with its reason.
    Reset(String),
    /// This side refused what arrived (a message over the limit).
    Failed(String),
}

/// One channel's state, shared by its halves and the reader task.
pub(super) struct Slot {
    /// The channel id.
    pub id: u32,
    /// Bytes we may still send: the peer's grants.
    pub send_credit: Semaphore,
    /// What the peer may send us.
    pub recv: Mutex<RecvWindow>,
    /// Our sending side is done (closed or reset).
    pub finished: AtomicBool,
    /// The largest message we accept on this channel.
    pub max_message: AtomicUsize,
}

/// A slot and the sending end of its receiver's events.
struct Entry {
    slot: Arc<Slot>,
    events: mpsc::UnboundedSender<Event>,
}

/// Where an arriving piece went.
pub(super) enum Delivery {
    /// Queued for the receiver.
    Queued,
    /// Nobody receives on this channel any more.
    ReceiverGone,
}

/// Counters of the channel layer, for tests and diagnostics.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Bytes (piece costs) received and held for the application.
    pub held: AtomicUsize,
    /// The most `held` has been.
    pub held_peak: AtomicUsize,
}

/// Everything the parts of one session share.
pub(super) struct Shared {
    pub outbox: Outbox,
    table: Mutex<HashMap<u32, Entry>>,
    next_id: AtomicU32,
    /// `Some(reason)` once the session has ended.
    pub ended: watch::Sender<Option<String>>,
    pub counters: Counters,
}

impl Shared {
    pub fn new(initiator: bool) -> Shared {
        Shared {
            outbox: Outbox::new(),
            table: Mutex::new(HashMap::new()),
            // Initiators use odd ids, responders even ones; 0 is control.
            next_id: AtomicU32::new(if initiator { 1 } else { 2 }),
            ended: watch::channel(None).0,
            counters: Counters::default(),
        }
    }

    /// Ends the session with a reason (the first reason stays): every
    /// channel's receiver ends, every waiting sender fails, queued frames
    /// are dropped.
    pub fn end(&self, reason: String) {
        self.ended.send_if_modified(|state| {
            if state.is_none() {
                *state = Some(reason);
                true
            } else {
                false
            }
        });
        let entries: Vec<Entry> = self.table.lock().drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.slot.send_credit.close();
        }
        self.outbox.close();
    }

    /// Why the session ended ("session ended" if it has not).
    pub fn end_reason(&self) -> String {
        self.ended
            .borrow()
            .clone()
            .unwrap_or_else(|| "session ended".into())
    }

    /// The reason the session ended, if it has.
    pub fn ended_reason(&self) -> Option<String> {
        self.ended.borrow().clone()
    }

    /// The next id for a channel this side opens.
    pub fn allocate_id(&self) -> Result<u32> {
        let id = self.next_id.fetch_add(2, Ordering::Relaxed);
        if id > u32::MAX - 2 {
            return Err(Error::Limit(
                "channel ids of this session are used up".into(),
            ));
        }
        Ok(id)
    }

    /// Whether `id` of this side's parity was ever handed out.
    pub fn allocated(&self, id: u32) -> bool {
        id < self.next_id.load(Ordering::Relaxed)
    }

    /// Adds a channel to the table.
    pub fn register(
        &self,
        id: u32,
        window: RecvWindow,
        send_credit: usize,
        max_message: usize,
    ) -> (Arc<Slot>, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let slot = Arc::new(Slot {
            id,
            send_credit: Semaphore::new(send_credit),
            recv: Mutex::new(window),
            finished: AtomicBool::new(false),
            max_message: AtomicUsize::new(max_message),
        });
        let entry = Entry {
            slot: slot.clone(),
            events,
        };
        let previous = self.table.lock().insert(id, entry);
        debug_assert!(previous.is_none(), "channel ids are never reused");
        if self.ended_reason().is_some() {
            // Ended meanwhile: this channel ends with the rest.
            self.table.lock().remove(&id);
            slot.send_credit.close();
        }
        (slot, rx)
    }

    /// Removes a channel once both its halves are gone.
    pub fn unregister(&self, id: u32) {
        self.table.lock().remove(&id);
    }

    /// The slot of a live channel.
    pub fn slot(&self, id: u32) -> Option<Arc<Slot>> {
        self.table.lock().get(&id).map(|e| e.slot.clone())
    }

    /// Channels in the table besides control: (all, not yet accepted).
    pub fn channel_counts(&self) -> (usize, usize) {
        let table = self.table.lock();
        let bulk = table.values().filter(|e| e.slot.id != 0);
        let (mut all, mut pending) = (0, 0);
        for entry in bulk {
            all += 1;
            if !entry.slot.recv.lock().is_granted() {
                pending += 1;
            }
        }
        (all, pending)
    }

    /// Hands an event to a channel's receiver.
    pub fn deliver(&self, id: u32, event: Event) -> Delivery {
        let table = self.table.lock();
        match table.get(&id) {
            Some(entry) if entry.events.send(event).is_ok() => Delivery::Queued,
            _ => Delivery::ReceiverGone,
        }
    }

    /// Counts bytes now held for the application.
    pub fn hold(&self, cost: usize) {
        let now = self.counters.held.fetch_add(cost, Ordering::AcqRel) + cost;
        self.counters.held_peak.fetch_max(now, Ordering::AcqRel);
    }

    /// Counts bytes the application took or that were discarded.
    pub fn release(&self, cost: usize) {
        self.counters.held.fetch_sub(cost, Ordering::AcqRel);
    }

    /// Gives credit back to the peer (`None`: nothing due yet).
    pub fn return_credit(&self, id: u32, bytes: Option<u32>) {
        if let Some(bytes) = bytes {
            self.send_urgent(Inner::Credit { channel: id, bytes });
        }
    }

    /// Queues a frame that may overtake data; if the peer has stopped
    /// reading and too much is queued, the session ends.
    pub fn send_urgent(&self, frame: Inner) {
        if let Err(e) = self.outbox.push_small(&frame, true) {
            self.end(e.to_string());
        }
    }

    /// Queues a frame behind all data queued before it.
    pub fn send_ordered(&self, frame: Inner) {
        if let Err(e) = self.outbox.push_small(&frame, false) {
            self.end(e.to_string());
        }
    }
}
