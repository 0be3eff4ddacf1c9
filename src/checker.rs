//! Judging a program's output against the expected output, as online
//! judges do.

use serde::Deserialize;

/// How output is compared with the expected output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Compare {
    /// Byte for byte.
    Exact,
    /// Trailing whitespace on each line, and trailing blank lines, ignored
    /// (what most judges do; Judge0 strips each line's end and the whole).
    #[default]
    Trim,
    /// The whitespace-separated tokens are equal.
    Tokens,
}

/// The verdict of an output compared with the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    WrongAnswer,
}

impl Compare {
    /// `actual` judged against `expected`.
    pub(crate) fn judge(self, expected: &str, actual: &str) -> Verdict {
        let same = match self {
            Compare::Exact => expected == actual,
            Compare::Trim => trimmed(expected).eq(trimmed(actual)),
            Compare::Tokens => expected.split_whitespace().eq(actual.split_whitespace()),
        };
        if same {
            Verdict::Accepted
        } else {
            Verdict::WrongAnswer
        }
    }
}

/// The lines of `text` with their trailing whitespace cut, without the
/// trailing blank lines.
fn trimmed(text: &str) -> impl Iterator<Item = &str> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let keep = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    lines.into_iter().take(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    #[test]
    fn each_mode_judges_as_documented() {
        // (expected, actual, exact, trim, tokens)
        let rows = [
            ("42\n", "42\n", Accepted, Accepted, Accepted),
            ("42\n", "42", WrongAnswer, Accepted, Accepted),
            ("42", "42\n\n\n", WrongAnswer, Accepted, Accepted),
            ("1 2\n3\n", "1 2   \n3\t\n", WrongAnswer, Accepted, Accepted),
            ("1 2\n3\n", "1  2\n3\n", WrongAnswer, WrongAnswer, Accepted),
            ("1 2 3", "1\n2\n3\n", WrongAnswer, WrongAnswer, Accepted),
            ("  1\n", "1\n", WrongAnswer, WrongAnswer, Accepted),
            ("a\n\nb\n", "a\nb\n", WrongAnswer, WrongAnswer, Accepted),
            ("42\n", "43\n", WrongAnswer, WrongAnswer, WrongAnswer),
            ("", "", Accepted, Accepted, Accepted),
            ("", "\n \n", WrongAnswer, Accepted, Accepted),
            ("x\r\n", "x\n", WrongAnswer, Accepted, Accepted),
        ];
        for (expected, actual, exact, trim, tokens) in rows {
            let got = (
                Compare::Exact.judge(expected, actual),
                Compare::Trim.judge(expected, actual),
                Compare::Tokens.judge(expected, actual),
            );
            assert_eq!(got, (exact, trim, tokens), "{expected:?} / {actual:?}");
        }
    }

    #[test]
    fn trim_is_the_default() {
        assert_eq!(Compare::default(), Compare::Trim);
    }
}
