//! The window keeper's state and event loop (see [`super`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{debug, info, warn};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ChangeWindowAttributesAux, ConfigWindow, ConfigureNotifyEvent, ConfigureRequestEvent,
    ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, EventMask, InputFocus, MapState,
    StackMode, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

use super::layout::{self, MAX_SIDE};
use super::props::{self, Atoms};
use super::{WindowControl, WindowFeed, decode_request, screen, x_error};
use crate::error::Result;
use crate::seamless::{AppWindow, WindowIcon, WindowKind, WindowList, WindowRect, WindowRequest};

/// A top-level window the keeper places.
#[derive(Debug)]
struct Managed {
    id: Window,
    size: (u16, u16),
    /// Where the layout put it (`None` until placed).
    pos: Option<(u16, u16)>,
    transient_for: Option<Window>,
    title: String,
    icon: Option<Arc<WindowIcon>>,
    icon_serial: u32,
}

/// An override-redirect window (menu, tooltip) the app placed itself.
#[derive(Debug)]
struct Popup {
    rect: WindowRect,
    kind: WindowKind,
}

pub(super) struct Keeper {
    conn: Arc<RustConnection>,
    atoms: Atoms,
    root: Window,
    /// The screen is never made smaller than this (the size it started with, or the latest
    /// size someone else gave it).
    min_screen: (u16, u16),
    screen: (u16, u16),
    /// The size we last gave the screen.
    asked_screen: Option<(u16, u16)>,
    /// Top-level windows in the order they were mapped (the layout's order).
    managed: Vec<Managed>,
    popups: BTreeMap<Window, Popup>,
    focus_order: Vec<Window>,
    next_icon_serial: u32,
    relayout: bool,
    changed: bool,
    list: watch::Sender<Arc<WindowList>>,
}

