//! `zos export`, `zos exports`, `zos unexport`: the master's export list
//! (`HOME/exports.toml`), which the master daemon reads at each domination.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use zos_daemon::Paths;
use zos_fileshare::{Access, ExportStore};

fn store(paths: &Paths) -> Result<ExportStore> {
    ExportStore::load(&paths.exports()).context("the export list")
}

/// Relative paths are taken from the current directory.
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("the current directory")?
        .join(path))
}

/// Adds or replaces an export.
pub fn export(
    paths: &Paths,
    path: &Path,
    to: Option<&str>,
    read_only: bool,
    never: bool,
) -> Result<ExitCode> {
    let access = match (never, read_only) {
        (true, _) => Access::Never,
        (false, true) => Access::ReadOnly,
        (false, false) => Access::ReadWrite,
    };
    let entry = store(paths)?.add(&absolute(path)?, access, to)?;
    let whom = entry.to.as_deref().unwrap_or("every dominated zombie");
    match access {
        Access::Never => println!("{} is hidden from {whom}", entry.path.display()),
        _ => println!(
            "{} is shared {} with {whom} (from its next domination)",
            entry.path.display(),
            access
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists the exports.
pub fn list(paths: &Paths, json: bool) -> Result<ExitCode> {
    let store = store(paths)?;
    if json {
        println!("{}", serde_json::to_string(store.entries())?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<11} {:<16} PATH", "ACCESS", "FOR");
    for e in store.entries() {
        println!(
            "{:<11} {:<16} {}",
            e.access.to_string(),
            e.to.as_deref().unwrap_or("all"),
            e.path.display()
        );
    }
    if store.entries().is_empty() {
        println!("(nothing exported: `zos export PATH`)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes a path's entries.
pub fn unexport(paths: &Paths, path: &Path, to: Option<&str>) -> Result<ExitCode> {
    let gone = store(paths)?.remove(&absolute(path)?, to)?;
    if gone.is_empty() {
        bail!(
            "{} is not in the export list (see `zos exports`)",
            path.display()
        );
    }
    for e in &gone {
        println!(
            "{} no longer {} for {}",
            e.path.display(),
            if e.access == Access::Never {
                "hidden"
            } else {
                "shared"
            },
            e.to.as_deref().unwrap_or("all")
        );
    }
    Ok(ExitCode::SUCCESS)
}
