//! Stream framing (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1).

use bytes::Bytes;
use proptest::prelude::*;
use sbc_core::sip::framing::{Frame, FramingError, FramingLimits, StreamFramer};

/// The RFC 4475 corpus lives in `shared/`, beside the repository.
const TORTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/torture/messages"
);

fn drain(framer: &mut StreamFramer) -> Vec<Result<Frame, FramingError>> {
    std::iter::from_fn(|| framer.poll_frame()).collect()
}

fn feed(framer: &mut StreamFramer, data: &[u8]) -> Vec<Result<Frame, FramingError>> {
    framer.handle_data(data);
    drain(framer)
}

fn message(start_line: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "{start_line}\r\nVia: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n{extra_headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn msg(bytes: &[u8]) -> Result<Frame, FramingError> {
    Ok(Frame::Message(Bytes::copy_from_slice(bytes)))
}

/// A torture message; the corpus is part of the test suite, so a missing file fails.
fn torture(name: &str) -> Vec<u8> {
    let path = format!("{TORTURE}/{name}.dat");
    std::fs::read(&path).unwrap_or_else(|error| panic!("torture corpus: {path}: {error}"))
}

mod rfc3261_18_3_content_length {
    use super::*;

    #[test]
    fn two_messages_in_one_read_are_split_by_content_length() {
        let first = message("INVITE sip:a@b SIP/2.0", "", "v=0\r\n");
        let second = message("SIP/2.0 200 OK", "", "");
        let mut framer = StreamFramer::new(FramingLimits::default());
        let stream = [first.clone(), second.clone()].concat();
        assert_eq!(feed(&mut framer, &stream), vec![msg(&first), msg(&second)]);
        assert!(!framer.is_mid_message());
        assert_eq!(framer.buffered_len(), 0);
    }

    #[test]
    fn compact_form_any_case_and_folding_are_understood() {
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nL\t :\r\n\t 4\r\nX: y\r\n\r\nabcdMESS";
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(feed(&mut framer, raw), vec![msg(&raw[..raw.len() - 4])]);
        assert!(framer.is_mid_message());
    }

    #[test]
    fn repeated_identical_content_length_is_accepted() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\ncontent-length: 1\r\n\r\nx";
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(feed(&mut framer, raw), vec![msg(raw)]);
    }

    #[test]
    fn body_that_looks_like_headers_is_not_scanned() {
        let inner = "OPTIONS sip:x SIP/2.0\r\nContent-Length: 99\r\n\r\n";
        let outer = message("MESSAGE sip:a@b SIP/2.0", "", inner);
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(feed(&mut framer, &outer), vec![msg(&outer)]);
    }

    #[test]
    fn a_message_dripped_one_byte_at_a_time_is_framed_once_complete() {
        let raw = message("INVITE sip:a@b SIP/2.0", "Subject: drip\r\n", "body");
        let mut framer = StreamFramer::new(FramingLimits::default());
        for (i, byte) in raw.iter().enumerate() {
            let frames = feed(&mut framer, std::slice::from_ref(byte));
            if i + 1 < raw.len() {
                assert!(frames.is_empty(), "frame before the end at byte {i}");
                assert!(framer.is_mid_message());
            } else {
                assert_eq!(frames, vec![msg(&raw)]);
            }
        }
    }
}

mod errors {
    use super::*;

    fn first_error(limits: FramingLimits, raw: &[u8]) -> Option<FramingError> {
        let mut framer = StreamFramer::new(limits);
        let error = feed(&mut framer, raw).into_iter().find_map(Result::err);
        // After an error the stream is dead: no more frames, data ignored.
        framer.handle_data(&message("OPTIONS sip:a SIP/2.0", "", ""));
        assert_eq!(framer.poll_frame(), None);
        assert_eq!(framer.buffered_len(), 0);
        error
    }

