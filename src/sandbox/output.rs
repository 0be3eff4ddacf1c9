//! A program's output, capped per stream while it is read.

/// The bytes kept of one stream: at most `cap`, with a flag when more came.
#[derive(Debug, Clone)]
pub(crate) struct CappedBuffer {
    data: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl CappedBuffer {
    pub(crate) fn new(cap: usize) -> Self {
        CappedBuffer {
            data: Vec::with_capacity(cap.min(64 * 1024)),
            cap,
            overflowed: false,
        }
    }

    /// How many more bytes fit.
    pub(crate) fn room(&self) -> usize {
        self.cap - self.data.len()
    }

    /// Appends what fits; returns `true` when the stream has now gone over
    /// its cap (the bytes beyond it are dropped).
    pub(crate) fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.cap - self.data.len();
        if chunk.len() > room {
            self.data.extend_from_slice(&chunk[..room]);
            self.overflowed = true;
        } else {
            self.data.extend_from_slice(chunk);
        }
        self.overflowed
    }

    /// The kept bytes as text. Invalid UTF-8 becomes U+FFFD; a multi-byte
    /// character cut in two by the cap is dropped rather than mangled.
    pub(crate) fn into_text(mut self) -> String {
        if self.overflowed {
            let keep = complete_prefix_len(&self.data);
            self.data.truncate(keep);
        }
        match String::from_utf8(self.data) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// The length of `bytes` without a trailing, incomplete UTF-8 sequence.
fn complete_prefix_len(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes: look back at most 3 for its lead byte.
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte
        }
        let needed = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return bytes.len(), // not a lead byte: invalid anyway
        };
        return if needed > back {
            bytes.len() - back
        } else {
            bytes.len()
        };
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_more_than_the_cap_and_always_text(
            cap in 1usize..200,
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
        ) {
            let mut b = CappedBuffer::new(cap);
            let mut total = 0;
            for chunk in &chunks {
                total += chunk.len();
                prop_assert_eq!(b.push(chunk), total > cap);
            }
            let kept: Vec<u8> = chunks.concat().into_iter().take(cap).collect();
            let text = b.into_text();
            if total <= cap {
                prop_assert_eq!(text, String::from_utf8_lossy(&kept).into_owned());
            } else if let Ok(valid) = std::str::from_utf8(&kept) {
                prop_assert_eq!(text.as_str(), valid);
            }
        }

        #[test]
        fn a_cut_utf8_text_is_a_prefix_of_the_original(s in ".{0,80}", cap in 1usize..100) {
            let mut b = CappedBuffer::new(cap);
            b.push(s.as_bytes());
            let text = b.into_text();
            prop_assert!(s.starts_with(&text));
            prop_assert!(text.len() <= cap);
            prop_assert!(s.len() <= cap || text.len() + 3 >= cap.min(s.len()));
        }
    }

    #[test]
    fn keeps_exactly_the_cap() {
        let mut b = CappedBuffer::new(10);
        assert!(!b.push(b"12345"));
        assert!(b.push(b"6789012345"));
        assert_eq!(b.into_text(), "1234567890");
    }

    #[test]
    fn a_stream_exactly_at_the_cap_has_not_overflowed() {
        let mut b = CappedBuffer::new(4);
        assert!(!b.push(b"abcd"));
        assert!(!b.push(b""));
        assert_eq!(b.into_text(), "abcd");
    }

    #[test]
    fn a_character_cut_by_the_cap_is_dropped() {
        let mut b = CappedBuffer::new(5);
        b.push("ab€€".as_bytes()); // € is 3 bytes: "ab" + 3 bytes fit exactly... then 0
        assert_eq!(b.into_text(), "ab€");
        let mut b = CappedBuffer::new(4);
        b.push("ab€".as_bytes());
        assert_eq!(b.into_text(), "ab");
        let mut b = CappedBuffer::new(3);
        b.push("a😀".as_bytes());
        assert_eq!(b.into_text(), "a");
    }

    #[test]
    fn invalid_utf8_never_fails() {
        let mut b = CappedBuffer::new(100);
        b.push(b"ok \xff\xfe bytes \xc3");
        assert_eq!(b.into_text(), "ok \u{fffd}\u{fffd} bytes \u{fffd}");
    }
}
