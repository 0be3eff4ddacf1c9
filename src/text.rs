//! Text a client sent, bounded before it is written into an error or a
//! log line, so that a hostile request cannot make either large.

use std::borrow::Cow;

/// The most bytes of client-supplied text an error body or a log line
/// repeats.
pub(crate) const CLIP_BYTES: usize = 256;

/// `text`, or its first [`CLIP_BYTES`] bytes (cut at a character
/// boundary) followed by a mark saying how much was cut:
/// `…[cut: 199744 more bytes]`.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= CLIP_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = CLIP_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}…[cut: {} more bytes]",
        &text[..end],
        text.len() - end
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_and_the_cut_is_marked() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(200);
        let cut = clip(&long);
        assert!(cut.starts_with(&"é".repeat(128)));
        assert!(cut.ends_with("…[cut: 144 more bytes]"), "{cut}");
        assert!(cut.len() < CLIP_BYTES + 32);
    }
}
