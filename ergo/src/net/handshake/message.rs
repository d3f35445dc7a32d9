//! The handshake's messages and their encoding.

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};

use super::{Flags, Malformed, MAC_LEN, NONCE_LEN};

/// Why a peer refused the handshake, as carried by a [`Message::Reject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The proofs did not match.
    BadCookie,
    /// No common protocol version; the refusing side supports `min..=max`.
    VersionMismatch {
        /// Lowest version the refusing side supports.
        min: u16,
        /// Highest version the refusing side supports.
        max: u16,
    },
    /// A message was malformed or came out of order.
    Malformed,
}

/// One handshake message (the payload of a [`FrameKind::Handshake`](crate::net::frame::FrameKind::Handshake) frame).
///
/// Encoding: a tag byte (1 `Hello`, 2 `Challenge`, 3 `Proof`, 4 `Reject`), then the fields in
/// the order below, integers big-endian, a name as a length byte and UTF-8. Bytes after a
/// `Hello`'s fields are extensions of later versions: ignored, but covered by the proofs. Any
/// other message must end exactly after its fields.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// The initiator's opening: the versions it speaks, its flags, creation, nonce and name.
    Hello {
        /// Lowest version the initiator speaks.
        min_version: u16,
        /// Highest version the initiator speaks.
        max_version: u16,
        /// The initiator's flags.
        flags: Flags,
        /// The initiator's creation.
        creation: u32,
        /// The initiator's fresh nonce.
        nonce: [u8; NONCE_LEN],
        /// The initiator's node name.
        name: String,
    },
    /// The acceptor's answer: the chosen version, its flags, creation, nonce and name.
    Challenge {
        /// The version both will speak.
        version: u16,
        /// The acceptor's flags.
        flags: Flags,
        /// The acceptor's creation.
        creation: u32,
        /// The acceptor's fresh nonce.
        nonce: [u8; NONCE_LEN],
        /// The acceptor's node name.
        name: String,
    },
    /// A proof of the cookie over the transcript.
    Proof {
        /// The HMAC-SHA256 tag.
        mac: [u8; MAC_LEN],
    },
    /// The sender gives up.
    Reject(RejectReason),
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Hello {
                min_version,
                max_version,
                flags,
                creation,
                name,
                ..
            } => f
                .debug_struct("Hello")
                .field("versions", &(*min_version..=*max_version))
                .field("flags", flags)
                .field("creation", creation)
                .field("name", name)
                .finish_non_exhaustive(),
            Message::Challenge {
                version,
                flags,
                creation,
                name,
                ..
            } => f
                .debug_struct("Challenge")
                .field("version", version)
                .field("flags", flags)
                .field("creation", creation)
                .field("name", name)
                .finish_non_exhaustive(),
            Message::Proof { .. } => f.write_str("Proof"),
            Message::Reject(reason) => f.debug_tuple("Reject").field(reason).finish(),
        }
    }
}

const TAG_HELLO: u8 = 1;
const TAG_CHALLENGE: u8 = 2;
const TAG_PROOF: u8 = 3;
const TAG_REJECT: u8 = 4;

