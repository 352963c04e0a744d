//! `zos bench`: figures, not pass/fail.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::BenchKind;

/// Runs a benchmark and prints its figures.
pub fn run(which: BenchKind) -> Result<ExitCode> {
    match which {
        BenchKind::Net { .. } | BenchKind::Discovery { .. } => anyhow::bail!("not yet"),
    }
}
