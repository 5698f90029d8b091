//! The `coffer` command line: `coffer serve` runs the service, `coffer keystore` manages the
//! encrypted secure settings.

mod config;
mod exit;
mod keystore_cmd;
mod password;
mod serve;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::USAGE;

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Elasticsearch-compatible snapshot repository service"
)]
struct Cli {
    /// Configuration directory holding coffer.yml and coffer.keystore [default: ./config].
    #[arg(long, global = true, env = "COFFER_PATH_CONF", value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Show less output.
    #[arg(short, long, global = true)]
    silent: bool,
    /// Show more detail on errors.
    #[arg(short, long, global = true, conflicts_with = "silent")]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the snapshot service.
    Serve {
        /// Override a setting, as in Elasticsearch (repeatable).
        #[arg(short = 'E', value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Manage the encrypted keystore of secure settings.
    Keystore {
        #[command(subcommand)]
        command: keystore_cmd::KeystoreCommand,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => exit_code(USAGE),
            };
        }
    };
    let config_dir = config::config_dir(cli.config_dir);
    match cli.command {
        Command::Keystore { command } => {
            match keystore_cmd::run(&config_dir, command, cli.silent, cli.verbose) {
                Ok(code) => exit_code(code),
                Err(e) => {
                    eprintln!("ERROR: {e}");
                    exit_code(e.code)
                }
            }
        }
        Command::Serve { settings } => {
            init_tracing();
            let result = config::Settings::load(&config_dir, &settings)
                .map_err(anyhow::Error::from)
                .and_then(|s| serve::run(&config_dir, &s));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("ERROR: {e:#}");
                    exit_code(exit::CONFIG)
                }
            }
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("COFFER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