    #[test]
    fn missing_content_length() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n";
        let error = first_error(FramingLimits::default(), raw);
        assert_eq!(error, Some(FramingError::MissingContentLength));
        assert_eq!(error.map(|e| e.name()), Some("missing_content_length"));
    }

    #[test]
    fn invalid_content_length() {
        for value in ["abc", "", "1 2", "0x10", "+5", "5,5"] {
            let raw = format!("OPTIONS sip:a SIP/2.0\r\nContent-Length: {value}\r\n\r\n");
            let error = first_error(FramingLimits::default(), raw.as_bytes());
            assert_eq!(error, Some(FramingError::InvalidContentLength), "{value:?}");
        }
    }

    #[test]
    fn negative_content_length() {
        let raw = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n";
        let error = first_error(FramingLimits::default(), raw);
        assert_eq!(error, Some(FramingError::NegativeContentLength));
    }

    #[test]
    fn conflicting_content_length() {
        let raw = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nxx";
        let error = first_error(FramingLimits::default(), raw);
        assert_eq!(error, Some(FramingError::ConflictingContentLength));
    }

    #[test]
    fn header_section_too_large_without_blank_line() {
        let limits = FramingLimits {
            max_header_bytes: 100,
            max_message_bytes: 1000,
        };
        let raw = vec![b'A'; 101];
        let error = first_error(limits, &raw);
        assert_eq!(error, Some(FramingError::HeaderTooLarge { limit: 100 }));
        // Exactly at the limit without a blank line yet: keep waiting.
        let mut framer = StreamFramer::new(limits);
        assert!(feed(&mut framer, &raw[..100]).is_empty());
    }

    #[test]
    fn header_section_too_large_with_blank_line() {
        let limits = FramingLimits {
            max_header_bytes: 60,
            max_message_bytes: 1000,
        };
        let raw = message("OPTIONS sip:a SIP/2.0", "Subject: long enough\r\n", "");
        assert!(raw.len() > 60);
        assert_eq!(
            first_error(limits, &raw),
            Some(FramingError::HeaderTooLarge { limit: 60 })
        );
    }

    #[test]
    fn message_too_large_is_refused_before_the_body_arrives() {
        let limits = FramingLimits {
            max_header_bytes: 1000,
            max_message_bytes: 1000,
        };
        let raw = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 990\r\n\r\n";
        let error = first_error(limits, raw);
        assert!(matches!(
            error,
            Some(FramingError::MessageTooLarge { limit: 1000, .. })
        ));
        let huge = b"OPTIONS sip:a SIP/2.0\r\nl: 99999999999999999999999999\r\n\r\n";
        let error = first_error(limits, huge);
        assert!(matches!(
            error,
            Some(FramingError::MessageTooLarge { size: u64::MAX, .. })
        ));
    }

    #[test]
    fn every_error_has_a_distinct_listed_name() {
        let errors = [
            FramingError::HeaderTooLarge { limit: 1 },
            FramingError::MessageTooLarge { size: 2, limit: 1 },
            FramingError::MissingContentLength,
            FramingError::NegativeContentLength,
            FramingError::InvalidContentLength,
            FramingError::ConflictingContentLength,
        ];
        let names: Vec<_> = errors.iter().map(FramingError::name).collect();
        assert_eq!(names, FramingError::NAMES);
    }
}

mod rfc4475_torture_as_stream {
    use super::*;

    #[test]
    fn ncl_negative_content_length() {
        let raw = torture("ncl");
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(
            feed(&mut framer, &raw),
            vec![Err(FramingError::NegativeContentLength)]
        );
    }

    #[test]
    fn mcl01_multiple_differing_content_length() {
        let raw = torture("mcl01");
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(
            feed(&mut framer, &raw),
            vec![Err(FramingError::ConflictingContentLength)]
        );
    }

    #[test]
    fn clerr_content_length_larger_than_body_waits_then_is_too_large_for_small_limit() {
        let raw = torture("clerr");
        let mut framer = StreamFramer::new(FramingLimits::default());
        // 9999 declared, fewer bytes present: the stream just waits (the driver's
        // incomplete-message timeout closes it).
        assert!(feed(&mut framer, &raw).is_empty());
        assert!(framer.is_mid_message());
        let limits = FramingLimits {
            max_header_bytes: 4096,
            max_message_bytes: 4096,
        };
        let mut framer = StreamFramer::new(limits);
        assert!(matches!(
            feed(&mut framer, &raw).as_slice(),
            [Err(FramingError::MessageTooLarge { .. })]
        ));
    }

    #[test]
    fn well_formed_torture_messages_with_content_length_frame_whole() {
        for name in ["scalarlg", "wsinv", "longreq"] {
            let raw = torture(name);
            let mut framer = StreamFramer::new(FramingLimits::default());
            let frames = feed(&mut framer, &raw);
            assert!(
                matches!(frames.first(), Some(Ok(Frame::Message(_)))),
                "{name}: {frames:?}"
            );
        }
    }
}

mod rfc5626_keep_alives {
    use super::*;

    #[test]
    fn double_crlf_is_a_ping_single_crlf_a_pong() {
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(
            feed(&mut framer, b"\r\n\r\n"),
            vec![Ok(Frame::KeepAlivePing)]
        );
        assert_eq!(feed(&mut framer, b"\r\n"), vec![Ok(Frame::KeepAlivePong)]);
        assert!(!framer.is_mid_message());
    }

