//! testlib's convention, read from a checker's or an interactor's end:
//! exit 0 accepted, 1 wrong answer, 2 presentation error, 3 the checker's
//! own failure, 7 points (`quitp`: testlib writes `points <score> …` on
//! stderr), 8 unexpected end of file (testlib's `ENABLE_UNEXPECTED_EOF`;
//! a presentation error, as testlib counts it without that flag). The
//! message is what it wrote on stderr, where testlib writes it.

use crate::outcome::{StageResult, Status};

/// Longest message kept from a checker, in bytes (testlib truncates its
/// own long messages too).
const MAX_MESSAGE: usize = 4096;

/// What a checker (or an interactor) said of a test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Said {
    Accepted,
    WrongAnswer,
    PresentationError,
    /// Points, with the score when the message gives one.
    Partial(Option<f64>),
    /// It failed: exit 3, another code, a crash or a limit; the why.
    Failed(String),
}

/// What the checker run `result` says, and its message.
pub(crate) fn read(result: &StageResult) -> (Said, String) {
    let message = message(&result.stderr);
    let said = match (result.status(), result.exit.map(|e| e.status())) {
        (Status::Ok, Some(0)) => Said::Accepted,
        (Status::RuntimeError, Some(1)) => Said::WrongAnswer,
        (Status::RuntimeError, Some(2 | 8)) => Said::PresentationError,
        (Status::RuntimeError, Some(7)) => Said::Partial(score(&message)),
        (Status::RuntimeError, Some(3)) => Said::Failed("it exited 3 (FAIL)".to_string()),
        (Status::RuntimeError, _) => Said::Failed(match result.exit.and_then(|e| e.signal()) {
            Some(signal) => format!("it was killed by {signal}"),
            None => format!(
                "it exited {}, which testlib does not define",
                result.exit.map_or(-1, |e| e.status())
            ),
        }),
        (status, _) => Said::Failed(format!("it was stopped: {}", status.as_str())),
    };
    (said, message)
}

/// The score of a `points` message: the number after `points ` (testlib's
/// `quitp(0.5, "…")` writes `points 0.5 …`), or the first word when the
/// message is a bare number.
fn score(message: &str) -> Option<f64> {
    let rest = message.strip_prefix("points ").unwrap_or(message);
    let word = rest.split_whitespace().next()?;
    word.parse::<f64>().ok().filter(|s| s.is_finite())
}

/// A checker's stderr as its message: trimmed, at most [`MAX_MESSAGE`]
/// bytes (cut on a character's boundary).
fn message(stderr: &str) -> String {
    let text = stderr.trim();
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Exit, LimitHit, Signal, Usage};

    fn ended(exit: Option<Exit>, limit: Option<LimitHit>, stderr: &str) -> StageResult {
        StageResult {
            exit,
            limit,
            stdout: String::new(),
            stderr: stderr.to_string(),
            output: stderr.to_string(),
            duration: std::time::Duration::ZERO,
            usage: Usage::default(),
            files: None,
        }
    }

    /// A checker's end (exit, limit), its stderr, what it said and the
    /// message kept.
    type Row<'a> = (Option<Exit>, Option<LimitHit>, &'a str, Said, &'a str);

    fn assert_reads(rows: &[Row]) {
        for (exit, limit, stderr, said, message) in rows {
            let got = read(&ended(*exit, *limit, stderr));
            assert_eq!(
                got,
                (said.clone(), message.to_string()),
                "{exit:?} {limit:?} {stderr:?}"
            );
        }
    }

    #[test]
    fn each_verdict_exit_reads_as_testlib_defines_it() {
        let code = |c| Some(Exit::Code(c));
        assert_reads(&[
            (
                code(0),
                None,
                "ok 3 numbers\n",
                Said::Accepted,
                "ok 3 numbers",
            ),
            (
                code(1),
                None,
                "wrong answer 1st",
                Said::WrongAnswer,
                "wrong answer 1st",
            ),
            (code(2), None, "", Said::PresentationError, ""),
            (
                code(8),
                None,
                "unexpected eof",
                Said::PresentationError,
                "unexpected eof",
            ),
            (
                code(7),
                None,
                "points 0.5 half\n",
                Said::Partial(Some(0.5)),
                "points 0.5 half",
            ),
            (code(7), None, "30", Said::Partial(Some(30.0)), "30"),
            (
                code(7),
                None,
                "points some",
                Said::Partial(None),
                "points some",
            ),
            (
                code(7),
                None,
                "points inf",
                Said::Partial(None),
                "points inf",
            ),
        ]);
    }

    #[test]
    fn any_other_end_is_the_checkers_failure() {
        let failed = |why: &str| Said::Failed(why.to_string());
        let stderr_cap = Some(LimitHit::Output(crate::outcome::StreamKind::Stderr));
        assert_reads(&[
            (
                Some(Exit::Code(3)),
                None,
                "FAIL bad",
                failed("it exited 3 (FAIL)"),
                "FAIL bad",
            ),
            (
                Some(Exit::Code(4)),
                None,
                "",
                failed("it exited 4, which testlib does not define"),
                "",
            ),
            (
                Some(Exit::Signal(Signal(11))),
                None,
                "",
                failed("it was killed by SIGSEGV"),
                "",
            ),
            (
                None,
                Some(LimitHit::WallTime),
                "",
                failed("it was stopped: timeout"),
                "",
            ),
            (
                Some(Exit::Code(0)),
                stderr_cap,
                "x",
                failed("it was stopped: output_limit"),
                "x",
            ),
        ]);
    }

    #[test]
    fn a_long_message_is_cut_on_a_character() {
        let long = "é".repeat(MAX_MESSAGE);
        let (_, message) = read(&ended(Some(Exit::Code(1)), None, &long));
        assert!(message.len() <= MAX_MESSAGE && message.len() >= MAX_MESSAGE - 1);
        assert!(message.chars().all(|c| c == 'é'));
    }
}