impl Keeper {
    /// Takes over the display's window management and returns the keeper with the feed the
    /// fan-out reads.
    pub(super) fn new(conn: Arc<RustConnection>) -> Result<(Keeper, WindowFeed)> {
        let screen = &conn.setup().roots[0];
        let (root, size) = (
            screen.root,
            (screen.width_in_pixels, screen.height_in_pixels),
        );
        let atoms = Atoms::intern(&conn).map_err(|e| x_error("intern atoms", e))?;
        let control = conn.generate_id().map_err(|e| x_error("X id", e))?;
        conn.create_window(
            0,
            control,
            root,
            -1,
            -1,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .map_err(|e| x_error("create the control window", e))?;
        let notify = EventMask::SUBSTRUCTURE_NOTIFY | EventMask::STRUCTURE_NOTIFY;
        let select = |mask: EventMask| {
            conn.change_window_attributes(root, &ChangeWindowAttributesAux::new().event_mask(mask))
                .map_err(|e| x_error("select root events", e))
                .map(|c| c.check())
        };
        if let Err(e) = select(notify | EventMask::SUBSTRUCTURE_REDIRECT)? {
            warn!(
                "another client manages this display's windows ({e}); fixing them up after they map"
            );
            select(notify)?.map_err(|e| x_error("select root events", e))?;
        }
        let (list, list_rx) = watch::channel(Arc::new(WindowList::default()));
        let feed = WindowFeed {
            list: list_rx,
            control: WindowControl {
                conn: Arc::clone(&conn),
                window: control,
                kind: atoms.zos_request,
            },
        };
        let mut keeper = Keeper {
            conn,
            atoms,
            root,
            min_screen: size,
            screen: size,
            asked_screen: None,
            managed: Vec::new(),
            popups: BTreeMap::new(),
            focus_order: Vec::new(),
            next_icon_serial: 1,
            relayout: false,
            changed: true,
            list,
        };
        keeper.adopt_existing()?;
        keeper.settle()?;
        Ok((keeper, feed))
    }

    /// Windows mapped before we connected.
    fn adopt_existing(&mut self) -> Result<()> {
        let tree = self
            .conn
            .query_tree(self.root)
            .map_err(|e| x_error("query tree", e))?
            .reply()
            .map_err(|e| x_error("query tree", e))?;
        for window in tree.children {
            let Some(attrs) = self
                .conn
                .get_window_attributes(window)
                .ok()
                .and_then(|c| c.reply().ok())
            else {
                continue;
            };
            if attrs.map_state != MapState::VIEWABLE {
                continue;
            }
            if attrs.override_redirect {
                self.add_popup(window);
            } else {
                self.manage(window);
            }
        }
        if let Some(newest) = self.managed.last().map(|m| m.id) {
            self.focus(newest);
        }
        Ok(())
    }

    pub(super) fn run(mut self) -> Result<()> {
        loop {
            let event = self
                .conn
                .wait_for_event()
                .map_err(|e| x_error("X events", e))?;
            self.handle(event);
            while let Some(event) = self
                .conn
                .poll_for_event()
                .map_err(|e| x_error("X events", e))?
            {
                self.handle(event);
            }
            self.settle()?;
        }
    }

    /// After a batch of events: place windows if needed, then publish the list if it changed.
    fn settle(&mut self) -> Result<()> {
        if std::mem::take(&mut self.relayout) {
            self.place_all();
        }
        if std::mem::take(&mut self.changed) {
            self.publish();
        }
        self.conn.flush().map_err(|e| x_error("X flush", e))
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::MapRequest(e) => {
                // Placed before it shows, so it never flashes at the app's own position.
                self.manage(e.window);
                self.relayout = false;
                self.place_all();
                let _ = self.conn.map_window(e.window);
            }
            Event::ConfigureRequest(e) => self.configure_request(&e),
            Event::MapNotify(e) if e.event == self.root => {
                if e.override_redirect {
                    self.add_popup(e.window);
                } else {
                    // Without the redirect (or a window we missed): fix it up now.
                    self.manage(e.window);
                    // The newest window gets the keyboard (once viewable, X allows it).
                    self.focus(e.window);
                }
                self.changed = true;
            }
            Event::UnmapNotify(e) if e.event == self.root => self.forget(e.window),
            Event::DestroyNotify(e) if e.event == self.root => self.forget(e.window),
            Event::ConfigureNotify(e) if e.window == self.root => {
                let size = (e.width, e.height);
                if size != self.screen {
                    info!(width = e.width, height = e.height, "screen resized");
                    self.screen = size;
                    if self.asked_screen != Some(size) {
                        // Someone else (a whole-display viewer) chose this size: keep it as
                        // the least the layout may use.
                        self.min_screen = size;
                    }
                }
            }
            Event::ConfigureNotify(e) if e.event == self.root => {
                let rect = outer(e.x, e.y, e.width, e.height, e.border_width);
                if let Some(p) = self.popups.get_mut(&e.window) {
                    if p.rect != rect {
                        p.rect = rect;
                        self.changed = true;
                    }
                } else if let Some(m) = self.managed.iter_mut().find(|m| m.id == e.window) {
                    let size = (e.width.max(1), e.height.max(1));
                    if m.size != size
                        || m.pos.map(|(x, y)| (x as i16, y as i16)) != Some((e.x, e.y))
                    {
                        // The app resized or moved it by itself (no redirect): place again.
                        m.size = size;
                        m.pos = None;
                        self.relayout = true;
                    }
                }
            }
            Event::PropertyNotify(e) => self.property_changed(e.window, e.atom),
            Event::ClientMessage(e) if e.type_ == self.atoms.zos_request => {
                match decode_request(e.data.as_data32()) {
                    Some(request) => self.request(request),
                    None => debug!("bad window request {:?}", e.data.as_data32()),
                }
            }
            Event::Error(e) => debug!("X error (ignored): {e:?}"),
            _ => {}
        }
    }

    fn is_managed(&self, window: Window) -> bool {
        self.managed.iter().any(|m| m.id == window)
    }

    /// A new top-level window: read what it is, place it, watch its properties, focus it.
    fn manage(&mut self, window: Window) {
        if self.is_managed(window) {
            return;
        }
        let size = self
            .conn
            .get_geometry(window)
            .ok()
            .and_then(|c| c.reply().ok())
            .map_or((1, 1), |g| {
                (g.width.clamp(1, MAX_SIDE), g.height.clamp(1, MAX_SIDE))
            });
        let _ = self.conn.change_window_attributes(
            window,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        );
        let icon = props::icon(&self.conn, &self.atoms, window).map(Arc::new);
        let managed = Managed {
            id: window,
            size,
            pos: None,
            transient_for: props::transient_for(&self.conn, window),
            title: props::title(&self.conn, &self.atoms, window),
            icon,
            icon_serial: self.icon_serial(),
        };
        debug!(window, ?size, title = %managed.title, "managing a window");
        self.managed.push(managed);
        self.relayout = true;
        self.changed = true;
    }

    fn icon_serial(&mut self) -> u32 {
        self.next_icon_serial = self.next_icon_serial.wrapping_add(1);
        self.next_icon_serial
    }

