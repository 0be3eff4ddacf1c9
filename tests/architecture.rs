//! The shape of `src/`, checked without Docker: only the engine module
//! names bollard; no function is over 80 lines; no folder (a room) holds
//! over 2,700 lines of production code; the top-level modules import each
//! other without a cycle, and so do the files of each folder. Test code
//! (`#[cfg(test)]` items, and the files and folders only tests declare) is
//! left out of the sizes and the imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function in `src/` may be, in lines from its `fn` to its
/// closing brace.
const MAX_FUNCTION_LINES: usize = 80;
/// The most lines of production code one folder of `src/` may hold (its own
/// files; a subfolder is a room of its own).
const MAX_ROOM_LINES: usize = 2700;
/// Functions this long are listed (not failed) for a reviewer's eye.
const REVIEW_FUNCTION_LINES: usize = 60;

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

/// The byte ranges of `code`'s `#[cfg(test)]` items (code with comments
/// and literals blanked): from the attribute to the item's closing brace
/// or semicolon.
fn test_spans(code: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|i| i + from) {
        let rest = &code[at..];
        let end = match (rest.find('{'), rest.find(';')) {
            (Some(b), Some(s)) if s < b => at + s + 1,
            (None, Some(s)) => at + s + 1,
            (Some(b), _) => {
                let mut depth = 0;
                let mut end = code.len();
                for (i, c) in code[at + b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        end = at + b + i + 1;
                        break;
                    }
                }
                end
            }
            (None, None) => code.len(),
        };
        spans.push(at..end);
        from = end;
    }
    spans
}

/// `code` with every `#[cfg(test)]` item blanked (newlines kept).
fn without_tests(code: &str) -> String {
    let mut out = code.to_string();
    for span in test_spans(code) {
        let blanked: String = code[span.clone()]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(span, &blanked);
    }
    out
}

/// The lines of `text` outside its test items.
fn production_lines(text: &str) -> usize {
    let code = code_only(text);
    let spans = test_spans(&code);
    let mut at = 0;
    let mut kept = 0;
    for line in code.split_inclusive('\n') {
        if !spans.iter().any(|s| s.contains(&at)) {
            kept += 1;
        }
        at += line.len();
    }
    kept
}

/// The folder a file of `src/` is a room of (`executor` for
/// `executor/pool.rs` and `executor/mod.rs`, `` for `job.rs`).
fn folder_of(relative: &str) -> String {
    relative
        .rsplit_once('/')
        .map_or("", |(dir, _)| dir)
        .to_string()
}

/// Files of `src/` that only tests declare (`#[cfg(test)] mod name;`), and
/// every file inside a folder only tests declare.
fn test_only(sources: &[(PathBuf, String)]) -> BTreeSet<String> {
    let mut declared = BTreeSet::new();
    for (path, text) in sources {
        let relative = relative(path);
        let code = code_only(text);
        let dir = match relative.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => String::new(),
        };
        for (at, _) in code.match_indices("#[cfg(test)]") {
            let rest = code[at + 12..].trim_start();
            let rest = rest
                .strip_prefix("pub(crate) ")
                .or(rest.strip_prefix("pub "))
                .unwrap_or(rest);
            let Some(rest) = rest.strip_prefix("mod ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if rest[name.len()..].trim_start().starts_with(';') {
                declared.insert(format!("{dir}{name}"));
            }
        }
    }
    (sources.iter())
        .map(|(path, _)| relative(path))
        .filter(|r| {
            declared
                .iter()
                .any(|d| r == &format!("{d}.rs") || r.starts_with(&format!("{d}/")))
        })
        .collect()
}

/// Every production file of `src/` (test-only files left out), as
/// (relative path, code with comments, literals and test items blanked).
fn production() -> Vec<(String, String)> {
    let sources = sources();
    let tests = test_only(&sources);
    (sources.iter())
        .map(|(path, text)| (relative(path), text))
        .filter(|(relative, _)| !tests.contains(relative))
        .map(|(relative, text)| (relative, without_tests(&code_only(text))))
        .collect()
}

