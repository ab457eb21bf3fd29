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
    match tls_material::check_configured(config) {
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