    fn add_popup(&mut self, window: Window) {
        let Some(g) = self
            .conn
            .get_geometry(window)
            .ok()
            .and_then(|c| c.reply().ok())
        else {
            return;
        };
        let kind = if props::is_tooltip(&self.conn, &self.atoms, window) {
            WindowKind::Tooltip
        } else {
            WindowKind::Menu
        };
        self.popups.insert(
            window,
            Popup {
                rect: outer(g.x, g.y, g.width, g.height, g.border_width),
                kind,
            },
        );
        self.changed = true;
    }

    fn forget(&mut self, window: Window) {
        if self.popups.remove(&window).is_some() {
            self.changed = true;
        }
        let before = self.managed.len();
        self.managed.retain(|m| m.id != window);
        if self.managed.len() != before {
            self.relayout = true;
            self.changed = true;
        }
        let had_focus = self.focus_order.last() == Some(&window);
        self.focus_order.retain(|w| *w != window);
        if had_focus && let Some(last) = self.focus_order.last().copied() {
            self.focus(last);
        }
    }

    fn configure_request(&mut self, e: &ConfigureRequestEvent) {
        let Some(m) = self.managed.iter_mut().find(|m| m.id == e.window) else {
            // Not ours to place (not mapped yet): do as asked.
            let aux = ConfigureWindowAux::from_configure_request(e);
            let _ = self.conn.configure_window(e.window, &aux);
            return;
        };
        let mut size = m.size;
        if e.value_mask.contains(ConfigWindow::WIDTH) {
            size.0 = e.width.clamp(1, MAX_SIDE);
        }
        if e.value_mask.contains(ConfigWindow::HEIGHT) {
            size.1 = e.height.clamp(1, MAX_SIDE);
        }
        if size != m.size {
            m.size = size;
            m.pos = None;
            self.relayout = true;
            self.changed = true;
        } else {
            // ICCCM 4.1.5: a request that changes nothing still gets its answer.
            self.tell_geometry(e.window);
        }
    }

    fn property_changed(&mut self, window: Window, atom: u32) {
        let (conn, atoms) = (&self.conn, self.atoms);
        let serial = self.next_icon_serial.wrapping_add(1);
        let Some(m) = self.managed.iter_mut().find(|m| m.id == window) else {
            return;
        };
        if atom == atoms.net_wm_name || atom == u32::from(AtomEnum::WM_NAME) {
            m.title = props::title(conn, &atoms, window);
        } else if atom == atoms.net_wm_icon {
            m.icon = props::icon(conn, &atoms, window).map(Arc::new);
            m.icon_serial = serial;
            self.next_icon_serial = serial;
        } else if atom == u32::from(AtomEnum::WM_TRANSIENT_FOR) {
            m.transient_for = props::transient_for(conn, window);
        } else {
            return;
        }
        self.changed = true;
    }

    fn request(&mut self, request: WindowRequest) {
        debug!(?request, "viewer request");
        match request {
            WindowRequest::Resize { id, width, height } => {
                if let Some(m) = self.managed.iter_mut().find(|m| m.id == id) {
                    let size = (width.clamp(1, MAX_SIDE), height.clamp(1, MAX_SIDE));
                    if size != m.size {
                        m.size = size;
                        m.pos = None;
                        self.relayout = true;
                        self.changed = true;
                    }
                }
            }
            WindowRequest::Activate { id } => {
                if self.is_managed(id) {
                    let _ = self.conn.configure_window(
                        id,
                        &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
                    );
                    self.focus(id);
                    self.changed = true;
                }
            }
        }
    }

    /// Places every managed window by the layout, resizing the screen to hold them.
    fn place_all(&mut self) {
        let sizes: Vec<_> = self.managed.iter().map(|m| m.size).collect();
        let layout = layout::place(&sizes, self.min_screen);
        if layout.screen != self.screen {
            info!(
                width = layout.screen.0,
                height = layout.screen.1,
                windows = sizes.len(),
                "sizing the screen to hold the windows"
            );
            match screen::resize(&self.conn, self.root, self.screen, layout.screen) {
                Ok(()) => {
                    self.asked_screen = Some(layout.screen);
                    self.screen = layout.screen;
                }
                Err(e) => warn!("cannot resize the screen: {e}"),
            }
        }
        for (i, pos) in layout.positions.into_iter().enumerate() {
            let m = &mut self.managed[i];
            if m.pos == Some(pos) {
                continue;
            }
            m.pos = Some(pos);
            let aux = ConfigureWindowAux::new()
                .x(i32::from(pos.0))
                .y(i32::from(pos.1))
                .width(u32::from(m.size.0))
                .height(u32::from(m.size.1))
                .border_width(0);
            if let Err(e) = self.conn.configure_window(m.id, &aux) {
                debug!("place window {:#x}: {e}", m.id);
            }
            let id = m.id;
            self.tell_geometry(id);
            self.changed = true;
        }
    }

