//! The SIP printer. (under construction)
