//! The SBC admin REST API and Prometheus exporter (skeleton).
