//! The compiler options a request may add (Judge0's `compiler_options`):
//! a language file's patterns, parsed ([`OptionPattern`]), and the options
//! no pattern can allow ([`always_refused`]): those that hand options on to
//! another program (the linker, the assembler, the preprocessor) or make
//! the compiler load or run code of the request's (a plugin, a program
//! directory, a spec file, an annotation processor) — security review 3,
//! L1.

use std::fmt;

/// One pattern of a language's `compiler_options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OptionPattern {
    /// `-O2`: exactly this word.
    Exact(String),
    /// `-std=*`: this beginning, then only letters, digits and `-`, `=`,
    /// `_`, `+`, `.` (no comma, slash, `@`, space or quote): flags such
    /// as `-Wno-unused`, `-Wformat=2`, `-std=c++20`, `-DN=10`.
    Prefix(String),
}

/// Why no pattern can allow an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlwaysRefused {
    /// The option's beginning that is refused (`-Wl,`).
    pub(crate) flag: &'static str,
    /// What it would do.
    pub(crate) why: &'static str,
}

const PASSES_ON: &str = "it hands options on to another program";
const LOADS_CODE: &str = "it makes the compiler load or run other code";
const ARGUMENT_FILE: &str = "it reads more options from a file";
const UNDOES: &str = "it would undo the compile command's own choice";

/// The beginnings of the options refused whatever a language file allows:
/// GCC's and Clang's pass-through and code-loading flags, argument files,
/// and javac's processor, plugin and JVM flags (the catalogue's java
/// compiles with `-proc:none -implicit:none`).
const ALWAYS_REFUSED: [(&str, &str); 25] = [
    ("-Wl,", PASSES_ON),
    ("-Wa,", PASSES_ON),
    ("-Wp,", PASSES_ON),
    ("-Xlinker", PASSES_ON),
    ("-Xassembler", PASSES_ON),
    ("-Xpreprocessor", PASSES_ON),
    ("-Xclang", PASSES_ON),
    ("--for-linker", PASSES_ON),
    ("--for-assembler", PASSES_ON),
    ("-z", PASSES_ON),
    ("-fplugin", LOADS_CODE),
    ("-fpass-plugin", LOADS_CODE),
    ("-B", LOADS_CODE),
    ("-wrapper", LOADS_CODE),
    ("-specs", LOADS_CODE),
    ("--specs", LOADS_CODE),
    ("--ld-path", LOADS_CODE),
    ("@", ARGUMENT_FILE),
    ("-J", LOADS_CODE),
    ("-processor", LOADS_CODE),
    ("--processor", LOADS_CODE),
    ("-Xplugin", LOADS_CODE),
    ("--plugin", LOADS_CODE),
    ("-proc:", UNDOES),
    ("-implicit:", UNDOES),
];

/// Whether `option` is refused whatever the patterns say, and why.
pub(crate) fn always_refused(option: &str) -> Option<AlwaysRefused> {
    ALWAYS_REFUSED
        .iter()
        .find(|(flag, _)| option.starts_with(flag))
        .map(|&(flag, why)| AlwaysRefused { flag, why })
}

/// A character a [`OptionPattern::Prefix`] admits after its beginning.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-=_+.".contains(c)
}

impl OptionPattern {
    /// A pattern as a language file writes it: one word of at most 64
    /// bytes beginning with `-`, with at most one `*`, at its end, and not
    /// one that only allows options refused anyway (`-Wl,*`).
    pub(crate) fn parse(text: &str) -> Result<OptionPattern, String> {
        let word = text.strip_suffix('*').unwrap_or(text);
        if !text.starts_with('-')
            || text.len() > 64
            || word.contains('*')
            || word.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "`{text}` is not an option pattern (`-O2`, or `-std=*`: one word beginning with `-`, `*` only at its end)"
            ));
        }
        if let Some(refused) = always_refused(word) {
            return Err(format!(
                "`{text}` allows only options beginning `{}`, which are always refused ({})",
                refused.flag, refused.why
            ));
        }
        Ok(match text.strip_suffix('*') {
            Some(prefix) => OptionPattern::Prefix(prefix.to_string()),
            None => OptionPattern::Exact(text.to_string()),
        })
    }

    /// Whether this pattern allows `option`.
    pub(crate) fn allows(&self, option: &str) -> bool {
        match self {
            OptionPattern::Exact(word) => word == option,
            OptionPattern::Prefix(prefix) => option
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.chars().all(plain)),
        }
    }
}