    #[test]
    fn lone_crlf_before_a_message_is_reported_as_pong_and_skipped() {
        let raw = message("OPTIONS sip:a SIP/2.0", "", "");
        let mut framer = StreamFramer::new(FramingLimits::default());
        let stream = [b"\r\n".as_slice(), &raw].concat();
        assert_eq!(
            feed(&mut framer, &stream),
            vec![Ok(Frame::KeepAlivePong), msg(&raw)]
        );
    }

    #[test]
    fn ping_split_in_two_reads_is_still_a_ping() {
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(feed(&mut framer, b"\r\n"), vec![Ok(Frame::KeepAlivePong)]);
        assert_eq!(feed(&mut framer, b"\r"), vec![]);
        assert_eq!(feed(&mut framer, b"\n"), vec![Ok(Frame::KeepAlivePing)]);
        // The half-ping memory does not outlive the next frame.
        assert_eq!(
            feed(&mut framer, b"\r\n\r\n"),
            vec![Ok(Frame::KeepAlivePing)]
        );
    }

    #[test]
    fn pings_between_messages() {
        let a = message("OPTIONS sip:a SIP/2.0", "", "");
        let b = message("SIP/2.0 200 OK", "", "ok");
        let stream = [a.as_slice(), b"\r\n\r\n", &b, b"\r\n\r\n\r\n\r\n"].concat();
        let mut framer = StreamFramer::new(FramingLimits::default());
        assert_eq!(
            feed(&mut framer, &stream),
            vec![
                msg(&a),
                Ok(Frame::KeepAlivePing),
                msg(&b),
                Ok(Frame::KeepAlivePing),
                Ok(Frame::KeepAlivePing),
            ]
        );
    }
}

/// What a stream means, independent of how it was split into reads: the messages in order
/// and the number of pings.
fn meaning(frames: &[Result<Frame, FramingError>]) -> (Vec<Bytes>, usize, Option<&'static str>) {
    let mut messages = Vec::new();
    let mut pings = 0;
    let mut error = None;
    for frame in frames {
        match frame {
            Ok(Frame::Message(bytes)) => messages.push(bytes.clone()),
            Ok(Frame::KeepAlivePing) => pings += 1,
            Ok(Frame::KeepAlivePong) => {}
            Err(e) => error = Some(e.name()),
        }
    }
    (messages, pings, error)
}

fn split_feed(stream: &[u8], cuts: &[usize]) -> Vec<Result<Frame, FramingError>> {
    let mut framer = StreamFramer::new(FramingLimits::default());
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut frames = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([stream.len()]) {
        frames.extend(feed(&mut framer, &stream[start..cut]));
        start = cut;
    }
    frames
}

fn arb_item() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => ("[a-z]{1,10}", "[ -~]{0,60}", any::<bool>(), any::<bool>()).prop_map(
            |(subject, body, compact, fold)| {
                let name = if compact { "l" } else { "Content-Length" };
                let sep = if fold { ":\r\n  " } else { ": " };
                format!(
                    "MESSAGE sip:{subject}@example.com SIP/2.0\r\nSubject: {subject}\r\n\
                     {name}{sep}{}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
        ),
        1 => Just(b"\r\n\r\n".to_vec()),
    ]
}

proptest! {
    #[test]
    fn random_split_points_yield_the_same_messages_and_pings(
        items in prop::collection::vec(arb_item(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let stream = items.concat();
        let whole = split_feed(&stream, &[]);
        let split = split_feed(&stream, &cuts);
        let expected_messages = items.iter().filter(|i| i.as_slice() != b"\r\n\r\n").count();
        let (messages, pings, error) = meaning(&whole);
        prop_assert_eq!(messages.len(), expected_messages);
        prop_assert_eq!(pings, items.len() - expected_messages);
        prop_assert_eq!(error, None);
        prop_assert_eq!(meaning(&split), meaning(&whole));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        data in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let limits = FramingLimits { max_header_bytes: 256, max_message_bytes: 512 };
        let mut framer = StreamFramer::new(limits);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            let chunk = &data[start..cut];
            framer.handle_data(chunk);
            while let Some(frame) = framer.poll_frame() {
                if let Ok(Frame::Message(bytes)) = frame {
                    prop_assert!(bytes.len() <= 512);
                }
            }
            prop_assert!(framer.buffered_len() <= 512);
            start = cut;
        }
    }
}
