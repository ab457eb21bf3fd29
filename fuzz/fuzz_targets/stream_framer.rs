//! Feeds arbitrary bytes to the stream framer in arbitrary chunkings.
//!
//! The first byte picks the limits, the next bytes the chunk sizes; the rest is the stream.
//! Checks: no panic, every message within the limit, memory bounded, and the frames
//! identical to those of the same stream fed whole (the framer's meaning does not depend
//! on how the stream was split, up to the pong a split ping reports).

#![no_main]

use sbc_core::sip::framing::{Frame, FramingLimits, StreamFramer};

fn run(
    stream: &[u8],
    chunk_sizes: &[u8],
    limits: FramingLimits,
) -> (Vec<Frame>, Option<&'static str>) {
    let mut framer = StreamFramer::new(limits);
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = sizes
            .next()
            .map_or(rest.len(), |s| usize::from(*s).max(1))
            .min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        framer.handle_data(chunk);
        while let Some(frame) = framer.poll_frame() {
            match frame {
                Ok(Frame::Message(bytes)) => {
                    assert!(bytes.len() <= limits.max_message_bytes);
                    frames.push(Frame::Message(bytes));
                }
                Ok(Frame::KeepAlivePong) => {}
                Ok(frame) => frames.push(frame),
                Err(error) => return (frames, Some(error.name())),
            }
        }
        assert!(framer.buffered_len() <= limits.max_message_bytes.max(limits.max_header_bytes));
    }
    (frames, None)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 {
        FramingLimits::default()
    } else {
        FramingLimits {
            max_header_bytes: 200,
            max_message_bytes: 300,
        }
    };
    let chunk_count = usize::from(selector >> 4).min(rest.len());
    let (chunk_sizes, stream) = rest.split_at(chunk_count);
    let whole = run(stream, &[], limits);
    let split = run(stream, chunk_sizes, limits);
    assert_eq!(whole, split);
});