impl fmt::Display for OptionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionPattern::Exact(word) => f.write_str(word),
            OptionPattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(texts: &[&str]) -> Vec<OptionPattern> {
        texts
            .iter()
            .map(|t| OptionPattern::parse(t).unwrap())
            .collect()
    }

    fn allowed(patterns: &[OptionPattern], option: &str) -> bool {
        always_refused(option).is_none() && patterns.iter().any(|p| p.allows(option))
    }

    #[test]
    fn a_star_admits_flag_characters_only_never_a_comma_slash_or_quote() {
        let c = patterns(&["-O*", "-std=*", "-W*", "-D*", "-g"]);
        for ok in [
            "-O2",
            "-O",
            "-Ofast",
            "-std=c++20",
            "-std=gnu17",
            "-Wall",
            "-Wno-unused-variable",
            "-Wformat=2",
            "-Werror=return-type",
            "-DONLINE_JUDGE",
            "-DN=1e5",
            "-DPI=3.14",
            "-g",
        ] {
            assert!(allowed(&c, ok), "{ok}");
        }
        for refused in [
            "-Wl,-plugin,/work/p.so",
            "-Wp,-fplugin=/work/p.so",
            "-Wa,-adhln=/tmp/x",
            "-Wx,y",
            "-W/work",
            "-DVALUE=1;id",
            "-DS=\"x\"",
            "-D@x",
            "-g3",
            "-gsplit-dwarf",
            "-O2 -B/tmp",
            "-fplugin=/work/p.so",
            "-B/work",
            "@/work/options",
        ] {
            assert!(!allowed(&c, refused), "{refused}");
        }
    }

    #[test]
    fn pass_through_and_code_loading_flags_are_refused_whatever_the_patterns() {
        let everything = patterns(&["-*"]);
        for (option, flag) in [
            ("-Wl,-plugin,/work/p.so", "-Wl,"),
            ("-Wp,-fplugin=p.so", "-Wp,"),
            ("-Wa,--defsym,x=1", "-Wa,"),
            ("-Xlinker", "-Xlinker"),
            ("-Xassembler", "-Xassembler"),
            ("-Xpreprocessor", "-Xpreprocessor"),
            ("-Xclang", "-Xclang"),
            ("--for-linker=-plugin", "--for-linker"),
            ("-fplugin=p.so", "-fplugin"),
            ("-fplugin-arg-p-x=1", "-fplugin"),
            ("-fpass-plugin=p.so", "-fpass-plugin"),
            ("-Bwork", "-B"),
            ("-wrapper", "-wrapper"),
            ("-specs=x", "-specs"),
            ("--specs=x", "--specs"),
            ("@options", "@"),
            ("-J-javaagent:a.jar", "-J"),
            ("-processorpath", "-processor"),
            ("-processor", "-processor"),
            ("--processor-path", "--processor"),
            ("--processor-module-path", "--processor"),
            ("-Xplugin:P", "-Xplugin"),
            ("-proc:full", "-proc:"),
            ("-implicit:class", "-implicit:"),
        ] {
            assert_eq!(always_refused(option).map(|r| r.flag), Some(flag));
            assert!(!allowed(&everything, option), "{option}");
        }
        for fine in ["-Wall", "-O2", "-Xlint", "-pedantic", "-fno-exceptions"] {
            assert_eq!(always_refused(fine), None, "{fine}");
        }
    }

    #[test]
    fn an_exact_pattern_is_that_word_and_a_pattern_of_refused_flags_is_refused() {
        let lint = patterns(&["-Xlint:all", "-g:source,lines"]);
        assert!(allowed(&lint, "-Xlint:all"));
        assert!(allowed(&lint, "-g:source,lines"));
        assert!(!allowed(&lint, "-Xlint:none"));
        for bad in [
            "O2",
            "-O**",
            "-a*b",
            "-x y",
            &format!("-{}", "x".repeat(64)),
        ] {
            let err = OptionPattern::parse(bad).unwrap_err();
            assert!(err.contains("is not an option pattern"), "{err}");
        }
        for bad in ["-Wl,*", "-B*", "-fplugin=*", "-J*", "-proc:none"] {
            let err = OptionPattern::parse(bad).unwrap_err();
            assert!(err.contains("which are always refused"), "{bad}: {err}");
        }
        assert_eq!(patterns(&["-std=*", "-g"])[0].to_string(), "-std=*");
        assert_eq!(patterns(&["-g"])[0].to_string(), "-g");
    }
}
