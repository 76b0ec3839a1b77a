//! Checks that run before any parser sees a request. async-graphql's parser recurses once per
//! nested list or object in an argument, so a document like `f(a: [[[[…]]]])` a few thousand
//! levels deep overflows the stack and kills the process; depth limits apply only after
//! parsing. These scans are iterative and linear, and refuse anything nested deeper than
//! [`MAX_NESTING`]; the document scan also counts tokens, so an oversized document is refused
//! before the parser builds it.

/// Deepest nesting of brackets (`{`, `[`, `(`) a document or JSON body may have.
pub const MAX_NESTING: usize = 64;

/// Why a request was refused before parsing.
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep;

/// Why a document was refused before parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Brackets nested deeper than [`MAX_NESTING`].
    TooDeep,
    /// More tokens than allowed (the count so far is past the limit).
    TooManyTokens,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Checks the bracket nesting and the token count of a GraphQL document, skipping strings,
/// block strings and comments (a string is one token).
pub fn check_document(document: &str, max_tokens: u64) -> Result<(), Refused> {
    let bytes = document.as_bytes();
    let mut depth = 0usize;
    let mut tokens = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_whitespace() || b == b',' || b == b'#') {
            tokens += 1;
            if tokens > max_tokens {
                return Err(Refused::TooManyTokens);
            }
        }
        match b {
            // A name or number, or the `...` punctuator: one token.
            b if is_name_byte(b) || b == b'-' => {
                while i + 1 < bytes.len() && (is_name_byte(bytes[i + 1]) || bytes[i + 1] == b'.') {
                    i += 1;
                }
            }
            b'.' => {
                while i + 1 < bytes.len() && bytes[i + 1] == b'.' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote does not end a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refused::TooDeep);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Checks the nesting of a JSON text (variables, request bodies), skipping strings.
pub fn check_json(json: &[u8]) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_deeply_nested_lists_in_arguments() {
        let bomb = format!("{{ f(a: {}1{}) }}", "[".repeat(2000), "]".repeat(2000));
        assert_eq!(check_document(&bomb, u64::MAX), Err(Refused::TooDeep));
        let json = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(check_json(json.as_bytes()), Err(TooDeep));
    }

    #[test]
    fn ignores_brackets_inside_strings_and_comments() {
        let brackets = "[".repeat(500);
        let doc = format!(
            "# {brackets}\n{{ a(s: \"{brackets}\", t: \"\"\"{brackets} \\\"\"\" {brackets}\"\"\") }}"
        );
        assert_eq!(check_document(&doc, u64::MAX), Ok(()));
        let json = format!("{{\"q\": \"{brackets}\\\"{brackets}\"}}");
        assert_eq!(check_json(json.as_bytes()), Ok(()));
    }

    #[test]
    fn accepts_ordinary_documents() {
        let doc = "query { viewer { photoJobs(first: 5, filter: {statuses: [PENDING]}) { edges { node { id } } } } }";
        assert_eq!(check_document(doc, u64::MAX), Ok(()));
    }

    #[test]
    fn counts_tokens_as_the_lexer_would() {
        // query { a ( x : -1.5e3 s : "x y" ) { b } ... F } : 17 tokens
        let doc = "query { a(x: -1.5e3, s: \"x y\") { b } ...F } # a comment of many words";
        assert_eq!(check_document(doc, 17), Ok(()));
        assert_eq!(check_document(doc, 16), Err(Refused::TooManyTokens));
        let block = "{ a(s: \"\"\"many words \\\"\"\" here\"\"\") }";
        assert_eq!(check_document(block, 8), Ok(()));
        assert_eq!(check_document(block, 7), Err(Refused::TooManyTokens));
    }
}
