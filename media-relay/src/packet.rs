//! Just enough of RTP and RTCP to classify a datagram and read the header fields that the
//! statistics need. Payloads pass through the relay untouched.

/// Which socket of a leg a datagram arrived on, or is sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// The even port.
    Rtp,
    /// The odd port (rtp + 1).
    Rtcp,
}

/// The fields of an RTP fixed header (RFC 3550 §5.1) the statistics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// What a received datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    Rtp(RtpHeader),
    Rtcp,
    /// Not version 2, or too short for its kind.
    Malformed,
}

const RTP_HEADER_LEN: usize = 12;
const RTCP_MIN_LEN: usize = 8;

/// Classifies a datagram received on `port`. On the RTP port, RTCP is told from RTP by the
/// packet type octet (RFC 5761 §4: 192–223 are RTCP); on the RTCP port everything is RTCP.
pub fn classify(port: Port, datagram: &[u8]) -> Packet {
    let (Some(&first), Some(&second)) = (datagram.first(), datagram.get(1)) else {
        return Packet::Malformed;
    };
    if first >> 6 != 2 {
        return Packet::Malformed;
    }
    let is_rtcp = port == Port::Rtcp || (192..=223).contains(&second);
    if is_rtcp {
        return if datagram.len() >= RTCP_MIN_LEN {
            Packet::Rtcp
        } else {
            Packet::Malformed
        };
    }
    match parse_rtp(datagram) {
        Some(header) => Packet::Rtp(header),
        None => Packet::Malformed,
    }
}

fn parse_rtp(datagram: &[u8]) -> Option<RtpHeader> {
    let header: &[u8; RTP_HEADER_LEN] = datagram.get(..RTP_HEADER_LEN)?.try_into().ok()?;
    Some(RtpHeader {
        payload_type: header[1] & 0x7f,
        sequence: u16::from_be_bytes([header[2], header[3]]),
        timestamp: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        ssrc: u32::from_be_bytes([header[8], header[9], header[10], header[11]]),
    })
}

/// The RTP clock rate of a static payload type (RFC 3551 table 4/5); 8000 when unknown.
pub fn clock_rate(payload_type: u8) -> u32 {
    match payload_type {
        10 | 11 => 44_100,
        6 => 16_000,
        16 => 11_025,
        17 => 22_050,
        14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => 90_000,
        _ => 8_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_rtp_from_multiplexed_rtcp() {
        let rtp = [0x80, 0x00, 0x12, 0x34, 0, 0, 0, 160, 1, 2, 3, 4];
        assert_eq!(
            classify(Port::Rtp, &rtp),
            Packet::Rtp(RtpHeader {
                payload_type: 0,
                sequence: 0x1234,
                timestamp: 160,
                ssrc: 0x0102_0304
            })
        );
        let marker_pt8 = [0x80, 0x88, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(classify(Port::Rtp, &marker_pt8), Packet::Rtp(h) if h.payload_type == 8));
        let receiver_report = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(classify(Port::Rtp, &receiver_report), Packet::Rtcp);
        assert_eq!(classify(Port::Rtcp, &rtp), Packet::Rtcp);
    }

    #[test]
    fn short_and_foreign_datagrams_are_malformed() {
        for datagram in [
            &[][..],
            &[0x80],
            &[0x80, 0, 0],
            &[0x00; 12],
            &[0x80, 201, 0, 1],
            &[0xff; 40],
        ] {
            assert_eq!(
                classify(Port::Rtp, datagram),
                Packet::Malformed,
                "{datagram:?}"
            );
        }
        assert_eq!(classify(Port::Rtcp, &[0x80, 200, 0]), Packet::Malformed);
    }

    #[test]
    fn clock_rates() {
        assert_eq!(clock_rate(0), 8000);
        assert_eq!(clock_rate(8), 8000);
        assert_eq!(clock_rate(96), 8000);
        assert_eq!(clock_rate(31), 90_000);
    }
}