/// Depth-first over `imports`: panics naming the first cycle it meets.
fn assert_no_cycle(what: &str, imports: &BTreeMap<String, BTreeSet<String>>) {
    fn visit(
        what: &str,
        node: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == node) {
            panic!(
                "{what}: import cycle: {} -> {node}",
                path[at..].join(" -> ")
            );
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in imports.get(node).into_iter().flatten() {
            visit(what, next, imports, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for node in imports.keys() {
        visit(what, node, imports, &mut Vec::new(), &mut done);
    }
}

/// The first names of the paths that follow `prefix` in `code`:
/// `super::a::B` gives `a`; `super::{a, b::C}` gives `a` and `b`.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.push(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            names.push(ident(item.trim()));
        } else {
            names.push(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (relative, code) in production() {
        let module = module_of(&relative);
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        for name in names_after(&code, "crate::") {
            if name != module {
                imports.entry(module.clone()).or_default().insert(name);
            }
        }
    }
    assert!(imports.len() > 5, "{imports:?}");
    assert_no_cycle("the top-level modules", &imports);
}

#[test]
fn the_files_of_each_folder_import_each_other_without_a_cycle() {
    let files = production();
    let mut folders: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let children = |folder: &str| -> BTreeSet<String> {
        (files.iter())
            .filter(|(r, _)| folder_of(r) == folder && !r.ends_with("mod.rs"))
            .map(|(r, _)| {
                r.rsplit('/')
                    .next()
                    .unwrap()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .chain(
                (files.iter())
                    .filter(|(r, _)| r.ends_with("/mod.rs") && folder_of(&folder_of(r)) == folder)
                    .map(|(r, _)| folder_of(r).rsplit('/').next().unwrap().to_string()),
            )
            .collect()
    };
    for (relative, code) in &files {
        let folder = folder_of(relative);
        if folder.is_empty() {
            continue;
        }
        let siblings = children(&folder);
        let file = relative
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let node = if file == "mod" {
            "mod".to_string()
        } else {
            file.clone()
        };
        let mut edges = BTreeSet::new();
        let crate_path = format!("crate::{}::", folder.replace('/', "::"));
        if node == "mod" {
            // The folder's face: its `use child::…` and `child::…` paths.
            for child in &siblings {
                if names_after(code, &format!("{child}::"))
                    .iter()
                    .any(|_| true)
                {
                    edges.insert(child.clone());
                }
            }
        } else {
            // Inline modules of the file reach it through `super::` too.
            let inline: BTreeSet<String> = names_after(code, "mod ")
                .into_iter()
                .filter(|m| code.contains(&format!("mod {m} {{")))
                .collect();
            for name in names_after(code, "super::")
                .into_iter()
                .chain(names_after(code, &crate_path))
            {
                match name.as_str() {
                    "super" => {}
                    n if inline.contains(n) => {}
                    n if siblings.contains(n) && n != file => {
                        edges.insert(n.to_string());
                    }
                    n if n == file => {}
                    _ => {
                        edges.insert("mod".to_string());
                    }
                }
            }
        }
        folders.entry(folder).or_default().insert(node, edges);
    }
    assert!(folders.len() > 5, "{:?}", folders.keys());
    for (folder, imports) in &folders {
        assert_no_cycle(&format!("src/{folder}/"), imports);
    }
}

#[test]
fn no_folder_of_src_holds_more_than_its_share_of_production_code() {
    let sources = sources();
    let tests = test_only(&sources);
    let mut rooms: BTreeMap<String, usize> = BTreeMap::new();
    for (path, text) in &sources {
        let relative = relative(path);
        if !tests.contains(&relative) {
            *rooms.entry(folder_of(&relative)).or_default() += production_lines(text);
        }
    }
    let mut table = String::new();
    for (room, lines) in &rooms {
        table.push_str(&format!("{lines:6}  src/{room}\n"));
    }
    eprintln!("production lines per folder:\n{table}");
    let over: Vec<_> = rooms.iter().filter(|(_, n)| **n > MAX_ROOM_LINES).collect();
    assert!(over.is_empty(), "over {MAX_ROOM_LINES} lines: {over:?}");
}

#[test]
fn long_functions_are_listed_for_review() {
    let mut long = Vec::new();
    for (relative, code) in production() {
        for (name, line, length) in functions(&code) {
            if length > REVIEW_FUNCTION_LINES {
                long.push(format!("{length:4}  src/{relative}:{line} {name}"));
            }
        }
    }
    long.sort();
    long.reverse();
    eprintln!(
        "functions over {REVIEW_FUNCTION_LINES} lines (a smell, not a rule):\n{}",
        long.join("\n")
    );
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
    let code = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\nfn c() {}\n";
    let kept = without_tests(code);
    assert!(kept.contains("fn a") && kept.contains("fn c") && !kept.contains("fn b"));
    assert_eq!(kept.lines().count(), code.lines().count());
    assert_eq!(
        names_after(
            "use super::{a::X, b, c::{D, E}};\nsuper::f::g();",
            "super::"
        ),
        ["a", "b", "c", "f"]
    );
}
