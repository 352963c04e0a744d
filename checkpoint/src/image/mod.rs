//! The checkpoint image: its metadata model and its byte format.

pub mod format;
pub mod key;
pub mod model;
pub mod validate;

/// File name of the image stream inside an image directory.
pub const IMAGE_FILE: &str = "image.zckpt";
