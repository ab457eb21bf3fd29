//! The `sbc` appliance binary: the composition root.
//!
//! `sbc --config FILE` loads and validates the configuration, prepares TLS material,
//! starts the admin API and the signalling runtime ([`sbc::server::run`]), and stops gracefully
//! on SIGINT/SIGTERM (see [`sbc::appliance`]).
//!
//! Exit codes: 0 after a clean stop or a successful `--check-config`, 1 when the appliance
//! fails at run time, 2 when the configuration is invalid.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sbc::config::{self, Config};
use sbc::logging::{self, LogFormat};
use sbc::{appliance, tls_material};
use tracing::{error, info};

/// Session border controller: SIP B2BUA, edge security and media relay.
#[derive(Debug, Parser)]
#[command(name = "sbc", version, about)]
struct Cli {
    /// The configuration file (TOML); see docs/configuration.md.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,

    /// Validate the configuration (and configured TLS files), print the result and exit.
    #[arg(long)]
    check_config: bool,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Log filter, RUST_LOG syntax (e.g. "info,sbc_core=debug"); overrides RUST_LOG.
    #[arg(long, value_name = "FILTER")]
    log_filter: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Offline administration (the appliance need not run; it reads the data directory of
/// the configuration).
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// SIP digest users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Create a user (or set a new password with --replace). The password is read from
    /// the SBC_PASSWORD environment variable, else from the first line of standard input;
    /// only its HA1 values (MD5, SHA-256, SHA-512-256) are stored.
    Add {
        /// The digest username.
        username: String,
        /// The realm (default: auth.realm of the configuration).
        #[arg(long)]
        realm: Option<String>,
        /// Replace the password of an existing user.
        #[arg(long)]
        replace: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = logging::init(cli.log_format, cli.log_filter.as_deref()) {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            for line in error.to_string().lines() {
                eprintln!("error: {line}");
            }
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        return check_config(&cli, &config);
    }
    if let Some(Command::User(command)) = &cli.command {
        return match user_command(&config, command) {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(1)
            }
        };
    }
    info!(config = %cli.config.display(), version = env!("CARGO_PKG_VERSION"), "starting sbc");
    match appliance::run(config) {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn check_config(cli: &Cli, config: &Config) -> ExitCode {
    match tls_material::check_configured(config).and_then(|()| sbc::identity::check_files(config)) {
        Ok(()) => {
            println!("{}: configuration OK", cli.config.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}: {error:#}", cli.config.display());
            ExitCode::from(2)
        }
    }
}

fn user_command(config: &Config, command: &UserCommand) -> anyhow::Result<String> {
    use anyhow::Context;
    let UserCommand::Add {
        username,
        realm,
        replace,
    } = command;
    let realm = realm.clone().unwrap_or_else(|| config.auth.realm.clone());
    let password = match std::env::var("SBC_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let path = appliance::store_path(config);
    let mut store = sbc::store::Store::open(&path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    let change = sbc::store::Change::new("cli", None);
    if *replace {
        store.set_password(username, &realm, &password, &change)?;
        Ok(format!(
            "password of {username}@{realm} replaced (a running sbc picks it up at its next start or credential reload)"
        ))
    } else {
        store.create_user(username, &realm, &password, serde_json::json!({}), &change)?;
        Ok(format!(
            "user {username}@{realm} created (a running sbc picks it up at its next start or credential reload)"
        ))
    }
}
