//! The shape of `src/`, checked without Docker (issue 9's rules): only the
//! engine module names bollard; no function is over 80 lines; the
//! top-level modules import each other without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function in `src/` may be, in lines from its `fn` to its
/// closing brace.
const MAX_FUNCTION_LINES: usize = 80;

/// Every `.rs` file under `src/`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 20, "src/ is missing: {out:?}");
    out
}

/// `path` relative to `src/`, as `a/b.rs`.
fn relative(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    path.strip_prefix(src).unwrap().display().to_string()
}

/// The top-level module a file of `src/` belongs to (`executor` for
/// `executor/pool.rs`, `job` for `job.rs`).
fn module_of(relative: &str) -> String {
    let first = relative.split('/').next().unwrap();
    first.trim_end_matches(".rs").to_string()
}

/// `text` with comments, string literals and character literals blanked
/// (newlines kept), so that braces and names inside them do not count.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let starts = |s: &str| rest.iter().take(s.len()).copied().eq(s.chars());
        let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let end = if starts("//") {
            rest.iter().position(|&c| c == '\n').unwrap_or(rest.len())
        } else if starts("/*") {
            rest.windows(2).position(|w| w == ['*', '/']).unwrap() + 2
        } else if let Some(hashes) = raw_string(rest).filter(|_| !after_ident) {
            let open = rest.iter().position(|&c| c == '"').unwrap();
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body: String = rest[open + 1..].iter().collect();
            let at = body.find(&close).unwrap();
            open + 1 + body[..at].chars().count() + close.chars().count()
        } else if rest[0] == '"' {
            let mut j = 1;
            while rest[j] != '"' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            j + 1
        } else if rest[0] == '\'' && rest.len() > 2 && (rest[2] == '\'' || rest[1] == '\\') {
            // A character literal ('x' or an escape), not a lifetime.
            let mut j = if rest[1] == '\\' { 3 } else { 2 };
            while rest[j] != '\'' {
                j += 1;
            }
            j + 1
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        out.extend(rest[..end].iter().map(|&c| blank(c)));
        i += end;
    }
    out
}

/// The number of `#`s when `rest` opens a raw string (`r"`, `r#"`,
/// `br"`…).
fn raw_string(rest: &[char]) -> Option<usize> {
    let after_b = if rest.first() == Some(&'b') {
        &rest[1..]
    } else {
        rest
    };
    if after_b.first() != Some(&'r') {
        return None;
    }
    let hashes = after_b[1..].iter().take_while(|&&c| c == '#').count();
    (after_b.get(1 + hashes) == Some(&'"')).then_some(hashes)
}

/// Each function of `code` (comments and literals blanked): its name, first
/// line (1-based) and length in lines.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = fn_name(lines[i]) else {
            i += 1;
            continue;
        };
        let (mut depth, mut opened, mut j) = (0i64, false, i);
        'scan: while j < lines.len() {
            for c in lines[j].chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    // A declaration without a body (a trait's).
                    ';' if !opened => break 'scan,
                    _ => {}
                }
                if opened && depth == 0 {
                    break 'scan;
                }
            }
            j += 1;
        }
        if opened {
            found.push((name, i + 1, j - i + 1));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    found
}

/// The name of the function a line declares, if it declares one.
fn fn_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "fn")?;
    let before_ok = words[..at].iter().all(|w| {
        matches!(*w, "pub" | "async" | "const" | "unsafe" | "extern") || w.starts_with("pub(")
    });
    let name: String = words
        .get(at + 1)?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (before_ok && !name.is_empty()).then_some(name)
}

#[test]
fn only_the_engine_module_names_bollard() {
    let outside: Vec<String> = sources()
        .iter()
        .filter(|(path, text)| {
            module_of(&relative(path)) != "engine" && code_only(text).contains("bollard")
        })
        .map(|(path, _)| relative(path))
        .collect();
    assert!(
        outside.is_empty(),
        "bollard named outside engine/: {outside:?}"
    );
}

#[test]
fn no_function_in_src_is_over_80_lines() {
    let mut long = Vec::new();
    for (path, text) in sources() {
        for (name, line, length) in functions(&code_only(&text)) {
            if length > MAX_FUNCTION_LINES {
                long.push(format!("{}:{line} {name}: {length} lines", relative(&path)));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines: {long:#?}"
    );
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    // Each module's imports of the others (`crate::name`), outside tests.
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources() {
        let relative = relative(&path);
        let module = module_of(&relative);
        if matches!(module.as_str(), "lib" | "main") || relative.contains("/tests/") {
            continue;
        }
        let code = code_only(&text);
        // An inline test module ends the file, by our convention.
        let code = code.split("#[cfg(test)]\nmod tests {").next().unwrap();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                !name.is_empty(),
                "{relative}: a grouped `crate::{{…}}` import"
            );
            if name != module {
                imports.entry(module.clone()).or_default().insert(name);
            }
        }
    }
    assert!(imports.len() > 5, "{imports:?}");
    // Depth-first: a module met again while still on the path closes a cycle.
    fn visit(
        module: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            panic!("import cycle: {} -> {module}", path[at..].join(" -> "));
        }
        if !done.insert(module.to_string()) {
            return;
        }
        path.push(module.to_string());
        for next in imports.get(module).into_iter().flatten() {
            visit(next, imports, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in imports.keys() {
        visit(module, &imports, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The scanners themselves: a brace or `fn` in a string or comment does
    // not count; a function's length runs from `fn` to its closing brace.
    let code = code_only(
        "fn a() {\n    let s = \"}\"; // }\n    let c = '{';\n    let q = '\\'';\n    let r = r#\"{\"#;\n    break;\n}\nfn b();\n",
    );
    assert_eq!(functions(&code), [("a".to_string(), 1, 7)]);
    assert!(!code_only("// bollard\n\"bollard\"").contains("bollard"));
    assert_eq!(
        fn_name("    pub(crate) async fn go<T>(x: T) {"),
        Some("go".into())
    );
    assert_eq!(fn_name("let f = |x| x; // fn"), None);
}
