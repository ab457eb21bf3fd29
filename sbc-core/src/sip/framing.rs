//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3) with RFC 5626 §3.5.1 keep-alives. (under construction)
