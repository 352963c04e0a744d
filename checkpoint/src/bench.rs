//! Checkpoint/restore figures.

use crate::error::Result;

/// Print the figures table to `report`.
pub fn run(report: &mut dyn std::io::Write) -> Result<()> {
    writeln!(report, "not yet implemented").ok();
    Ok(())
}
