//! `zos`: the command line of every ZOS role.
//!
//! Daemons (`zos master`, `zos zombie`) run in the foreground; every other
//! command talks to the daemon of the same home over its control socket.

mod attach;
mod bench;
mod checkpointing;
mod cli;
mod commands;
mod demo;
mod domination;
mod drive;
mod exports;
mod migrate;
mod snapshots;
mod stop;
mod tasks;
mod view;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let default_level = if cli.command.is_daemon() {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Print the chain of causes, skipping any a message already quotes.
            let mut text = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !text.contains(&c) {
                    text = format!("{text}: {c}");
                }
            }
            eprintln!("zos: {text}");
            std::process::ExitCode::from(1)
        }
    }
}
