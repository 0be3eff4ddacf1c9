//! Judging a program's output against the expected output, as online
//! judges do without a checker: each mode is a pure function of the two
//! texts.

/// DMOJ's `floats` default: six decimal places (1e-6), absolute or
/// relative.
pub(crate) const DEFAULT_TOLERANCE: f64 = 1e-6;

/// How output is compared with the expected output.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) enum Compare {
    /// Byte for byte.
    Exact,
    /// Trailing whitespace on each line, and trailing blank lines, ignored
    /// (what most judges do; Judge0 strips each line's end and the whole).
    #[default]
    Trim,
    /// The whitespace-separated tokens are equal.
    Tokens,
    /// The tokens are equal, numbers within a tolerance (DMOJ's `floats`):
    /// a pair of tokens that both read as numbers passes when they differ
    /// by at most `absolute`, or by at most `relative` times the expected
    /// value; any other pair must be equal.
    Floats(Tolerance),
    /// The lines, as `Trim` cuts them, are the same in any order (each as
    /// many times).
    UnorderedLines,
    /// As `Trim`, with letters compared without their case.
    CaseInsensitive,
}

/// How far a number may be from the expected one. Each bound is finite
/// and at least 0; 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tolerance {
    pub(crate) absolute: f64,
    pub(crate) relative: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            absolute: DEFAULT_TOLERANCE,
            relative: DEFAULT_TOLERANCE,
        }
    }
}

/// The verdict of an output compared with the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    WrongAnswer,
}

impl Compare {
    /// The modes' names, as the API takes them.
    pub(crate) const NAMES: [&'static str; 6] = [
        "exact",
        "trim",
        "tokens",
        "floats",
        "unordered_lines",
        "case_insensitive",
    ];

    /// The mode named `name`, floats with the default tolerance.
    pub(crate) fn named(name: &str) -> Option<Compare> {
        Some(match name {
            "exact" => Compare::Exact,
            "trim" => Compare::Trim,
            "tokens" => Compare::Tokens,
            "floats" => Compare::Floats(Tolerance::default()),
            "unordered_lines" => Compare::UnorderedLines,
            "case_insensitive" => Compare::CaseInsensitive,
            _ => return None,
        })
    }

    /// `actual` judged against `expected`.
    pub(crate) fn judge(self, expected: &str, actual: &str) -> Verdict {
        let same = match self {
            Compare::Exact => expected == actual,
            Compare::Trim => trimmed(expected).eq(trimmed(actual)),
            Compare::Tokens => expected.split_whitespace().eq(actual.split_whitespace()),
            Compare::Floats(tolerance) => floats(tolerance, expected, actual),
            Compare::UnorderedLines => {
                let sorted = |text| {
                    let mut lines: Vec<&str> = trimmed(text).collect();
                    lines.sort_unstable();
                    lines
                };
                sorted(expected) == sorted(actual)
            }
            Compare::CaseInsensitive => trimmed(expected)
                .map(str::to_lowercase)
                .eq(trimmed(actual).map(str::to_lowercase)),
        };
        if same {
            Verdict::Accepted
        } else {
            Verdict::WrongAnswer
        }
    }
}

/// The tokens of `actual` match those of `expected` within `tolerance`.
fn floats(tolerance: Tolerance, expected: &str, actual: &str) -> bool {
    let (mut want, mut got) = (expected.split_whitespace(), actual.split_whitespace());
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w == g => {}
            (Some(w), Some(g)) => match (number(w), number(g)) {
                (Some(w), Some(g)) if close(tolerance, w, g) => {}
                _ => return false,
            },
            _ => return false,
        }
    }
}

/// A token read as a number: decimal, with an optional sign, fraction and
/// exponent (no `inf`, `nan` or hexadecimal, which Rust would read).
fn number(token: &str) -> Option<f64> {
    let digits = token.trim_start_matches(['+', '-']);
    let plain = digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
    plain.then(|| token.parse::<f64>().ok()).flatten()
}

