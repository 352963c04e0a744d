//! The shared-object table of a tree: every open file description is one object, saved once
//! and passed into every process that holds it.
//!
//! # Adding a kind
//!
//! One new file `objects/KIND.rs` with a type implementing [`Kind`], and one line in the
//! [`kinds!`] list below (append at the end: postcard stores the variant's index, so images
//! written before keep their meaning). Nothing else changes: the framework identifies shared
//! descriptions (`kcmp(KCMP_FILE)`), asks each kind in list order to [`Kind::inspect`] a
//! descriptor (first claim wins; a kind may refuse with a reason, which names the process and
//! the descriptor in the report), calls [`Kind::capture`] once per object while the tree is
//! frozen, stores the object in the image, and at restore calls [`Kind::create`] once, then
//! passes the descriptor into every holder at its number and calls [`Kind::install`] there.

mod facts;

pub(crate) use facts::{Claim, DumpCx, FdFacts, Installer, PodView, RestoreCx, TypeMap};
pub(crate) use pty::SLAVE as PTY_SLAVE;

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

/// One kind of open file description.
pub(crate) trait Kind: Sized {
    /// Name used in reports ("pipe", "file", …).
    const NAME: &'static str;

    /// Recognise a descriptor from what `/proc` says, without touching the process (check
    /// runs on a live tree): [`Claim::NotMine`], [`Claim::Refused`] with the reason, or the
    /// object's description.
    fn inspect(facts: &FdFacts<'_>) -> Claim<Self>;

    /// A reason that needs the whole table (`all`: every object of the tree), for example a
    /// socket whose peer is not in the pod; `None` if there is none.
    fn related(&self, all: &[&Object]) -> Option<String> {
        let _ = all;
        None
    }

    /// Capture what only the frozen tree can give (buffered bytes, contents) into `cx`; called
    /// once per object, through one of its descriptors.
    fn capture(&mut self, facts: &FdFacts<'_>, cx: &mut DumpCx) -> Result<()> {
        let _ = (facts, cx);
        Ok(())
    }

    /// Create the open file description in the restorer (once per object), with its status
    /// flags and offset; the framework passes it to every holder.
    fn create(&self, cx: &mut RestoreCx<'_>) -> Result<OwnedFd>;

    /// Per-holder fix-ups once every descriptor of that process is in place (registrations,
    /// locks …), by injected system calls; `fd` is the descriptor's number there.
    fn install(&self, target: &mut Installer<'_>, fd: i32) -> Result<()> {
        let _ = (target, fd);
        Ok(())
    }
}

/// Declares the registry: the `Object` enum (one variant per kind) and its dispatch.
macro_rules! kinds {
    ($($variant:ident => $ty:ty,)*) => {
        /// One saved open file description, of any registered kind.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub(crate) enum Object {
            $(
                #[allow(missing_docs)]
                $variant($ty),
            )*
        }

        impl Object {
            /// The first kind that claims the descriptor; `None` if no kind does.
            pub fn inspect(facts: &FdFacts<'_>) -> Option<Claim<Object>> {
                $(
                    match <$ty as Kind>::inspect(facts) {
                        Claim::NotMine => {}
                        Claim::Refused(r) => return Some(Claim::Refused(r)),
                        Claim::Mine(o) => return Some(Claim::Mine(Object::$variant(o))),
                    }
                )*
                None
            }

            /// See [`Kind::related`].
            pub fn related(&self, all: &[&Object]) -> Option<String> {
                match self {
                    $(Object::$variant(o) => o.related(all),)*
                }
            }

            /// See [`Kind::capture`].
            pub fn capture(&mut self, facts: &FdFacts<'_>, cx: &mut DumpCx) -> Result<()> {
                match self {
                    $(Object::$variant(o) => o.capture(facts, cx),)*
                }
            }

            /// See [`Kind::create`].
            pub fn create(&self, cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
                match self {
                    $(Object::$variant(o) => o.create(cx),)*
                }
            }

            /// See [`Kind::install`].
            pub fn install(&self, target: &mut Installer<'_>, fd: i32) -> Result<()> {
                match self {
                    $(Object::$variant(o) => o.install(target, fd),)*
                }
            }

            /// The kind's name.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => <$ty as Kind>::NAME,)*
                }
            }
        }
    };
}

mod epoll;
mod eventfd;
pub(crate) mod fdinfo;
mod file;
pub(crate) mod memfd;
mod pipe;
pub(crate) mod pty;
mod signalfd;
mod timerfd;
mod unix;
mod unixdiag;
mod unixqueue;

// The registry: one line per kind, new kinds at the end.
kinds! {
    File => file::OpenFile,
    Pipe => pipe::PipeEnd,
    Pty => pty::PtySlave,
    EventFd => eventfd::EventFd,
    TimerFd => timerfd::TimerFd,
    SignalFd => signalfd::SignalFd,
    Epoll => epoll::Epoll,
    Unix => unix::UnixEnd,
    Memfd => memfd::Memfd,
}
