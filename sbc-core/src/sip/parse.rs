//! The SIP parser. (under construction)