fn close(tolerance: Tolerance, expected: f64, actual: f64) -> bool {
    let error = (actual - expected).abs();
    error <= tolerance.absolute || error <= tolerance.relative * expected.abs()
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
    fn floats_pass_within_the_absolute_or_the_relative_tolerance() {
        let default = Compare::Floats(Tolerance::default());
        let absolute = |a| {
            Compare::Floats(Tolerance {
                absolute: a,
                relative: 0.0,
            })
        };
        let relative = |r| {
            Compare::Floats(Tolerance {
                absolute: 0.0,
                relative: r,
            })
        };
        // (mode, expected, actual, verdict)
        let rows = [
            (default, "3.0\n", "3.0000001\n", Accepted),
            (default, "3.0", "3.00001", WrongAnswer),
            (default, "0.333333", "0.3333333333", Accepted),
            (default, "1e9", "1000000500", Accepted), // relative: 5e-7
            (default, "1e9", "1000005000", WrongAnswer),
            (default, "1 2.5 x", "1.0000000 2.5000004   x\n", Accepted),
            (default, "1 2.5 x", "1 2.5 y", WrongAnswer),
            (default, "1 2", "1 2 3", WrongAnswer),
            (default, "1 2 3", "1 2", WrongAnswer),
            (default, "-0", "0", Accepted),
            (default, "+1.5", "1.5", Accepted),
            (default, "1.5", "1.5abc", WrongAnswer),
            (default, "1", "inf", WrongAnswer),
            (default, "nan", "nan", Accepted), // equal tokens
            (default, "1", "0x1", WrongAnswer),
            (absolute(0.01), "2.50", "2.509", Accepted),
            (absolute(0.01), "2.50", "2.52", WrongAnswer),
            (absolute(0.01), "1000", "1000.5", WrongAnswer),
            (relative(0.01), "1000", "1009", Accepted),
            (relative(0.01), "1000", "1011", WrongAnswer),
            (relative(0.01), "0", "0.0001", WrongAnswer),
            (absolute(0.0), "0.1", "0.10", Accepted),
        ];
        for (mode, expected, actual, verdict) in rows {
            assert_eq!(
                mode.judge(expected, actual),
                verdict,
                "{mode:?}: {expected:?} / {actual:?}"
            );
        }
    }

    #[test]
    fn unordered_lines_and_case_insensitive_judge_as_documented() {
        // (expected, actual, unordered_lines, case_insensitive)
        let rows = [
            ("a\nb\nc\n", "c\na\nb\n", Accepted, WrongAnswer),
            ("a\nb\n", "b\na  \n\n", Accepted, WrongAnswer),
            ("a\na\nb\n", "a\nb\nb\n", WrongAnswer, WrongAnswer),
            ("a\nb\n", "a\nb\nb\n", WrongAnswer, WrongAnswer),
            ("a b\n", "b a\n", WrongAnswer, WrongAnswer),
            ("YES\n", "yes\n", WrongAnswer, Accepted),
            ("Élan Vital\n", "élan vital  \n", WrongAnswer, Accepted),
            ("Yes\nNo\n", "NO\nYES\n", WrongAnswer, WrongAnswer),
            ("Yes\n", "Yes\n", Accepted, Accepted),
            ("yes\n", "y e s\n", WrongAnswer, WrongAnswer),
            ("", "\n", Accepted, Accepted),
        ];
        for (expected, actual, unordered, case) in rows {
            let got = (
                Compare::UnorderedLines.judge(expected, actual),
                Compare::CaseInsensitive.judge(expected, actual),
            );
            assert_eq!(got, (unordered, case), "{expected:?} / {actual:?}");
        }
    }

    #[test]
    fn every_name_is_a_mode_and_trim_is_the_default() {
        assert_eq!(Compare::default(), Compare::Trim);
        for name in Compare::NAMES {
            assert!(Compare::named(name).is_some(), "{name}");
        }
        assert_eq!(Compare::named("Trim"), None);
        assert_eq!(
            Compare::named("floats"),
            Some(Compare::Floats(Tolerance::default()))
        );
    }
}
