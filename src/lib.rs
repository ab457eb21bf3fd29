//! The `sbc` appliance: the composition root around `sbc-core`, `media-relay` and
//! `admin-api`. The binary (`src/main.rs`) is a thin CLI over this library.
//!
//! * [`config`]: the TOML configuration, its types, loading and validation.
//! * [`tls_material`]: TLS certificates for the SIP TLS listeners (generated when absent).
//! * [`logging`]: the tracing subscriber (text or JSON).
//! * [`shutdown`]: SIGINT/SIGTERM and the stop request every task waits for.
//! * [`status`]: what the admin API reports (readiness).
//! * [`server`]: the signalling runtime.
//! * [`identity`]: STIR/SHAKEN wiring (per-shard services, certificate fetcher, publisher).
//! * [`control`]: the running signalling runtime as the admin side sees it.
//! * [`appliance`]: runs all of the above until a stop signal.
//! * [`store`]: the embedded SQLite store (config objects, users, tokens, CDRs, audit).

pub mod appliance;
pub mod config;
pub mod control;
pub mod identity;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod outbound;
pub mod routing;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod tls_material;
