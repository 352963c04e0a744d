//! [`Panel`]: the bar across the top of a ZOS session saying whose session it
//! is and whether the master's input drives it — an X client of the session
//! with a thread of its own.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::debug;
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use crate::error::{DisplayError, Result};
use crate::input::{Banner, Inbox, Mailbox, Placement, mailbox};
use crate::xconn::{self, x_error};

enum Command {
    Text(String),
    Stop,
}

/// The session's panel; dropping it closes it.
#[derive(Debug)]
pub struct Panel {
    mailbox: Mailbox<Command>,
    /// The text shown, for status and tests.
    text: Arc<Mutex<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Panel {
    /// Opens the panel on `display` showing `text`.
    pub fn start(display: &str, xauthority: &Path, text: &str) -> Result<Panel> {
        let (conn, screen) = xconn::connect(display, Some(xauthority))?;
        let mut banner = Banner::create(&conn, screen, Placement::TopBar, 0x2b_2b2b, 0xe0_e0e0)?;
        banner.show(&conn, text)?;
        conn.flush().map_err(|e| x_error("X flush", e))?;
        let (mailbox, inbox) = mailbox()?;
        let thread = std::thread::Builder::new()
            .name("zos-panel".into())
            .spawn(move || {
                if let Err(e) = run(&conn, &mut banner, &inbox) {
                    debug!("ZOS session panel ended: {e}");
                }
            })
            .map_err(|source| DisplayError::Sys {
                call: "spawn the panel thread",
                source,
            })?;
        Ok(Panel {
            mailbox,
            text: Arc::new(Mutex::new(text.to_string())),
            thread: Some(thread),
        })
    }

    /// Shows `text` instead.
    pub fn set_text(&self, text: &str) {
        if let Ok(mut shown) = self.text.lock() {
            *shown = text.to_string();
        }
        self.mailbox.send(Command::Text(text.to_string()));
    }

    /// The text it shows.
    pub fn text(&self) -> String {
        self.text.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        self.mailbox.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &RustConnection, banner: &mut Banner, inbox: &Inbox<Command>) -> Result<()> {
    let fd = conn.stream().as_raw_fd();
    loop {
        for command in inbox.drain() {
            match command {
                Command::Stop => return Ok(()),
                Command::Text(text) => banner.show(conn, &text)?,
            }
        }
        while let Some(event) = conn.poll_for_event().map_err(|e| x_error("X events", e))? {
            if let Event::Expose(e) = event
                && e.window == banner.window()
            {
                banner.draw(conn)?;
            }
        }
        conn.flush().map_err(|e| x_error("X flush", e))?;
        inbox.wait(fd, None)?;
    }
}