impl Message {
    /// The message's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Challenge { .. } => "Challenge",
            Message::Proof { .. } => "Proof",
            Message::Reject(_) => "Reject",
        }
    }

    /// Appends the encoded message to `dst`.
    ///
    /// # Panics
    ///
    /// When a `name` is longer than [`MAX_NAME_LEN`](super::MAX_NAME_LEN) bytes (the state machine never builds
    /// one: names are checked by [`HandshakeConfig::new`](super::HandshakeConfig::new) and on decoding).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Message::Hello {
                min_version,
                max_version,
                flags,
                creation,
                nonce,
                name,
            } => {
                dst.put_u8(TAG_HELLO);
                dst.put_u16(*min_version);
                dst.put_u16(*max_version);
                dst.put_u64(flags.bits());
                dst.put_u32(*creation);
                dst.put_slice(nonce);
                put_name(dst, name);
            }
            Message::Challenge {
                version,
                flags,
                creation,
                nonce,
                name,
            } => {
                dst.put_u8(TAG_CHALLENGE);
                dst.put_u16(*version);
                dst.put_u64(flags.bits());
                dst.put_u32(*creation);
                dst.put_slice(nonce);
                put_name(dst, name);
            }
            Message::Proof { mac } => {
                dst.put_u8(TAG_PROOF);
                dst.put_slice(mac);
            }
            Message::Reject(reason) => {
                dst.put_u8(TAG_REJECT);
                match reason {
                    RejectReason::BadCookie => dst.put_u8(1),
                    RejectReason::VersionMismatch { min, max } => {
                        dst.put_u8(2);
                        dst.put_u16(*min);
                        dst.put_u16(*max);
                    }
                    RejectReason::Malformed => dst.put_u8(3),
                }
            }
        }
    }

    /// Decodes one message from a frame's payload.
    ///
    /// # Errors
    ///
    /// [`Malformed::UnknownMessage`] for an unknown tag, [`Malformed::BadMessage`] for a message
    /// that is cut short, too long, names an invalid node or gives `min_version > max_version`.
    pub fn decode(payload: &[u8]) -> Result<Message, Malformed> {
        let mut r = Reader(payload);
        let tag = r.u8("message")?;
        let msg = match tag {
            TAG_HELLO => {
                let m = "Hello";
                let min_version = r.u16(m)?;
                let max_version = r.u16(m)?;
                if min_version > max_version {
                    return Err(bad(m, "min_version above max_version"));
                }
                let msg = Message::Hello {
                    min_version,
                    max_version,
                    flags: Flags(r.u64(m)?),
                    creation: r.u32(m)?,
                    nonce: r.array(m)?,
                    name: r.name(m)?,
                };
                // Later versions may extend `Hello`; the proofs cover what follows.
                return Ok(msg);
            }
            TAG_CHALLENGE => {
                let m = "Challenge";
                Message::Challenge {
                    version: r.u16(m)?,
                    flags: Flags(r.u64(m)?),
                    creation: r.u32(m)?,
                    nonce: r.array(m)?,
                    name: r.name(m)?,
                }
            }
            TAG_PROOF => Message::Proof {
                mac: r.array("Proof")?,
            },
            TAG_REJECT => {
                let m = "Reject";
                Message::Reject(match r.u8(m)? {
                    1 => RejectReason::BadCookie,
                    2 => RejectReason::VersionMismatch {
                        min: r.u16(m)?,
                        max: r.u16(m)?,
                    },
                    3 => RejectReason::Malformed,
                    _ => return Err(bad(m, "unknown reason")),
                })
            }
            other => return Err(Malformed::UnknownMessage(other)),
        };
        if r.0.is_empty() {
            Ok(msg)
        } else {
            Err(bad(msg.name(), "trailing bytes"))
        }
    }
}

fn put_name(dst: &mut BytesMut, name: &str) {
    let len = u8::try_from(name.len()).expect("node names are at most 255 bytes");
    dst.put_u8(len);
    dst.put_slice(name.as_bytes());
}

fn bad(message: &'static str, problem: &'static str) -> Malformed {
    Malformed::BadMessage { message, problem }
}

/// A cursor that reports a short message instead of panicking.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize, m: &'static str) -> Result<&[u8], Malformed> {
        if self.0.len() < n {
            return Err(bad(m, "cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, m: &'static str) -> Result<[u8; N], Malformed> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, m)?);
        Ok(out)
    }

    fn u8(&mut self, m: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, m)?.get_u8())
    }

    fn u16(&mut self, m: &'static str) -> Result<u16, Malformed> {
        Ok(self.take(2, m)?.get_u16())
    }

    fn u32(&mut self, m: &'static str) -> Result<u32, Malformed> {
        Ok(self.take(4, m)?.get_u32())
    }

    fn u64(&mut self, m: &'static str) -> Result<u64, Malformed> {
        Ok(self.take(8, m)?.get_u64())
    }

    fn name(&mut self, m: &'static str) -> Result<String, Malformed> {
        let len = usize::from(self.u8(m)?);
        if len == 0 {
            return Err(bad(m, "empty node name"));
        }
        let bytes = self.take(len, m)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad(m, "node name is not UTF-8"))
    }
}
