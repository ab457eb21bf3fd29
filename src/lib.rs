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
//! * [`identity_material`]: STIR/SHAKEN keys, certificates and roots set at run time.
//! * [`control`]: the running signalling runtime as the admin side sees it.
//! * [`appliance`]: runs all of the above until a stop signal.
//! * [`store`]: the embedded SQLite store (config objects, users, tokens, CDRs, audit).
//! * [`objects`]: trunks and routes of the configuration file and of the store, as one
//!   routing table.
//! * [`admin`]: the appliance behind the admin API.
//! * [`access`]: ACLs, users and bans as a snapshot for signalling.
//! * [`cdr`]: the CDR writer.
//! * [`metrics`]: the Prometheus exposition and what shards count for it.
//! * [`views`]: signalling values as the API and CDRs show them.

pub mod access;
pub mod admin;
pub mod appliance;
pub mod cdr;
pub mod config;
pub mod control;
pub mod identity;
pub mod identity_material;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod metrics_security;
pub mod objects;
pub mod outbound;
pub mod routing;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod tls_material;
pub mod views;
