//! The `coffer` command line: `coffer serve` runs the service, `coffer keystore` manages the
//! encrypted secure settings.

mod auth_setup;
mod config;
mod exit;
mod keystore_cmd;
mod password;
mod security_cmd;
mod serve;
mod terminal;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::USAGE;

/// jemalloc instead of glibc malloc: a snapshot or restore allocates and frees multi-MiB
/// pack and download buffers on many threads, which glibc keeps in per-thread arenas (its
/// mmap threshold rises after the first large free), so the peak RSS was about 1.7 times the
/// live data. jemalloc reuses freed extents across threads (docs/architecture.md, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Manage users (name, role, password hash), kept in the keystore.
    Users {
        #[command(subcommand)]
        command: security_cmd::UsersCommand,
    },
    /// Manage API keys, kept (as hashes) in the keystore.
    ApiKey {
        #[command(subcommand)]
        command: security_cmd::ApiKeyCommand,
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
        Command::Users { command } => report(security_cmd::run_users(
            &config_dir,
            command,
            cli.silent,
            cli.verbose,
        )),
        Command::ApiKey { command } => report(security_cmd::run_api_key(
            &config_dir,
            command,
            cli.silent,
            cli.verbose,
        )),
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

fn report(result: Result<i32, exit::CliError>) -> ExitCode {
    match result {
        Ok(code) => exit_code(code),
        Err(e) => {
            eprintln!("ERROR: {e}");
            exit_code(e.code)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn init_tracing() {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_env("COFFER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: log files and journald get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr must not turn into a panic inside a request: by default the
        // formatter reports its own write errors with `eprintln!`, which panics when stderr
        // is gone, and the connection of whatever request was logging dies with it.
        .log_internal_errors(false)
        .finish()
        // Applied after COFFER_LOG, so no filter an operator writes can undo it.
        .with(tracing_subscriber::filter::filter_fn(|m| {
            never_logs_secrets(m.target(), *m.level())
        }))
        .init();
}

/// Whether an event may be logged at all. aws-sigv4 logs, at `trace`, every request it
/// signs with the credentials' access key id (a keystore value) and the session token's
/// length: nothing below `info` from the AWS crates is let through.
fn never_logs_secrets(target: &str, level: tracing::Level) -> bool {
    !(target.starts_with("aws_") && level > tracing::Level::INFO)
}