    /// A synthetic ConfigureNotify with the window's geometry in root coordinates (ICCCM
    /// 4.1.5), sent whenever the keeper has placed it.
    fn tell_geometry(&self, window: Window) {
        let Some(m) = self.managed.iter().find(|m| m.id == window) else {
            return;
        };
        let (x, y) = m.pos.unwrap_or((0, 0));
        let event = ConfigureNotifyEvent {
            response_type: x11rb::protocol::xproto::CONFIGURE_NOTIFY_EVENT,
            sequence: 0,
            event: window,
            window,
            above_sibling: x11rb::NONE,
            x: x as i16,
            y: y as i16,
            width: m.size.0,
            height: m.size.1,
            border_width: 0,
            override_redirect: false,
        };
        let _ = self
            .conn
            .send_event(false, window, EventMask::STRUCTURE_NOTIFY, event);
    }

    fn focus(&mut self, window: Window) {
        self.focus_order.retain(|w| *w != window);
        self.focus_order.push(window);
        let _ = self
            .conn
            .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME);
    }

    /// Sends the list to the fan-out if it differs from the last one.
    fn publish(&mut self) {
        let order = self
            .conn
            .query_tree(self.root)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|t| t.children)
            .unwrap_or_default();
        let focused = props::focus(&self.conn);
        let top_levels: Vec<(Window, WindowRect)> = self
            .managed
            .iter()
            .filter_map(|m| m.pos.map(|p| (m.id, rect_of(p, m.size))))
            .collect();
        let mut windows = Vec::with_capacity(self.managed.len() + self.popups.len());
        for id in order {
            if let Some(m) = self.managed.iter().find(|m| m.id == id) {
                let Some(pos) = m.pos else { continue };
                let dialog_of = m.transient_for.filter(|t| self.is_managed(*t));
                windows.push(AppWindow {
                    id,
                    kind: if dialog_of.is_some() {
                        WindowKind::Dialog
                    } else {
                        WindowKind::Normal
                    },
                    parent: dialog_of,
                    rect: rect_of(pos, m.size),
                    title: m.title.clone(),
                    icon: m.icon.clone(),
                    icon_serial: m.icon_serial,
                    focused: focused == Some(id),
                });
            } else if let Some(p) = self.popups.get(&id) {
                windows.push(AppWindow {
                    id,
                    kind: p.kind,
                    parent: popup_parent(&p.rect, &top_levels, self.focus_order.last().copied()),
                    rect: p.rect,
                    title: String::new(),
                    icon: None,
                    icon_serial: 0,
                    focused: false,
                });
            }
        }
        let list = WindowList { windows };
        self.list.send_if_modified(|old| {
            if **old == list {
                false
            } else {
                debug!(windows = list.windows.len(), "window list changed");
                *old = Arc::new(list);
                true
            }
        });
    }
}

/// What a window covers on the screen: its border too (menus have one).
fn outer(x: i16, y: i16, width: u16, height: u16, border: u16) -> WindowRect {
    WindowRect::new(
        x,
        y,
        width.saturating_add(border.saturating_mul(2)),
        height.saturating_add(border.saturating_mul(2)),
    )
}

fn rect_of(pos: (u16, u16), size: (u16, u16)) -> WindowRect {
    WindowRect::new(pos.0 as i16, pos.1 as i16, size.0, size.1)
}

/// The top-level window a popup belongs to: the one it overlaps most, else the focused one,
/// else the newest.
fn popup_parent(
    rect: &WindowRect,
    top_levels: &[(Window, WindowRect)],
    focused: Option<Window>,
) -> Option<Window> {
    top_levels
        .iter()
        .map(|(id, r)| (r.overlap(rect), *id))
        .filter(|(area, _)| *area > 0)
        .max_by_key(|(area, _)| *area)
        .map(|(_, id)| id)
        .or(focused.filter(|f| top_levels.iter().any(|(id, _)| id == f)))
        .or_else(|| top_levels.last().map(|(id, _)| *id))
}
