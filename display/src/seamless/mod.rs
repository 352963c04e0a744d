//! Seamless windows: the app's top-level windows, menus and dialogs as a list that travels in
//! the RFB stream, so that a viewer can show each as a window of its own.
//!
//! [`AppWindows`](crate::AppWindows) keeps the list on the app's display; the fan-out sends it
//! to every viewer that announced [`PSEUDO_ENCODING`] in its SetEncodings, whenever it
//! changes, as a server message of type [`MESSAGE_TYPE`]; such a viewer may ask for a window
//! to be resized or activated with a client message of the same type. Other clients
//! (TigerVNC's vncviewer) never see either and get the plain desktop.
//!
//! The numbers are ZOS's own: the pseudo-encoding spells "ZOS" and a version
//! (`0x5A4F5301`), the message type is `0x5A` ('Z'), unassigned in both directions by the
//! RFB registry. The wire format is in [`wire`].

pub(crate) mod wire;

use std::sync::Arc;

/// The pseudo-encoding a viewer lists to get window lists ("ZOS" and version 1).
pub const PSEUDO_ENCODING: i32 = 0x5A4F_5301;
/// The message type of ZOS's server and client messages.
pub const MESSAGE_TYPE: u8 = 0x5A;
/// The most windows a list holds; a display with more lists the topmost ones.
pub const MAX_WINDOWS: usize = 256;
/// The most bytes of a window title (longer ones are cut at a character boundary).
pub const MAX_TITLE: usize = 512;
/// The largest icon side sent; larger icons are scaled down.
pub const MAX_ICON_SIDE: u16 = 64;

/// What a window is to the app, which decides how a viewer shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// A top-level window: a window of its own, decorated, resizable.
    Normal,
    /// A transient window (`WM_TRANSIENT_FOR`): a dialog of its parent.
    Dialog,
    /// An override-redirect menu (or any override-redirect window that is no tooltip): an
    /// undecorated window on top, placed relative to its parent.
    Menu,
    /// An override-redirect tooltip: like a menu, never focused.
    Tooltip,
}

impl WindowKind {
    /// Whether the app places it itself (override-redirect): menus and tooltips.
    pub fn is_popup(self) -> bool {
        matches!(self, WindowKind::Menu | WindowKind::Tooltip)
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            WindowKind::Normal => 0,
            WindowKind::Dialog => 1,
            WindowKind::Menu => 2,
            WindowKind::Tooltip => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<WindowKind> {
        Some(match code {
            0 => WindowKind::Normal,
            1 => WindowKind::Dialog,
            2 => WindowKind::Menu,
            3 => WindowKind::Tooltip,
            _ => return None,
        })
    }
}

/// A window's rectangle on the app's screen, in pixels, border included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WindowRect {
    /// Left edge (may be negative for a popup partly off the screen).
    pub x: i16,
    /// Top edge.
    pub y: i16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

impl WindowRect {
    /// The rectangle of `width` × `height` pixels whose top left corner is (`x`, `y`).
    pub const fn new(x: i16, y: i16, width: u16, height: u16) -> WindowRect {
        WindowRect {
            x,
            y,
            width,
            height,
        }
    }

    /// The area this rectangle shares with `other`, in square pixels.
    pub fn overlap(&self, other: &WindowRect) -> u64 {
        let span = |a0: i32, a1: i32, b0: i32, b1: i32| (a1.min(b1) - a0.max(b0)).max(0) as u64;
        let (ax, ay) = (i32::from(self.x), i32::from(self.y));
        let (bx, by) = (i32::from(other.x), i32::from(other.y));
        span(
            ax,
            ax + i32::from(self.width),
            bx,
            bx + i32::from(other.width),
        ) * span(
            ay,
            ay + i32::from(self.height),
            by,
            by + i32::from(other.height),
        )
    }
}

/// A window icon, RGBA (straight alpha), at most [`MAX_ICON_SIDE`] on a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowIcon {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// `width * height` pixels: red, green, blue, alpha.
    pub rgba: Vec<u8>,
}

/// One window of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppWindow {
    /// The X window id on the app's display (stable while the window is mapped).
    pub id: u32,
    /// What it is.
    pub kind: WindowKind,
    /// For a dialog, the window it belongs to (`WM_TRANSIENT_FOR`); for a menu or tooltip,
    /// the top-level window it overlaps most, else the focused one. `None` for top-levels.
    pub parent: Option<u32>,
    /// Where it is on the app's screen.
    pub rect: WindowRect,
    /// Its title (`_NET_WM_NAME`, else `WM_NAME`), possibly empty.
    pub title: String,
    /// Its icon (`_NET_WM_ICON`, the size nearest [`MAX_ICON_SIDE`]), if it has one.
    pub icon: Option<Arc<WindowIcon>>,
    /// Bumped when the icon changes (so a list can say "unchanged" instead of resending it).
    pub icon_serial: u32,
    /// Whether it has the keyboard focus on the app's display.
    pub focused: bool,
}

/// The app's mapped windows, bottom to top.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowList {
    /// The windows, in stacking order from the bottom.
    pub windows: Vec<AppWindow>,
}

impl WindowList {
    /// The window with this id.
    pub fn get(&self, id: u32) -> Option<&AppWindow> {
        self.windows.iter().find(|w| w.id == id)
    }

    /// The top-level windows (normal ones and dialogs), bottom to top.
    pub fn top_levels(&self) -> impl Iterator<Item = &AppWindow> {
        self.windows.iter().filter(|w| !w.kind.is_popup())
    }
}

/// What a viewer may ask of the app's windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowRequest {
    /// Give window `id` this size (its viewer window was resized by the user, with
    /// `--resize-remote`).
    Resize {
        /// The window.
        id: u32,
        /// New width in pixels.
        width: u16,
        /// New height in pixels.
        height: u16,
    },
    /// Give window `id` the keyboard focus and raise it (its viewer window got the focus).
    Activate {
        /// The window.
        id: u32,
    },
}

impl WindowRequest {
    /// The window it is about.
    pub fn window(&self) -> u32 {
        match *self {
            WindowRequest::Resize { id, .. } | WindowRequest::Activate { id } => id,
        }
    }
}
