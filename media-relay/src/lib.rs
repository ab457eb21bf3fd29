//! The SBC media relay: anchors RTP/RTCP (and converts SRTP) on per-core packet loops.
//!
//! It knows nothing of SIP; signalling drives it through a small control API (allocate,
//! update, release a session). This crate is a skeleton until the media issue.
