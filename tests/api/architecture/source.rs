//! Reading Rust source well enough for the import graph: tests, comments and literals
//! blanked, tokens, `use` trees, and the file a path lands in.

use super::*;

/// The text before its `#[cfg(test)]` module (kept at the end of a file by convention).
pub(super) fn without_tests(text: &str) -> String {
    let mut kept = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// The code with comments, string literals and character literals blanked out.
pub(super) fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…".
        let raw_start = if c == 'r' && matches!(next, Some('"' | '#')) {
            Some(i + 1)
        } else if c == 'b' && next == Some('r') && matches!(chars.get(i + 2), Some('"' | '#')) {
            Some(i + 2)
        } else {
            None
        };
        let word_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if let (Some(mut j), false) = (raw_start, word_before) {
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\u{…}'), not a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
                continue;
            }
            if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

pub(super) fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The words and punctuation of the code, with `::` as one token.
pub(super) fn tokens(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// The paths a `use` tree names (after `use`, up to its `;`), with the name each binds.
pub(super) fn use_paths(tree: &[String]) -> Vec<(Vec<String>, Option<String>)> {
    fn parse(
        tree: &[String],
        at: &mut usize,
        prefix: &[String],
        out: &mut Vec<(Vec<String>, Option<String>)>,
    ) {
        let mut path = prefix.to_vec();
        while *at < tree.len() {
            let token = tree[*at].as_str();
            match token {
                "::" => *at += 1,
                "{" => {
                    *at += 1;
                    loop {
                        parse(tree, at, &path, out);
                        match tree.get(*at).map(String::as_str) {
                            Some(",") => *at += 1,
                            Some("}") => {
                                *at += 1;
                                break;
                            }
                            _ => break,
                        }
                        if tree.get(*at).map(String::as_str) == Some("}") {
                            *at += 1;
                            break;
                        }
                    }
                    return;
                }
                "," | "}" => break,
                "*" => {
                    *at += 1;
                    out.push((path.clone(), None));
                    return;
                }
                "as" => {
                    *at += 1;
                    let alias = tree.get(*at).cloned();
                    *at += 1;
                    out.push((path.clone(), alias));
                    return;
                }
                "self" if path.len() > prefix.len() || !prefix.is_empty() => {
                    *at += 1;
                    let bound = path.last().cloned();
                    out.push((path.clone(), bound));
                    return;
                }
                word => {
                    path.push(word.to_owned());
                    *at += 1;
                }
            }
        }
        if path.len() > prefix.len() {
            let bound = path.last().cloned();
            out.push((path, bound));
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    parse(tree, &mut at, &[], &mut out);
    out
}

/// The crate-absolute module path a path written in `file` points into, or `None` when it
/// leaves the crate (std, dependencies).
pub(super) fn absolute(
    file: &File,
    path: &[String],
    children: &BTreeSet<String>,
    aliases: &HashMap<String, Vec<String>>,
) -> Option<Vec<String>> {
    let first = path.first()?.as_str();
    let rest = &path[1..];
    let mut base: Vec<String> = match first {
        "crate" | "$crate" if !file.binary => Vec::new(),
        "bff" if file.binary => Vec::new(),
        "self" => file.module.clone(),
        "super" => {
            let mut module = file.module.clone();
            module.pop();
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                module.pop();
                rest = &rest[1..];
            }
            module.extend(rest.iter().cloned());
            return Some(module);
        }
        child if children.contains(child) => {
            let mut module = file.module.clone();
            module.push(child.to_owned());
            module
        }
        alias => aliases.get(alias)?.clone(),
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The file a crate-absolute path lands in: the longest prefix that is a module file.
pub(super) fn landing<'a>(
    modules: &HashMap<Vec<String>, &'a str>,
    path: &[String],
) -> Option<&'a str> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).copied())
}
